/**
 * The worker's rules, one attempt of one task per call (lambdas/worker.ts is
 * its handler):
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
 * No AWS here: storage, the dead-letter queue, logs and metrics are ports.
 */
import { runAttempt, type AttemptOutcome } from './attempt';
import { StorageUnavailable, TaskAttemptFailed, TaskFailed, describeError } from './errors';
import { SlotPool, listWhileRunning, listingDelayMs, workerExpiresAt } from './fleet-activity';
import { FLEET_METRICS } from './metrics';
import type { BatchRepository, DeadLetterQueue, FleetActivity, Log, RunMetrics } from './ports';
import type { RecordFailureEvent, TaskResult, TaskSettings, WorkerEvent, WorkerListingMode, WorkerOutput } from './types';
import type { TaskHandler, TaskMiddleware } from './task-handler';

export interface WorkerServiceDeps {
  results: Pick<BatchRepository, 'recordResult' | 'getBatch'>;
  activity: Pick<FleetActivity, 'registerWorker' | 'deregisterWorker' | 'noteNextAttempt' | 'takeNextAttempt'>;
  /** Absent (e.g. a unit test's function without FLEET_DLQ_URL): no dead-letter message is sent. */
  deadLetters?: DeadLetterQueue;
  /** Whether an error means the store could not be reached or would not answer now (the fleet's fault, not the task's). */
  isStorageUnavailable: (error: unknown) => boolean;
  log: Log;
  metrics: RunMetrics;
  retentionDays: number;
  /** For a batch whose settings do not say (one started before the setting existed). */
  workerListing: WorkerListingMode;
  /** In `long-attempts` listing mode: how long an attempt runs before GET /workers lists it. */
  workerListingDelayMs: number;
  /** One id per execution environment: the seed of its worker ids. */
  environmentId: string;
  /** @default Date.now */
  now?: () => number;
}

/** Task type → handler, and the hooks run around each attempt. */
export interface TaskRegistry {
  handlers: Readonly<Record<string, TaskHandler>>;
  middleware: readonly TaskMiddleware[];
}

export class WorkerService {
  /** The registry slots of this environment: on Lambda only slot 0, as it runs one attempt at a time. */
  private readonly slots = new SlotPool();
  private readonly now: () => number;

  constructor(private readonly deps: WorkerServiceDeps) {
    this.now = deps.now ?? Date.now;
  }

  private expiresAt(now: number): number {
    return Math.floor(now / 1000 + this.deps.retentionDays * 86_400);
  }

  /**
   * The worker registry only reports: a failed write there is logged and never
   * fails a task. An entry left behind expires with its attempt's backstop.
   */
  private registryError(ids: { batchId: string; taskId: string }) {
    return (action: string, error: unknown) => { this.deps.log.warn(`worker registry: ${action} failed`, { ...ids, error: String(error) }); };
  }

