import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  MAX_LISTED_WORKERS,
  WORKER_LISTING_DELAY_MS,
  WORKER_REGISTRY_GRACE_SECONDS,
  WORKER_SHARDS,
  combineStats,
  countFinishedBatch,
  isExpiredAt,
  DEFAULT_WORKER_LISTING,
  SlotPool,
  listWhileRunning,
  listingDelayMs,
  mapConcurrently,
  parseWorkerListing,
  runningWorkers,
  taskKeyOf,
  workerExpiresAt,
  workerShardOf,
} from '../../lambdas/domain/fleet-activity';
import { FleetService } from '../../lambdas/domain/fleet-service';
import type { BatchRecord, BatchRepository, FleetActivity, FleetTotals, RunningWorker, TaskStore, WorkflowStarter } from '../../lambdas/domain/ports';
import { FINISHED_STATES, type BatchState, type BatchStatus, type WorkerInfo } from '../../lambdas/domain/types';
import { batchRecord } from './handler-fixtures';

const status = (batchId: string, state: BatchState, completedTasks: number, failedTasks: number): BatchStatus => ({
  batchId,
  status: state,
  totalTasks: 10,
  completedTasks,
  failedTasks,
  progress: 0,
  createdAt: 1,
  startedAt: 2,
  completedAt: null,
});

const ZERO: FleetTotals = { totalBatches: 0, totalTasks: 0, completedTasks: 0, failedTasks: 0 };

describe('workerShardOf', () => {
  it('is stable and within 0..WORKER_SHARDS-1', () => {
    for (let i = 0; i < 200; i++) {
      const shard = workerShardOf(`env${i}-0`);
      expect(shard).toBe(workerShardOf(`env${i}-0`));
      expect(Number.isInteger(shard) && shard >= 0 && shard < WORKER_SHARDS).toBe(true);
    }
  });

  it('spreads the slots of many environments over every shard', () => {
    const shards = new Set(Array.from({ length: 500 }, (_, i) => workerShardOf(`${i.toString(16).padStart(8, '0')}-0`)));

    expect(shards.size).toBe(WORKER_SHARDS);
  });
});

describe('SlotPool', () => {
  it('gives the lowest free slot, so one attempt at a time (Lambda) only ever uses slot 0', () => {
    const pool = new SlotPool();
    const serial = [0, 1, 2].map(() => {
      const slot = pool.take();
      pool.release(slot);
      return slot;
    });

    expect(serial).toEqual([0, 0, 0]);
  });

  it('gives attempts running at once distinct slots, and reuses released ones', () => {
    const pool = new SlotPool();
    const [a, b, c] = [pool.take(), pool.take(), pool.take()];
    pool.release(b);
    pool.release(b);
    const d = pool.take();
    const e = pool.take();

    expect([a, b, c]).toEqual([0, 1, 2]);
    expect(d).toBe(1);
    expect(e).toBe(3);
  });
});

describe('listing modes', () => {
  it('lists every attempt from its start by default, long attempts only after the delay', () => {
    expect(DEFAULT_WORKER_LISTING).toBe('every-attempt');
    expect(listingDelayMs('every-attempt', 100)).toBe(0);
    expect(listingDelayMs('long-attempts')).toBe(WORKER_LISTING_DELAY_MS);
    expect(listingDelayMs('long-attempts', 100)).toBe(100);
  });

  it('reads the deployment default from its variable, and names the variable when it is wrong', () => {
    expect(parseWorkerListing(undefined, 'FLEET_WORKER_LISTING')).toBe('every-attempt');
    expect(parseWorkerListing('long-attempts', 'FLEET_WORKER_LISTING')).toBe('long-attempts');
    expect(() => parseWorkerListing('sometimes', 'FLEET_WORKER_LISTING')).toThrow(/FLEET_WORKER_LISTING must be one of every-attempt, long-attempts/);
  });
});

