/**
 * The file jobs' Lambda, run by the file-jobs state machine
 * (infra/file-jobs-workflow.ts); `action` names the state's work:
 *
 * - `prepare`: validates a batch's tasks file and queues the batch (or fails it with its line errors);
 * - `exportResults`: writes a finished batch's results to one JSON Lines file;
 * - `jobFailed`: the Catch of both, once their retries are spent: the batch
 *   (or the export) is marked failed with the error, so nothing waits forever.
 */
import type { FileJobInput } from './adapters/file-jobs';
import { instrumented, logger } from './adapters/observability';
import { admission } from './composition-root/admission';
import { fileJobsEnv, fileStorage, resultsExports } from './composition-root/file-jobs';
import { batchRepository, fleetActivity, tableEnv } from './composition-root/shared';
import { LIMITS } from './domain/config';
import { buildResultsExport, prepareTasksFile, type PrepareOutcome } from './domain/file-jobs';

// Built at cold start, so a misconfigured environment fails there, naming the variable.
const env = { ...tableEnv(), ...fileJobsEnv() };
const repository = batchRepository();
const storage = fileStorage();
const exports = resultsExports();
const activity = fleetActivity();
const { coordinator } = admission();

const prepare = async ({ batchId }: { batchId: string }): Promise<PrepareOutcome> => {
  const outcome = await prepareTasksFile(
    {
      storage,
      batches: repository,
      repository,
      enqueue: async (entry) => {
        await coordinator.enqueue(entry);
      },
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

/** Log lines carry the batch id; the event is taken as it may arrive, so a missing one is left out. */
const fileJobKeys = (event: { batchId?: string; job?: { batchId?: string } }) => ({ batchId: 'batchId' in event ? event.batchId : event.job?.batchId });

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
}, fileJobKeys);
