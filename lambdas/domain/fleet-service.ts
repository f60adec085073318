/**
 * The seed's callable methods, on ports. The API handler maps HTTP to these;
 * nothing here knows about HTTP or AWS.
 */
import { randomUUID } from 'node:crypto';
import { counterShardsFor, orderByPriority } from './batch';
import { queuedBatchOf, type CapacityCoordinator } from './capacity-coordinator';
import { LIMITS } from './config';
import { FINISHED_STATES } from './types';
import { ConflictError, NotFoundError, ValidationError } from './errors';
import { batchTasksKeyOf, exportKeyOf, uploadKeyOf, type FileJobs, type FileStorage, type ResultsExport, type ResultsExportStore } from './file-jobs';
import { TasksFileChangedError, jsonLines, parseTasksFileRef, type TasksFileState, type UploadStore } from './tasks-file';
import { fingerprintSubmitRequest, hashIdempotencyKey } from './idempotency';
import type {
  BatchExecutionInput,
  BatchMaintenance,
  BatchRecord,
  BatchRepository,
  IdempotencyRecord,
  IdempotencyStore,
  Page,
  TaskFileRemover,
  TaskStore,
  WorkflowStarter,
} from './ports';
import {
  namesTasksFile,
  parseConfigPatch,
  parseFileSubmitRequest,
  parseSubmitRequest,
  parseWorkerCount,
  type FileSubmitRequest,
  type SubmitLimits,
  type SubmitRequest,
} from './schemas';
import { summarizeBatch, type BatchSummary } from './summary';
import { MAX_LISTED_WORKERS, combineStats, countFinishedBatch, mapConcurrently } from './fleet-activity';
import type { FleetActivity } from './ports';
import { retryFailedTasks, type RetryFailedDeps, type RetryFailedResult } from './retry-failed';
import type { FleetStatistics, WorkerInfo } from './types';
import type { BatchStatus, FleetManagerConfig, Task, TaskResult } from './types';
import type { FailedAttempt, TaskLookup, TimelineStore } from './ports';
import { TIMELINE_RETENTION_SECONDS, minuteOf, timelineOf, type Timeline } from './timeline';

/** How old a processing batch's counts may be in GET /batches/{id}. */
export const STATUS_COUNTS_MAX_AGE_MS = 100;
/** Results read per page when summarizing: the repository's largest page. */
const SUMMARY_PAGE_SIZE = 1000;
/** The results a page may carry: their escaped JSON, inside the API function's 6 MB response. */
const RESULTS_PAGE_BYTES = LIMITS.bodyInPayloadBytes;

/**
 * How long an upload URL accepts its file, and an export URL serves it. An
 * hour: a presigned URL stops working when the credentials that signed it
 * expire, and a Lambda function's role credentials last a few hours at most.
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html
 */
export const FILE_URL_SECONDS = 3600;
/** S3's largest single PUT: 5 GiB (https://docs.aws.amazon.com/AmazonS3/latest/userguide/upload-objects.html). */
export const MAX_UPLOAD_BYTES = 5 * 1024 ** 3;
/** An export build silent this long is presumed lost (its Lambda has at most 15 minutes) and built again. */
const EXPORT_STALE_MS = 16 * 60_000;

/** What batches of any size need: uploads, the file jobs, and the buckets batches may name. */
export interface FileDeps {
  storage: FileStorage;
  uploads: UploadStore;
  jobs: FileJobs;
  exports: ResultsExportStore;
  /** Buckets a batch may name as `s3://bucket/key` (FleetProps.tasksFileBuckets). */
  allowedBuckets: readonly string[];
}

/** A tasks file as a submit found it: where it is, and which content (its ETag). */
type InspectedFile = Omit<TasksFileState, 'state' | 'linesRead'> & {
  /** The batch that already used this upload, if one did. */
  boundTo?: string;
};

/** A batch as a submit records it: pending, nothing run. */
function newBatchRecord(
  batchId: string,
  createdAt: number,
  fields: Pick<BatchRecord, 'totalTasks' | 'priority' | 'longestTaskTimeoutMs' | 'tasksKey'> & Pick<Partial<BatchRecord>, 'tasksFile' | 'counterShards'>,
): BatchRecord {
  return { batchId, status: 'pending', createdAt, startedAt: null, completedAt: null, completedTasks: 0, failedTasks: 0, ...fields };
}