describe('runningWorkers', () => {
  const now = 1_000_000_000;
  const entry = (slot: string, taskId: string, spawnedAt: number, extra: Partial<RunningWorker> = {}): RunningWorker => ({
    slot,
    id: `${slot}-${taskId}`,
    batchId: 'b',
    taskId,
    spawnedAt,
    expiresAt: now / 1000 + 600,
    attempt: 0,
    ...extra,
  });

  it('keeps the entries whose task has no result, oldest first', () => {
    const running = runningWorkers([entry('s1', 't2', 30), entry('s2', 't1', 10), entry('s3', 't3', 20)], new Set([taskKeyOf('b', 't3')]), now);

    expect(running.map((w) => w.taskId)).toEqual(['t1', 't2']);
  });

  it("drops an entry a success left (its task has a result), an expired entry, and another batch's same task id stays", () => {
    const entries = [entry('s1', 't1', 10), entry('s2', 't2', 20, { expiresAt: now / 1000 }), entry('s3', 't1', 30, { batchId: 'other' })];

    const running = runningWorkers(entries, new Set([taskKeyOf('b', 't1')]), now);

    expect(running.map((w) => `${w.batchId}/${w.taskId}`)).toEqual(['other/t1']);
  });

  it("shows one worker per task: a crashed attempt's entry gives way to the later attempt's", () => {
    const entries = [entry('dead', 't1', 10, { attempt: 0 }), entry('live', 't1', 50, { attempt: 1 }), entry('dup', 't2', 5), entry('dup2', 't2', 6)];

    const running = runningWorkers(entries, new Set(), now);

    expect(running.map((w) => w.slot)).toEqual(['dup2', 'live']);
  });
});

describe('workerExpiresAt', () => {
  it("is the attempt's backstop plus the grace, in epoch seconds, rounded up", () => {
    expect(workerExpiresAt(1_000_000_500, 310)).toBe(1_000_001 + 310 + WORKER_REGISTRY_GRACE_SECONDS);
  });

  it("never exceeds Lambda's 15 minutes plus the grace", () => {
    expect(workerExpiresAt(1_000_000_000, 5_000)).toBe(1_000_000 + 900 + WORKER_REGISTRY_GRACE_SECONDS);
  });

  it('assumes the 15 minutes when the backstop is missing or invalid', () => {
    for (const bad of [undefined, 0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(workerExpiresAt(1_000_000_000, bad)).toBe(1_000_000 + 900 + WORKER_REGISTRY_GRACE_SECONDS);
    }
  });
});

describe('listWhileRunning', () => {
  const worker = { slot: 'env-0', id: 'env-t1-0', batchId: 'b', taskId: 't1', spawnedAt: 0, expiresAt: 1000 };

  function registry(fail: { register?: boolean; deregister?: boolean } = {}) {
    const calls: string[] = [];
    const errors: string[] = [];
    const activity = {
      registerWorker: async (w: typeof worker) => {
        calls.push(`register ${w.slot} ${w.batchId}/${w.taskId} ${w.id}`);
        if (fail.register) throw new Error('throttled');
      },
      deregisterWorker: async (slot: string, workerId: string) => {
        calls.push(`deregister ${slot} ${workerId}`);
        if (fail.deregister) throw new Error('throttled');
      },
    };
    const onError = (action: string, error: unknown) => errors.push(`${action}: ${String(error)}`);
    return { activity, calls, errors, onError };
  }

  afterEach(() => {
    vi.useRealTimers();
  });

  it('by default registers the attempt as it starts, and a success leaves the entry (one write per task)', async () => {
    const { activity, calls, onError } = registry();

    const listing = listWhileRunning(activity, worker, onError);
    const atStart = [...calls];
    await listing.end('succeeded');

    expect(atStart).toEqual(['register env-0 b/t1 env-t1-0']);
    expect(calls).toEqual(['register env-0 b/t1 env-t1-0']);
  });

  it('deregisters, as its own worker, an attempt that ends in a retry or a final failure', async () => {
    for (const how of ['retry', 'failed'] as const) {
      const { activity, calls, onError } = registry();

      await listWhileRunning(activity, worker, onError).end(how);

      expect(calls, how).toEqual(['register env-0 b/t1 env-t1-0', 'deregister env-0 env-t1-0']);
    }
  });

  it(`listing long attempts only: writes nothing for an attempt shorter than the delay (${WORKER_LISTING_DELAY_MS} ms)`, async () => {
    vi.useFakeTimers();
    const { activity, calls, onError } = registry();

    const listing = listWhileRunning(activity, worker, onError, WORKER_LISTING_DELAY_MS);
    await vi.advanceTimersByTimeAsync(WORKER_LISTING_DELAY_MS - 1);
    await listing.end('retry');
    await vi.advanceTimersByTimeAsync(1_000);

    expect(calls).toEqual([]);
  });

  it('listing long attempts only: registers a longer attempt once the delay has passed', async () => {
    vi.useFakeTimers();
    const { activity, calls, onError } = registry();

    const listing = listWhileRunning(activity, worker, onError, WORKER_LISTING_DELAY_MS);
    await vi.advanceTimersByTimeAsync(WORKER_LISTING_DELAY_MS);
    const whileRunning = [...calls];
    await listing.end('succeeded');

    expect(whileRunning).toEqual(['register env-0 b/t1 env-t1-0']);
    expect(calls).toEqual(['register env-0 b/t1 env-t1-0']);
  });

  it('never throws: registry failures go to onError', async () => {
    const { activity, calls, errors, onError } = registry({ register: true, deregister: true });

    const listing = listWhileRunning(activity, worker, onError);
    await expect(listing.end('failed')).resolves.toBeUndefined();

    // The failed put may still have landed; the delete, conditional on the worker id, runs anyway.
    expect(calls).toEqual(['register env-0 b/t1 env-t1-0', 'deregister env-0 env-t1-0']);
    expect(errors).toEqual(['register: Error: throttled', 'deregister: Error: throttled']);
  });
});

describe('isExpiredAt', () => {
  it('is true from the expiry second on, and false for a missing expiry', () => {
    expect(isExpiredAt(100, 99_999)).toBe(false);
    expect(isExpiredAt(100, 100_000)).toBe(true);
    expect(isExpiredAt(100, 200_000)).toBe(true);
    expect(isExpiredAt(undefined, 200_000)).toBe(false);
    expect(isExpiredAt('100', 200_000)).toBe(false);
  });
});

describe('combineStats', () => {
  it("adds the uncounted batches' counts to the totals and keeps the workers count", () => {
    const totals = { totalBatches: 5, totalTasks: 50, completedTasks: 20, failedTasks: 3 };

    const stats = combineStats(totals, [status('a', 'processing', 4, 1), undefined, status('b', 'completed', 10, 0)], 7);

    expect(stats).toEqual({ totalBatches: 5, totalTasks: 50, completedTasks: 34, failedTasks: 4, activeWorkers: 7 });
  });

  it('is the totals alone when every batch is counted', () => {
    expect(combineStats({ ...ZERO, totalBatches: 1 }, [], 0)).toEqual({ ...ZERO, totalBatches: 1, activeWorkers: 0 });
  });
});

describe('mapConcurrently', () => {
  it('keeps the order and never runs more than the limit at once', async () => {
    let running = 0;
    let peak = 0;
    const items = Array.from({ length: 20 }, (_, i) => i);

    const doubled = await mapConcurrently(items, 3, async (i) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setTimeout(resolve, (i * 7) % 5));
      running--;
      return i * 2;
    });

    expect(doubled).toEqual(items.map((i) => i * 2));
    expect(peak).toBe(3);
  });

  it('handles no items', async () => {
    expect(await mapConcurrently([], 4, async () => 1)).toEqual([]);
  });
});

