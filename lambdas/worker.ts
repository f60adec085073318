/**
 * Worker Lambda: one invocation runs one attempt of one task.
 *
 * - Success: records the result and returns a tiny output.
 * - Failure with attempts left: throws TaskAttemptFailed; the state machine
 *   retries with exponential backoff and full jitter.
 * - Final failure: records it, then throws TaskFailed, which the state
 *   machine catches so the child (and the Map Run) still succeed.
 * - `recordFailure`: the Catch path for failures the worker could not record
 *   itself (Step Functions' timeout backstop, a crashed runtime).
 * - A final failure, on either path, also goes to the dead-letter queue.
 * - A retry of a cancelled batch's task: returns without running the task
 *   or recording anything.
 * - The outcome cannot be stored (storage unreachable or throttled): throws
 *   Fleet.StorageUnavailable, which the state machine retries without
 *   spending one of the task's attempts.
 *
 * `handler` runs the task types registered in lambdas/tasks. A per-type
 * worker function (FleetProps.workers) exports its own handler made by
 * `createWorkerHandler`, with all of the above.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { dynamo, loadEnv, sqs } from './adapters/clients';
import { DynamoBatchRepository } from './adapters/batch-repository';
import { SqsDeadLetterQueue } from './adapters/dead-letter-queue';
import { DynamoFleetActivity } from './adapters/fleet-activity';
import { count, instrumented, logger, recordWorkerDuration, type LogKeys } from './adapters/observability';
import { runAttempt } from './domain/attempt';
import { SlotPool, WORKER_LISTING_DELAY_MS, WORKER_LISTING_MODES, listWhileRunning, listingDelayMs, workerExpiresAt } from './domain/fleet-activity';
import { StorageUnavailable, TaskAttemptFailed, TaskFailed, describeError } from './domain/errors';
import { isStorageUnavailable } from './adapters/storage-errors';
import { FLEET_METRICS } from './domain/metrics';
import type { RecordFailureEvent, TaskResult, TaskSettings, WorkerEvent, WorkerOutput } from './domain/types';
import type { Context } from 'aws-lambda';
import { taskHandlers, taskMiddleware, type TaskHandler, type TaskMiddleware } from './tasks';

const env = loadEnv({
  TABLE_NAME: z.string().min(1),
  FLEET_RETENTION_DAYS: z.coerce.number().positive().default(7),
  /** In `long-attempts` listing mode: how long an attempt runs before GET /workers lists it. */
  FLEET_WORKER_LISTING_DELAY_MS: z.coerce.number().int().nonnegative().default(WORKER_LISTING_DELAY_MS),
  /** FleetProps.workerListing: for a batch whose settings do not say (one started before the setting existed). */
  FLEET_WORKER_LISTING: z.enum(WORKER_LISTING_MODES).default('every-attempt'),
  /** The Fleet construct always sets it; without it (e.g. a unit test) no dead-letter message is sent. */
  FLEET_DLQ_URL: z.string().min(1).optional(),
  /**
   * Results recorded at the same time go in one write. Only the local fleet
   * sets it: it runs every invocation in one process, the table's only writer.
   */
  FLEET_GROUP_RESULT_WRITES: z
    .enum(['true', 'false'])
    .default('false')
    .transform((value) => value === 'true'),
});

const repository = new DynamoBatchRepository(dynamo(), env.TABLE_NAME, { groupResultWrites: env.FLEET_GROUP_RESULT_WRITES });
const activity = new DynamoFleetActivity(dynamo(), env.TABLE_NAME, Date.now, { groupWorkerWrites: env.FLEET_GROUP_RESULT_WRITES });
const deadLetters = env.FLEET_DLQ_URL ? new SqsDeadLetterQueue(sqs(), env.FLEET_DLQ_URL) : undefined;
/** One id per execution environment: the seed's worker id. */
const environmentId = randomUUID().slice(0, 8);
/** The registry slots of this environment: on Lambda only slot 0, as it runs one attempt at a time. */
const slots = new SlotPool();

const expiresAt = (now: number) => Math.floor(now / 1000 + env.FLEET_RETENTION_DAYS * 86_400);

/**
 * False for a duplicate: the task already had its final result. A store that
 * cannot be reached or will not answer now (after the SDK's own retries) is
 * the fleet's fault, never the task's: StorageUnavailable, which the state
 * machine retries without spending one of the task's attempts. The task's
 * handler then runs again (at least once); its result is still stored once,
 * as the first final result wins.
 */
async function record(batchId: string, result: TaskResult, settings: TaskSettings | undefined): Promise<boolean> {
  try {
    return await repository.recordResult(batchId, result, expiresAt(result.timestamp), settings?.counterShards);
  } catch (error) {
    if (!isStorageUnavailable(error)) throw error;
    // Loud: every occurrence is the fleet's storage failing, not a task.
    logger.error('storage unavailable: the task outcome could not be recorded; the state machine retries it', {
      batchId,
      taskId: result.taskId,
      success: result.success,
      error: String(error),
    });
    throw new StorageUnavailable(`the outcome of task ${result.taskId} could not be recorded: ${describeError(error)}`);
  }
}