/** The status a submit answers with, for the batch it just recorded. */
function newBatchStatus(record: BatchRecord): BatchStatus {
  return {
    batchId: record.batchId,
    status: 'pending',
    totalTasks: record.totalTasks,
    completedTasks: 0,
    failedTasks: 0,
    progress: 0,
    createdAt: record.createdAt,
    startedAt: null,
    completedAt: null,
    ...(record.tasksFile ? { tasksFile: { state: record.tasksFile.state, linesRead: record.tasksFile.linesRead } } : {}),
  };
}

type ResolvedFileRequest = FileSubmitRequest & { file: InspectedFile };

/** What an Idempotency-Key's fingerprint knows a tasks file by: its content, wherever it was uploaded. */
const contentIdOf = (file: InspectedFile) => (file.source === 's3' ? `s3://${file.bucket}/${file.key}#${file.etag}` : `upload#${file.etag}#${file.bytes}`);

/** POST /batches/uploads. */
export interface CreatedUpload {
  uploadId: string;
  url: string;
  method: 'PUT';
  expiresAt: string;
  maxBytes: number;
}

/** GET /batches/{id}/results/export. */
export type ExportStatus =
  | { status: 'ready'; url: string; expiresAt: string; results: number; bytes: number }
  | { status: 'building'; resultsWritten: number; previousError?: string };

/** What GET /batches/{id}/results may keep. */
export interface ResultFilter {
  /** true: successes only; false: failures only. */
  success?: boolean;
  taskIdPrefix?: string;
}

/** GET /batches/{id}/tasks/{taskId}. */
export interface TaskDetail {
  batchId: string;
  taskId: string;
  /** The task as submitted (in run order's normalized form); null when its batch's tasks file no longer holds it. */
  task: Task | null;
  /** Its final result; null while it has none. */
  result: TaskResult | null;
  /** Failed results retry-failed cleared before running it again, oldest first. */
  failedAttempts: FailedAttempt[];
}

/** A task line is at most LIMITS.taskBytes as JSON; longer lines are not tasks of this fleet. */
const TASK_LINE_BYTES = 4 * LIMITS.taskBytes;

export interface FleetServiceDeps {
  repository: BatchRepository;
  /** Needed to submit batches only (the autoscaler only scales). @default - submitBatch and submitBatchOnce throw */
  taskStore?: TaskStore;
  workflow: WorkflowStarter;
  /**
   * Admission: shares maxConcurrentWorkers across batches, and starts a
   * batch's execution once it holds a share. Without it each batch starts at
   * once and gets the whole cap.
   */
  capacity?: CapacityCoordinator;
  /** Needed by deleteBatch only. @default - deleteBatch throws */
  maintenance?: BatchMaintenance;
  /** Needed by deleteBatch only. @default - deleteBatch throws */
  taskFiles?: TaskFileRemover;
  /**
   * Fleet statistics and the worker registry: submit and cancel add to the
   * stats through it. @default - no stats are kept; getStats and getActiveWorkers throw
   */
  activity?: FleetActivity;
  /** Idempotency-Key claims. Needed by submitBatchOnce only. @default - submitBatchOnce throws */
  idempotency?: IdempotencyStore;
  /** Tasks files and results exports. @default - submitting a tasksFile, uploads and exports throw */
  files?: FileDeps;
  /** A task's result and cleared failures by its id. Needed by getTask only. @default - getTask throws */
  tasks?: TaskLookup;
  /** One snapshot of the totals a minute. Needed by getTimeline only (with activity). @default - getTimeline throws */
  timeline?: TimelineStore;
  /** What retry-failed needs. @default - retryFailed throws */
  retry?: Pick<RetryFailedDeps, 'store' | 'taskFiles' | 'workflow'>;
  limits?: SubmitLimits;
  /** Days a finished batch is kept. @default 7 */
  retentionDays?: number;
  now?: () => number;
  newBatchId?: () => string;
}

export class FleetService {
  private readonly now: () => number;
  private readonly newBatchId: () => string;
  private readonly limits: SubmitLimits;

  constructor(private readonly deps: FleetServiceDeps) {
    this.now = deps.now ?? Date.now;
    this.newBatchId = deps.newBatchId ?? randomUUID;
    this.limits = deps.limits ?? LIMITS;
  }

  /** Validates, stores the tasks in run order, records the batch and starts its execution. */
  async submitBatch(body: unknown): Promise<BatchStatus> {
    return (await this.create(this.newBatchId(), await this.parseSubmit(body))).status;
  }

  /** The request, and for a tasks file the file it names (looked at, not read). */
  private async parseSubmit(body: unknown): Promise<SubmitRequest | ResolvedFileRequest> {
    if (!namesTasksFile(body)) return parseSubmitRequest(body, this.limits);
    const request = parseFileSubmitRequest(body);
    return { ...request, file: await this.inspectTasksFile(this.files('submitBatch'), request.tasksFile) };
  }