// ------------------------------------------------------------ in-memory ports

interface StoredBatch {
  record: BatchRecord;
  /** The running counters. */
  live: { completedTasks: number; failedTasks: number };
}

const record = (batchId: string, state: BatchState, totalTasks = 10) => batchRecord(batchId, state, totalTasks);

/**
 * The table, in memory, with the writers' protocols: Finish batch marks and
 * adds a batch's counts, then sets its final status. `before` runs a hook
 * before a port method answers, to interleave writers with a read.
 */
class World {
  readonly batches = new Map<string, StoredBatch>();
  totals: FleetTotals = { ...ZERO };
  readonly marks = new Set<string>();
  readonly calls: string[] = [];
  workers: WorkerInfo[] = [];
  before: Partial<Record<string, () => void>> = {};

  private log(call: string): void {
    this.calls.push(call);
    const hook = this.before[call.split(' ')[0] ?? ''];
    if (hook) {
      this.before[call.split(' ')[0] ?? ''] = undefined;
      hook();
    }
  }

  add(batchId: string, state: BatchState, live = { completedTasks: 0, failedTasks: 0 }, totalTasks = 10): void {
    this.batches.set(batchId, { record: record(batchId, state, totalTasks), live: { ...live } });
    this.totals.totalBatches += 1;
    this.totals.totalTasks += totalTasks;
  }

  /** What Finish batch does, in its order. */
  finish(batchId: string, completedTasks: number, failedTasks: number): void {
    const batch = this.batches.get(batchId)!;
    batch.live = { completedTasks, failedTasks };
    if (!this.marks.has(batchId)) {
      this.marks.add(batchId);
      this.totals.completedTasks += completedTasks;
      this.totals.failedTasks += failedTasks;
    }
    batch.record = { ...batch.record, status: failedTasks === 0 ? 'completed' : 'partial', completedTasks, failedTasks };
  }

