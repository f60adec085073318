/**
 * The file jobs' Lambda, run by the file-jobs state machine
 * (infra/file-jobs-workflow.ts); `action` names the state's work:
 *
 * - `prepare`: validates a batch's tasks file and queues the batch (or fails it with its line errors);
 * - `exportResults`: writes a finished batch's results to one JSON Lines file;
 * - `jobFailed`: the Catch of both, once their retries are spent: the batch
 *   (or the export) is marked failed with the error, so nothing waits forever.
 */
import { z } from 'zod';
import { dynamo, loadEnv, s3, sfn } from './adapters/clients';
import { admissionFor } from './adapters/admission';
import { DynamoBatchRepository } from './adapters/batch-repository';
import { S3FileStorage } from './adapters/file-storage';
import type { FileJobInput } from './adapters/file-jobs';
import { DynamoFleetActivity } from './adapters/fleet-activity';
import { instrumented, logger } from './adapters/observability';
import { DynamoResultsExportStore } from './adapters/results-export-store';
import { LIMITS } from './domain/config';
import { buildResultsExport, prepareTasksFile, type PrepareOutcome } from './domain/file-jobs';

const env = loadEnv({
  TABLE_NAME: z.string().min(1),
  TASKS_BUCKET: z.string().min(1),
  STATE_MACHINE_ARN: z.string().min(1),
  FLEET_MAX_TASKS_PER_BATCH: z.coerce.number().int().positive().default(LIMITS.tasksPerBatch),
  FLEET_RETENTION_DAYS: z.coerce.number().positive().default(7),
});

const repository = new DynamoBatchRepository(dynamo(), env.TABLE_NAME);
const storage = new S3FileStorage(s3(), env.TASKS_BUCKET);
const exports = new DynamoResultsExportStore(dynamo(), env.TABLE_NAME);
const activity = new DynamoFleetActivity(dynamo(), env.TABLE_NAME);
const { coordinator } = admissionFor(sfn(), env.TABLE_NAME, env.STATE_MACHINE_ARN, repository);

const prepare = async ({ batchId }: { batchId: string }): Promise<PrepareOutcome> => {
  const outcome = await prepareTasksFile(
    {
      storage,
      batches: repository,
      repository,
      enqueue: async (entry) => void (await coordinator.enqueue(entry)),
      activity,
      limits: { tasksPerBatch: env.FLEET_MAX_TASKS_PER_BATCH, taskBytes: LIMITS.taskBytes },
      retentionDays: env.FLEET_RETENTION_DAYS,
    },
    batchId,
  );
  logger.info(`tasks file ${outcome.state}`, outcome.state === 'ready' ? { totalTasks: outcome.totalTasks } : outcome.state === 'invalid' ? { error: outcome.error } : { reason: outcome.reason });
  // The state's output: small, whatever the number of errors.
  return outcome.state === 'invalid' ? { state: 'invalid', error: outcome.error, errors: outcome.errors.slice(0, 3) } : outcome;
};

const exportResults = async ({ batchId, attempt }: { batchId: string; attempt: number }) => {
  const built = await buildResultsExport({ repository, exports, storage }, batchId, attempt);
  return { batchId, attempt, state: built?.state ?? 'gone', results: built?.resultsWritten ?? 0 };
};

/** The Catch: the job's own error, once its retries are spent. */
const jobFailed = async (event: FileJobInput & { error?: { Error?: string; Cause?: string } }) => {
  const reason = `${event.error?.Error ?? 'Error'}: ${event.error?.Cause ?? ''}`.slice(0, 1500);
  logger.error(`file job ${event.job} failed`, { reason });
  if (event.job === 'export') {
    await exports.end(event.batchId, event.attempt, { state: 'failed', resultsWritten: 0, error: reason, updatedAt: Date.now() });
    return { batchId: event.batchId, failed: 'export' };
  }
  const now = Date.now();
  const expiresAt = Math.floor(now / 1000 + env.FLEET_RETENTION_DAYS * 86_400);
  const failed = await repository.invalid(event.batchId, {
    error: `the tasks file could not be validated: ${reason}; no task ran`,
    validationErrors: [],
    truncated: false,
    linesRead: 0,
    completedAt: now,
    expiresAt,
  });
  if (failed) {
    await activity.addSubmittedBatch(0);
    await activity.addFinishedBatch(event.batchId, { completedTasks: 0, failedTasks: 0 }, expiresAt);
  }
  return { batchId: event.batchId, failed: 'prepare' };
};

/** What each state of the file-jobs state machine sends. */
export type FileJobEvent =
  | { action: 'prepare'; batchId: string }
  | { action: 'export'; batchId: string; attempt: number }
  | { action: 'failed'; job: FileJobInput; error?: { Error?: string; Cause?: string } };

export const handler = instrumented(async (event: FileJobEvent): Promise<unknown> => {
  switch (event.action) {
    case 'prepare':
      return prepare(event);
    case 'export':
      return exportResults(event);
    case 'failed':
      return jobFailed({ ...event.job, ...(event.error ? { error: event.error } : {}) });
    default:
      throw new Error(`unknown file job action ${JSON.stringify((event as { action?: unknown }).action)}`);
  }
}, (event) => ({ batchId: 'batchId' in event ? event.batchId : event.job?.batchId }));
