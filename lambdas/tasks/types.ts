/** What a task handler receives besides its data. */
export interface TaskContext {
  taskId: string;
  batchId: string;
  /** 0 on the first attempt, 1 on the first retry, ... */
  attempt: number;
  /** Epoch ms after which this attempt counts as timed out. */
  deadline: number;
  /** Aborted at the deadline (or when the batch is cancelled): stop work and return. */
  signal: AbortSignal;
}

/**
 * A task handler: `(data, context) => result`. Throw to fail the attempt:
 * a plain Error or TaskRetryableError is retried with backoff, a
 * TaskPermanentError is not. The result must be JSON-serialisable.
 */
export type TaskHandler<TData = unknown, TResult = unknown> = (data: TData, context: TaskContext) => TResult | Promise<TResult>;
