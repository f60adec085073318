/**
 * The task registry: the one place to add a task type.
 *
 *   import { resize } from './resize';
 *   export const taskHandlers = { ...exampleHandlers, resize };
 *
 * Every worker (local or on Lambda) resolves `task.type` here.
 */
import { echo, fail, sleep } from './examples';
import type { TaskHandler } from './types';

export type { TaskContext, TaskHandler } from './types';

export const taskHandlers: Readonly<Record<string, TaskHandler>> = Object.freeze({
  echo,
  sleep,
  fail,
});