  /**
   * False for a duplicate: the task already had its final result. A store that
   * cannot be reached or will not answer now (after the SDK's own retries) is
   * the fleet's fault, never the task's: StorageUnavailable, which the state
   * machine retries without spending one of the task's attempts. The task's
   * handler then runs again (at least once); its result is still stored once,
   * as the first final result wins.
   */
  private async record(batchId: string, result: TaskResult, settings: TaskSettings | undefined): Promise<boolean> {
    try {
      return await this.deps.results.recordResult(batchId, result, this.expiresAt(result.timestamp), settings?.counterShards);
    } catch (error) {
      if (!this.deps.isStorageUnavailable(error)) throw error;
      // Loud: every occurrence is the fleet's storage failing, not a task.
      this.deps.log.error('storage unavailable: the task outcome could not be recorded; the state machine retries it', {
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
  private async deadLetter(batchId: string, taskType: string, result: TaskResult): Promise<void> {
    if (!this.deps.deadLetters) return;
    try {
      await this.deps.deadLetters.send({
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
      this.deps.log.error('dead-letter queue: send failed', { batchId, taskId: result.taskId, error: String(error) });
    }
  }

  /**
   * Whether the batch was cancelled, read strongly consistent. On AWS stopping
   * a batch's execution cannot stop its EXPRESS children (StopExecution does not
   * apply to EXPRESS executions), so a child waiting to retry still retries.
   * cancelBatch writes `cancelled` before it answers: reading it before every
   * retry keeps "no attempt starts after cancelBatch returns" true. A first
   * attempt needs no read: no child starts once the execution is stopped.
   */
  private async batchCancelled(batchId: string): Promise<boolean> {
    try {
      return (await this.deps.results.getBatch(batchId))?.status === 'cancelled';
    } catch (error) {
      if (!this.deps.isStorageUnavailable(error)) throw error;
      this.deps.log.error('storage unavailable: the batch status could not be read before a retry; the state machine retries it', { batchId, error: String(error) });
      throw new StorageUnavailable(`batch ${batchId}'s status could not be read: ${describeError(error)}`);
    }
  }

  /** One attempt of `event.task`, run by `tasks`. */
  async runTask(event: WorkerEvent, tasks: TaskRegistry): Promise<WorkerOutput> {
    const { log, activity } = this.deps;
    const attempt = Number.isInteger(event.attempt) && event.attempt >= 0 ? event.attempt : 0;
    const ids = { batchId: event.batchId, taskId: event.task.id };
    if (attempt > 0 && (await this.batchCancelled(event.batchId))) {
      // Nothing runs and nothing is recorded: the task stays unfinished, as a cancelled batch's unstarted tasks do.
      log.info('retry skipped: the batch was cancelled', { ...ids, attempt });
      return { taskId: event.task.id, success: false };
    }
    const workerId = `${this.deps.environmentId}-${event.task.id}-${attempt}`;
    const spawnedAt = this.now();
    const slot = this.slots.take();
    // GET /workers lists the attempt from its start (or, listing long attempts
    // only, once it has run the listing delay); the write goes alongside the attempt, adding it no latency.
    const listing = listWhileRunning(
      activity,
      {
        slot: `${this.deps.environmentId}-${slot}`,
        id: workerId,
        batchId: event.batchId,
        taskId: event.task.id,
        spawnedAt,
        expiresAt: workerExpiresAt(spawnedAt, event.settings.attemptTimeoutSeconds),
        attempt,
      },
      this.registryError(ids),
      listingDelayMs(event.settings.workerListing ?? this.deps.workerListing, this.deps.workerListingDelayMs),
    );
    let outcome: AttemptOutcome;
    let listingEnded: Promise<void> = Promise.resolve();
    try {
      // runAttempt never throws: whatever the outcome (success, retry, final failure) the listing ends here.
      outcome = await runAttempt(tasks.handlers, {
        batchId: event.batchId,
        task: event.task,
        settings: event.settings,
        attempt,
        notAfter: attemptDeadline(event),
        middleware: tasks.middleware,
      });
      // A success leaves its entry (its result shows the attempt is over), so the entry's put may
      // still be landing while the result is written: the two go in parallel. A retry or a failure
      // deletes the entry first.
      listingEnded = listing.end(outcome.kind);
      if (outcome.kind !== 'succeeded') await listingEnded;
    } finally {
      const release = () => { this.slots.release(slot); };
      // The slot's next attempt overwrites its entry: not before this attempt's put has settled.
      void listingEnded.then(release, release);
    }
    try {
      return await this.afterAttempt(event, outcome, attempt, workerId);
    } finally {
      // On Lambda nothing runs after the handler returns: the entry's put ends inside the invocation.
      await listingEnded;
    }
  }

  /** What an attempt's outcome leads to: a retry, a recorded result, a dead letter. */
  private async afterAttempt(event: WorkerEvent, outcome: AttemptOutcome, attempt: number, workerId: string): Promise<WorkerOutput> {
    const { log, metrics, activity } = this.deps;
    const ids = { batchId: event.batchId, taskId: event.task.id };
    // Every attempt's duration; a retry is any attempt after the first.
    metrics.attemptDuration(outcome.duration);
    if (attempt > 0) metrics.count(FLEET_METRICS.taskRetries);
    log.debug('task attempt ended', { ...ids, attempt, outcome: outcome.kind, durationMs: outcome.duration });
    if (outcome.kind === 'retry') {
      // For the Catch path, should the next attempt hang or crash: it names the attempt it records.
      await activity.noteNextAttempt(event.batchId, event.task.id, attempt + 1, this.expiresAt(this.now())).catch((error: unknown) => { this.registryError(ids)('note next attempt', error); });
      throw new TaskAttemptFailed(outcome.error);
    }
    const result = attemptResult(event.task.id, outcome, { attempt, workerId, timestamp: this.now() });
    const recorded = await this.record(event.batchId, result, event.settings);
    // Only the invocation that recorded the final result counts it: a duplicate delivery counts nothing.
    if (recorded) metrics.count(outcome.kind === 'succeeded' ? FLEET_METRICS.tasksSucceeded : FLEET_METRICS.tasksFailed);
    if (outcome.kind === 'failed') {
      // A retry-failed run may start this task again: its Catch path must not take this run's note.
      if (attempt > 0) await activity.takeNextAttempt(event.batchId, event.task.id).catch((error: unknown) => { this.registryError(ids)('clear next attempt', error); });
      if (recorded) await this.deadLetter(event.batchId, event.task.type, result);
      throw new TaskFailed(outcome.error);
    }
    return { taskId: event.task.id, success: true };
  }

  /** The Catch path: records the failure the attempt could not record itself. */
  async recordFailure(event: RecordFailureEvent): Promise<WorkerOutput> {
    // The attempt that ended here (backstop timeout, crash) could not end its own listing: the
    // failed result written below shows it is over. The note a retry left says which attempt it was.
    const ids = { batchId: event.batchId, taskId: event.task.id };
    const nextAttempt = await this.deps.activity.takeNextAttempt(event.batchId, event.task.id).catch((error: unknown) => {
      this.registryError(ids)('take next attempt', error);
      return undefined;
    });
    const result: TaskResult = {
      taskId: event.task.id,
      success: false,
      error: catchPathError(event.error),
      duration: 0,
      timestamp: this.now(),
      // The Catch path does not see the retry count: the noted attempt's, else the first.
      attempts: nextAttempt !== undefined ? nextAttempt + 1 : 1,
      workerId: `${this.deps.environmentId}-catch`,
    };
    if (await this.record(event.batchId, result, event.settings)) {
      this.deps.metrics.count(FLEET_METRICS.tasksFailed);
      await this.deadLetter(event.batchId, event.task.type, result);
    }
    return { taskId: event.task.id, success: false };
  }
}

/**
 * Epoch ms the attempt must end by: its child execution's start plus the
 * batch's execution budget, when the batch has one (a bounded child).
 */
export function attemptDeadline(event: Pick<WorkerEvent, 'executionStartTime' | 'settings'>): number | undefined {
  const childStart = event.executionStartTime ? Date.parse(event.executionStartTime) : NaN;
  const budget = event.settings.executionBudgetMs;
  return budget != null && Number.isFinite(childStart) ? childStart + budget : undefined;
}

/** The final result of an attempt that succeeded or failed for good. */
export function attemptResult(
  taskId: string,
  outcome: Exclude<AttemptOutcome, { kind: 'retry' }>,
  at: { attempt: number; workerId: string; timestamp: number },
): TaskResult {
  return {
    taskId,
    success: outcome.kind === 'succeeded',
    ...(outcome.kind === 'succeeded' ? { result: outcome.result } : { error: outcome.error }),
    duration: outcome.duration,
    timestamp: at.timestamp,
    attempts: at.attempt + 1,
    workerId: at.workerId,
  };
}

/**
 * The error the Catch path records, from Step Functions' {Error, Cause}.
 * Lambda errors arrive as a JSON Cause: {"errorType", "errorMessage", ...}.
 */
export function catchPathError(error: RecordFailureEvent['error'] | undefined): string {
  const name = error?.Error ?? 'Error';
  const cause = error?.Cause ?? '';
  if (name === 'States.Timeout') return 'timed out: the attempt exceeded its backstop timeout';
  let message = cause;
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown };
    if (typeof parsed.errorMessage === 'string') message = parsed.errorMessage;
  } catch {
    // a plain-text cause
  }
  return `${name}${message ? `: ${message}` : ''}`;
}
