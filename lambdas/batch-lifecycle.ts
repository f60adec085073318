/**
 * The parent state machine's bookends, one Lambda with two entry points:
 *
 * - `start`: asks for a share of the fleet-wide capacity. Once admitted it
 *   marks the batch processing and fixes the settings it runs with (the
 *   Map's MaxConcurrency and each attempt's retry and timeout rules); until
 *   then the batch stays pending and the state machine polls again.
 * - `finish`: the completion step. Counts exactly, sets the final status and
 *   hands the batch's capacity on.
 *
 * The state machine passes its own ARN (`$$.StateMachine.Id`): a function the
 * state machine invokes cannot take it from its environment without a
 * CloudFormation dependency cycle.
 */
import { z } from 'zod';
import { dynamo, loadEnv, sfn } from './adapters/clients';
import { DynamoBatchRepository } from './adapters/batch-repository';
import { DynamoCapacityStore } from './adapters/capacity-store';
import { DynamoFleetActivity } from './adapters/fleet-activity';
import { countFinishedBatch, instrumented, logger } from './adapters/observability';
import { DynamoRetryStore } from './adapters/retry-store';
import { StepFunctionsWorkflow } from './adapters/workflow';
import { CapacityCoordinator } from './domain/capacity-coordinator';
import { finalStatusOf } from './domain/batch';
import { settingsForBatch } from './domain/config';
import type { BatchExecutionInput } from './domain/ports';
import type { BatchState, TaskSettings } from './domain/types';

const env = loadEnv({
  TABLE_NAME: z.string().min(1),
  FLEET_RETENTION_DAYS: z.coerce.number().positive().default(7),
  FLEET_CHILD_EXECUTION_TYPE: z.enum(['EXPRESS', 'STANDARD']).default('EXPRESS'),
});

const repository = new DynamoBatchRepository(dynamo(), env.TABLE_NAME);
const capacityStore = new DynamoCapacityStore(dynamo(), env.TABLE_NAME);
const activity = new DynamoFleetActivity(dynamo(), env.TABLE_NAME);
const retryStore = new DynamoRetryStore(dynamo(), env.TABLE_NAME);

// A retried batch runs `<batchId>-retry-<n>`: capacity checks look its current execution up.
const coordinatorFor = (stateMachineArn: string) =>
  new CapacityCoordinator({
    store: capacityStore,
    repository,
    workflow: new StepFunctionsWorkflow(sfn(), stateMachineArn, { executionNameOf: (batchId) => retryStore.currentExecutionName(batchId) }),
  });

/** What the state machine hands the lifecycle functions. */
export interface LifecycleEvent<T> {
  state: T;
  stateMachineArn: string;
}

export interface StartInput extends BatchExecutionInput {
  /** Polls made so far while waiting for capacity. */
  waits?: number;
}

export interface StartedBatch extends StartInput {
  admitted: boolean;
  /** Seconds to wait before asking again, while not admitted. */
  pollSeconds: number;
  maxConcurrency: number;
  settings: TaskSettings | null;
}

/** Waiting batches poll at 1 s, slowing to 10 s, so a long wait stays far from the 25,000-event history limit. */
const pollSecondsAfter = (waits: number) => Math.min(10, 1 + Math.floor(waits / 5));

/** Log lines carry the batch id. */
const batchKeys = (event: LifecycleEvent<{ batchId?: string }>) => ({ batchId: event?.state?.batchId });

export const start = instrumented(async ({ state, stateMachineArn }: LifecycleEvent<StartInput>): Promise<StartedBatch> => {
  const batch = await repository.getBatch(state.batchId);
  if (!batch) throw new Error(`batch ${state.batchId} does not exist`);
  const waits = (state.waits ?? -1) + 1;
  const base = { batchId: state.batchId, tasksBucket: state.tasksBucket, tasksKey: state.tasksKey, waits };
  const slots = await coordinatorFor(stateMachineArn).requestStart(batch);
  if (slots === 0) return { ...base, admitted: false, pollSeconds: pollSecondsAfter(waits), maxConcurrency: 0, settings: null };
  const config = await repository.getConfig();
  const record = (await repository.markStarted(state.batchId, Date.now())) ?? batch;
  return {
    ...base,
    admitted: true,
    pollSeconds: 0,
    maxConcurrency: slots,
    settings: settingsForBatch(config, record.longestTaskTimeoutMs, env.FLEET_CHILD_EXECUTION_TYPE),
  };
}, batchKeys);

export interface FinishInput {
  batchId: string;
  /** Present when the Map itself failed (Catch on the Map state). */
  failure?: { Error?: string; Cause?: string };
}

export const finish = instrumented(async ({ state: event, stateMachineArn }: LifecycleEvent<FinishInput>): Promise<{ batchId: string; status: BatchState }> => {
  const record = await repository.getBatch(event.batchId);
  if (!record) throw new Error(`batch ${event.batchId} does not exist`);
  const counts = await repository.countResults(event.batchId, record.totalTasks);
  const now = Date.now();
  // A child that ended without recording (e.g. lost to an infrastructure fault)
  // still counts, as failed, so a finished batch always accounts for every task.
  const lost = event.failure ? 0 : Math.max(0, record.totalTasks - counts.completedTasks - counts.failedTasks);
  counts.failedTasks += lost;
  const status: BatchState = event.failure ? 'failed' : finalStatusOf(record.totalTasks, counts.completedTasks);
  const error = event.failure
    ? `${event.failure.Error ?? 'Error'}: ${event.failure.Cause ?? ''}`.slice(0, 2000)
    : lost > 0
      ? `${lost} task(s) ended without a recorded result and count as failed`
      : undefined;
  // Into the fleet stats before the status says finished, so GET /stats never
  // misses a batch whose status it shows finished; at most once per batch, so
  // a retried finish cannot count twice. Stats only report: a failure here is
  // logged and never keeps the batch from finishing.
  await activity
    .addFinishedBatch(event.batchId, counts, Math.floor(now / 1000 + env.FLEET_RETENTION_DAYS * 86_400))
    // Counted before: a retry-failed run, whose new counts replace the ones counted.
    .then((added) => (added ? true : retryStore.recountRetriedBatch(event.batchId, counts)))
    .catch((error: unknown) => logger.error('fleet stats: finished batch not added', { batchId: event.batchId, error: String(error) }));
  const finished = await repository.finish(event.batchId, {
    status,
    ...counts,
    completedAt: now,
    expiresAt: Math.floor(now / 1000 + env.FLEET_RETENTION_DAYS * 86_400),
    ...(error ? { error } : {}),
  });
  // The write is conditional on the batch not being finished yet: a retried
  // finish, or one that lost to a cancel (counted by the API), counts nothing.
  if (finished) {
    countFinishedBatch(status);
    // One line per batch, not per task: its outcome, for Logs Insights.
    logger.info('batch finished', { status, ...counts });
  }
  await coordinatorFor(stateMachineArn).release(event.batchId);
  return { batchId: event.batchId, status };
}, batchKeys);
