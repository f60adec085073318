/**
 * The two jobs that move whole files, each run by the file-jobs state
 * machine on its own Lambda invocation (infra/file-jobs-workflow.ts):
 *
 * - prepareTasksFile: validates a batch's tasks file in one streamed pass,
 *   writes the valid tasks in run order as the batch's own tasks file, and
 *   queues the batch for admission, or fails it with its line errors.
 * - buildResultsExport: writes every result of a finished batch to one
 *   JSON Lines file, page by page.
 *
 * Neither holds a file in memory: lines stream in, and out through a
 * buffered multipart writer. Both are safe to run again (the state machine
 * retries them): every state change is conditional on the step before.
 */
import { queuedBatchOf } from './capacity-coordinator';
import type { BatchRecord, BatchRepository, FleetActivity, QueuedBatch } from './ports';
import type { SubmitLimits } from './schemas';
import {
  invalidFileError,
  jsonLines,
  MAX_KEPT_ERRORS,
  TasksFileChangedError,
  TasksFileValidator,
  type TasksFileError,
} from './tasks-file';
import type { TaskResult } from './types';

/** Writes one object, streamed (multipart on S3). */
export interface ObjectWriter {
  write(text: string): Promise<void>;
  close(): Promise<void>;
  abort(): Promise<void>;
}

/** The S3 side of task files and exports. */
export interface FileStorage {
  /** Fleet's tasks bucket: uploads, batches' tasks files and exports live there. */
  readonly bucket: string;
  head(bucket: string, key: string): Promise<{ etag: string; bytes: number } | undefined>;
  /** Streams the object; with `etag`, throws TasksFileChangedError unless the object still has it. */
  read(bucket: string, key: string, etag?: string): AsyncIterable<Uint8Array>;
  /** A writer of `key` in the tasks bucket. */
  writer(key: string): ObjectWriter;
  remove(key: string): Promise<void>;
  /** A presigned PUT URL of `key` in the tasks bucket. */
  uploadUrl(key: string, expiresInSeconds: number): Promise<string>;
  /** A presigned GET URL of `key` in the tasks bucket, downloaded as `fileName`. */
  downloadUrl(key: string, expiresInSeconds: number, fileName: string): Promise<string>;
}

/** The tasks-file fields of a batch record. Each write is conditional: false when the batch moved on (cancelled). */
export interface TasksFileBatches {
  progress(batchId: string, linesRead: number): Promise<boolean>;
  ready(batchId: string, fields: { totalTasks: number; longestTaskTimeoutMs: number; linesRead: number }): Promise<boolean>;
  invalid(
    batchId: string,
    fields: { error: string; validationErrors: TasksFileError[]; truncated: boolean; linesRead: number; completedAt: number; expiresAt: number },
  ): Promise<boolean>;
}

/** Starts the file jobs' executions, each named after what it does, so a repeated start is harmless. */
export interface FileJobs {
  startPrepare(batchId: string): Promise<void>;
  startExport(batchId: string, attempt: number): Promise<void>;
  /** Stops a running prepare (its batch was cancelled); nothing if there is none. */
  stopPrepare(batchId: string): Promise<void>;
}

/** A batch's results export: one per batch, rebuilt when the batch finishes again (retry-failed). */
export interface ResultsExport {
  batchId: string;
  /** The batch's completedAt it was built for. */
  builtFor: number;
  /** Each (re)build is a new attempt, and a new execution. */
  attempt: number;
  state: 'building' | 'ready' | 'failed';
  key: string;
  resultsWritten: number;
  bytes?: number;
  error?: string;
  startedAt: number;
  /** Epoch ms of the build's last sign of life. */
  updatedAt: number;
  /** Epoch seconds: gone with the batch (DynamoDB TTL). */
  expiresAt?: number;
}