  private create(batchId: string, request: SubmitRequest | ResolvedFileRequest, keyHash?: string): Promise<{ status: BatchStatus; created: boolean }> {
    return 'tasksFile' in request ? this.createFileBatch(batchId, request, keyHash) : this.createAndStart(batchId, request, keyHash);
  }

  /**
   * submitBatch under an `Idempotency-Key`: the same key with the same body
   * gives the same batch, however often it is sent and however the sends
   * interleave; the same key with another body is a ConflictError.
   *
   * - The key is claimed (a conditional write) before the batch exists, so of
   *   two concurrent sends exactly one claim wins; the other reads it.
   * - A send that finds a claim whose batch is not there yet completes the
   *   submission itself: the first send may still be working, or may have
   *   crashed after its claim. Every step is idempotent (the same tasks file,
   *   a conditional create, a start named after the batch), so both may run it.
   * - A claim marked created whose batch is gone (deleted, expired) is a
   *   ConflictError: the key cannot bring the batch back.
   *
   * `created` is true for the one call that created the batch record.
   */
  async submitBatchOnce(body: unknown, idempotencyKey: string): Promise<{ status: BatchStatus; created: boolean }> {
    if (!this.deps.idempotency) throw new Error('FleetService was built without idempotency; submitBatchOnce needs it');
    const request = await this.parseSubmit(body);
    const now = this.now();
    const claim: IdempotencyRecord = {
      keyHash: hashIdempotencyKey(idempotencyKey),
      // A file is known by its content (its ETag), not by the upload that carried it: the same
      // file uploaded again by a retry from another process, under the same key, is the same batch.
      bodyHash: fingerprintSubmitRequest('tasksFile' in request ? { tasksFile: contentIdOf(request.file), priority: request.priority } : request),
      batchId: this.newBatchId(),
      state: 'creating',
      createdAt: now,
      expiresAt: Math.floor(now / 1000 + (this.deps.retentionDays ?? 7) * 86_400),
    };
    const outcome = await this.deps.idempotency.claim(claim);
    const held = outcome.claimed ? claim : outcome.existing;
    if (held.bodyHash !== claim.bodyHash) {
      throw new ConflictError('Idempotency-Key: this key was already used with a different request body; send a new key for a new batch');
    }
    if (outcome.claimed) return this.create(held.batchId, request, held.keyHash);

    const record = await this.deps.repository.getBatch(held.batchId);
    if (!record) {
      if (held.state === 'created') {
        throw new ConflictError(`Idempotency-Key: batch ${held.batchId} was submitted with this key and no longer exists (deleted or expired); send a new key to submit again`);
      }
      return this.create(held.batchId, request, held.keyHash);
    }
    if (held.state === 'creating') await this.deps.idempotency.markCreated(held.keyHash, held.batchId);
    if ('tasksFile' in request || record.tasksFile) {
      // Its validation may never have started (both steps are idempotent); once ready, the validation queued it.
      if (record.status === 'pending' && record.tasksFile?.state === 'validating') await this.files('submitBatch').jobs.startPrepare(held.batchId);
      return { status: await this.getBatchStatus(held.batchId), created: false };
    }
    // A batch still pending whose execution is not running may never have been queued or started: do it (both are idempotent).
    if (record.status === 'pending' && !(await this.deps.workflow.isBatchRunning(held.batchId))) {
      const { bucket, key } = await this.tasks('submitBatchOnce').putTasks(held.batchId, orderByPriority(request.tasks));
      await this.startOrQueue(record, { batchId: held.batchId, tasksBucket: bucket, tasksKey: key });
    }
    return { status: await this.getBatchStatus(held.batchId), created: false };
  }