/**
 * Sends a final failure to the dead-letter queue, after its result is
 * recorded: the result is the record, the message tells operators. Only the
 * invocation whose result was recorded sends, so a duplicate delivery sends
 * nothing; a send that fails is logged and never fails the task or loses its
 * result (at most one message per failure, and none if SQS is down).
 */
async function deadLetter(batchId: string, taskType: string, result: TaskResult): Promise<void> {
  if (!deadLetters) return;
  try {
    await deadLetters.send({
      batchId,
      taskId: result.taskId,
      taskType,
      error: result.error ?? '',
      attempts: result.attempts,
      workerId: result.workerId,
      failedAt: result.timestamp,
    });
  } catch (error) {
    // No task data in the log: ids only.
    logger.error('dead-letter queue: send failed', { batchId, taskId: result.taskId, error: String(error) });
  }
}

/**
 * The worker registry only reports: a failed write there is logged and never
 * fails a task. An entry left behind expires with its attempt's backstop.
 */
const logRegistryError = (ids: LogKeys) => (action: string, error: unknown) =>
  logger.warn(`worker registry: ${action} failed`, { ...ids, error: String(error) });

/**
 * Whether the batch was cancelled, read strongly consistent. On AWS stopping
 * a batch's execution cannot stop its EXPRESS children (StopExecution does not
 * apply to EXPRESS executions), so a child waiting to retry still retries.
 * cancelBatch writes `cancelled` before it answers: reading it before every
 * retry keeps "no attempt starts after cancelBatch returns" true. A first
 * attempt needs no read: no child starts once the execution is stopped.
 */
async function batchCancelled(batchId: string): Promise<boolean> {
  try {
    return (await repository.getBatch(batchId))?.status === 'cancelled';
  } catch (error) {
    if (!isStorageUnavailable(error)) throw error;
    logger.error('storage unavailable: the batch status could not be read before a retry; the state machine retries it', { batchId, error: String(error) });
    throw new StorageUnavailable(`batch ${batchId}'s status could not be read: ${describeError(error)}`);
  }
}

async function runTask(event: WorkerEvent, handlers: Readonly<Record<string, TaskHandler>>, middleware: readonly TaskMiddleware[]): Promise<WorkerOutput> {
  const attempt = Number.isInteger(event.attempt) && event.attempt >= 0 ? event.attempt : 0;
  if (attempt > 0 && (await batchCancelled(event.batchId))) {
    // Nothing runs and nothing is recorded: the task stays unfinished, as a cancelled batch's unstarted tasks do.
    logger.info('retry skipped: the batch was cancelled', { batchId: event.batchId, taskId: event.task.id, attempt });
    return { taskId: event.task.id, success: false };
  }
  const workerId = `${environmentId}-${event.task.id}-${attempt}`;
  const childStart = event.executionStartTime ? Date.parse(event.executionStartTime) : NaN;
  const budget = event.settings.executionBudgetMs;
  const notAfter = budget != null && Number.isFinite(childStart) ? childStart + budget : undefined;
  const spawnedAt = Date.now();
  const slot = slots.take();
  // GET /workers lists the attempt from its start (or, listing long attempts
  // only, once it has run FLEET_WORKER_LISTING_DELAY_MS); the write goes alongside the attempt, adding it no latency.
  const listing = listWhileRunning(
    activity,
    {
      slot: `${environmentId}-${slot}`,
      id: workerId,
      batchId: event.batchId,
      taskId: event.task.id,
      spawnedAt,
      expiresAt: workerExpiresAt(spawnedAt, event.settings.attemptTimeoutSeconds),
      attempt,
    },
    logRegistryError({ batchId: event.batchId, taskId: event.task.id }),
    listingDelayMs(event.settings.workerListing ?? env.FLEET_WORKER_LISTING, env.FLEET_WORKER_LISTING_DELAY_MS),
  );
  let outcome: Awaited<ReturnType<typeof runAttempt>>;
  try {
    // runAttempt never throws: whatever the outcome (success, retry, final failure) the listing ends here.
    outcome = await runAttempt(handlers, {
      batchId: event.batchId,
      task: event.task,
      settings: event.settings,
      attempt,
      notAfter,
      middleware,
    });
    await listing.end(outcome.kind);
  } finally {
    slots.release(slot);
  }
  // Every attempt's duration; a retry is any attempt after the first.
  recordWorkerDuration(outcome.duration);
  if (attempt > 0) count(FLEET_METRICS.taskRetries);
  logger.debug('task attempt ended', { batchId: event.batchId, taskId: event.task.id, attempt, outcome: outcome.kind, durationMs: outcome.duration });
  if (outcome.kind === 'retry') {
    // For the Catch path, should the next attempt hang or crash: it names the attempt it records.
    await activity.noteNextAttempt(event.batchId, event.task.id, attempt + 1, expiresAt(Date.now())).catch((error: unknown) => logRegistryError({ batchId: event.batchId, taskId: event.task.id })('note next attempt', error));
    throw new TaskAttemptFailed(outcome.error);
  }
  const result: TaskResult = {
    taskId: event.task.id,
    success: outcome.kind === 'succeeded',
    ...(outcome.kind === 'succeeded' ? { result: outcome.result } : { error: outcome.error }),
    duration: outcome.duration,
    timestamp: Date.now(),
    attempts: attempt + 1,
    workerId,
  };
  const recorded = await record(event.batchId, result, event.settings);
  // Only the invocation that recorded the final result counts it: a duplicate delivery counts nothing.
  if (recorded) count(outcome.kind === 'succeeded' ? FLEET_METRICS.tasksSucceeded : FLEET_METRICS.tasksFailed);
  if (outcome.kind === 'failed') {
    // A retry-failed run may start this task again: its Catch path must not take this run's note.
    if (attempt > 0) await activity.takeNextAttempt(event.batchId, event.task.id).catch((error: unknown) => logRegistryError({ batchId: event.batchId, taskId: event.task.id })('clear next attempt', error));
    if (recorded) await deadLetter(event.batchId, event.task.type, result);
    throw new TaskFailed(outcome.error);
  }
  return { taskId: event.task.id, success: true };
}