export interface ResultsExportStore {
  get(batchId: string): Promise<ResultsExport | undefined>;
  /** Writes `next` if the stored export is still at `previousAttempt` (or absent, for undefined). */
  begin(next: ResultsExport, previousAttempt: number | undefined): Promise<boolean>;
  progress(batchId: string, attempt: number, fields: { resultsWritten: number; updatedAt: number }): Promise<boolean>;
  end(batchId: string, attempt: number, fields: { state: 'ready' | 'failed'; resultsWritten: number; bytes?: number; error?: string; updatedAt: number }): Promise<boolean>;
}

export const exportKeyOf = (batchId: string) => `batches/${batchId}/results.jsonl`;
export const uploadKeyOf = (uploadId: string) => `uploads/${uploadId}.jsonl`;
export const batchTasksKeyOf = (batchId: string) => `batches/${batchId}/tasks.jsonl`;
const sortRunKeyOf = (batchId: string, run: number) => `batches/${batchId}/sort/run-${run}.jsonl`;

/** Collects lines into chunks of about `chunkBytes` before handing them to the writer: one await per chunk, not per line. */
class LineBuffer {
  private parts: string[] = [];
  private size = 0;
  bytes = 0;
  constructor(
    private readonly writer: ObjectWriter,
    private readonly chunkBytes = 1 << 20,
  ) {}
  async add(line: string): Promise<void> {
    this.parts.push(line, '\n');
    this.size += line.length + 1;
    if (this.size >= this.chunkBytes) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.parts.length === 0) return;
    const text = this.parts.join('');
    this.parts = [];
    this.size = 0;
    this.bytes += Buffer.byteLength(text);
    await this.writer.write(text);
  }
}

export interface PrepareDeps {
  storage: FileStorage;
  batches: TasksFileBatches;
  repository: Pick<BatchRepository, 'getBatch'>;
  /** Queues the batch for admission (or starts it, without admission). */
  enqueue(entry: QueuedBatch): Promise<void>;
  activity?: Pick<FleetActivity, 'addSubmittedBatch' | 'addFinishedBatch'>;
  limits: SubmitLimits;
  retentionDays: number;
  now?: () => number;
  /** Lines between progress writes (which also notice a cancel). @default 20000 */
  progressEveryLines?: number;
  /** Bytes of tasks sorted in memory at once, when a file is not in run order. @default 64 MiB */
  sortRunBytes?: number;
}

export type PrepareOutcome =
  | { state: 'ready'; totalTasks: number }
  | { state: 'invalid'; error: string; errors: TasksFileError[] }
  /** Nothing to do: the batch is gone, cancelled, or prepared before. */
  | { state: 'skipped'; reason: string };

