/**
 * Fleet's domain types, named as in the FleetManagerAgent design.
 * Pure data: nothing here knows about AWS.
 */
import type { TasksFileError } from './tasks-file';

/** A unit of work. `type` selects the handler in `lambdas/tasks`. */
export interface Task<TTaskData = unknown> {
  /** Unique within its batch. */
  id: string;
  /** Name of a registered task handler, e.g. `echo`, `sleep`, `fail`. */
  type: string;
  data: TTaskData;
  /** Higher runs first within a batch. @default 0 */
  priority?: number;
  /** Per-attempt timeout in ms; overrides the fleet's `workerTimeout`. */
  timeout?: number;
}

/** The one final result of a task. */
export interface TaskResult<TTaskResult = unknown> {
  taskId: string;
  success: boolean;
  result?: TTaskResult;
  error?: string;
  /** Duration of the last attempt, in ms. */
  duration: number;
  /** When the result was recorded (epoch ms). */
  timestamp: number;
  /** Attempts made, the first included. */
  attempts: number;
  workerId: string;
}

export const BATCH_STATES = ['pending', 'processing', 'completed', 'failed', 'partial', 'cancelled'] as const;
export type BatchState = (typeof BATCH_STATES)[number];

/** States after which nothing about a batch changes any more. */
export const FINISHED_STATES: ReadonlySet<BatchState> = new Set(['completed', 'failed', 'partial', 'cancelled']);

export interface BatchStatus {
  batchId: string;
  status: BatchState;
  totalTasks: number;
  /** Tasks that succeeded. */
  completedTasks: number;
  failedTasks: number;
  /** (completedTasks + failedTasks) / totalTasks, from 0 to 1. */
  progress: number;
  /** Epoch ms. */
  createdAt: number;
  startedAt: number | null;
  completedAt: number | null;
  /** Why the batch itself (not one of its tasks) failed, if it did. */
  error?: string;
  /** A batch submitted as a tasks file: its validation (`ready` once its tasks are counted in totalTasks). */
  tasksFile?: { state: 'validating' | 'ready' | 'invalid'; linesRead: number };
  /** A tasks file that failed validation: what is wrong, line by line (at most 100). */
  validationErrors?: TasksFileError[];
  /** More errors were found than validationErrors holds. */
  validationErrorsTruncated?: boolean;
}

/**
 * Which running attempts GET /workers and `activeWorkers` show: every one
 * from its start (`every-attempt`), or only those that have run 2 s
 * (`long-attempts`, cheaper for short tasks). See domain/fleet-activity.ts.
 */
export type WorkerListingMode = 'every-attempt' | 'long-attempts';

export interface FleetManagerConfig {
  /** Fleet-wide cap on tasks executing at once. */
  maxConcurrentWorkers: number;
  /** Per-attempt timeout in ms. */
  workerTimeout: number;
  retryFailedTasks: boolean;
  /** Retries after the first attempt. */
  maxRetries: number;
  /** Which running attempts are listed; its default is the deployment's (FleetProps.workerListing). */
  workerListing: WorkerListingMode;
}

export interface FleetStatistics {
  totalBatches: number;
  totalTasks: number;
  completedTasks: number;
  failedTasks: number;
  activeWorkers: number;
}

/** Only running workers are listed (GET /workers, docs/api.md), so a listed worker is always `active`. */
export type WorkerState = 'active';

export interface WorkerInfo {
  /** The `workerId` the attempt's result will carry. */
  id: string;
  batchId: string;
  taskId: string;
  status: WorkerState;
  /** When the attempt started (epoch ms). */
  spawnedAt: number;
  /** Never set: a listed worker is still running (docs/api.md). */
  completedAt?: number;
}

/**
 * What the state machine hands each worker invocation: one task of one batch,
 * the batch's settings (snapshotted when it started) and the 0-based attempt.
 */
export interface TaskSettings {
  workerTimeout: number;
  maxRetries: number;
  retryFailedTasks: boolean;
  /** Backstop for the whole attempt, enforced by Step Functions itself. */
  attemptTimeoutSeconds: number;
  /**
   * How long a child execution may live, in ms, when it is bounded (EXPRESS
   * children end at 5 minutes); null when it is not. Attempts and retries
   * must fit inside it, or the child would end without recording a result.
   */
  executionBudgetMs: number | null;
  /** The config's workerListing when the batch started; absent in batches started before it existed. */
  workerListing?: WorkerListingMode;
}

export interface WorkerEvent {
  batchId: string;
  task: Task;
  settings: TaskSettings;
  /** `$$.State.RetryCount`: 0 on the first attempt. */
  attempt: number;
  /** `$$.Execution.StartTime` of the child execution (ISO 8601). */
  executionStartTime?: string;
}

/** The Catch path: a failure the worker could not record itself (timeout backstop, crash). */
export interface RecordFailureEvent {
  action: 'recordFailure';
  batchId: string;
  task: Task;
  error: { Error?: string; Cause?: string };
}

/** What a worker invocation returns into the child execution's output: deliberately tiny. */
export interface WorkerOutput {
  taskId: string;
  success: boolean;
}
