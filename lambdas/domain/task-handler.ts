/**
 * What a task handler is, and the middleware every worker runs around it:
 * the contract between the worker (domain/attempt.ts runs it) and the task
 * types registered in lambdas/tasks, which depend on it, never the reverse.
 */
import type { Task } from './types';

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

/** Most an `onError` hook may take, each, before the attempt's outcome is kept without it. */
export const ON_ERROR_HOOK_TIMEOUT_MS = 1_000;

/**
 * Worker middleware: the serverless form of the seed's `executeTaskOnWorker`
 * override. Instead of subclassing a fleet manager, register hooks in
 * `taskMiddleware` (lambdas/tasks/index.ts); every worker, local or on
 * Lambda, runs them around each task attempt. The shape follows middy's
 * before / after / onError, the Lambda middleware engine most Node users know.
 *
 * Order: `before` hooks run in registration order; `after` and `onError`
 * hooks run in reverse (the first registered wraps all the others).
 */
export interface TaskMiddleware {
  /** Shown in logs when one of its hooks times out. */
  name?: string;
  /**
   * Runs before the handler, inside the attempt's deadline, with the context
   * the handler gets. Throwing fails the attempt exactly as a handler error
   * would (a TaskPermanentError is not retried); the handler then never runs.
   */
  before?(task: Task, context: TaskContext): void | Promise<void>;
  /**
   * Runs after the handler succeeded, inside the attempt's deadline. It
   * observes: its return value is ignored, so it cannot alter the result.
   * Throwing fails the attempt (e.g. a result that breaks a rule you enforce).
   */
  after?(task: Task, context: TaskContext, result: unknown): void | Promise<void>;
  /**
   * Runs once for every error that fails the attempt: one thrown by a
   * `before` or `after` hook or by the handler, the deadline
   * (TaskTimeoutError), an unknown task type, or a result JSON cannot carry.
   * It observes (report the error, count it); returning leaves the error as
   * it is. Throwing replaces the error, e.g. with a TaskPermanentError to stop
   * retries; the next `onError` hook then sees the new error.
   *
   * It runs after the deadline on a timeout, so each call is bounded by
   * ON_ERROR_HOOK_TIMEOUT_MS: one that takes longer is left behind, and the
   * error stands as it was.
   */
  onError?(task: Task, context: TaskContext, error: unknown): void | Promise<void>;
}