export async function prepareTasksFile(deps: PrepareDeps, batchId: string): Promise<PrepareOutcome> {
  const now = deps.now ?? Date.now;
  const record = await deps.repository.getBatch(batchId);
  if (!record?.tasksFile) return { state: 'skipped', reason: 'no such batch with a tasks file' };
  if (record.status !== 'pending') return { state: 'skipped', reason: `the batch is ${record.status}` };
  if (record.tasksFile.state === 'ready') {
    // Prepared before, and the run that did it stopped before queueing it (queueing twice is harmless).
    await deps.enqueue(queueEntryOf(record, deps.storage.bucket));
    return { state: 'ready', totalTasks: record.totalTasks };
  }
  if (record.tasksFile.state !== 'validating') return { state: 'skipped', reason: `the tasks file is ${record.tasksFile.state}` };

  const { bucket, key, etag } = record.tasksFile;
  const validator = new TasksFileValidator(deps.limits);
  const every = deps.progressEveryLines ?? 20_000;
  const writer = deps.storage.writer(record.tasksKey);
  const out = new LineBuffer(writer);
  let linesRead = 0;
  let written = false;
  try {
    for await (const line of jsonLines(deps.storage.read(bucket, key, etag), validator.maxLineBytes)) {
      linesRead = line.number;
      const task = validator.accept(line);
      if (task && validator.errorCount === 0) await out.add(task.json);
      if (validator.full) break;
      if (linesRead % every === 0 && !(await deps.batches.progress(batchId, linesRead))) {
        await writer.abort();
        return { state: 'skipped', reason: 'the batch was cancelled while its file was validated' };
      }
    }
    if (validator.errorCount === 0 && validator.tasks === 0) {
      validator.errors.push({ line: Math.max(1, linesRead), message: 'the file holds no task: it is empty or blank' });
      validator.errorCount = 1;
    }
    // Duplicate ids are found in a second look at the lines whose id fingerprint is shared (rarely any).
    if (!validator.full) {
      await validator.findDuplicates(jsonLines(deps.storage.read(bucket, key, etag), validator.maxLineBytes), validator.sharedFingerprints());
    }
    if (validator.errorCount === 0) {
      await out.flush();
      await writer.close();
      written = true;
    } else {
      await writer.abort();
    }
  } catch (error) {
    if (!written) await writer.abort().catch(() => undefined);
    if (!(error instanceof TasksFileChangedError)) throw error;
    return fail(deps, record, now, { error: `${error.message}: no task ran; submit the file again as a new batch`, validationErrors: [], truncated: false, linesRead });
  }

  if (validator.errorCount > 0) {
    return fail(deps, record, now, {
      error: invalidFileError(validator),
      validationErrors: validator.errors,
      truncated: validator.errorCount > validator.errors.length || (validator.full && validator.errors.length >= MAX_KEPT_ERRORS),
      linesRead,
    });
  }
  if (!validator.inRunOrder) await sortIntoRunOrder(deps.storage, record.batchId, record.tasksKey, deps.sortRunBytes ?? 64 << 20);

  const totalTasks = validator.tasks;
  if (!(await deps.batches.ready(batchId, { totalTasks, longestTaskTimeoutMs: validator.longestTaskTimeoutMs, linesRead }))) {
    return { state: 'skipped', reason: 'the batch was cancelled while its file was validated' };
  }
  // Once, after the conditional write above: a crash in between leaves the batch out of the totals, never in them twice.
  await deps.activity?.addSubmittedBatch(totalTasks);
  await deps.enqueue(queueEntryOf({ ...record, totalTasks }, deps.storage.bucket));
  // The upload has served its purpose; a file the deployer owns (s3://) is theirs to keep.
  if (record.tasksFile.source === 'upload') await deps.storage.remove(key).catch(() => undefined);
  return { state: 'ready', totalTasks };
}

function queueEntryOf(record: BatchRecord, tasksBucket: string): QueuedBatch {
  return queuedBatchOf(record, {
    input: { batchId: record.batchId, tasksBucket, tasksKey: record.tasksKey },
    executionName: record.batchId,
    demand: record.totalTasks,
  });
}

async function fail(
  deps: PrepareDeps,
  record: BatchRecord,
  now: () => number,
  fields: { error: string; validationErrors: TasksFileError[]; truncated: boolean; linesRead: number },
): Promise<PrepareOutcome> {
  const at = now();
  const expiresAt = Math.floor(at / 1000 + deps.retentionDays * 86_400);
  if (await deps.batches.invalid(record.batchId, { ...fields, completedAt: at, expiresAt })) {
    // A batch that ran nothing: in the totals as one batch of no task.
    await deps.activity?.addSubmittedBatch(0);
    await deps.activity?.addFinishedBatch(record.batchId, { completedTasks: 0, failedTasks: 0 }, expiresAt);
  }
  return { state: 'invalid', error: fields.error, errors: fields.validationErrors };
}

/**
 * Puts a tasks file in run order (higher priority first, file order within a
 * priority) in bounded memory: sorted runs of at most `runBytes`, then one
 * merge of them all back into `key`.
 */
