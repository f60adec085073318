/**
 * `<package>/worker`: what a task handler module imports. Each module a
 * FleetProps.workers entry names exports a handler made here:
 *
 * ```ts
 * import { createWorkerHandler, type TaskHandler } from '@fleet-serverless/fleet/worker';
 * export const handler = createWorkerHandler({ thumbnail });
 * ```
 *
 * Import it only from handler modules: it reads the function's environment
 * (TABLE_NAME...) when loaded, as every Fleet handler does at cold start.
 */
export { createWorkerHandler, type WorkerHandler, type WorkerHandlerOptions } from '../lambdas/worker';
export { ON_ERROR_HOOK_TIMEOUT_MS, type TaskContext, type TaskHandler, type TaskMiddleware } from '../lambdas/domain/task-handler';
export { TaskPermanentError, TaskRetryableError, TaskTimeoutError, UnknownTaskTypeError } from '../lambdas/domain/errors';
export type { Task, TaskResult } from '../lambdas/domain/types';