  /**
   * Stores the tasks, records the batch and starts it. Safe to run again for
   * the same batch id and request: a record someone else created first is
   * left alone (and not counted in the stats twice), and the start is
   * idempotent. With `keyHash`, the key's claim is marked created once the record exists.
   */
  private async createAndStart(batchId: string, request: SubmitRequest, keyHash?: string): Promise<{ status: BatchStatus; created: boolean }> {
    const ordered = orderByPriority(request.tasks);
    const { bucket, key } = await this.tasks('submitBatch').putTasks(batchId, ordered);
    const createdAt = this.now();
    const record = newBatchRecord(batchId, createdAt, {
      counterShards: counterShardsFor(ordered.length),
      totalTasks: ordered.length,
      priority: request.priority,
      longestTaskTimeoutMs: ordered.reduce((longest, task) => Math.max(longest, task.timeout ?? 0), 0),
      tasksKey: key,
    });
    const created = await this.createRecord(record, keyHash);
    // Before the start: a batch that runs is always in the totals.
    if (created) await this.deps.activity?.addSubmittedBatch(record.totalTasks);
    if (keyHash) await this.deps.idempotency?.markCreated(keyHash, batchId);
    await this.startOrQueue(record, { batchId, tasksBucket: bucket, tasksKey: key });
    if (!created) return { status: await this.getBatchStatus(batchId), created };
    return {
      status: newBatchStatus(record),
      created,
    };
  }

  /**
   * The file path of submitBatch: checks the file is there (an upload of
   * this fleet's, or an object in an allowed bucket), records the batch
   * pending with its file `validating`, and starts the validation, which
   * queues the batch once its tasks are known. Nothing reads the file here,
   * so the answer comes at once whatever its size. Safe to run again for
   * the same batch id, as createAndStart.
   */
  private async createFileBatch(batchId: string, request: ResolvedFileRequest, keyHash?: string): Promise<{ status: BatchStatus; created: boolean }> {
    const files = this.files('submitBatch');
    const { file } = request;
    if (file.uploadId !== undefined) {
      const taken = () =>
        new ConflictError(`tasksFile: upload ${file.uploadId} was already used by ${file.boundTo ? `batch ${file.boundTo}` : 'another batch'}; an upload makes one batch, create a new one`);
      if (file.boundTo !== undefined && file.boundTo !== batchId) throw taken();
      if (!(await files.uploads.claim(file.uploadId, batchId, { etag: file.etag, bytes: file.bytes }))) throw taken();
    }
    const { boundTo: _boundTo, ...where } = file;
    const tasksFile: TasksFileState = { ...where, state: 'validating', linesRead: 0 };
    const createdAt = this.now();
    // totalTasks and the longest timeout are known once the file is validated.
    const record = newBatchRecord(batchId, createdAt, { totalTasks: 0, priority: request.priority, longestTaskTimeoutMs: 0, tasksKey: batchTasksKeyOf(batchId), tasksFile });
    const created = await this.createRecord(record, keyHash);
    if (keyHash) await this.deps.idempotency?.markCreated(keyHash, batchId);
    await files.jobs.startPrepare(batchId);
    if (!created) return { status: await this.getBatchStatus(batchId), created };
    return {
      status: newBatchStatus(record),
      created,
    };
  }

  /**
   * Where the named file is, with the ETag it will be validated against;
   * every refusal names `tasksFile`. An upload a batch already used is
   * described as it was then (its object is gone once its batch is prepared).
   */
  private async inspectTasksFile(files: FileDeps, value: string): Promise<InspectedFile> {
    const ref = parseTasksFileRef(value);
    if (ref.kind === 's3') {
      if (!files.allowedBuckets.includes(ref.bucket)) {
        throw new ValidationError(
          'tasksFile',
          `names the bucket "${ref.bucket}", which this fleet may not read; the deployer lists the buckets batches may name (FleetProps.tasksFileBuckets)` +
            (files.allowedBuckets.length ? `: ${files.allowedBuckets.join(', ')}` : ', and lists none'),
        );
      }
      const head = await files.storage.head(ref.bucket, ref.key);
      if (!head) throw new ValidationError('tasksFile', `s3://${ref.bucket}/${ref.key} does not exist`);
      if (head.bytes === 0) throw new ValidationError('tasksFile', `s3://${ref.bucket}/${ref.key} is empty; a tasks file holds one JSON task per line`);
      return { source: 's3', bucket: ref.bucket, key: ref.key, etag: head.etag, bytes: head.bytes };
    }
    const upload = await files.uploads.get(ref.uploadId);
    if (!upload) throw new ValidationError('tasksFile', `upload ${ref.uploadId} is unknown; create one with POST /batches/uploads`);
    const described = { source: 'upload' as const, bucket: files.storage.bucket, key: upload.key, uploadId: ref.uploadId };
    if (upload.batchId !== undefined && upload.etag !== undefined) {
      return { ...described, etag: upload.etag, bytes: upload.bytes ?? 0, boundTo: upload.batchId };
    }
    if (upload.urlExpiresAt <= this.now()) {
      throw new ValidationError('tasksFile', `upload ${ref.uploadId} expired at ${new Date(upload.urlExpiresAt).toISOString()}; create a new upload`);
    }
    const head = await files.storage.head(files.storage.bucket, upload.key);
    if (!head) throw new ValidationError('tasksFile', `upload ${ref.uploadId} has no file yet; PUT the file to its url first`);
    if (head.bytes === 0) throw new ValidationError('tasksFile', `upload ${ref.uploadId} is an empty file; a tasks file holds one JSON task per line`);
    return { ...described, etag: head.etag, bytes: head.bytes, ...(upload.batchId !== undefined ? { boundTo: upload.batchId } : {}) };
  }

