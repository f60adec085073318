/**
 * Batches of any size: a batch whose tasks come as a JSON Lines file in S3
 * (an upload, or an object in a bucket the deployer allowed) instead of in
 * the request body. See docs/tasks-files.md.
 *
 * The file is read once, streamed, never whole: each line is validated as an
 * inline task is (schemas.ts parseTask), and the valid tasks are written, in
 * run order, to the batch's own tasks file, the one its Distributed Map
 * reads. The source's ETag is fixed at submit time: a file changed since
 * fails the batch instead of running tasks nobody validated.
 */
import { createHash } from 'node:crypto';
import { ValidationError } from './errors';
import { parseTask, type SubmitLimits } from './schemas';

/** Where a batch's tasks file is, as `POST /batches` names it. */
export type TasksFileRef = { kind: 'upload'; uploadId: string } | { kind: 's3'; bucket: string; key: string };

const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** S3's bucket naming rules, in short: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function parseTasksFileRef(value: string): TasksFileRef {
  if (value.startsWith('s3://')) {
    const rest = value.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    const key = slash === -1 ? '' : rest.slice(slash + 1);
    if (!BUCKET_NAME.test(bucket)) throw new ValidationError('tasksFile', `names the bucket "${bucket}", which is not a valid S3 bucket name`);
    if (key === '' || Buffer.byteLength(key) > 1024) throw new ValidationError('tasksFile', 'must name an object: s3://bucket/key, with a key of 1 to 1024 bytes');
    return { kind: 's3', bucket, key };
  }
  if (!UPLOAD_ID.test(value)) {
    throw new ValidationError('tasksFile', 'must be an upload id from POST /batches/uploads, or an s3://bucket/key URI of an allowed bucket');
  }
  return { kind: 'upload', uploadId: value };
}

/** A batch's tasks file, as its record keeps it. */
export interface TasksFileState {
  source: 'upload' | 's3';
  bucket: string;
  key: string;
  /** The object's ETag when the batch was submitted: the file validated is that one. */
  etag: string;
  bytes: number;
  uploadId?: string;
  state: 'validating' | 'ready' | 'invalid';
  /** Lines read so far by the validating pass. */
  linesRead: number;
}

/** What is wrong with one line of a tasks file. */
export interface TasksFileError {
  /** 1-based, as editors count. */
  line: number;
  /** The task field, e.g. `id` or `data`, when the error is about one. */
  field?: string;
  message: string;
}

/** Errors kept on a batch (each under ~600 bytes, so the record stays far below DynamoDB's 400 KB). */
export const MAX_KEPT_ERRORS = 100;

/** Thrown by a TasksFileSource when the object is not the one the batch was submitted with. */
export class TasksFileChangedError extends Error {
  override readonly name = 'TasksFileChangedError';
}

/** An upload (`POST /batches/uploads`): a key in the tasks bucket the caller may PUT a file to for a while. */
export interface UploadRecord {
  uploadId: string;
  key: string;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms after which the URL no longer accepts the file, and the upload cannot be submitted. */
  urlExpiresAt: number;
  /** The batch that used it: an upload makes one batch. */
  batchId?: string;
  /** The file's ETag and size when that batch claimed it. */
  etag?: string;
  bytes?: number;
}

export interface UploadStore {
  create(upload: UploadRecord): Promise<void>;
  get(uploadId: string): Promise<UploadRecord | undefined>;
  /** Binds the upload, as it is now, to the batch; false when another batch has it. Idempotent for the same batch. */
  claim(uploadId: string, batchId: string, file: { etag: string; bytes: number }): Promise<boolean>;
}

/** Streams one line at a time; never holds more than one line (at most `maxLineBytes`) beyond the chunk being read. */
export interface FileLine {
  /** 1-based. */
  number: number;
  /** The line's text, without its line break; undefined when it is longer than `maxLineBytes`. */
  text: string | undefined;
  bytes: number;
}

export async function* jsonLines(chunks: AsyncIterable<Uint8Array>, maxLineBytes: number): AsyncGenerator<FileLine, void, undefined> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let tooLong = false;
  let number = 0;
  const emit = (tail: Buffer): FileLine => {
    number++;
    const bytes = pendingBytes + tail.length;
    let text: string | undefined;
    if (!tooLong && bytes <= maxLineBytes) {
      const whole = pending.length === 0 ? tail : Buffer.concat([...pending, tail]);
      text = whole.toString('utf8');
      if (text.endsWith('\r')) text = text.slice(0, -1);
    }
    pending = [];
    pendingBytes = 0;
    tooLong = false;
    return { number, text, bytes };
  };
  for await (const chunk of chunks) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (let end = buffer.indexOf(10, start); end !== -1; end = buffer.indexOf(10, start)) {
      yield emit(buffer.subarray(start, end));
      start = end + 1;
    }
    if (start < buffer.length) {
      const rest = buffer.subarray(start);
      pendingBytes += rest.length;
      // A line past the cap is only counted from here on, never kept.
      if (pendingBytes > maxLineBytes) {
        tooLong = true;
        pending = [];
      } else {
        pending.push(Buffer.from(rest));
      }
    }
  }
  if (pendingBytes > 0 || tooLong) yield emit(Buffer.alloc(0));
}

/** A task id's 64-bit fingerprint: 8 bytes a task, so a file of 10 million tasks checks its ids in 80 MB. */
const idFingerprint = (id: string): bigint => createHash('md5').update(id, 'utf8').digest().readBigUInt64BE(0);

/**
 * Validates a tasks file line by line and turns each valid line into the
 * task's normalized JSON. Keeps the first MAX_KEPT_ERRORS errors; stops
 * (`full`) once it has that many, or once the file holds more tasks than a
 * batch may.
 */
