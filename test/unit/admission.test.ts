/**
 * Admission (CapacityCoordinator) on in-memory ports: the cost of admitting
 * and finishing does not grow with the number of waiting batches, the queue
 * is served in rank order, and a crash between admission and start is healed.
 */
import { describe, expect, it } from 'vitest';
import { AGING_MS, emptyCapacity, type CapacityState } from '../../lambdas/domain/capacity';
import { CapacityCoordinator, queuedBatchOf } from '../../lambdas/domain/capacity-coordinator';
import type { AdmissionQueue, CapacityStore, QueuedBatch } from '../../lambdas/domain/ports';
import type { BatchStatus, FleetManagerConfig } from '../../lambdas/domain/types';

const NOW = 1_800_000_000_000;

function world(options: { cap: number; statuses?: Record<string, BatchStatus> }) {
  const reads = { capacity: 0, queueHeads: 0, queueEntriesRead: 0, statuses: 0, executions: 0 };
  let stored: { state: CapacityState; version: number } = { state: emptyCapacity(), version: 0 };
  const store: CapacityStore = {
    load: async () => {
      reads.capacity++;
      return structuredClone(stored);
    },
    save: async (state, version) => {
      if (version !== stored.version) return false;
      stored = { state: structuredClone(state), version: version + 1 };
      return true;
    },
  };
  const entries: QueuedBatch[] = [];
  const queue: AdmissionQueue = {
    enqueue: async (entry) => {
      if (!entries.some((e) => e.batchId === entry.batchId)) entries.push(entry);
      entries.sort((a, b) => a.rank - b.rank || (a.batchId < b.batchId ? -1 : 1));
    },
    head: async (limit) => {
      reads.queueHeads++;
      const head = entries.slice(0, limit);
      reads.queueEntriesRead += head.length;
      return head;
    },
    remove: async ({ batchId }) => {
      const i = entries.findIndex((e) => e.batchId === batchId);
      if (i >= 0) entries.splice(i, 1);
    },
  };
  const started: string[] = [];
  let failStarts = 0;
  const config = { maxConcurrentWorkers: options.cap } as FleetManagerConfig;
  const coordinator = new CapacityCoordinator({
    store,
    queue,
    repository: {
      getConfig: async () => config,
      getStatus: async (batchId) => {
        reads.statuses++;
        return options.statuses?.[batchId] ?? ({ batchId, status: 'processing', totalTasks: 100, completedTasks: 0, failedTasks: 0 } as BatchStatus);
      },
    },
    workflow: {
      setBatchConcurrency: async () => true,
      startRetry: async (input, name) => {
        if (failStarts > 0) {
          failStarts--;
          throw new Error('ThrottlingException');
        }
        started.push(name);
        return name;
      },
      executionStatus: async (name) => {
        reads.executions++;
        return started.includes(name) ? 'RUNNING' : undefined;
      },
      redrive: async () => undefined,
    },
    now: () => NOW,
  });
  const batch = (batchId: string, priority: number, createdAt: number, tasks = 100) =>
    queuedBatchOf({ batchId, priority, createdAt }, { input: { batchId, tasksBucket: 'b', tasksKey: `batches/${batchId}.jsonl` }, executionName: batchId, demand: tasks });
  return {
    coordinator,
    reads,
    started,
    entries,
    stored: () => stored.state,
    batch,
    failNextStarts: (n: number) => (failStarts = n),
  };
}

