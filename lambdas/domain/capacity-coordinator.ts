/**
 * Admission: who runs, and with how many slots, under the fleet-wide cap.
 *
 * - Running batches and their shares live in one item (CapacityStore), under
 *   optimistic locking. It holds running batches only, never waiting ones, so
 *   it stays small and its writers are few.
 * - Waiting batches live in the admission queue (AdmissionQueue), sorted by
 *   rank. A waiting batch has no execution yet: it costs nothing while it
 *   waits, and no execution's history grows while it waits (AWS ends a
 *   Standard execution at 25,000 history events).
 * - Admission is driven by events: a submit, a batch finishing or being
 *   cancelled, the cap changing, and a periodic reconcile as a safety net.
 *   Each reads the capacity item and, only when slots are free, the head of
 *   the queue: O(1) when the fleet is full, O(admitted) otherwise.
 * - Admitting a batch starts its execution, with its share as the Map's
 *   MaxConcurrency. The queue entry is removed only after the start, so a
 *   crash in between leaves it queued; its next admission pass starts it
 *   (starts are idempotent by execution name).
 */
import { queueRankOf, rebalance, release, type CapacityState } from './capacity';
import type { AdmissionQueue, BatchExecutionInput, BatchRecord, BatchRepository, CapacityStore, ExecutionNameOf, QueuedBatch, RetryWorkflow, WorkflowStarter } from './ports';
import { FINISHED_STATES } from './types';

export interface CapacityCoordinatorDeps {
  store: CapacityStore;
  queue: AdmissionQueue;
  repository: Pick<BatchRepository, 'getStatus' | 'getConfig'>;
  workflow: Pick<WorkflowStarter, 'setBatchConcurrency'> & Pick<RetryWorkflow, 'startRetry' | 'executionStatus' | 'redrive'>;
  /** The name of a batch's current execution (retry-failed runs `<batchId>-retry-<n>`). @default the batch id */
  executionNameOf?: ExecutionNameOf;
  /** Most batches running at once. @default MAX_OPEN_MAP_RUNS */
  maxRunningBatches?: number;
  /** Reports what a pass could not do; the next pass, or the reconcile, does it. */
  onError?: (message: string, error: unknown) => void;
  now?: () => number;
}

/** Every pass of an update lost to other writers: a busy fleet, whose own events are admitting batches. */
export class CapacityContendedError extends Error {
  override readonly name = 'CapacityContendedError';
}

/** How often the reconciler may redrive one batch's failed execution before leaving it failed. */
export const MAX_REDRIVES = 3;

export interface AdmissionResult {
  /** Batches admitted and started by this pass. */
  admitted: string[];
  /** Running batches whose share moved (their Map Runs got UpdateMapRun). */
  changed: Record<string, number>;
}

/**
 * A batch's queue entry. It waits from its creation, or from its latest
 * retry-failed (`since`), so its rank can always be derived from its record.
 */
export function queuedBatchOf(
  record: Pick<BatchRecord, 'batchId' | 'priority' | 'createdAt'>,
  run: { input: BatchExecutionInput; executionName: string; demand: number; since?: number },
): QueuedBatch {
  const since = run.since ?? record.createdAt;
  return {
    batchId: record.batchId,
    rank: queueRankOf({ priority: record.priority, since }),
    priority: record.priority,
    createdAt: record.createdAt,
    since,
    demand: Math.max(1, run.demand),
    executionName: run.executionName,
    input: run.input,
  };
}

type Inspection = { remaining: Record<string, number>; gone: string[]; failed: string[] };

export class CapacityCoordinator {
  private readonly now: () => number;

