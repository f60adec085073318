/**
 * The parent state machine's bookends, one Lambda with two entry points:
 * `start` (the batch was admitted: mark it processing, fix its settings) and
 * `finish` (count exactly, set the final status, hand the capacity on). The
 * rules are BatchLifecycle's (lambdas/domain/batch-lifecycle.ts).
 *
 * The state machine passes its own ARN (`$$.StateMachine.Id`): a function the
 * state machine invokes cannot take it from its environment without a
 * CloudFormation dependency cycle.
 */
import { instrumented } from './adapters/observability';
import { batchLifecycle } from './composition-root/lifecycle';
import type { BatchLifecycle, FinishInput, FinishedBatch, StartInput, StartedBatch } from './domain/batch-lifecycle';

export type { FinishInput, StartInput, StartedBatch } from './domain/batch-lifecycle';

/** What the state machine hands the lifecycle functions. */
export interface LifecycleEvent<T> {
  state: T;
  stateMachineArn: string;
}

/** Log lines carry the batch id; the event is taken as it may arrive, so a missing one is left out. */
const batchKeys = (event: { state?: { batchId?: string } } | undefined) => ({ batchId: event?.state?.batchId });

/**
 * Start and Finish batch over `service`; Fleet's tests pass one built on fakes.
 * @param service @default the composition root's (lambdas/composition-root/lifecycle.ts)
 */
export function createLifecycleHandlers(service: () => Pick<BatchLifecycle, 'start' | 'finish'> = batchLifecycle) {
  return {
    start: instrumented(({ state }: LifecycleEvent<StartInput>): Promise<StartedBatch> => service().start(state), batchKeys),
    finish: instrumented(({ state, stateMachineArn }: LifecycleEvent<FinishInput>): Promise<FinishedBatch> => service().finish(state, stateMachineArn), batchKeys),
  };
}

// Built at cold start, so a misconfigured environment fails there, naming the variable.
batchLifecycle();
export const { start, finish } = createLifecycleHandlers();
