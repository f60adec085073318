/**
 * Fleet-wide statistics and the registry of running workers: the pure rules.
 * The FleetActivity port (ports.ts) stores them; the adapter is
 * `lambdas/adapters/fleet-activity.ts`.
 *
 * Stats are written once per batch, never once per task:
 * - at submit, the batch and its tasks are added to the fleet totals;
 * - when the batch finishes (just before its final status is set) or is
 *   cancelled, its final counts are added, at most once: a per-batch
 *   "counted" mark is claimed first;
 * - at read time, the counts of batches not yet counted are added.
 */
import { createHash } from 'node:crypto';
import type { BatchRepository, FleetActivity, FleetTotals, RunningWorker } from './ports';
import { FINISHED_STATES, type BatchStatus, type FleetStatistics } from './types';

/**
 * The fleet totals are spread over this many items, one picked at random per
 * write, so no single item takes every batch's writes.
 */
export const STATS_SHARDS = 4;

/**
 * Running workers are registered under this many partition keys. Each
 * attempt writes twice (register, deregister), so 16 partitions take about
 * 8,000 attempt starts a second before DynamoDB has to split them further.
 */
export const WORKER_SHARDS = 16;

/**
 * Seconds a registry item outlives its attempt's own backstop. After that the
 * worker cannot be running (Step Functions has given up on the attempt, and
 * Lambda's 15 minutes are over), so reads ignore the item and TTL removes it.
 */
export const WORKER_REGISTRY_GRACE_SECONDS = 60;

/** Lambda's longest run: no attempt outlives it. */
const LAMBDA_MAX_SECONDS = 900;

/** Most workers GET /workers returns, oldest first: keeps the answer far below Lambda's 6 MB payload limit. */
export const MAX_LISTED_WORKERS = 10_000;

/**
 * An attempt is registered once it has run this long (the worker reads
 * FLEET_WORKER_LISTING_DELAY_MS, defaulting to this). GET /workers is for
 * spotting stuck and long tasks; registering every short attempt would cost
 * two more writes per task: $1.25 more per million tasks on AWS (over the
 * $5 orchestration budget for 1 s tasks, see `npm run cost`), and 1,250
 * writes/s on a registry partition at 10,000 tasks/s.
 */
export const WORKER_LISTING_DELAY_MS = 2_000;

export interface WorkerListing {
  /** Call when the attempt ends, however it ends; never throws. */
  end(): Promise<void>;
}

/**
 * Keeps a worker in the registry while its attempt runs: registered once the
 * attempt has run `delayMs`, deregistered (if it still holds the entry) at
 * `end()`. The registry only reports, so its failures go to `onError` and
 * never fail the task; an entry left behind expires at `worker.expiresAt`.
 */
export function listWhileRunning(
  activity: Pick<FleetActivity, 'registerWorker'> & { deregisterWorker(batchId: string, taskId: string, workerId?: string): Promise<unknown> },
  worker: RunningWorker,
  onError: (action: 'register' | 'deregister', error: unknown) => void,
  delayMs = WORKER_LISTING_DELAY_MS,
): WorkerListing {
  let registration: Promise<void> | undefined;
  const timer = setTimeout(() => {
    registration = activity.registerWorker(worker).catch((error: unknown) => onError('register', error));
  }, delayMs);
  return {
    async end() {
      clearTimeout(timer);
      if (!registration) return;
      await registration;
      await activity.deregisterWorker(worker.batchId, worker.taskId, worker.id).catch((error: unknown) => onError('deregister', error));
    },
  };
}

/** Stable registry shard of one task of one batch, 0..WORKER_SHARDS-1. */
export function workerShardOf(batchId: string, taskId: string): number {
  const digest = createHash('sha1').update(batchId).update('\u0000').update(taskId).digest();
  return digest.readUInt32BE(0) % WORKER_SHARDS;
}

/**
 * When a running worker's registry item expires (epoch seconds): its
 * attempt's backstop timeout, capped at Lambda's 15 minutes, plus a grace.
 * A worker that crashed, and so never deregistered, drops out after that.
 */
export function workerExpiresAt(spawnedAt: number, attemptTimeoutSeconds: number | undefined): number {
  const valid = typeof attemptTimeoutSeconds === 'number' && Number.isFinite(attemptTimeoutSeconds) && attemptTimeoutSeconds > 0;
  const lifetime = Math.min(valid ? attemptTimeoutSeconds : LAMBDA_MAX_SECONDS, LAMBDA_MAX_SECONDS);
  return Math.ceil(spawnedAt / 1000 + lifetime + WORKER_REGISTRY_GRACE_SECONDS);
}

/** Whether an item with this `expiresAt` (epoch seconds) is gone at `nowMs`. */
export function isExpiredAt(expiresAt: unknown, nowMs: number): boolean {
  return typeof expiresAt === 'number' && expiresAt <= Math.floor(nowMs / 1000);
}

/**
 * The fleet's statistics: the stored totals plus the counts of the batches
 * whose counts are not in them yet.
 *
 * How the reads are ordered makes this exact (FleetService.getStats):
 * 1. the unfinished batches are listed;
 * 2. the totals are read;
 * 3. each listed batch's "counted" mark is read, and a marked batch is left
 *    out (`uncounted` excludes it): its counts are in the totals, or are
 *    being added that instant;
 * 4. each unmarked batch's status is read. Unmarked after step 2, so its
 *    counts were not in the totals read there, and its status (live counts,
 *    or final ones if it has just finished) is added.
 * Finish batch marks and adds before it sets the final status, so a batch
 * that has left the list of unfinished batches is in the totals: once a
 * batch's status shows it finished, every later read counts it. A task is
 * never counted twice. The one gap: a read made while a batch is being
 * marked (between steps 2 and 3) leaves that batch out of that read.
 */
export function combineStats(totals: FleetTotals, uncounted: readonly (BatchStatus | undefined)[], activeWorkers: number): FleetStatistics {
  let completedTasks = totals.completedTasks;
  let failedTasks = totals.failedTasks;
  for (const status of uncounted) {
    if (!status) continue;
    completedTasks += status.completedTasks;
    failedTasks += status.failedTasks;
  }
  return { totalBatches: totals.totalBatches, totalTasks: totals.totalTasks, completedTasks, failedTasks, activeWorkers };
}

/**
 * Adds a finished (or cancelled) batch's final counts to the fleet totals,
 * from its stored record: what cancelBatch calls once the batch is marked
 * cancelled. Idempotent: only the first call for a batch adds anything,
 * whichever path makes it. Returns whether this call added the counts.
 */
export async function countFinishedBatch(repository: Pick<BatchRepository, 'getBatch'>, activity: FleetActivity, batchId: string): Promise<boolean> {
  const record = await repository.getBatch(batchId);
  if (!record || !FINISHED_STATES.has(record.status)) return false;
  return activity.addFinishedBatch(batchId, { completedTasks: record.completedTasks, failedTasks: record.failedTasks }, record.expiresAt);
}

/** Runs `fn` over `items`, at most `concurrency` at a time, keeping their order. */
export async function mapConcurrently<T, R>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i] as T);
  });
  await Promise.all(lanes);
  return results;
}