  /** POST /batches/uploads: a presigned URL to PUT one tasks file to, then submitted as `{"tasksFile": uploadId}`. */
  async createUpload(): Promise<CreatedUpload> {
    const files = this.files('createUpload');
    const uploadId = randomUUID();
    const createdAt = this.now();
    const urlExpiresAt = createdAt + FILE_URL_SECONDS * 1000;
    const key = uploadKeyOf(uploadId);
    await files.uploads.create({ uploadId, key, createdAt, urlExpiresAt });
    const url = await files.storage.uploadUrl(key, FILE_URL_SECONDS);
    return { uploadId, url, method: 'PUT', expiresAt: new Date(urlExpiresAt).toISOString(), maxBytes: MAX_UPLOAD_BYTES };
  }

  /**
   * GET /batches/{id}/results/export: every result of a finished batch as
   * one JSON Lines file. The first call starts building it; it is built once
   * per finish (again after a retry-failed) and kept with the batch.
   */
  async exportResults(batchId: string): Promise<ExportStatus> {
    const files = this.files('exportResults');
    const batch = await this.deps.repository.getBatch(batchId);
    if (!batch) throw new NotFoundError(`batch ${batchId} not found`);
    if (!FINISHED_STATES.has(batch.status) || batch.completedAt === null) {
      throw new ConflictError(`batch ${batchId} is ${batch.status}: its results can be exported once it has finished; page through /batches/${batchId}/results meanwhile`);
    }
    const now = this.now();
    const current = await files.exports.get(batchId);
    if (current && current.builtFor === batch.completedAt) {
      if (current.state === 'ready') {
        const url = await files.storage.downloadUrl(current.key, FILE_URL_SECONDS, `${batchId}-results.jsonl`);
        return { status: 'ready', url, expiresAt: new Date(now + FILE_URL_SECONDS * 1000).toISOString(), results: current.resultsWritten, bytes: current.bytes ?? 0 };
      }
      if (current.state === 'building' && now - current.updatedAt < EXPORT_STALE_MS) return { status: 'building', resultsWritten: current.resultsWritten };
    }
    const next: ResultsExport = {
      batchId,
      builtFor: batch.completedAt,
      attempt: (current?.attempt ?? 0) + 1,
      state: 'building',
      key: exportKeyOf(batchId),
      resultsWritten: 0,
      startedAt: now,
      updatedAt: now,
      ...(batch.expiresAt !== undefined ? { expiresAt: batch.expiresAt } : {}),
    };
    if (!(await files.exports.begin(next, current?.attempt))) {
      // A concurrent request began a build first: that one is it.
      const other = await files.exports.get(batchId);
      return { status: 'building', resultsWritten: other?.resultsWritten ?? 0 };
    }
    await files.jobs.startExport(batchId, next.attempt);
    return { status: 'building', resultsWritten: 0, ...(current?.state === 'failed' && current.error ? { previousError: current.error } : {}) };
  }

  /**
   * Creates the batch record; false when an idempotent retry (`keyHash`)
   * finds the record another send created first.
   */
  private async createRecord(record: BatchRecord, keyHash: string | undefined): Promise<boolean> {
    try {
      await this.deps.repository.createBatch(record);
      return true;
    } catch (error) {
      // Only an idempotent retry races another writer for the same batch id.
      if (!keyHash || !(await this.deps.repository.getBatch(record.batchId))) throw error;
      return false;
    }
  }

  /**
   * Queues the batch for admission, which starts its execution once it holds
   * a share of the cap (at once when the fleet has room); without admission,
   * starts it now.
   */
  private async startOrQueue(record: BatchRecord, input: BatchExecutionInput): Promise<void> {
    if (!this.deps.capacity) {
      await this.deps.workflow.startBatch(input);
      return;
    }
    await this.deps.capacity.enqueue(queuedBatchOf(record, { input, executionName: input.batchId, demand: record.totalTasks }));
  }

