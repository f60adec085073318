/**
 * Fleet-wide concurrency: maxConcurrentWorkers is shared by every batch.
 *
 * Each running batch holds `slots`, which is its Map Run's MaxConcurrency. The
 * sum of all slots never exceeds the cap; a batch that cannot get a slot
 * waits `pending`, in the admission queue, with no execution yet. Capacity
 * goes to batches by effective priority: the batch's priority plus one for
 * every AGING_MS it has waited, so no batch waits forever. Ties go to the
 * older batch.
 *
 * Effective priority grows with time at the same rate for every waiting
 * batch, so their order never changes while they wait: it is the order of
 * `queueRank` (the moment a batch would have had to start waiting, at
 * priority 0, to be where it is now). The queue is stored sorted by it, and
 * admission reads only its head.
 *
 * Slots only move where that is safe: a running batch is shrunk to its
 * remaining tasks (it can never run more than that anyway), and capacity a
 * finished batch released is handed on. Scaling down below what is running
 * lowers the slots at once; tasks already running finish first.
 */

export interface RunningBatch {
  slots: number;
  priority: number;
  createdAt: number;
  /** Times the reconciler redrove its execution after it failed outside the tasks (e.g. storage lost). */
  redrives?: number;
}

export interface WaitingBatch {
  priority: number;
  createdAt: number;
  /** When it started waiting (epoch ms). */
  since: number;
  /** Tasks it will run: how many slots it can use. */
  demand: number;
}

export interface CapacityState {
  running: Record<string, RunningBatch>;
  waiting: Record<string, WaitingBatch>;
}

/** Waiting this long raises a batch's effective priority by one. */
export const AGING_MS = 60_000;

export const emptyCapacity = (): CapacityState => ({ running: {}, waiting: {} });

export function effectivePriority(batch: WaitingBatch, now: number): number {
  return batch.priority + Math.floor(Math.max(0, now - batch.since) / AGING_MS);
}

/**
 * A waiting batch's place in the queue: lower goes first. `since - priority ×
 * AGING_MS`, so a higher priority, or a longer wait, puts it earlier.
 */
export const queueRankOf = (batch: Pick<WaitingBatch, 'priority' | 'since'>): number => batch.since - batch.priority * AGING_MS;

/**
 * Open Map Runs per account (Step Functions quota): one per running batch,
 * so at most this many batches run at once, whatever the cap.
 * https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html
 */
export const MAX_OPEN_MAP_RUNS = 1_000;

const byRank =
  <T extends { priority: number; createdAt: number }>(rank: (b: T) => number) =>
  ([idA, a]: [string, T], [idB, b]: [string, T]) =>
    rank(b) - rank(a) || a.createdAt - b.createdAt || (idA < idB ? -1 : idA > idB ? 1 : 0);

export interface Rebalanced {
  state: CapacityState;
  /** Running batches whose slots changed (their Map Runs need UpdateMapRun), newly admitted ones included. */
  changed: Record<string, number>;
  admitted: string[];
}

/**
 * Recomputes every allocation under `cap`.
 * @param remaining tasks not yet finished, per running batch (unknown ones keep their slots)
 * @param maxRunningBatches most batches running at once
 */
export function rebalance(
  previous: CapacityState,
  cap: number,
  remaining: Readonly<Record<string, number>>,
  // The order of waiting batches does not change with time (see queueRankOf).
  _now: number,
  maxRunningBatches = MAX_OPEN_MAP_RUNS,
): Rebalanced {
  const running: Record<string, RunningBatch> = {};
  for (const [id, batch] of Object.entries(previous.running)) running[id] = { ...batch };
  const queued: Record<string, WaitingBatch> = {};
  for (const [id, batch] of Object.entries(previous.waiting)) queued[id] = { ...batch };
  const before = Object.fromEntries(Object.entries(previous.running).map(([id, b]) => [id, b.slots]));

  // 1. A batch never needs more slots than it has tasks left.
  for (const [id, batch] of Object.entries(running)) {
    const left = remaining[id];
    if (left !== undefined) batch.slots = Math.max(1, Math.min(batch.slots, left));
  }
  // 2. Over the cap (it was lowered): take from the lowest priority first, down to one slot each.
  let used = Object.values(running).reduce((sum, b) => sum + b.slots, 0);
  const lowestFirst = Object.entries(running).sort(byRank<RunningBatch>((b) => b.priority)).reverse();
  for (const [, batch] of lowestFirst) {
    if (used <= cap) break;
    const cut = Math.min(batch.slots - 1, used - cap);
    batch.slots -= cut;
    used -= cut;
  }
  // 3. Admit waiting batches, highest effective priority first, while slots are free.
  const admitted: string[] = [];
  const queue = Object.entries(queued).sort(byRank<WaitingBatch>((b) => -queueRankOf(b)));
  let runningCount = Object.keys(running).length;
  for (const [id, batch] of queue) {
    const free = cap - used;
    if (free < 1 || runningCount >= maxRunningBatches) break;
    runningCount++;
    const slots = Math.max(1, Math.min(free, batch.demand));
    running[id] = { slots, priority: batch.priority, createdAt: batch.createdAt };
    used += slots;
    admitted.push(id);
  }
  // Those admitted leave the queue; the rest keep their order.
  const leaving = new Set(admitted);
  const waiting = Object.fromEntries(Object.entries(queued).filter(([id]) => !leaving.has(id)));
  // 4. Nobody waits: lend what is left to running batches that can use it, by priority.
  if (Object.keys(waiting).length === 0) {
    for (const [id, batch] of Object.entries(running).sort(byRank<RunningBatch>((b) => b.priority))) {
      const free = cap - used;
      if (free < 1) break;
      const left = remaining[id];
      if (left === undefined || left <= batch.slots) continue;
      const extra = Math.min(free, left - batch.slots);
      batch.slots += extra;
      used += extra;
    }
  }
  const changed: Record<string, number> = {};
  for (const [id, batch] of Object.entries(running)) if (before[id] !== batch.slots) changed[id] = batch.slots;
  return { state: { running, waiting }, changed, admitted };
}

/** Adds a batch to the queue (no-op if it is already known). */
export function enqueue(state: CapacityState, batchId: string, batch: Omit<WaitingBatch, 'since'>, now: number): CapacityState {
  if (state.running[batchId] || state.waiting[batchId]) return state;
  return { running: state.running, waiting: { ...state.waiting, [batchId]: { ...batch, since: now } } };
}

/** Removes a finished or cancelled batch, freeing its slots. */
export function release(state: CapacityState, batchId: string): CapacityState {
  if (!state.running[batchId] && !state.waiting[batchId]) return state;
  const { [batchId]: _running, ...running } = state.running;
  const { [batchId]: _waiting, ...waiting } = state.waiting;
  return { running, waiting };
}
