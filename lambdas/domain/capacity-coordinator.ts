/**
 * Applies the capacity rules (capacity.ts) to the stored allocations and to
 * running Map Runs. Every change goes through `update`: load, change,
 * rebalance, save under optimistic locking, then UpdateMapRun the running
 * batches whose slots moved.
 */
import { enqueue, rebalance, release, type CapacityState, type Rebalanced } from './capacity';
import type { BatchRepository, CapacityStore, WorkflowStarter } from './ports';
import { FINISHED_STATES } from './types';

export interface CapacityCoordinatorDeps {
  store: CapacityStore;
  repository: Pick<BatchRepository, 'getStatus' | 'getConfig'>;
  workflow: Pick<WorkflowStarter, 'setBatchConcurrency' | 'isBatchRunning'>;
  now?: () => number;
}

export class CapacityCoordinator {
  private readonly now: () => number;

  constructor(private readonly deps: CapacityCoordinatorDeps) {
    this.now = deps.now ?? Date.now;
  }

  /**
   * Tasks left per running batch, and the batches that hold capacity but no
   * longer run: finished, deleted, or whose execution ended without Finish
   * batch (stopped from the console, a crash, a local fleet restart).
   */
  private async inspect(state: CapacityState, keep?: string): Promise<{ remaining: Record<string, number>; gone: string[] }> {
    const remaining: Record<string, number> = {};
    const gone: string[] = [];
    const ids = [...Object.keys(state.running), ...Object.keys(state.waiting)];
    await Promise.all(
      ids.map(async (batchId) => {
        const status = await this.deps.repository.getStatus(batchId);
        const finished = !status || FINISHED_STATES.has(status.status);
        if (batchId !== keep && (finished || !(await this.deps.workflow.isBatchRunning(batchId)))) {
          gone.push(batchId);
          return;
        }
        if (status && state.running[batchId]) remaining[batchId] = Math.max(0, status.totalTasks - status.completedTasks - status.failedTasks);
      }),
    );
    return { remaining, gone };
  }

  /** @param skip a batch whose Map Run does not exist yet (it reads its slots when it starts) */
  async update(change: (state: CapacityState) => CapacityState, skip?: string): Promise<Rebalanced> {
    for (let attempt = 0; ; attempt++) {
      const { state, version } = await this.deps.store.load();
      let changed = change(state);
      const [{ remaining, gone }, config] = await Promise.all([this.inspect(changed, skip), this.deps.repository.getConfig()]);
      for (const batchId of gone) changed = release(changed, batchId);
      const result = rebalance(changed, config.maxConcurrentWorkers, remaining, this.now());
      if (await this.deps.store.save(result.state, version)) {
        for (const [batchId, slots] of Object.entries(result.changed)) {
          if (batchId === skip) continue;
          // Admitted batches still waiting have no Map Run yet: they read their slots on their next poll.
          await this.deps.workflow.setBatchConcurrency(batchId, slots);
        }
        return result;
      }
      if (attempt >= 20) throw new Error('capacity allocations are contended; try again');
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * (attempt + 1)));
    }
  }

  /** Queues the batch if needed; returns its slots once it is admitted, else 0. */
  async requestStart(batch: { batchId: string; priority: number; createdAt: number; totalTasks: number }): Promise<number> {
    const result = await this.update(
      (state) => enqueue(state, batch.batchId, { priority: batch.priority, createdAt: batch.createdAt, demand: batch.totalTasks }, this.now()),
      batch.batchId,
    );
    return result.state.running[batch.batchId]?.slots ?? 0;
  }

  async release(batchId: string): Promise<void> {
    await this.update((state) => release(state, batchId));
  }

  /** After the cap changed. */
  async rescale(): Promise<Rebalanced> {
    return this.update((state) => state);
  }
}