  /**
   * The batch's status for a caller following it. A processing batch's
   * counts may be up to STATUS_COUNTS_MAX_AGE_MS old (its status, times and
   * final counts never are): a client polling every 10 ms then costs one
   * record read per poll, not a sum over every progress counter.
   */
  async getBatchStatus(batchId: string): Promise<BatchStatus> {
    const status = await this.deps.repository.getStatus(batchId, { countsMaxAgeMs: STATUS_COUNTS_MAX_AGE_MS });
    if (!status) throw new NotFoundError(`batch ${batchId} not found`);
    return status;
  }

  /**
   * A page of results; `filter` keeps only successes or failures (a page
   * then reads a bounded number of results, so it may hold fewer than
   * `limit`: follow its cursor) and/or task ids starting with a prefix.
   */
  async getBatchResults(batchId: string, limit: number, cursor: string | undefined, filter: ResultFilter = {}): Promise<Page<TaskResult>> {
    const batch = await this.deps.repository.getBatch(batchId);
    if (!batch) throw new NotFoundError(`batch ${batchId} not found`);
    // Whatever `limit` asks, a page stops before the API's response would pass Lambda's 6 MB.
    return this.deps.repository.listResults(batchId, limit, cursor, {
      maxBytes: RESULTS_PAGE_BYTES,
      ...(filter.success !== undefined ? { success: filter.success } : {}),
      ...(filter.taskIdPrefix !== undefined ? { taskIdPrefix: filter.taskIdPrefix } : {}),
    });
  }

  /**
   * GET /batches/{id}/tasks/{taskId}: the task as submitted, its final
   * result and the failures retry-failed cleared. The result and history are
   * read by key; the input is found by streaming the batch's tasks file from
   * S3 line by line (never held whole), so it costs one read of the file.
   * NotFoundError when the batch, or the task in it, is unknown.
   */
  async getTask(batchId: string, taskId: string): Promise<TaskDetail> {
    const lookup = this.deps.tasks;
    if (!lookup) throw new Error('FleetService was built without tasks; getTask needs it');
    const batch = await this.deps.repository.getBatch(batchId);
    if (!batch) throw new NotFoundError(`batch ${batchId} not found`);
    const [result, failedAttempts, task] = await Promise.all([
      lookup.getResult(batchId, taskId),
      lookup.listFailedAttempts(batchId, taskId),
      this.findTask(batch, taskId),
    ]);
    if (!task && !result && failedAttempts.length === 0) throw new NotFoundError(`task ${taskId} not found in batch ${batchId}`);
    return { batchId, taskId, task: task ?? null, result: result ?? null, failedAttempts };
  }

  /** The task's line of the batch's tasks file; undefined when it has none (yet: a file still validating). */
  private async findTask(batch: BatchRecord, taskId: string): Promise<Task | undefined> {
    const storage = this.files('getTask').storage;
    // Lines are JSON.stringify'd tasks: only a line holding the id so encoded (or with escapes, to be safe) is parsed.
    const needle = JSON.stringify(taskId);
    try {
      for await (const line of jsonLines(storage.read(storage.bucket, batch.tasksKey), TASK_LINE_BYTES)) {
        if (line.text === undefined || (!line.text.includes(needle) && !line.text.includes('\\'))) continue;
        let task: unknown;
        try {
          task = JSON.parse(line.text);
        } catch {
          continue;
        }
        if (typeof task === 'object' && task !== null && (task as Task).id === taskId) return task as Task;
      }
    } catch (error) {
      // No tasks file (yet, or any more): the result and history may still say something.
      if (error instanceof TasksFileChangedError) return undefined;
      throw error;
    }
    return undefined;
  }

  /**
   * GET /stats/timeline: tasks that succeeded and failed per minute over the
   * last `minutes` minutes (see timeline.ts). Writes this minute's snapshot
   * of the totals if it has none yet.
   */
  async getTimeline(minutes: number): Promise<Timeline> {
    const store = this.deps.timeline;
    if (!store) throw new Error('FleetService was built without timeline; getTimeline needs it');
    const at = this.now();
    const current = minuteOf(at);
    const [snapshots, stats] = await Promise.all([store.list(current - minutes + 1, current), this.getStats()]);
    if (!snapshots.some((snapshot) => snapshot.minute === current)) {
      const snapshot = { minute: current, takenAt: at, completedTasks: stats.completedTasks, failedTasks: stats.failedTasks };
      if (await store.put(snapshot, Math.floor(at / 1000) + TIMELINE_RETENTION_SECONDS)) snapshots.push(snapshot);
    }
    return timelineOf(snapshots, { at, completedTasks: stats.completedTasks, failedTasks: stats.failedTasks }, minutes);
  }

