/**
 * POST /batches/{batchId}/retry-failed: run a finished batch's failed tasks again.
 *
 * Why not RedriveExecution: it re-runs a Map Run's *failed children*, and
 * Fleet's children do not fail. A task's failure is caught and recorded, so
 * its child succeeds, and a batch with failed tasks ends in an execution that
 * SUCCEEDED, which cannot be redriven. So a retry is a new execution of the
 * same state machine, named `<batchId>-retry-<n>`, over a tasks file holding
 * only the tasks without a successful result:
 *
 * 1. Read the batch's tasks and the ids of its successful results; the rest
 *    (failed tasks, and tasks lost without a result) are the ones to retry.
 * 2. Write them to `batches/<id>/retry-<n>.jsonl`.
 * 3. Claim the batch: finished → pending, as retry n (a conditional write, so
 *    of two concurrent calls one wins; the other gets 409).
 * 4. Clear each failed result (into the batch's history; its counter goes
 *    down by one), so the new attempt's result can be recorded: results stay
 *    first-write-wins, one per task.
 * 5. Start the execution. Start batch admits it under the fleet-wide cap,
 *    Finish batch counts exactly and sets the final status again.
 *
 * A call interrupted between 3 and 5 leaves the batch pending with no
 * execution; calling again finishes the job (steps 4 and 5 are idempotent).
 *
 * RedriveExecution is used where it does apply: an unfinished batch whose
 * execution itself FAILED or TIMED_OUT (e.g. Finish batch failed for good)
 * is redriven, and continues from the state that failed.
 */
import { ConflictError, NotFoundError } from './errors';
import { mapConcurrently } from './fleet-activity';
import type { BatchRepository, RetryStore, RetryTaskFiles, RetryWorkflow } from './ports';
import { FINISHED_STATES, type BatchState, type Task } from './types';

export interface RetryFailedDeps {
  repository: Pick<BatchRepository, 'getBatch' | 'getStatus'>;
  store: RetryStore;
  taskFiles: RetryTaskFiles;
  workflow: RetryWorkflow;
  /** Days a cleared failed result is kept in the batch's history. @default 7 */
  retentionDays?: number;
  now?: () => number;
}

export interface RetryFailedResult {
  batchId: string;
  /**
   * - `execution`: a new execution runs the failed tasks
   * - `redrive`: the batch's failed execution was redriven
   * - `none`: nothing to retry (every task succeeded)
   */
  mode: 'execution' | 'redrive' | 'none';
  /** The batch's retry number (1 for its first retry-failed); null unless mode is `execution`. */
  retry: number | null;
  /** Tasks that will run again: failed and lost ones for `execution`, those without a result for `redrive`. */
  retriedTasks: number;
  /** The execution now running the batch; null when nothing runs. */
  executionName: string | null;
  status: BatchState;
}

/** Clears at most this many failed results at once. */
const CLEAR_CONCURRENCY = 16;
const REDRIVABLE = new Set(['FAILED', 'TIMED_OUT']);

export const retryExecutionName = (batchId: string, retry: number) => `${batchId}-retry-${retry}`;

export async function retryFailedTasks(deps: RetryFailedDeps, batchId: string): Promise<RetryFailedResult> {
  const now = deps.now ?? Date.now;
  const batch = await deps.repository.getBatch(batchId);
  if (!batch) throw new NotFoundError(`batch ${batchId} not found`);
  const state = (await deps.store.getRetryState(batchId)) ?? { retries: 0, executionName: batchId };

  if (!FINISHED_STATES.has(batch.status)) {
    const execution = await deps.workflow.executionStatus(state.executionName);
    if (execution && REDRIVABLE.has(execution)) {
      await deps.workflow.redrive(state.executionName);
      const status = await deps.repository.getStatus(batchId);
      const unfinished = status ? status.totalTasks - status.completedTasks - status.failedTasks : batch.totalTasks;
      return { batchId, mode: 'redrive', retry: null, retriedTasks: Math.max(0, unfinished), executionName: state.executionName, status: batch.status };
    }
    // An earlier retry-failed claimed the batch but never started its execution: finish it.
    const interrupted = batch.status === 'pending' && state.retries > 0 && execution === undefined && state.retriedAt !== undefined;
    if (!interrupted) {
      throw new ConflictError(`batch ${batchId} is ${batch.status}: only a finished batch's failed tasks can be retried`);
    }
    const retry = state.retries;
    const { tasks, ...file } = await deps.taskFiles.readRetryTasks(batchId, retry);
    return run(deps, batchId, retry, tasks, file, state.retriedAt ?? now());
  }
  if (batch.status === 'cancelled') {
    throw new ConflictError(`batch ${batchId} was cancelled: only a completed, partial or failed batch's failed tasks can be retried`);
  }

  const [tasks, succeeded] = await Promise.all([deps.taskFiles.readTasks(batch.tasksKey), deps.store.listSucceededTaskIds(batchId)]);
  const failed = tasks.filter((task) => !succeeded.has(task.id));
  if (failed.length === 0) return { batchId, mode: 'none', retry: null, retriedTasks: 0, executionName: null, status: batch.status };

  const retry = state.retries + 1;
  const file = await deps.taskFiles.putRetryTasks(batchId, retry, failed);
  const claimedAt = now();
  if (!(await deps.store.claimRetry(batchId, { retry, executionName: retryExecutionName(batchId, retry), claimedAt }))) {
    throw new ConflictError(`batch ${batchId} changed while its failed tasks were being retried (another retry-failed?); read it and try again`);
  }
  return run(deps, batchId, retry, failed, file, claimedAt);
}

/** Steps 4 and 5: clear the failed results, then start the retry's execution over its tasks file. */
async function run(
  deps: RetryFailedDeps,
  batchId: string,
  retry: number,
  tasks: readonly Task[],
  file: { bucket: string; key: string },
  claimedAt: number,
): Promise<RetryFailedResult> {
  const expiresAt = Math.floor(claimedAt / 1000 + (deps.retentionDays ?? 7) * 86_400);
  await mapConcurrently(tasks, CLEAR_CONCURRENCY, (task) => deps.store.clearFailedResult(batchId, task.id, { retry, before: claimedAt, expiresAt }));
  const executionName = retryExecutionName(batchId, retry);
  await deps.workflow.startRetry({ batchId, tasksBucket: file.bucket, tasksKey: file.key }, executionName);
  return { batchId, mode: 'execution', retry, retriedTasks: tasks.length, executionName, status: 'pending' };
}
