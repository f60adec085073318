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
import { FINISHED_STATES, type BatchStatus, type FleetStatistics, type WorkerListingMode } from './types';

/**
 * The fleet totals are spread over this many items, one picked at random per
 * write, so no single item takes every batch's writes.
 */
export const STATS_SHARDS = 4;

/**
 * Running workers are registered under this many partition keys, by a hash
 * of their slot. Each attempt writes once (its slot's entry), so 16
 * partitions take about 16,000 attempt starts a second before DynamoDB has to
 * split them further.
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
 * Which attempts GET /workers and `activeWorkers` show:
 * - `every-attempt` (the default): every running attempt, from the moment it starts;
 * - `long-attempts`: only attempts that have run FLEET_WORKER_LISTING_DELAY_MS
 *   (2 s by default). Tasks shorter than that then make no registry write:
 *   $0.625 less per million tasks on AWS (`npm run cost`).
 */
export const WORKER_LISTING_MODES = ['every-attempt', 'long-attempts'] as const satisfies readonly WorkerListingMode[];
export const DEFAULT_WORKER_LISTING: WorkerListingMode = 'every-attempt';

/** In `long-attempts` mode, an attempt is registered once it has run this long (the worker reads FLEET_WORKER_LISTING_DELAY_MS). */
export const WORKER_LISTING_DELAY_MS = 2_000;

/** How long an attempt runs before it is registered, under `mode`. */
export function listingDelayMs(mode: WorkerListingMode, longAttemptDelayMs = WORKER_LISTING_DELAY_MS): number {
  return mode === 'long-attempts' ? longAttemptDelayMs : 0;
}

/** A listing mode from an environment variable's value; undefined means the default. Throws naming `variable` otherwise. */
export function parseWorkerListing(value: string | undefined, variable: string): WorkerListingMode {
  if (value === undefined || value === '') return DEFAULT_WORKER_LISTING;
  if ((WORKER_LISTING_MODES as readonly string[]).includes(value)) return value as WorkerListingMode;
  throw new Error(`Fleet is misconfigured: ${variable} must be one of ${WORKER_LISTING_MODES.join(', ')}; got "${value}"`);
}

/**
 * Slots of one execution environment: an attempt takes the lowest free one
 * and gives it back when it ends. On Lambda an environment runs one attempt
 * at a time, so it only ever uses slot 0; the local fleet runs many at once
 * in one process. A slot's registry entry is overwritten by its next
 * attempt, so the registry holds one entry per slot, not one per task.
 */
export class SlotPool {
  private readonly free: number[] = [];
  private next = 0;

  take(): number {
    if (this.free.length === 0) return this.next++;
    const lowest = Math.min(...this.free);
    this.free.splice(this.free.indexOf(lowest), 1);
    return lowest;
  }

  release(slot: number): void {
    if (slot >= 0 && slot < this.next && !this.free.includes(slot)) this.free.push(slot);
  }
}

/** How an attempt ended, for its registry entry. */
export type AttemptEnd = 'succeeded' | 'retry' | 'failed';

export interface WorkerListing {
  /** Call when the attempt ends, however it ends; never throws. */
  end(how: AttemptEnd): Promise<void>;
}

/**
 * Keeps a worker in the registry while its attempt runs: registered after
 * `delayMs` (0: at once, alongside the attempt, adding it no latency).
 * - A success leaves the entry: the task's result, written next, shows the
 *   attempt is over (runningWorkers), and the slot's next attempt overwrites
 *   it. That saves the delete a separate registration would need.
 * - A retry or a final failure deletes it (if it is still this worker's):
 *   a retry has no result to show it is over, and a failed result may be
 *   cleared by retry-failed.
 * The registry only reports, so its failures go to `onError` and never fail
 * the task; an entry left behind expires at `worker.expiresAt`.
 */
export function listWhileRunning(
  activity: Pick<FleetActivity, 'registerWorker' | 'deregisterWorker'>,
  worker: RunningWorker,
  onError: (action: 'register' | 'deregister', error: unknown) => void,
  delayMs = 0,
): WorkerListing {
  let registration: Promise<void> | undefined;
  const register = () => {
    registration = activity.registerWorker(worker).catch((error: unknown) => { onError('register', error); });
  };
  let timer: NodeJS.Timeout | undefined;
  if (delayMs <= 0) register();
  else timer = setTimeout(register, delayMs);
  return {
    async end(how) {
      clearTimeout(timer);
      if (!registration) return;
      // Awaited even on success: a put still in flight could otherwise land after the slot's next attempt's.
      await registration;
      // A put that failed may still have landed: the delete, conditional on the worker id, runs anyway.
      if (how === 'succeeded') return;
      await activity.deregisterWorker(worker.slot, worker.id).catch((error: unknown) => { onError('deregister', error); });
    },
  };
}

/** Stable registry shard of a slot, 0..WORKER_SHARDS-1. */
export function workerShardOf(slot: string): number {
  const digest = createHash('sha1').update(slot).digest();
  return digest.readUInt32BE(0) % WORKER_SHARDS;
}

/** One task's identity, as runningWorkers matches entries and results. */
export const taskKeyOf = (batchId: string, taskId: string) => `${batchId}\u0000${taskId}`;

/**
 * The workers running now, from the registry's entries and the tasks that
 * have a final result (`finished`, by taskKeyOf), oldest first:
 * - an expired entry is gone (its attempt's backstop has passed);
 * - an entry whose task has a final result is over (a success leaves its entry);
 * - of two entries for one task (a crashed attempt's, then a later one's),
 *   only the latest attempt is running.
 */
export function runningWorkers(entries: readonly RunningWorker[], finished: ReadonlySet<string>, nowMs: number): RunningWorker[] {
  const latest = new Map<string, RunningWorker>();
  for (const entry of entries) {
    if (isExpiredAt(entry.expiresAt, nowMs)) continue;
    const key = taskKeyOf(entry.batchId, entry.taskId);
    if (finished.has(key)) continue;
    const seen = latest.get(key);
    const newer = !seen || (entry.attempt ?? 0) > (seen.attempt ?? 0) || ((entry.attempt ?? 0) === (seen.attempt ?? 0) && entry.spawnedAt > seen.spawnedAt);
    if (newer) latest.set(key, entry);
  }
  return [...latest.values()].sort((a, b) => a.spawnedAt - b.spawnedAt || a.batchId.localeCompare(b.batchId) || a.taskId.localeCompare(b.taskId));
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
