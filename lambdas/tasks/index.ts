/**
 * The task registry: the one place to add a task type.
 *
 *   import { thumbnail } from './thumbnail';
 *   export const taskHandlers = { ...exampleHandlers, thumbnail };
 *
 * Every worker (local or on Lambda) resolves `task.type` here.
 */
import { processData, resize } from './example-fleets';
import { echo, fail, sleep } from './examples';
import type { TaskHandler, TaskMiddleware } from '../domain/task-handler';

export type { TaskContext, TaskHandler, TaskMiddleware } from '../domain/task-handler';

export const taskHandlers: Readonly<Record<string, TaskHandler>> = Object.freeze({
  echo,
  sleep,
  fail,
  // The seed's image and data fleets (./example-fleets.ts), used by examples/.
  resize,
  process: processData,
});

/**
 * Worker middleware: hooks every worker runs around every task attempt
 * (before, after, onError; see lambdas/domain/task-handler.ts). Empty by default. Add yours:
 *
 *   export const taskMiddleware: readonly TaskMiddleware[] = [reportErrors];
 */
export const taskMiddleware: readonly TaskMiddleware[] = Object.freeze([]);
