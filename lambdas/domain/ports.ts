/**
 * Ports: what the handlers need from storage and orchestration, as
 * interfaces. `lambdas/adapters` implements them on DynamoDB, S3 and Step
 * Functions; tests may implement them in memory.
 */
import type { CapacityState } from './capacity';
import type { TasksFileError, TasksFileState } from './tasks-file';
import type { BatchState, BatchStatus, FleetManagerConfig, Task, TaskResult, WorkerInfo } from './types';

export interface BatchRecord {
  batchId: string;
  status: BatchState;
  totalTasks: number;
  createdAt: number;
  startedAt: number | null;
  completedAt: number | null;
  /** Final counts, written when the batch finishes. */
  completedTasks: number;
  failedTasks: number;
  priority: number;
  /** The longest per-task timeout in the batch (ms), 0 when none sets one. */
  longestTaskTimeoutMs: number;
  tasksKey: string;
  error?: string;
  /** Epoch seconds after which the record is gone (DynamoDB TTL). */
  expiresAt?: number;
  /** A batch submitted as a tasks file: where the file is, and how far its validation got. */
  tasksFile?: TasksFileState;
  /** A file that failed validation: its first MAX_KEPT_ERRORS errors. */
  validationErrors?: TasksFileError[];
  /** More errors were found than are kept. */
  validationErrorsTruncated?: boolean;
  /** How many counter items its progress is spread over (counterShardsFor). @default COUNTER_SHARDS */
  counterShards?: number;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** How a page of results is chosen (GET /batches/{id}/results). */
export interface ResultListOptions {
  /** Stop before the results' escaped JSON would pass this many bytes. */
  maxBytes?: number;
  /**
   * Only successes (true) or only failures (false). Applied as results are
   * read: a page then reads at most `maxScanned` results and may hold fewer
   * than `limit`, with a cursor to go on from.
   */
  success?: boolean;
  /** Results read per filtered page at most. @default FILTERED_PAGE_SCAN (2,000) */
  maxScanned?: number;
  /** Only tasks whose id starts with this (a key condition: nothing else is read). */
  taskIdPrefix?: string;
}

export interface BatchRepository {
  createBatch(record: BatchRecord): Promise<void>;
  getBatch(batchId: string): Promise<BatchRecord | undefined>;
  /**
   * The batch with its live counts. With `countsMaxAgeMs`, a processing
   * batch's counts may come from a sum taken at most that long ago.
   */
  getStatus(batchId: string, options?: { countsMaxAgeMs?: number }): Promise<BatchStatus | undefined>;
  listBatches(limit: number, cursor: string | undefined): Promise<Page<BatchStatus>>;
  /** pending → processing. Returns the record, or undefined if it was not pending. */
  markStarted(batchId: string, startedAt: number): Promise<BatchRecord | undefined>;
  /**
   * Stores a task's final result unless it already has one, and counts it.
   * Returns false for a duplicate: the first final result wins.
   */
  /** @param counterShards the batch's counter layout (TaskSettings.counterShards); @default COUNTER_SHARDS */
  recordResult(batchId: string, result: TaskResult, expiresAt: number, counterShards?: number): Promise<boolean>;
  /** Exact counts, recounted from the stored results when the running counters fall short. */
  countResults(batchId: string, totalTasks: number, counterShards?: number): Promise<{ completedTasks: number; failedTasks: number }>;
  /** Sets a final status unless the batch already has one (e.g. it was cancelled). */
  finish(
    batchId: string,
    fields: { status: BatchState; completedTasks: number; failedTasks: number; completedAt: number; expiresAt: number; error?: string },
  ): Promise<boolean>;
  /** Batches not yet finished (pending or processing). */
  listActiveBatchIds(): Promise<string[]>;
  /** Marks an unfinished batch cancelled, keeping its counts; false if it had already finished. */
  cancel(batchId: string, fields: { completedTasks: number; failedTasks: number; completedAt: number; expiresAt: number }): Promise<boolean>;
  /**
   * Up to `limit` results from `cursor`; with `maxBytes`, the page also stops
   * before the results' escaped JSON (escapedJsonBytes) would pass it, always
   * holding at least one, and its cursor continues right after the last one.
   */
  listResults(batchId: string, limit: number, cursor: string | undefined, options?: ResultListOptions): Promise<Page<TaskResult>>;
  getConfig(): Promise<FleetManagerConfig>;
  /**
   * Sets only the fields given (others keep their stored values, so
   * concurrent changes of different fields cannot undo each other) and
   * returns the whole config as it now is.
   */
  updateConfig(patch: Partial<FleetManagerConfig>): Promise<FleetManagerConfig>;
}

export interface TaskStore {
  /** Writes the batch's tasks, in run order, where the Distributed Map's ItemReader reads them. */
  putTasks(batchId: string, tasks: readonly Task[]): Promise<{ bucket: string; key: string }>;
}

export interface WorkflowStarter {
  /** Starts the batch's execution, named after the batch. Idempotent for the same input. */
  startBatch(input: BatchExecutionInput): Promise<string>;
  /** Stops the batch's execution: no new task starts once this returns. */
  stopBatch(batchId: string): Promise<void>;
  /** Whether the batch's execution is still running. */
  isBatchRunning(batchId: string): Promise<boolean>;
  /** Changes the live concurrency of the batch's running Map Run, if it has one. Returns whether it did. */
  setBatchConcurrency(batchId: string, maxConcurrency: number): Promise<boolean>;
}

/** The parent state machine's input. */
export interface BatchExecutionInput {
  batchId: string;
  tasksBucket: string;
  tasksKey: string;
  /** The Map Run's MaxConcurrency, as admission granted it; Start batch reads the current share. */
  maxConcurrency?: number;
  /** Set for a retry-failed run: Start batch prepares its tasks file and clears the failed results first. */
  retry?: number;
}

/** The stored part of the fleet's statistics: every submitted batch, and the final counts of finished ones. */
export interface FleetTotals {
  totalBatches: number;
  totalTasks: number;
  completedTasks: number;
  failedTasks: number;
}

/** A worker running one attempt of one task, as the registry keeps it. */
export interface RunningWorker {
  /**
   * The slot the attempt runs in: one per attempt running at once in an
   * execution environment (on Lambda, one per environment). Its registry
   * entry is overwritten by the slot's next attempt, never deleted on success.
   */
  slot: string;
  /** The worker id its result will carry. */
  id: string;
  batchId: string;
  taskId: string;
  /** Epoch ms the attempt started. */
  spawnedAt: number;
  /** Epoch seconds after which the worker cannot be running any more. */
  expiresAt: number;
  /** Which attempt of the task it runs, 0 for the first. */
  attempt?: number;
}

/**
 * Fleet-wide statistics and the registry of running workers (README: "Stats
 * and workers"). Stats are written once or twice per batch; the registry
 * once per attempt (every attempt by default, or only long ones when the
 * fleet lists long attempts only), and once more for an attempt that fails.
 */
export interface FleetActivity {
  /** Adds a submitted batch and its tasks to the fleet totals. */
  addSubmittedBatch(totalTasks: number): Promise<void>;
  /**
   * Adds a finished batch's final counts to the fleet totals, at most once
   * per batch: false when they were added before.
   */
  addFinishedBatch(batchId: string, counts: { completedTasks: number; failedTasks: number }, expiresAt: number | undefined): Promise<boolean>;
  /** Which of these batches have had their counts added (or are being added) to the totals. */
  countedBatchIds(batchIds: readonly string[]): Promise<Set<string>>;
  readTotals(): Promise<FleetTotals>;
  /** Registers a worker as its attempt starts, replacing the entry of the slot's previous attempt. */
  registerWorker(worker: RunningWorker): Promise<void>;
  /**
   * Removes a slot's entry when its attempt ends without a success (a retry
   * or a final failure), only if the entry is still worker `workerId`'s.
   * A success leaves its entry: the task's result shows it is over.
   */
  deregisterWorker(slot: string, workerId: string): Promise<void>;
  /**
   * Notes which attempt of a task runs next, when an attempt ends in a retry,
   * so the Catch path can name the attempt it records (it does not see the
   * retry count). Written only on the retry path.
   */
  noteNextAttempt(batchId: string, taskId: string, attempt: number, expiresAt: number): Promise<void>;
  /** Removes the task's note (see noteNextAttempt) and resolves with its attempt, if there was one. */
  takeNextAttempt(batchId: string, taskId: string): Promise<number | undefined>;
  /** Workers running now, oldest first, at most `limit`. */
  listWorkers(limit: number): Promise<WorkerInfo[]>;
  countWorkers(): Promise<number>;
}

/**
 * A batch waiting for capacity, with what its execution needs once admitted:
 * it has no execution until then, so waiting costs nothing (no polling).
 */
export interface QueuedBatch {
  batchId: string;
  /** Its place in the queue (capacity.ts queueRankOf): lower goes first. */
  rank: number;
  priority: number;
  createdAt: number;
  /** When it started waiting (epoch ms): its creation, or its latest retry-failed. */
  since: number;
  /** Tasks it will run: how many slots it can use. */
  demand: number;
  /** The execution to start: named after the batch, or `<batchId>-retry-<n>` for retry-failed. */
  executionName: string;
  input: BatchExecutionInput;
}

/** Batches waiting for capacity, in admission order (README: "Admission"). */
export interface AdmissionQueue {
  /** Adds the batch, or leaves an entry already there. */
  enqueue(entry: QueuedBatch): Promise<void>;
  /** The first `limit` entries in admission order, read strongly consistently. */
  head(limit: number): Promise<QueuedBatch[]>;
  /** Removes the batch's entry, if any. */
  remove(entry: Pick<QueuedBatch, 'batchId' | 'rank'>): Promise<void>;
}

/** The fleet's capacity allocations, under optimistic locking. */
export interface CapacityStore {
  load(): Promise<{ state: CapacityState; version: number }>;
  /** False when someone else saved since `version` was loaded. */
  save(state: CapacityState, version: number): Promise<boolean>;
}

/**
 * Removing a finished batch at once (`DELETE /batches/{id}`); retention
 * (DynamoDB TTL, the local sweeper) removes it otherwise.
 */
export interface BatchMaintenance {
  /**
   * Deletes the batch record first, so every read sees the batch gone, then
   * its counters and results. Idempotent. Returns how many items it deleted.
   */
  deleteBatchItems(batchId: string): Promise<number>;
}

/** Removing a batch's tasks file ahead of the bucket's lifecycle rule. */
export interface TaskFileRemover {
  /** Deletes the object at `tasksKey`; idempotent (a missing file is not an error). */
  deleteTasks(tasksKey: string): Promise<void>;
}

/**
 * An `Idempotency-Key` bound to the first body it came with and the batch it
 * creates (README: "Idempotent submission").
 */
export interface IdempotencyRecord {
  /** SHA-256 of the key, hex: the raw key is never stored. */
  keyHash: string;
  /** SHA-256 of the canonical submit request, hex. */
  bodyHash: string;
  batchId: string;
  /**
   * `creating` from the claim until the batch record exists; `created` after.
   * A claim left `creating` is one whose submission stopped midway.
   */
  state: 'creating' | 'created';
  /** Epoch ms. */
  createdAt: number;
  /** Epoch seconds after which the key is free again (DynamoDB TTL). */
  expiresAt: number;
}

/** Idempotency keys of `POST /batches`, written before the batch they create. */
export interface IdempotencyStore {
  /**
   * Claims the key for this body and batch id, unless a live claim exists
   * (first writer wins): then returns that claim and writes nothing.
   */
  claim(record: IdempotencyRecord): Promise<{ claimed: true } | { claimed: false; existing: IdempotencyRecord }>;
  /** Records that the claimed batch now exists. */
  markCreated(keyHash: string, batchId: string): Promise<void>;
}

/** A task that failed for good, as the dead-letter queue receives it (README: "Dead-letter queue"). */
export interface DeadLetteredTask {
  batchId: string;
  taskId: string;
  taskType: string;
  /** The last attempt's error. */
  error: string;
  attempts: number;
  workerId: string;
  /** When the failure was recorded (epoch ms). */
  failedAt: number;
}

/** Where failed tasks are announced to operators; the recorded result stays the record. */
export interface DeadLetterQueue {
  send(task: DeadLetteredTask): Promise<void>;
}

/** A batch's retry-failed bookkeeping, kept on its record. */
export interface RetryState {
  /** retry-failed runs so far; 0 for a batch never retried. */
  retries: number;
  /** Its current execution: the batch id, then `<batchId>-retry-<n>`. */
  executionName: string;
  /** When the latest retry claimed the batch (epoch ms). */
  retriedAt?: number;
}

/** Storage for POST /batches/{id}/retry-failed (lambdas/adapters/retry-store.ts). */
export interface RetryStore {
  getRetryState(batchId: string): Promise<RetryState | undefined>;
  /** Ids of the batch's tasks whose final result is a success. */
  listSucceededTaskIds(batchId: string): Promise<Set<string>>;
  /**
   * Turns a finished batch (completed, partial or failed) that has had
   * `retry - 1` retries back into a pending one, as retry number `retry`
   * running `executionName`. False when the batch is not in that state (a
   * concurrent retry-failed won).
   */
  claimRetry(batchId: string, claim: { retry: number; executionName: string; claimedAt: number }): Promise<boolean>;
  /**
   * Clears a task's failed result recorded before `before`, so its new
   * attempt can record: the result moves to the batch's history and its
   * shard's failed counter goes down by one. False when there was none to clear.
   */
  clearFailedResult(batchId: string, taskId: string, clear: { retry: number; before: number; expiresAt: number; counterShards?: number }): Promise<boolean>;
  /**
   * After a retried batch finished: its entry in the fleet stats takes the new
   * final counts, and the totals the difference, once per retry. False when
   * the batch was never retried or this retry was already counted.
   */
  recountRetriedBatch(batchId: string, counts: { completedTasks: number; failedTasks: number }): Promise<boolean>;
}

/** Task files of retries: the original tasks are read, the failed ones written for the retry's ItemReader. */
export interface RetryTaskFiles {
  /** The bucket the batches' tasks files are in. */
  readonly bucket: string;
  /** The batch's tasks file, streamed: it may hold millions of tasks. */
  readTasks(tasksKey: string): AsyncIterable<Uint8Array>;
  /** Writes retry `retry`'s tasks file, streamed: `fill` emits its lines (each a task's JSON) in run order. */
  writeRetryTasks(batchId: string, retry: number, fill: (emit: (line: string) => Promise<void>) => Promise<void>): Promise<{ bucket: string; key: string }>;
  /** Deletes the retry files of a batch retried `retries` times; idempotent. */
  deleteRetryTasks(batchId: string, retries: number): Promise<void>;
}

/** The executions retry-failed starts or redrives, by name. */
export interface RetryWorkflow {
  /** Starts an execution of the batch over `input.tasksKey`, named `executionName`. Idempotent for the same input. */
  startRetry(input: BatchExecutionInput, executionName: string): Promise<string>;
  /** The execution's status (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED), or undefined if it does not exist. */
  executionStatus(executionName: string): Promise<string | undefined>;
  /** RedriveExecution: a FAILED or TIMED_OUT execution runs again from the state that failed. */
  redrive(executionName: string): Promise<void>;
}

/** A task's earlier failed result, cleared by retry-failed `retry` and kept in the batch's history. */
export interface FailedAttempt extends TaskResult {
  /** The retry-failed run that cleared it (1 for the first). */
  retry: number;
}

/** One task's stored items, read by its id: no listing (GET /batches/{id}/tasks/{taskId}). */
export interface TaskLookup {
  /** The task's final result, if it has one. */
  getResult(batchId: string, taskId: string): Promise<TaskResult | undefined>;
  /** Its failed results that retry-failed cleared, oldest retry first. */
  listFailedAttempts(batchId: string, taskId: string): Promise<FailedAttempt[]>;
}

/** The fleet's finished-task totals as read at some moment of one minute (GET /stats/timeline). */
export interface TimelineSnapshot {
  /** Epoch minute: epoch ms / 60,000, rounded down. */
  minute: number;
  /** When it was read (epoch ms). */
  takenAt: number;
  completedTasks: number;
  failedTasks: number;
}

/** One snapshot a minute, fleet-wide; the first written in a minute stays. */
export interface TimelineStore {
  /** Snapshots of minutes `from` to `to`, both included, oldest first. */
  list(from: number, to: number): Promise<TimelineSnapshot[]>;
  /** Writes the minute's snapshot unless it has one; false when it had. */
  put(snapshot: TimelineSnapshot, expiresAt: number): Promise<boolean>;
}

/**
 * Where the run leg's services log: Powertools' Logger on Lambda. Attributes
 * are ids and reasons, never task data.
 */
export interface Log {
  debug(message: string, attributes?: Record<string, unknown>): void;
  info(message: string, attributes?: Record<string, unknown>): void;
  warn(message: string, attributes?: Record<string, unknown>): void;
  error(message: string, attributes?: Record<string, unknown>): void;
}

/** The run leg's CloudWatch metrics (lambdas/domain/metrics.ts names them); the adapter flushes them once per invocation. */
export interface RunMetrics {
  /** TasksSucceeded, TasksFailed or TaskRetries, by one. */
  count(name: 'TasksSucceeded' | 'TasksFailed' | 'TaskRetries'): void;
  /** WorkerDuration: how long one attempt's handler ran. */
  attemptDuration(ms: number): void;
  /** BatchesFinished{status}. */
  batchFinished(status: string): void;
}

/**
 * The name of a batch's current execution: its first is named after the
 * batch, a retry-failed run `<batchId>-retry-<n>` (RetryStore.currentExecutionName).
 */
export type ExecutionNameOf = (batchId: string) => Promise<string>;
