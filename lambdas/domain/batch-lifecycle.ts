/**
 * The parent state machine's bookends (lambdas/batch-lifecycle.ts is their
 * handler):
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
 * No AWS here: storage, admission, logs and metrics are ports.
 */
import { finalStatusOf } from './batch';
import { settingsForBatch } from './config';
import type { BatchExecutionInput, BatchRepository, CapacityStore, FleetActivity, Log, RetryStore, RunMetrics } from './ports';
import { prepareRetry, type RetryFailedDeps } from './retry-failed';
import type { BatchState, TaskSettings } from './types';

export type StartInput = BatchExecutionInput;

export interface StartedBatch extends BatchExecutionInput {
  /** False for a batch cancelled before its execution started: it runs nothing. */
  admitted: boolean;
  maxConcurrency: number;
  settings: TaskSettings | null;
}

export interface FinishInput {
  batchId: string;
  /** Present when the Map itself failed (Catch on the Map state). */
  failure?: { Error?: string; Cause?: string };
}

export interface FinishedBatch {
  batchId: string;
  status: BatchState;
}

export interface BatchLifecycleDeps {
  repository: Pick<BatchRepository, 'getBatch' | 'getConfig' | 'markStarted' | 'countResults' | 'finish'>;
  capacity: Pick<CapacityStore, 'load'>;
  /** A retry-failed run's tasks file. */
  retry: Pick<RetryFailedDeps, 'store' | 'taskFiles'>;
  /** Counted before: a retry-failed run, whose new counts replace the ones counted. */
  retryStore: Pick<RetryStore, 'recountRetriedBatch'>;
  activity: Pick<FleetActivity, 'addFinishedBatch'>;
  /**
   * Hands a finished batch's capacity on, on the state machine that ran it
   * (the state machine passes its own ARN: a function it invokes cannot take
   * it from its environment without a CloudFormation dependency cycle).
   */
  release: (stateMachineArn: string, batchId: string) => Promise<unknown>;
  log: Log;
  metrics: Pick<RunMetrics, 'batchFinished'>;
  retentionDays: number;
  childExecutionType: 'EXPRESS' | 'STANDARD';
  /** @default Date.now */
  now?: () => number;
}

/** What a finished batch with `lost` tasks that never recorded a result says about them. */
export const lostTasksError = (lost: number) => `${lost} task(s) ended without a recorded result and count as failed`;

/**
 * The final status, counts and error of a batch: a child that ended without
 * recording (e.g. lost to an infrastructure fault) still counts, as failed,
 * so a finished batch always accounts for every task. A failed Map fails the
 * batch with its own error.
 */
export function finalOutcome(
  totalTasks: number,
  recorded: { completedTasks: number; failedTasks: number },
  failure: FinishInput['failure'],
): { status: BatchState; counts: { completedTasks: number; failedTasks: number }; lost: number; error: string | undefined } {
  const lost = failure ? 0 : Math.max(0, totalTasks - recorded.completedTasks - recorded.failedTasks);
  const counts = { ...recorded, failedTasks: recorded.failedTasks + lost };
  const status: BatchState = failure ? 'failed' : finalStatusOf(totalTasks, counts.completedTasks);
  const error = failure ? `${failure.Error ?? 'Error'}: ${failure.Cause ?? ''}`.slice(0, 2000) : lost > 0 ? lostTasksError(lost) : undefined;
  return { status, counts, lost, error };
}

export class BatchLifecycle {
  private readonly now: () => number;

  constructor(private readonly deps: BatchLifecycleDeps) {
    this.now = deps.now ?? Date.now;
  }

  private expiresAt(now: number): number {
    return Math.floor(now / 1000 + this.deps.retentionDays * 86_400);
  }

  async start(state: StartInput): Promise<StartedBatch> {
    const { repository } = this.deps;
    const batch = await repository.getBatch(state.batchId);
    if (!batch) throw new Error(`batch ${state.batchId} does not exist`);
    const base = { batchId: state.batchId, tasksBucket: state.tasksBucket, tasksKey: state.tasksKey };
    if (batch.status !== 'pending' && batch.status !== 'processing') return { ...base, admitted: false, maxConcurrency: 0, settings: null };
    // Its share now: the cap may have been re-shared since admission passed it in.
    const [{ state: capacity }, config] = await Promise.all([this.deps.capacity.load(), repository.getConfig()]);
    const slots = capacity.running[state.batchId]?.slots ?? state.maxConcurrency ?? 1;
    // A retry-failed run reads the tasks its retry left to run.
    const file =
      state.retry === undefined
        ? { bucket: state.tasksBucket, key: state.tasksKey }
        : await prepareRetry({ ...this.deps.retry, retentionDays: this.deps.retentionDays }, batch, state.retry);
    // pending → processing; a retried Start batch finds it processing already.
    const record = (await repository.markStarted(state.batchId, this.now())) ?? batch;
    return {
      batchId: state.batchId,
      tasksBucket: file.bucket,
      tasksKey: file.key,
      admitted: true,
      maxConcurrency: slots,
      settings: settingsForBatch(config, record.longestTaskTimeoutMs, this.deps.childExecutionType, record.counterShards),
    };
  }

  async finish(event: FinishInput, stateMachineArn: string): Promise<FinishedBatch> {
    const { repository, log } = this.deps;
    const record = await repository.getBatch(event.batchId);
    if (!record) throw new Error(`batch ${event.batchId} does not exist`);
    const recorded = await repository.countResults(event.batchId, record.totalTasks, record.counterShards);
    const now = this.now();
    const { status, counts, error } = finalOutcome(record.totalTasks, recorded, event.failure);
    // Into the fleet stats before the status says finished, so GET /stats never
    // misses a batch whose status it shows finished; at most once per batch, so
    // a retried finish cannot count twice. Stats only report: a failure here is
    // logged and never keeps the batch from finishing.
    await this.deps.activity
      .addFinishedBatch(event.batchId, counts, this.expiresAt(now))
      // Counted before: a retry-failed run, whose new counts replace the ones counted.
      .then((added) => (added ? true : this.deps.retryStore.recountRetriedBatch(event.batchId, counts)))
      .catch((error: unknown) => { log.error('fleet stats: finished batch not added', { batchId: event.batchId, error: String(error) }); });
    const finished = await repository.finish(event.batchId, {
      status,
      ...counts,
      completedAt: now,
      expiresAt: this.expiresAt(now),
      ...(error ? { error } : {}),
    });
    // The write is conditional on the batch not being finished yet: a retried
    // finish, or one that lost to a cancel (counted by the API), counts nothing.
    if (finished) {
      this.deps.metrics.batchFinished(status);
      // One line per batch, not per task: its outcome, for Logs Insights.
      log.info('batch finished', { status, ...counts });
    }
    await this.deps.release(stateMachineArn, event.batchId);
    return { batchId: event.batchId, status };
  }
}
