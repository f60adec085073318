/**
 * POST /batches/{batchId}/retry-failed: run a finished batch's failed tasks again.
 *
 * Why not RedriveExecution: it re-runs a Map Run's *failed children*, and
 * Fleet's children do not fail. A task's failure is caught and recorded, so
 * its child succeeds, and a batch with failed tasks ends in an execution that
 * SUCCEEDED, which cannot be redriven. So a retry is a new execution of the
 * same state machine, named `<batchId>-retry-<n>`, over a tasks file holding
 * only the tasks without a successful result.
 *
 * The request does O(1) work, whatever the batch's size (API Gateway gives it
 * 30 s; clearing 100,000 failed results takes far longer):
 * 1. Claim the batch: finished → pending, as retry n (a conditional write, so
 *    of two concurrent calls one wins; the other gets 409).
 * 2. Queue it for admission, as a new batch is queued.
 * The rest runs in the retry's own execution, in Start batch (`prepareRetry`),
 * once the batch is admitted, and is resumable (Start batch is retried):
 * 3. Read the batch's tasks and the ids of its successful results; write the
 *    others (failed tasks, and tasks lost without a result) to
 *    `batches/<id>/retry-<n>.jsonl`.
 * 4. Clear each failed result recorded before the claim (into the batch's
 *    history; its counter goes down by one), so the new attempt's result can
 *    be recorded: results stay first-write-wins, one per task.
 * Finish batch then counts exactly and sets the final status again.
 *
 * RedriveExecution is used where it does apply: an unfinished batch whose
 * execution itself FAILED or TIMED_OUT (e.g. Finish batch failed for good)
 * is redriven, and continues from the state that failed.
 */
import { ConflictError, NotFoundError } from './errors';
import { mapConcurrently } from './fleet-activity';
import { jsonLines } from './tasks-file';
import type { BatchExecutionInput, BatchRecord, BatchRepository, RetryStore, RetryTaskFiles, RetryWorkflow } from './ports';
import { FINISHED_STATES, type BatchState } from './types';

export interface RetryFailedDeps {
  repository: Pick<BatchRepository, 'getBatch' | 'getStatus'>;
  store: RetryStore;
  taskFiles: RetryTaskFiles;
  workflow: RetryWorkflow;
  /**
   * Queues the retry for admission, which starts its execution. Idempotent.
   * @default - the execution starts at once
   */
  queue?: (record: BatchRecord, run: { input: BatchExecutionInput; executionName: string; demand: number; since: number }) => Promise<void>;
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
    // Claimed by an earlier retry-failed and not started yet: waiting for
    // capacity, or interrupted before it was queued. Queueing is idempotent.
    const waiting = batch.status === 'pending' && state.retries > 0 && execution === undefined && state.retriedAt !== undefined;
    if (!waiting) {
      throw new ConflictError(`batch ${batchId} is ${batch.status}: only a finished batch's failed tasks can be retried`);
    }
    return queueRetry(deps, batch, state.retries, state.retriedAt ?? now());
  }
  if (batch.status === 'cancelled') {
    throw new ConflictError(`batch ${batchId} was cancelled: only a completed, partial or failed batch's failed tasks can be retried`);
  }
  // A finished batch's counts are exact: every task without a success runs again.
  if (batch.completedTasks >= batch.totalTasks) return { batchId, mode: 'none', retry: null, retriedTasks: 0, executionName: null, status: batch.status };

  const retry = state.retries + 1;
  const claimedAt = now();
  if (!(await deps.store.claimRetry(batchId, { retry, executionName: retryExecutionName(batchId, retry), claimedAt }))) {
    throw new ConflictError(`batch ${batchId} changed while its failed tasks were being retried (another retry-failed?); read it and try again`);
  }
  return queueRetry(deps, batch, retry, claimedAt);
}

/** Step 2: queue (or, without admission, start) the retry's execution. Start batch prepares its tasks. */
async function queueRetry(deps: RetryFailedDeps, batch: BatchRecord, retry: number, claimedAt: number): Promise<RetryFailedResult> {
  const executionName = retryExecutionName(batch.batchId, retry);
  const input: BatchExecutionInput = { batchId: batch.batchId, tasksBucket: deps.taskFiles.bucket, tasksKey: batch.tasksKey, retry };
  const retriedTasks = Math.max(0, batch.totalTasks - batch.completedTasks);
  if (deps.queue) await deps.queue(batch, { input, executionName, demand: retriedTasks, since: claimedAt });
  else await deps.workflow.startRetry(input, executionName);
  return { batchId: batch.batchId, mode: 'execution', retry, retriedTasks, executionName, status: 'pending' };
}

/**
 * Steps 3 and 4, in the retry's Start batch: writes the retry's tasks file
 * and clears the failed results. Idempotent, so a Start batch that is retried
 * (or timed out midway) picks up where it stopped. Returns the file the Map reads.
 */
export async function prepareRetry(
  deps: Pick<RetryFailedDeps, 'store' | 'taskFiles' | 'retentionDays'>,
  record: Pick<BatchRecord, 'batchId' | 'tasksKey' | 'counterShards'>,
  retry: number,
): Promise<{ bucket: string; key: string; tasks: number }> {
  const { batchId } = record;
  const state = await deps.store.getRetryState(batchId);
  const claimedAt = state?.retriedAt ?? 0;
  const succeeded = await deps.store.listSucceededTaskIds(batchId);
  // The tasks file is streamed through, line by line: only the ids of the tasks to run again are kept.
  const failed: string[] = [];
  const file = await deps.taskFiles.writeRetryTasks(batchId, retry, async (emit) => {
    for await (const line of jsonLines(deps.taskFiles.readTasks(record.tasksKey), Number.MAX_SAFE_INTEGER)) {
      if (!line.text?.trim()) continue;
      const { id } = JSON.parse(line.text) as { id: string };
      if (succeeded.has(id)) continue;
      failed.push(id);
      await emit(line.text);
    }
  });
  const expiresAt = Math.floor(claimedAt / 1000 + (deps.retentionDays ?? 7) * 86_400);
  await mapConcurrently(failed, CLEAR_CONCURRENCY, (taskId) =>
    deps.store.clearFailedResult(batchId, taskId, { retry, before: claimedAt, expiresAt, ...(record.counterShards !== undefined ? { counterShards: record.counterShards } : {}) }),
  );
  return { ...file, tasks: failed.length };
}