  constructor(private readonly deps: CapacityCoordinatorDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Batches holding a share of the cap now. */
  async runningBatchIds(): Promise<string[]> {
    return Object.keys((await this.deps.store.load()).state.running);
  }

  /** Takes a batch off the queue (it was cancelled while waiting). */
  dequeue(entry: Pick<QueuedBatch, 'batchId' | 'rank'>): Promise<void> {
    return this.deps.queue.remove(entry);
  }

  /** Queues a batch (idempotent), then admits what the cap allows. */
  async enqueue(entry: QueuedBatch): Promise<AdmissionResult> {
    await this.deps.queue.enqueue(entry);
    try {
      return await this.admit();
    } catch (error) {
      // Queued is enough: the next event, or the reconciler, admits it.
      this.deps.onError?.(`batch ${entry.batchId}: queued, but this admission pass did not complete`, error);
      return { admitted: [], changed: {} };
    }
  }

  /**
   * Admits queued batches while slots are free. Cheap when the fleet is full:
   * one read of the capacity item and one of the config, no write.
   */
  admit(): Promise<AdmissionResult> {
    return this.update((state) => state, { inspect: false });
  }

  /** A batch finished or was cancelled: its slots go to the next batches. */
  release(batchId: string): Promise<AdmissionResult> {
    return this.update((state) => release(state, batchId), { inspect: 'progress' });
  }

  /** After the cap changed: re-share it among running batches and admit. */
  rescale(): Promise<AdmissionResult> {
    return this.update((state) => state, { inspect: 'progress' });
  }

  /**
   * The safety net, run on a schedule: frees the shares of batches whose
   * execution ended without Finish batch (stopped from the console, a crash),
   * redrives an unfinished batch's execution that failed outside its tasks
   * (e.g. its storage was unreachable for longer than its retries), finishes
   * admissions a crash interrupted, and admits.
   */
  reconcile(): Promise<AdmissionResult> {
    return this.update((state) => state, { inspect: 'executions' });
  }

  /**
   * @param options.inspect what is read of each running batch: nothing; its
   *   progress (to shrink its share to the tasks it has left); or also its
   *   execution (to find the ones that ended or failed without Finish batch)
   */
  private async update(
    change: (state: CapacityState) => CapacityState,
    options: { inspect: false | 'progress' | 'executions' },
  ): Promise<AdmissionResult> {
    for (let attempt = 0; ; attempt++) {
      // The allocations first, then the cap: a cap changed after this read is
      // applied by its own rescale, which either saves after this pass (and
      // corrects it) or makes this pass's save fail on the version. Read the
      // other way round, a pass could share out a cap that had since been lowered.
      const { state: loaded, version } = await this.deps.store.load();
      const config = await this.deps.repository.getConfig();
      const cap = config.maxConcurrentWorkers;
      // Stored by versions before the admission queue: those batches poll by themselves.
      let state: CapacityState = change({ running: loaded.running, waiting: {} });
      const inspection: Inspection = options.inspect ? await this.inspect(state, options.inspect === 'executions') : { remaining: {}, gone: [], failed: [] };
      for (const batchId of inspection.gone) state = release(state, batchId);
      state = await this.redriveFailed(state, inspection.failed);

      const used = Object.values(state.running).reduce((sum, b) => sum + b.slots, 0);
      const runningCount = Object.keys(state.running).length;
      const maxRunning = this.deps.maxRunningBatches;
      const free = cap - used;
      // One more than can be admitted: whether anyone is left waiting decides if spare slots are lent.
      const head = free > 0 && runningCount < (maxRunning ?? Infinity) ? await this.deps.queue.head(free + 1) : [];
      const queued = new Map(head.map((entry) => [entry.batchId, entry]));
      // An entry whose batch already runs is an admission a crash interrupted: start it again below.
      const resumed = head.filter((entry) => state.running[entry.batchId]);
      for (const entry of head) {
        if (state.running[entry.batchId]) continue;
        state.waiting[entry.batchId] = { priority: entry.priority, createdAt: entry.createdAt, since: entry.since, demand: entry.demand };
      }
      const result = rebalance(state, cap, inspection.remaining, this.now(), maxRunning);
      const unchanged = result.admitted.length === 0 && Object.keys(result.changed).length === 0 && !stateDiffers(loaded, result.state);
      const saved = unchanged || (await this.deps.store.save({ running: result.state.running, waiting: {} }, version));
      if (!saved) {
        if (attempt >= 20) throw new CapacityContendedError('capacity allocations are contended; try again');
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * (attempt + 1)));
        continue;
      }
      const admitted = new Set(result.admitted);
      const changed: Record<string, number> = {};
      for (const [batchId, slots] of Object.entries(result.changed)) {
        if (admitted.has(batchId)) continue;
        if (await this.deps.workflow.setBatchConcurrency(batchId, slots)) changed[batchId] = slots;
      }
      // Earlier admissions first: executions start in queue order.
      for (const entry of resumed) await this.start(entry, result.state.running[entry.batchId]?.slots ?? 1);
      for (const batchId of result.admitted) {
        const entry = queued.get(batchId);
        if (entry) await this.start(entry, result.state.running[batchId]?.slots ?? 1);
      }
      return { admitted: result.admitted, changed };
    }
  }

  /** Starts an admitted batch's execution, then takes it off the queue. */
  private async start(entry: QueuedBatch, slots: number): Promise<void> {
    try {
      await this.deps.workflow.startRetry({ ...entry.input, maxConcurrency: slots }, entry.executionName);
      await this.deps.queue.remove(entry);
    } catch (error) {
      // Still queued and holding its share: the next pass (or the reconcile) starts it.
      this.deps.onError?.(`batch ${entry.batchId}: admitted, but its execution could not be started yet`, error);
    }
  }

  /**
   * Tasks left per running batch; the batches that hold capacity but no
   * longer run (finished, deleted, or whose execution ended without Finish
   * batch); and those whose execution FAILED or TIMED_OUT while unfinished.
   * O(running batches): the queue is never read here.
   */
  private async inspect(state: CapacityState, executions: boolean): Promise<Inspection> {
    const remaining: Record<string, number> = {};
    const gone: string[] = [];
    const failed: string[] = [];
    await Promise.all(
      Object.keys(state.running).map(async (batchId) => {
        const status = await this.deps.repository.getStatus(batchId);
        if (!status || FINISHED_STATES.has(status.status)) {
          gone.push(batchId);
          return;
        }
        remaining[batchId] = Math.max(0, status.totalTasks - status.completedTasks - status.failedTasks);
        if (!executions) return;
        const execution = await this.deps.workflow.executionStatus(await this.executionNameOf(batchId));
        // Not started yet: an admission in progress (or interrupted: its queue entry restarts it).
        if (execution === undefined || execution === 'RUNNING') return;
        if (execution === 'FAILED' || execution === 'TIMED_OUT') failed.push(batchId);
        else gone.push(batchId);
      }),
    );
    return { remaining, gone, failed };
  }

  /** Redrives failed executions of unfinished batches, at most MAX_REDRIVES times each; then frees their share. */
  private async redriveFailed(state: CapacityState, failed: readonly string[]): Promise<CapacityState> {
    let next = state;
    for (const batchId of failed) {
      const held = next.running[batchId];
      if (!held) continue;
      const redrives = held.redrives ?? 0;
      if (redrives >= MAX_REDRIVES) {
        this.deps.onError?.(`batch ${batchId}: its execution failed ${redrives + 1} times outside its tasks; it is left failed`, undefined);
        next = release(next, batchId);
        continue;
      }
      try {
        await this.deps.workflow.redrive(await this.executionNameOf(batchId));
        next = { ...next, running: { ...next.running, [batchId]: { ...held, redrives: redrives + 1 } } };
      } catch (error) {
        this.deps.onError?.(`batch ${batchId}: its failed execution could not be redriven`, error);
      }
    }
    return next;
  }

  private executionNameOf(batchId: string): Promise<string> {
    return this.deps.executionNameOf ? this.deps.executionNameOf(batchId) : Promise.resolve(batchId);
  }
}

function stateDiffers(a: CapacityState, b: CapacityState): boolean {
  return JSON.stringify(a.running) !== JSON.stringify(b.running);
}