  readonly repository = {
    getBatch: async (batchId: string) => {
      this.log(`getBatch ${batchId}`);
      const batch = this.batches.get(batchId);
      return batch ? { ...batch.record } : undefined;
    },
    getStatus: async (batchId: string) => {
      this.log(`getStatus ${batchId}`);
      const batch = this.batches.get(batchId);
      if (!batch) return undefined;
      const { record: r, live } = batch;
      const counts = FINISHED_STATES.has(r.status) && r.status !== 'cancelled' ? r : live;
      return status(batchId, r.status, counts.completedTasks, counts.failedTasks);
    },
    listActiveBatchIds: async () => {
      this.log('listActiveBatchIds');
      return [...this.batches.values()].filter((b) => !FINISHED_STATES.has(b.record.status)).map((b) => b.record.batchId);
    },
    createBatch: async (r: BatchRecord) => {
      this.log(`createBatch ${r.batchId}`);
      this.batches.set(r.batchId, { record: r, live: { completedTasks: 0, failedTasks: 0 } });
    },
    cancel: async (batchId: string, fields: { completedTasks: number; failedTasks: number }) => {
      this.log(`cancel ${batchId}`);
      const batch = this.batches.get(batchId);
      if (!batch || FINISHED_STATES.has(batch.record.status)) return false;
      batch.record = { ...batch.record, status: 'cancelled', ...fields };
      return true;
    },
  } as unknown as BatchRepository;

  readonly activity: FleetActivity = {
    addSubmittedBatch: async (totalTasks) => {
      this.log(`addSubmittedBatch ${totalTasks}`);
      this.totals.totalBatches += 1;
      this.totals.totalTasks += totalTasks;
    },
    addFinishedBatch: async (batchId, counts, expiresAt) => {
      this.log(`addFinishedBatch ${batchId} ${counts.completedTasks}/${counts.failedTasks} ${expiresAt}`);
      if (this.marks.has(batchId)) return false;
      this.marks.add(batchId);
      this.totals.completedTasks += counts.completedTasks;
      this.totals.failedTasks += counts.failedTasks;
      return true;
    },
    countedBatchIds: async (batchIds) => {
      this.log('countedBatchIds');
      return new Set(batchIds.filter((id) => this.marks.has(id)));
    },
    readTotals: async () => {
      this.log('readTotals');
      return { ...this.totals };
    },
    registerWorker: async () => undefined,
    deregisterWorker: async () => undefined,
    noteNextAttempt: async () => undefined,
    takeNextAttempt: async () => undefined,
    listWorkers: async (limit) => {
      this.log(`listWorkers ${limit}`);
      return this.workers.slice(0, limit);
    },
    countWorkers: async () => {
      this.log('countWorkers');
      return this.workers.length;
    },
  };

  service(): FleetService {
    const taskStore: TaskStore = { putTasks: async (batchId) => ({ bucket: 'b', key: `batches/${batchId}/tasks.jsonl` }) };
    const workflow = {
      startBatch: async ({ batchId }: { batchId: string }) => {
        this.log(`startBatch ${batchId}`);
        return batchId;
      },
      stopBatch: async (batchId: string) => {
        this.log(`stopBatch ${batchId}`);
      },
    } as unknown as WorkflowStarter;
    return new FleetService({ repository: this.repository, taskStore, workflow, activity: this.activity, now: () => 1_000_000, newBatchId: () => 'new' });
  }
}

describe('FleetService: stats hooks', () => {
  it('adds a submitted batch and its tasks to the totals after recording it and before starting it', async () => {
    const world = new World();

    await world.service().submitBatch({ tasks: [1, 2, 3].map((i) => ({ id: `t${i}`, type: 'echo', data: i })) });

    expect(world.calls).toEqual(['createBatch new', 'addSubmittedBatch 3', 'startBatch new']);
    expect(world.totals).toEqual({ totalBatches: 1, totalTasks: 3, completedTasks: 0, failedTasks: 0 });
  });

  it("adds a cancelled batch's counts as of the cancel, once", async () => {
    // Arrange
    const world = new World();
    world.add('c', 'processing', { completedTasks: 4, failedTasks: 1 });
    const service = world.service();

    // Act
    const first = await service.cancelBatch('c');
    const second = await service.cancelBatch('c');

    // Assert
    expect([first, second]).toEqual([true, false]);
    expect(world.calls.filter((c) => c.startsWith('addFinishedBatch'))).toEqual([`addFinishedBatch c 4/1 ${1000 + 7 * 86_400}`]);
    expect(world.totals).toMatchObject({ completedTasks: 4, failedTasks: 1 });
  });

  it('adds nothing when the cancel loses to the finish', async () => {
    const world = new World();
    world.add('c', 'processing', { completedTasks: 9, failedTasks: 0 });
    // Finish batch completes the batch while cancelBatch is stopping it.
    world.before.stopBatch = () => { world.finish('c', 10, 0); };

    const cancelled = await world.service().cancelBatch('c');

    expect(cancelled).toBe(false);
    expect(world.calls.some((c) => c.startsWith('addFinishedBatch'))).toBe(false);
    expect(world.totals).toMatchObject({ completedTasks: 10, failedTasks: 0 });
  });
});