  /**
   * Writes this minute's timeline snapshot unless it has one: the admission
   * reconciler's schedule calls it every minute, so the timeline has no gaps
   * while nobody reads it. False when the minute already had one.
   */
  async snapshotTimeline(): Promise<boolean> {
    const store = this.deps.timeline;
    if (!store) throw new Error('FleetService was built without timeline; snapshotTimeline needs it');
    const at = this.now();
    const stats = await this.getStats();
    return store.put(
      { minute: minuteOf(at), takenAt: at, completedTasks: stats.completedTasks, failedTasks: stats.failedTasks },
      Math.floor(at / 1000) + TIMELINE_RETENTION_SECONDS,
    );
  }

  /**
   * The Coordinator's getSummary() over the results recorded so far, read
   * page by page (see summary.ts for the nearest-rank percentiles).
   */
  async getBatchSummary(batchId: string): Promise<BatchSummary> {
    const batch = await this.deps.repository.getBatch(batchId);
    if (!batch) throw new NotFoundError(`batch ${batchId} not found`);
    return summarizeBatch(batchId, (cursor) => this.deps.repository.listResults(batchId, SUMMARY_PAGE_SIZE, cursor));
  }

  /**
   * Removes a finished batch now instead of at the end of its retention: its
   * record, counters, results and tasks file. A batch still pending or
   * processing is refused, since its workers would go on writing results.
   */
  async deleteBatch(batchId: string): Promise<void> {
    const { maintenance, taskFiles } = this.deps;
    if (!maintenance || !taskFiles) throw new Error('FleetService was built without maintenance and taskFiles; deleteBatch needs both');
    const batch = await this.deps.repository.getBatch(batchId);
    if (!batch) throw new NotFoundError(`batch ${batchId} not found`);
    if (!FINISHED_STATES.has(batch.status)) {
      throw new ConflictError(`batch ${batchId} is ${batch.status}: only a finished batch can be deleted; cancel it first`);
    }
    // Read before the record goes: the tasks files of its retries go too.
    const retries = (await this.deps.retry?.store.getRetryState(batchId))?.retries ?? 0;
    await maintenance.deleteBatchItems(batchId);
    await taskFiles.deleteTasks(batch.tasksKey);
    await this.deps.files?.storage.remove(exportKeyOf(batchId));
    if (retries > 0) await this.deps.retry?.taskFiles.deleteRetryTasks(batchId, retries);
  }

  /**
   * Runs a finished batch's failed tasks again (POST /batches/{id}/retry-failed):
   * a new execution over just those tasks, or a redrive of a batch whose
   * execution itself failed. See retry-failed.ts.
   */
  retryFailed(batchId: string): Promise<RetryFailedResult> {
    if (!this.deps.retry) throw new Error('FleetService was built without retry; retryFailed needs it');
    const { capacity } = this.deps;
    return retryFailedTasks(
      {
        ...this.deps.retry,
        repository: this.deps.repository,
        retentionDays: this.deps.retentionDays,
        now: this.now,
        ...(capacity
          ? {
              queue: async (record, run) => {
                await capacity.enqueue(queuedBatchOf(record, run));
              },
            }
          : {}),
      },
      batchId,
    );
  }

  listBatches(limit: number, cursor: string | undefined): Promise<Page<BatchStatus>> {
    return this.deps.repository.listBatches(limit, cursor);
  }

  /**
   * getStats: the stored totals (every submitted batch, every finished
   * batch's final counts) plus the counts of unfinished batches. The reads
   * go in this order so no task is counted twice (see combineStats).
   *
   * With admission, only running batches are read: a waiting batch has run
   * nothing (or, waiting for a retry, is already in the totals), and a batch
   * leaves the running ones only once its counts are in the totals. So a
   * call reads O(running batches), however many wait.
   */
  async getStats(): Promise<FleetStatistics> {
    const activity = this.activity('getStats');
    const activeBatchIds = this.deps.capacity ? await this.deps.capacity.runningBatchIds() : await this.deps.repository.listActiveBatchIds();
    const [totals, activeWorkers] = await Promise.all([activity.readTotals(), activity.countWorkers()]);
    const counted = await activity.countedBatchIds(activeBatchIds);
    const uncounted = activeBatchIds.filter((batchId) => !counted.has(batchId));
    const live = await mapConcurrently(uncounted, 8, (batchId) => this.deps.repository.getStatus(batchId));
    return combineStats(totals, live, activeWorkers);
  }

