/**
 * The default worker with the `fault.*` task types (lambdas/tasks/faults.ts)
 * added: handlers that misbehave the ways a user's handler can, for Fleet's
 * own tests. Local mode runs it in place of lambdas/worker.ts when
 * FLEET_ENABLE_FAULT_TASKS=1 (lambda-runtime.ts); CDK never bundles it, so
 * no deployed worker has the fault types.
 */
import { taskHandlers } from '../../lambdas/tasks';
import { faultHandlers } from '../../lambdas/tasks/faults';
import { createWorkerHandler } from '../../lambdas/worker';

/** The registered task types and the fault types. */
export const faultTaskHandlers = Object.freeze({ ...taskHandlers, ...faultHandlers });

export const handler = createWorkerHandler(faultTaskHandlers);