export async function sortIntoRunOrder(storage: FileStorage, batchId: string, key: string, runBytes: number): Promise<void> {
  type Entry = { priority: number; line: string };
  const priorityOf = (line: string) => (JSON.parse(line) as { priority?: number }).priority ?? 0;
  const runKeys: string[] = [];
  let run: Entry[] = [];
  let runSize = 0;
  const writeRun = async () => {
    if (run.length === 0) return;
    // Array.prototype.sort is stable: file order holds within a priority.
    run.sort((a, b) => b.priority - a.priority);
    const runKey = sortRunKeyOf(batchId, runKeys.length);
    const writer = storage.writer(runKey);
    const out = new LineBuffer(writer);
    for (const entry of run) await out.add(entry.line);
    await out.flush();
    await writer.close();
    runKeys.push(runKey);
    run = [];
    runSize = 0;
  };
  for await (const line of jsonLines(storage.read(storage.bucket, key), Number.MAX_SAFE_INTEGER)) {
    if (line.text === undefined || line.text === '') continue;
    run.push({ priority: priorityOf(line.text), line: line.text });
    runSize += line.bytes;
    if (runSize >= runBytes) await writeRun();
  }
  await writeRun();

  // Merge: the next line is the highest priority at the head of any run; the earlier run wins a tie (it came first in the file).
  const heads = runKeys.map((runKey) => jsonLines(storage.read(storage.bucket, runKey), Number.MAX_SAFE_INTEGER)[Symbol.asyncIterator]());
  const current: (Entry | undefined)[] = await Promise.all(heads.map(async (head) => nextEntry(head, priorityOf)));
  const writer = storage.writer(key);
  const out = new LineBuffer(writer);
  try {
    for (;;) {
      let best = -1;
      for (let i = 0; i < current.length; i++) {
        const entry = current[i];
        if (entry && (best === -1 || entry.priority > (current[best] as Entry).priority)) best = i;
      }
      if (best === -1) break;
      await out.add((current[best] as Entry).line);
      current[best] = await nextEntry(heads[best] as AsyncIterator<{ text: string | undefined }>, priorityOf);
    }
    await out.flush();
    await writer.close();
  } catch (error) {
    await writer.abort().catch(() => undefined);
    throw error;
  }
  await Promise.all(runKeys.map((runKey) => storage.remove(runKey)));
}

async function nextEntry(
  lines: AsyncIterator<{ text: string | undefined }>,
  priorityOf: (line: string) => number,
): Promise<{ priority: number; line: string } | undefined> {
  for (;;) {
    const next = await lines.next();
    if (next.done) return undefined;
    const text = next.value.text;
    if (text) return { priority: priorityOf(text), line: text };
  }
}

export interface ExportDeps {
  repository: Pick<BatchRepository, 'listResults'>;
  exports: ResultsExportStore;
  storage: FileStorage;
  now?: () => number;
}

/** Results read per page while exporting. */
const EXPORT_PAGE = 1000;

/** Writes every result of the batch to its export file; stops if a newer attempt took over. */
export async function buildResultsExport(deps: ExportDeps, batchId: string, attempt: number): Promise<ResultsExport | undefined> {
  const now = deps.now ?? Date.now;
  const current = await deps.exports.get(batchId);
  if (!current || current.attempt !== attempt || current.state !== 'building') return current;
  const writer = deps.storage.writer(current.key);
  const out = new LineBuffer(writer);
  let written = 0;
  let cursor: string | undefined;
  // Set when a newer attempt took over: this one's file is abandoned, and the newer export returned.
  let overtaken = false;
  try {
    do {
      const page = await deps.repository.listResults(batchId, EXPORT_PAGE, cursor);
      for (const result of page.items) await out.add(JSON.stringify(result satisfies TaskResult));
      written += page.items.length;
      cursor = page.nextCursor ?? undefined;
      if (cursor && written % (EXPORT_PAGE * 20) === 0 && !(await deps.exports.progress(batchId, attempt, { resultsWritten: written, updatedAt: now() }))) {
        await writer.abort();
        overtaken = true;
        break;
      }
    } while (cursor);
    if (!overtaken) {
      await out.flush();
      await writer.close();
    }
  } catch (error) {
    await writer.abort().catch(() => undefined);
    throw error;
  }
  if (overtaken) return deps.exports.get(batchId);
  await deps.exports.end(batchId, attempt, { state: 'ready', resultsWritten: written, bytes: out.bytes, updatedAt: now() });
  return deps.exports.get(batchId);
}