async function recordFailure(event: RecordFailureEvent): Promise<WorkerOutput> {
  const name = event.error?.Error ?? 'Error';
  const cause = event.error?.Cause ?? '';
  let message = cause;
  try {
    // Lambda errors arrive as a JSON Cause: {"errorType", "errorMessage", ...}.
    const parsed = JSON.parse(cause) as { errorMessage?: unknown };
    if (typeof parsed.errorMessage === 'string') message = parsed.errorMessage;
  } catch {
    // a plain-text cause
  }
  // The attempt that ended here (backstop timeout, crash) could not end its own listing: the
  // failed result written below shows it is over. The note a retry left says which attempt it was.
  const ids = { batchId: event.batchId, taskId: event.task.id };
  const nextAttempt = await activity.takeNextAttempt(event.batchId, event.task.id).catch((error: unknown) => {
    logRegistryError(ids)('take next attempt', error);
    return undefined;
  });
  const now = Date.now();
  const result: TaskResult = {
    taskId: event.task.id,
    success: false,
    error: name === 'States.Timeout' ? 'timed out: the attempt exceeded its backstop timeout' : `${name}${message ? `: ${message}` : ''}`,
    duration: 0,
    timestamp: now,
    // The Catch path does not see the retry count: the noted attempt's, else the first.
    attempts: nextAttempt !== undefined ? nextAttempt + 1 : 1,
    workerId: `${environmentId}-catch`,
  };
  if (await record(event.batchId, result, event.settings)) {
    count(FLEET_METRICS.tasksFailed);
    await deadLetter(event.batchId, event.task.type, result);
  }
  return { taskId: event.task.id, success: false };
}

export interface WorkerHandlerOptions {
  /**
   * Hooks run around each attempt (./tasks/middleware.ts).
   * @default taskMiddleware, the hooks registered in lambdas/tasks/index.ts
   */
  middleware?: readonly TaskMiddleware[];
}

/** What the state machine invokes a worker function with, and what it returns. */
export type WorkerHandler = (event: WorkerEvent | RecordFailureEvent, context?: Context) => Promise<WorkerOutput>;

/**
 * A worker Lambda handler over `handlers` (task type → handler): the default
 * worker's, or a per-type worker function's (FleetProps.workers). A task type
 * missing from `handlers` fails as an unknown type, without retry.
 *
 *   export const handler = createWorkerHandler({ thumbnail });
 */
export function createWorkerHandler(handlers: Readonly<Record<string, TaskHandler>>, options: WorkerHandlerOptions = {}): WorkerHandler {
  const middleware = options.middleware ?? taskMiddleware;
  // Log lines carry the batch and task ids; metrics are flushed once per invocation.
  return instrumented<WorkerEvent | RecordFailureEvent, WorkerOutput>(
    async (event) => {
      if ('action' in event && event.action === 'recordFailure') return recordFailure(event);
      return runTask(event as WorkerEvent, handlers, middleware);
    },
    (event) => ({ batchId: event?.batchId, taskId: event?.task?.id }),
  );
}

/** The default worker: every task type registered in lambdas/tasks. */
export const handler = createWorkerHandler(taskHandlers);