  /** getActiveWorkers: the workers running an attempt now, fleet-wide, oldest first. */
  async getActiveWorkers(): Promise<{ workers: WorkerInfo[] }> {
    return { workers: await this.activity('getActiveWorkers').listWorkers(MAX_LISTED_WORKERS) };
  }

  private tasks(method: string): TaskStore {
    if (!this.deps.taskStore) throw new Error(`FleetService was built without taskStore; ${method} needs it`);
    return this.deps.taskStore;
  }

  private files(method: string): FileDeps {
    if (!this.deps.files) throw new Error(`FleetService was built without files; ${method} needs it`);
    return this.deps.files;
  }

  private activity(method: string): FleetActivity {
    if (!this.deps.activity) throw new Error(`FleetService was built without activity; ${method} needs it`);
    return this.deps.activity;
  }

  /**
   * Stops the batch's execution first, so no new task starts once this
   * returns; running tasks finish and are recorded. Then marks it cancelled
   * with its counts so far. False for an unknown or finished batch.
   */
  async cancelBatch(batchId: string): Promise<boolean> {
    const batch = await this.deps.repository.getBatch(batchId);
    if (!batch || FINISHED_STATES.has(batch.status)) return false;
    // Off the queue first, so admission cannot start it; then stop an execution already started.
    if (this.deps.capacity && batch.status === 'pending') {
      const retriedAt = (await this.deps.retry?.store.getRetryState(batchId))?.retriedAt;
      await this.deps.capacity.dequeue(queuedBatchOf(batch, { input: { batchId, tasksBucket: '', tasksKey: '' }, executionName: batchId, demand: 1, since: retriedAt }));
    }
    await this.deps.workflow.stopBatch(batchId);
    // A file still validating: its validation stops too (it would notice at its next progress write anyway).
    if (batch.tasksFile?.state === 'validating') await this.deps.files?.jobs.stopPrepare(batchId);
    const status = await this.deps.repository.getStatus(batchId);
    const now = this.now();
    const cancelled = await this.deps.repository.cancel(batchId, {
      completedTasks: status?.completedTasks ?? 0,
      failedTasks: status?.failedTasks ?? 0,
      completedAt: now,
      expiresAt: Math.floor(now / 1000 + (this.deps.retentionDays ?? 7) * 86_400),
    });
    // Its counts as of now join the fleet totals (before it leaves the running
    // batches, which getStats reads); tasks still running finish into its status only.
    if (cancelled && this.deps.activity) await countFinishedBatch(this.deps.repository, this.deps.activity, batchId);
    // Its share of the fleet goes to the next batch. On AWS its EXPRESS children
    // still running cannot be stopped, so the cap may briefly be exceeded by them.
    if (cancelled) await this.deps.capacity?.release(batchId);
    return cancelled;
  }

  /**
   * Sets maxConcurrentWorkers and applies it to every running batch's Map Run
   * now; batches that have not started read it when they start.
   */
  async scaleWorkers(body: unknown): Promise<{ maxConcurrentWorkers: number; runningBatchesUpdated: number }> {
    const count = parseWorkerCount(body);
    // Only this field: a config change landing at the same time keeps its own fields.
    await this.deps.repository.updateConfig({ maxConcurrentWorkers: count });
    const runningBatchesUpdated = await this.applyCap(count);
    return { maxConcurrentWorkers: count, runningBatchesUpdated };
  }

  /**
   * Re-shares a new cap among running batches (UpdateMapRun on each one whose
   * share moved) and admits waiting batches. Returns how many batches changed.
   */
  private async applyCap(cap: number): Promise<number> {
    if (this.deps.capacity) return Object.keys((await this.deps.capacity.rescale()).changed).length;
    let updated = 0;
    for (const batchId of await this.deps.repository.listActiveBatchIds()) {
      if (await this.deps.workflow.setBatchConcurrency(batchId, cap)) updated++;
    }
    return updated;
  }

  getConfig(): Promise<FleetManagerConfig> {
    return this.deps.repository.getConfig();
  }

  /** A partial update: fields left out keep their values. */
  async updateConfig(body: unknown): Promise<FleetManagerConfig> {
    const patch = parseConfigPatch(body);
    const previous = await this.deps.repository.getConfig();
    const next = await this.deps.repository.updateConfig(patch);
    // maxConcurrentWorkers reaches running batches, as scaleWorkers does.
    if (patch.maxConcurrentWorkers !== undefined && patch.maxConcurrentWorkers !== previous.maxConcurrentWorkers) {
      await this.applyCap(patch.maxConcurrentWorkers);
    }
    return next;
  }
}