describe('countFinishedBatch', () => {
  it('adds nothing for an unknown or unfinished batch', async () => {
    const world = new World();
    world.add('running', 'processing');

    expect(await countFinishedBatch(world.repository, world.activity, 'running')).toBe(false);
    expect(await countFinishedBatch(world.repository, world.activity, 'unknown')).toBe(false);
    expect(world.calls.some((c) => c.startsWith('addFinishedBatch'))).toBe(false);
  });

  it("adds a finished batch's stored counts and expiry, at most once", async () => {
    const world = new World();
    world.add('done', 'processing');
    const stored = world.batches.get('done')!;
    stored.record = { ...stored.record, status: 'partial', completedTasks: 6, failedTasks: 4, expiresAt: 42 };

    const results = [
      await countFinishedBatch(world.repository, world.activity, 'done'),
      await countFinishedBatch(world.repository, world.activity, 'done'),
    ];

    expect(results).toEqual([true, false]);
    expect(world.calls.filter((c) => c.startsWith('addFinishedBatch'))).toEqual(['addFinishedBatch done 6/4 42', 'addFinishedBatch done 6/4 42']);
    expect(world.totals).toMatchObject({ completedTasks: 6, failedTasks: 4 });
  });
});

describe('FleetService.getStats', () => {
  it('adds the live counts of running batches to the totals, and counts the workers', async () => {
    // Arrange
    const world = new World();
    world.add('done', 'processing');
    world.finish('done', 8, 2);
    world.add('running', 'processing', { completedTasks: 3, failedTasks: 1 });
    world.add('waiting', 'pending');
    world.workers = [{ id: 'w', batchId: 'running', taskId: 't', status: 'active', spawnedAt: 1 }];

    // Act
    const stats = await world.service().getStats();

    // Assert
    expect(stats).toEqual({ totalBatches: 3, totalTasks: 30, completedTasks: 11, failedTasks: 3, activeWorkers: 1 });
  });

  it('lists the unfinished batches, then reads the totals, then their marks, then the statuses of the unmarked ones', async () => {
    const world = new World();
    world.add('running', 'processing');
    world.add('marked', 'processing');
    world.marks.add('marked');

    await world.service().getStats();

    const reads = world.calls.filter((c) => c !== 'countWorkers');
    expect(reads).toEqual(['listActiveBatchIds', 'readTotals', 'countedBatchIds', 'getStatus running']);
  });

  // A batch of 10 tasks, 6 done when the read starts, finishes (10 done) at
  // each point of a concurrent GET /stats.
  const points = ['listActiveBatchIds', 'readTotals', 'countedBatchIds', 'getStatus', 'end'] as const;
  for (const point of points) {
    it(`never counts a task twice when the batch finishes before ${point}`, async () => {
      // Arrange
      const world = new World();
      world.add('b', 'processing', { completedTasks: 6, failedTasks: 0 });
      if (point !== 'end') world.before[point] = () => { world.finish('b', 10, 0); };

      // Act
      const during = await world.service().getStats();
      if (point === 'end') world.finish('b', 10, 0);
      const after = await world.service().getStats();

      // Assert
      expect(during.completedTasks).toBeLessThanOrEqual(10);
      // Exact unless the batch was marked in the instant between the totals and the marks.
      if (point !== 'countedBatchIds') expect(during.completedTasks).toBe(point === 'end' ? 6 : 10);
      expect(after).toMatchObject({ totalTasks: 10, completedTasks: 10, failedTasks: 0 });
    });
  }

  it('throws when built without activity', async () => {
    const service = new FleetService({ repository: {} as BatchRepository, taskStore: {} as TaskStore, workflow: {} as WorkflowStarter });

    await expect(service.getStats()).rejects.toThrow(/activity/);
    await expect(service.getActiveWorkers()).rejects.toThrow(/activity/);
  });
});

describe('FleetService.getActiveWorkers', () => {
  it(`answers {workers}, asking for at most ${MAX_LISTED_WORKERS}`, async () => {
    const world = new World();
    world.workers = [{ id: 'w1', batchId: 'b', taskId: 't1', status: 'active', spawnedAt: 5 }];

    const answer = await world.service().getActiveWorkers();

    expect(answer).toEqual({ workers: world.workers });
    expect(world.calls).toEqual([`listWorkers ${MAX_LISTED_WORKERS}`]);
  });
});
