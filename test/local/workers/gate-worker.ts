/**
 * A worker function for tests: a `gate` task runs until the test opens its
 * gate (./gates.ts). A test that must see tasks while they run then has them
 * running by construction, whatever the machine's load, where a sleep task
 * only made it likely.
 */
import type { TaskHandler } from '../../../lambdas/domain/task-handler';
import { createWorkerHandler } from '../../../lambdas/worker';
import { gateOf } from './gates';

const gateTask: TaskHandler<unknown, { opened: true }> = async (_data, context) => {
  await gateOf(context.taskId).opened;
  return { opened: true };
};

export const handler = createWorkerHandler({ gate: gateTask });
