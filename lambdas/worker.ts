/**
 * Worker Lambda: one invocation runs one attempt of one task, or (the
 * `recordFailure` Catch path) records a failure the attempt could not record
 * itself. The rules (results, retries, the dead-letter queue, metrics) are
 * WorkerService's (lambdas/domain/worker-service.ts).
 *
 * `handler` runs the task types registered in lambdas/tasks. A per-type
 * worker function (FleetProps.workers) exports its own handler made by
 * `createWorkerHandler`, with all of the above.
 */
import type { Context } from 'aws-lambda';
import { workerService } from './composition-root/worker';
import { instrumented } from './adapters/observability';
import type { RecordFailureEvent, WorkerEvent, WorkerOutput } from './domain/types';
import { taskHandlers, taskMiddleware, type TaskHandler, type TaskMiddleware } from './tasks';

export interface WorkerHandlerOptions {
  /**
   * Hooks run around each attempt (lambdas/domain/task-handler.ts).
   * @default taskMiddleware, the hooks registered in lambdas/tasks/index.ts
   */
  middleware?: readonly TaskMiddleware[];
}

/** What the state machine invokes a worker function with, and what it returns. */
export type WorkerHandler = (event: WorkerEvent | RecordFailureEvent, context?: Context) => Promise<WorkerOutput>;

/**
 * A worker Lambda handler over `handlers` (task type → handler): the default
 * worker's, or a per-type worker function's (FleetProps.workers). A task type
 * missing from `handlers` fails as an unknown type, without retry.
 *
 *   export const handler = createWorkerHandler({ thumbnail });
 */
export function createWorkerHandler(handlers: Readonly<Record<string, TaskHandler>>, options: WorkerHandlerOptions = {}): WorkerHandler {
  const tasks = { handlers, middleware: options.middleware ?? taskMiddleware };
  // Built at cold start, so a misconfigured environment fails there, naming the variable.
  const service = workerService();
  // Log lines carry the batch and task ids; metrics are flushed once per invocation.
  return instrumented<WorkerEvent | RecordFailureEvent, WorkerOutput>(
    async (event) => {
      // Only the Catch path's event names an action; what else one holds is checked as it arrives.
      if ((event as { action?: unknown }).action === 'recordFailure') return service.recordFailure(event as RecordFailureEvent);
      return service.runTask(event as WorkerEvent, tasks);
    },
    // The event as it may arrive (any JSON): a missing id is left out of the log lines.
    (event: { batchId?: string; task?: { id?: string } } | undefined) => ({ batchId: event?.batchId, taskId: event?.task?.id }),
  );
}

/** The default worker: every task type registered in lambdas/tasks. */
export const handler = createWorkerHandler(taskHandlers);