describe('admission', () => {
  it('admits in rank order: higher priority first, FIFO within a priority, and a long wait ages a batch forward', async () => {
    const { coordinator, started, batch } = world({ cap: 1 });
    await coordinator.enqueue(batch('running', 0, NOW - 10)); // takes the one slot
    await coordinator.enqueue(batch('low-first', 0, NOW));
    await coordinator.enqueue(batch('high', 5, NOW + 2));
    await coordinator.enqueue(batch('low-second', 0, NOW + 1));
    // Waited 6 aging steps at priority 0: ahead of a priority-5 batch that has not waited.
    await coordinator.enqueue(batch('aged', 0, NOW - 6 * AGING_MS + 5));
    const order: string[] = [];
    for (const id of ['running', 'aged', 'high', 'low-first', 'low-second']) {
      order.push(started.at(-1)!);
      await coordinator.release(id);
    }
    expect(order).toEqual(['running', 'aged', 'high', 'low-first', 'low-second']);
  });

  it('costs no queue read and no write while the fleet is full, however many batches wait', async () => {
    const { coordinator, reads, batch } = world({ cap: 10 });
    for (let i = 0; i < 1_000; i++) await coordinator.enqueue(batch(`b${i}`, 0, NOW + i));
    // Each submit while full: one capacity read, nothing read from the queue.
    const before = { ...reads };
    await coordinator.enqueue(batch('late', 0, NOW + 5_000));
    expect(reads.capacity - before.capacity).toBe(1);
    expect(reads.queueHeads - before.queueHeads).toBe(0);
    expect(reads.statuses - before.statuses).toBe(0);
  });

  it('finishing a batch reads the running batches and the head of the queue only: O(running), not O(waiting)', async () => {
    const { coordinator, reads, batch, stored } = world({ cap: 10 });
    for (let i = 0; i < 1_000; i++) await coordinator.enqueue(batch(`b${i}`, 0, NOW + i, 2));
    expect(Object.keys(stored().running)).toHaveLength(5); // 2 slots each
    const before = { ...reads };
    await coordinator.release('b0');
    expect(reads.statuses - before.statuses).toBe(4); // the 4 batches still running
    expect(reads.queueEntriesRead - before.queueEntriesRead).toBeLessThanOrEqual(3); // free slots + 1
    expect(Object.keys(stored().running).sort()).toEqual(['b1', 'b2', 'b3', 'b4', 'b5']);
  });

  it('a start that fails leaves the batch queued and holding its share; the next pass starts it, once', async () => {
    const { coordinator, started, entries, batch, failNextStarts, stored } = world({ cap: 4 });
    failNextStarts(1);
    await coordinator.enqueue(batch('a', 0, NOW, 2));
    expect(started).toEqual([]);
    expect(stored().running.a?.slots).toBe(2);
    expect(entries.map((e) => e.batchId)).toEqual(['a']);
    await coordinator.enqueue(batch('b', 0, NOW + 1, 2));
    expect(started).toEqual(['a', 'b']);
    expect(entries).toEqual([]);
  });

  it('reads the allocations before the cap, so a pass never shares out a cap lowered meanwhile (the version check covers the rest)', async () => {
    const order: string[] = [];
    const coordinator = new CapacityCoordinator({
      store: {
        load: async () => {
          order.push('allocations');
          return { state: emptyCapacity(), version: 0 };
        },
        save: async () => true,
      },
      queue: { enqueue: async () => undefined, head: async () => [], remove: async () => undefined },
      repository: {
        getConfig: async () => {
          order.push('cap');
          return { maxConcurrentWorkers: 1 } as FleetManagerConfig;
        },
        getStatus: async () => undefined,
      },
      workflow: { setBatchConcurrency: async () => true, startRetry: async (_input, name) => name, executionStatus: async () => undefined, redrive: async () => undefined },
    });
    await coordinator.admit();
    expect(order).toEqual(['allocations', 'cap']);
  });

  it('the reconcile frees the share of a batch that finished without handing it on, and admits the next', async () => {
    const statuses: Record<string, BatchStatus> = {};
    const { coordinator, started, batch, stored } = world({ cap: 2, statuses });
    await coordinator.enqueue(batch('a', 0, NOW, 2));
    await coordinator.enqueue(batch('b', 0, NOW + 1, 2));
    expect(started).toEqual(['a']);
    statuses.a = { batchId: 'a', status: 'completed', totalTasks: 2, completedTasks: 2, failedTasks: 0 } as BatchStatus;
    await coordinator.reconcile();
    expect(started).toEqual(['a', 'b']);
    expect(Object.keys(stored().running)).toEqual(['b']);
  });
});
