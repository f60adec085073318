/**
 * The parent state machine's bookends, one Lambda with two entry points:
 *
 * - `start`: the batch was admitted (its execution only starts once it holds
 *   a share of the fleet-wide capacity, see capacity-coordinator.ts). It
 *   marks the batch processing and fixes the settings it runs with (the Map's
 *   MaxConcurrency and each attempt's retry and timeout rules). For a
 *   retry-failed run it first prepares the retry's tasks file. A batch
 *   cancelled before its execution started does not start.
 * - `finish`: the completion step. Counts exactly, sets the final status and
 *   hands the batch's capacity on.
 *
 * The state machine passes its own ARN (`$$.StateMachine.Id`): a function the
 * state machine invokes cannot take it from its environment without a
 * CloudFormation dependency cycle.
 */
import { z } from 'zod';
import { dynamo, loadEnv, s3, sfn } from './adapters/clients';
import { admissionFor } from './adapters/admission';
import { DynamoBatchRepository } from './adapters/batch-repository';
import { DynamoCapacityStore } from './adapters/capacity-store';
import { DynamoFleetActivity } from './adapters/fleet-activity';
import { countFinishedBatch, instrumented, logger } from './adapters/observability';
import { DynamoRetryStore } from './adapters/retry-store';
import { S3RetryTaskFiles } from './adapters/retry-task-files';
import { finalStatusOf } from './domain/batch';
import { settingsForBatch } from './domain/config';
import type { BatchExecutionInput } from './domain/ports';
import { prepareRetry } from './domain/retry-failed';
import type { BatchState, TaskSettings } from './domain/types';

const env = loadEnv({
  TABLE_NAME: z.string().min(1),
  TASKS_BUCKET: z.string().min(1),
  FLEET_RETENTION_DAYS: z.coerce.number().positive().default(7),
  FLEET_CHILD_EXECUTION_TYPE: z.enum(['EXPRESS', 'STANDARD']).default('EXPRESS'),
});

const repository = new DynamoBatchRepository(dynamo(), env.TABLE_NAME);
const capacityStore = new DynamoCapacityStore(dynamo(), env.TABLE_NAME);
const activity = new DynamoFleetActivity(dynamo(), env.TABLE_NAME);
const retryStore = new DynamoRetryStore(dynamo(), env.TABLE_NAME);
const retryTaskFiles = new S3RetryTaskFiles(s3(), env.TASKS_BUCKET);

/** What the state machine hands the lifecycle functions. */
export interface LifecycleEvent<T> {
  state: T;
  stateMachineArn: string;
}

export type StartInput = BatchExecutionInput;

export interface StartedBatch extends BatchExecutionInput {
  /** False for a batch cancelled before its execution started: it runs nothing. */
  admitted: boolean;
  maxConcurrency: number;
  settings: TaskSettings | null;
}

/** Log lines carry the batch id. */
const batchKeys = (event: LifecycleEvent<{ batchId?: string }>) => ({ batchId: event?.state?.batchId });

export const start = instrumented(async ({ state }: LifecycleEvent<StartInput>): Promise<StartedBatch> => {
  const batch = await repository.getBatch(state.batchId);
  if (!batch) throw new Error(`batch ${state.batchId} does not exist`);
  const base = { batchId: state.batchId, tasksBucket: state.tasksBucket, tasksKey: state.tasksKey };
  if (batch.status !== 'pending' && batch.status !== 'processing') return { ...base, admitted: false, maxConcurrency: 0, settings: null };
  // Its share now: the cap may have been re-shared since admission passed it in.
  const [{ state: capacity }, config] = await Promise.all([capacityStore.load(), repository.getConfig()]);
  const slots = capacity.running[state.batchId]?.slots ?? state.maxConcurrency ?? 1;
  // A retry-failed run reads the tasks its retry left to run.
  const file =
    state.retry === undefined
      ? { bucket: state.tasksBucket, key: state.tasksKey }
      : await prepareRetry({ store: retryStore, taskFiles: retryTaskFiles, retentionDays: env.FLEET_RETENTION_DAYS }, batch, state.retry);
  // pending → processing; a retried Start batch finds it processing already.
  const record = (await repository.markStarted(state.batchId, Date.now())) ?? batch;
  return {
    batchId: state.batchId,
    tasksBucket: file.bucket,
    tasksKey: file.key,
    admitted: true,
    maxConcurrency: slots,
    settings: settingsForBatch(config, record.longestTaskTimeoutMs, env.FLEET_CHILD_EXECUTION_TYPE, record.counterShards),
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
  const counts = await repository.countResults(event.batchId, record.totalTasks, record.counterShards);
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
  await admissionFor(sfn(), env.TABLE_NAME, stateMachineArn, repository).coordinator.release(event.batchId);
  return { batchId: event.batchId, status };
}, batchKeys);
