/**
 * The task registry: the one place to add a task type.
 *
 *   import { resize } from './resize';
 *   export const taskHandlers = { ...exampleHandlers, resize };
 *
 * Every worker (local or on Lambda) resolves `task.type` here.
 */
import { echo, fail, sleep } from './examples';
import { faultHandlers } from './faults';
import type { TaskHandler } from './types';

export type { TaskContext, TaskHandler } from './types';

/**
 * For Fleet's own tests only: FLEET_ENABLE_FAULT_TASKS=1 at cold start adds
 * the `fault.*` types (./faults.ts), handlers that throw non-Errors, hang,
 * return unserialisable results or ask for impossible memory. Unset, as on
 * every deployed fleet, they are unknown types like any other.
 */
const faultTasksEnabled = process.env.FLEET_ENABLE_FAULT_TASKS === '1';

export const taskHandlers: Readonly<Record<string, TaskHandler>> = Object.freeze({
  echo,
  sleep,
  fail,
  ...(faultTasksEnabled ? faultHandlers : {}),
});
