/**
 * The parent state machine's bookends, one Lambda with two entry points:
 *
 * - `start`: marks the batch processing and fixes the settings it runs with
 *   (the Map's MaxConcurrency and each attempt's retry and timeout rules).
 * - `finish`: the completion step. Counts exactly and sets the final status.
 */
import { z } from 'zod';
import { dynamo, loadEnv } from './adapters/clients';
import { DynamoBatchRepository } from './adapters/batch-repository';
import { DynamoFleetActivity } from './adapters/fleet-activity';
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
const activity = new DynamoFleetActivity(dynamo(), env.TABLE_NAME);

export interface StartedBatch extends BatchExecutionInput {
  maxConcurrency: number;
  settings: TaskSettings;
}

export const start = async (event: BatchExecutionInput): Promise<StartedBatch> => {
  const config = await repository.getConfig();
  const record = (await repository.markStarted(event.batchId, Date.now())) ?? (await repository.getBatch(event.batchId));
  if (!record) throw new Error(`batch ${event.batchId} does not exist`);
  return {
    batchId: event.batchId,
    tasksBucket: event.tasksBucket,
    tasksKey: event.tasksKey,
    maxConcurrency: config.maxConcurrentWorkers,
    settings: settingsForBatch(config, record.longestTaskTimeoutMs, env.FLEET_CHILD_EXECUTION_TYPE),
  };
};

export interface FinishEvent {
  batchId: string;
  /** Present when the Map itself failed (Catch on the Map state). */
  failure?: { Error?: string; Cause?: string };
}

export const finish = async (event: FinishEvent): Promise<{ batchId: string; status: BatchState }> => {
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
    .catch((error: unknown) => console.error(JSON.stringify({ level: 'ERROR', message: 'fleet stats: finished batch not added', batchId: event.batchId, error: String(error) })));
  await repository.finish(event.batchId, {
    status,
    ...counts,
    completedAt: now,
    expiresAt: Math.floor(now / 1000 + env.FLEET_RETENTION_DAYS * 86_400),
    ...(error ? { error } : {}),
  });
  return { batchId: event.batchId, status };
};