export class TasksFileValidator {
  readonly errors: TasksFileError[] = [];
  /** Errors found, kept or not. */
  errorCount = 0;
  tasks = 0;
  longestTaskTimeoutMs = 0;
  /** Whether the tasks are already in run order (priority never rises along the file). */
  inRunOrder = true;
  private lastPriority = Number.POSITIVE_INFINITY;
  private fingerprints = new BigUint64Array(1024);
  private overLimit = false;

  constructor(private readonly limits: SubmitLimits) {}

  /** The most a raw line may take: a task's limit, with room for insignificant whitespace. */
  get maxLineBytes(): number {
    return this.limits.taskBytes * 2;
  }

  get full(): boolean {
    return this.overLimit || this.errors.length >= MAX_KEPT_ERRORS;
  }

  /** The task's JSON for a valid line; undefined for a blank or bad one. */
  accept(line: FileLine): { json: string; priority: number } | undefined {
    if (line.text === undefined) {
      this.reject(line.number, undefined, `is ${line.bytes} bytes; a task may be at most ${this.limits.taskBytes} bytes`);
      return undefined;
    }
    if (line.text.trim() === '') return undefined;
    let raw: unknown;
    try {
      raw = JSON.parse(line.text);
    } catch {
      this.reject(line.number, undefined, 'is not valid JSON: a tasks file holds one JSON task object per line (JSON Lines)');
      return undefined;
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      const what = Array.isArray(raw) ? 'an array' : raw === null ? 'null' : `a ${typeof raw}`;
      this.reject(line.number, undefined, `is ${what}, not a task object: a tasks file holds one JSON task object per line (JSON Lines)`);
      return undefined;
    }
    let parsed: ReturnType<typeof parseTask>;
    try {
      parsed = parseTask(raw, '', this.limits);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      this.reject(line.number, error.field || undefined, error.problem);
      return undefined;
    }
    if (this.tasks >= this.limits.tasksPerBatch) {
      this.overLimit = true;
      this.reject(line.number, undefined, `is past the batch's task limit: a batch may hold at most ${this.limits.tasksPerBatch} tasks (maxTasksPerBatch)`);
      return undefined;
    }
    const { task, json } = parsed;
    if (this.tasks === this.fingerprints.length) {
      const grown = new BigUint64Array(this.fingerprints.length * 2);
      grown.set(this.fingerprints);
      this.fingerprints = grown;
    }
    this.fingerprints[this.tasks] = idFingerprint(task.id);
    this.tasks++;
    const priority = task.priority ?? 0;
    if (priority > this.lastPriority) this.inRunOrder = false;
    this.lastPriority = priority;
    if (task.timeout !== undefined && task.timeout > this.longestTaskTimeoutMs) this.longestTaskTimeoutMs = task.timeout;
    return { json, priority };
  }

  /**
   * Fingerprints shared by more than one task: the ids to look at again
   * (a shared fingerprint is almost always a duplicate id; the second look
   * compares the ids themselves).
   */
  sharedFingerprints(): Set<bigint> {
    const sorted = this.fingerprints.subarray(0, this.tasks).sort();
    const shared = new Set<bigint>();
    for (let i = 1; i < sorted.length; i++) if (sorted[i] === sorted[i - 1]) shared.add(sorted[i] as bigint);
    this.fingerprints = new BigUint64Array(0);
    return shared;
  }

  /**
   * Second look, over the file again: records every line whose id an earlier
   * line already had, among the ids with a shared fingerprint.
   */
  async findDuplicates(lines: AsyncIterable<FileLine>, shared: ReadonlySet<bigint>): Promise<void> {
    if (shared.size === 0) return;
    // Kept in line order, among the errors the first look found.
    try {
      await this.collectDuplicates(lines, shared);
    } finally {
      this.errors.sort((a, b) => a.line - b.line);
    }
  }

  private async collectDuplicates(lines: AsyncIterable<FileLine>, shared: ReadonlySet<bigint>): Promise<void> {
    const firstLineOf = new Map<string, number>();
    for await (const line of lines) {
      if (this.errors.length >= MAX_KEPT_ERRORS) return;
      if (line.text === undefined || line.text.trim() === '') continue;
      let id: unknown;
      try {
        id = (JSON.parse(line.text) as { id?: unknown }).id;
      } catch {
        continue;
      }
      if (typeof id !== 'string' || !shared.has(idFingerprint(id))) continue;
      const first = firstLineOf.get(id);
      if (first === undefined) firstLineOf.set(id, line.number);
      else this.reject(line.number, 'id', `duplicates the id "${id.length > 80 ? `${id.slice(0, 80)}…` : id}" of line ${first}`);
    }
  }

  private reject(line: number, field: string | undefined, message: string): void {
    this.errorCount++;
    if (this.errors.length < MAX_KEPT_ERRORS) this.errors.push({ line, ...(field ? { field } : {}), message: message.slice(0, 500) });
  }
}

/** The batch error a file's validation errors sum up to. */
export function invalidFileError(validator: Pick<TasksFileValidator, 'errors' | 'errorCount' | 'full'>): string {
  const first = validator.errors[0];
  const where = first ? ` (first: line ${first.line}${first.field ? `, ${first.field}` : ''}: ${first.message})` : '';
  const count = validator.full && validator.errors.length >= MAX_KEPT_ERRORS ? `at least ${validator.errorCount}` : String(validator.errorCount);
  return `the tasks file is invalid: ${count} bad line(s)${where}; no task ran. See validationErrors.`;
}
