/**
 * getStats (GET /stats) and getActiveWorkers (GET /workers), end to end
 * through HTTP against the local fleet: the real API, worker and
 * batch-lifecycle handlers on dynalite.
 *
 * One fleet for the whole file; the tests run in order and each restores the
 * default config.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { gateOf } from './workers/gates';
import { DynamoBatchRepository } from '../../lambdas/adapters/batch-repository';
import { dynamo } from '../../lambdas/adapters/clients';
import { DynamoFleetActivity } from '../../lambdas/adapters/fleet-activity';
import { DEFAULT_CONFIG } from '../../lambdas/domain/config';
import { countFinishedBatch } from '../../lambdas/domain/fleet-activity';
import type { BatchStatus, FleetManagerConfig, FleetStatistics, WorkerInfo } from '../../lambdas/domain/types';
import { api, waitForBatch, waitUntil } from './helpers';
import { holdWorkers } from './hold-workers';

let fleet: LocalFleet | undefined;
let url = '';

beforeAll(async () => {
  // Listing long attempts only (opted in below): after 100 ms instead of the default 2 s, so these tests' tasks can stay short.
  process.env.FLEET_WORKER_LISTING_DELAY_MS = '100';
  // The `gate` type (its own worker function) runs until the test opens its gate: tasks seen while they run.
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1, fleetProps: { workers: { gate: { entry: GATE_WORKER } } } });
  url = fleet.url;
});
afterAll(async () => {
  await fleet?.close();
});
afterEach(async () => {
  await setConfig(DEFAULT_CONFIG);
});

interface SubmittedTask {
  id: string;
  type: string;
  data?: unknown;
}

async function setConfig(patch: Partial<FleetManagerConfig>): Promise<void> {
  const response = await api(url, 'PATCH', '/config', patch);
  expect(response.status, response.text).toBe(200);
}

async function submit(tasks: SubmittedTask[]): Promise<string> {
  const response = await api<BatchStatus>(url, 'POST', '/batches', { tasks });
  expect(response.status, response.text).toBe(202);
  return response.body.batchId;
}

async function stats(): Promise<FleetStatistics> {
  const response = await api<FleetStatistics>(url, 'GET', '/stats');
  expect(response.status, response.text).toBe(200);
  return response.body;
}

async function workers(): Promise<WorkerInfo[]> {
  const response = await api<{ workers: WorkerInfo[] }>(url, 'GET', '/workers');
  expect(response.status, response.text).toBe(200);
  expect(Object.keys(response.body)).toEqual(['workers']);
  return response.body.workers;
}

async function status(batchId: string): Promise<BatchStatus> {
  const response = await api<BatchStatus>(url, 'GET', `/batches/${batchId}`);
  expect(response.status, response.text).toBe(200);
  return response.body;
}

const GATE_WORKER = 'test/local/workers/gate-worker.ts';
const gateTasks = (prefix: string, n: number): SubmittedTask[] => Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, type: 'gate' }));

const sleepTasks = (prefix: string, n: number, ms: number): SubmittedTask[] =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, type: 'sleep', data: { ms } }));

describe('getStats: GET /stats', () => {
  it('starts at zero, and counts a batch and its tasks as soon as it is submitted', async () => {
    // Arrange: a fresh fleet
    expect(await stats()).toEqual({ totalBatches: 0, totalTasks: 0, completedTasks: 0, failedTasks: 0, activeWorkers: 0 });

    // Act
    // The workers are held until the stats are read (and all 5 are known to be held): the tasks are
    // still running when that request is answered, by construction, on a machine of any load.
    if (!fleet) throw new Error('the local fleet did not start');
    const workersHeld = holdWorkers(fleet);
    let whileRunning: FleetStatistics;
    let final: BatchStatus;
    try {
      const batchId = await submit(sleepTasks('s', 5, 20));
      whileRunning = await stats();
      await waitUntil(() => (workersHeld.held() === 5 ? true : undefined));
      workersHeld.release();
      final = await waitForBatch(url, batchId);
    } finally {
      workersHeld.release();
    }

    // Assert
    expect(whileRunning.totalBatches).toBe(1);
    expect(whileRunning.totalTasks).toBe(5);
    expect(whileRunning.completedTasks).toBeLessThan(5);
    expect(final.status).toBe('completed');
    expect(await stats()).toEqual({ totalBatches: 1, totalTasks: 5, completedTasks: 5, failedTasks: 0, activeWorkers: 0 });
  });

  it('is exact after completed, partial, failed and cancelled batches, and counts running batches live', async () => {
    // Arrange
    const base = await stats();
    const completed = Array.from({ length: 30 }, (_, i) => ({ id: `e${i}`, type: 'echo', data: i }));
    const partial = [
      ...Array.from({ length: 10 }, (_, i) => ({ id: `ok${i}`, type: 'echo', data: i })),
      ...Array.from({ length: 5 }, (_, i) => ({ id: `bad${i}`, type: 'fail', data: { message: 'no' } })),
      // Each fails once, then succeeds on its retry.
      ...Array.from({ length: 5 }, (_, i) => ({ id: `retry${i}`, type: 'sleep', data: { ms: 5, failTimes: 1 } })),
    ];
    const failed = Array.from({ length: 4 }, (_, i) => ({ id: `f${i}`, type: 'fail', data: { message: 'always' } }));

    // Act: three batches that run to their end
    const ids = await Promise.all([submit(completed), submit(partial), submit(failed)]);
    const finals = await Promise.all(ids.map((id) => waitForBatch(url, id)));
    const afterThree = await stats();

    // Assert: exactly the final counts of each batch
    expect(finals.map((s) => s.status)).toEqual(['completed', 'partial', 'failed']);
    expect(finals.map((s) => [s.completedTasks, s.failedTasks])).toEqual([
      [30, 0],
      [15, 5],
      [0, 4],
    ]);
    expect(afterThree).toEqual({
      totalBatches: base.totalBatches + 3,
      totalTasks: base.totalTasks + 30 + 20 + 4,
      completedTasks: base.completedTasks + 45,
      failedTasks: base.failedTasks + 9,
      activeWorkers: 0,
    });

    // Act: a slow batch, sampled while it runs, then cancelled
    await setConfig({ maxConcurrentWorkers: 4 });
    const cancelledId = await submit(sleepTasks('c', 200, 50));
    await waitUntil(async () => ((await status(cancelledId)).completedTasks >= 8 ? true : undefined));
    // The batch's counts stand still while they are read: no attempt starts (the worker invokes are
    // held) and the ones running finish, each returning only once its count is stored. Otherwise a
    // count stored between two reads could make the stats newer than the status read after them,
    // which may be up to STATUS_COUNTS_MAX_AGE_MS old (GET /batches/{id}), on a machine of any speed.
    if (!fleet) throw new Error('the local fleet did not start');
    const countsStill = holdWorkers(fleet);
    let before: BatchStatus;
    let live: FleetStatistics;
    let after: BatchStatus;
    try {
      const lambda = fleet.lambda;
      await waitUntil(() => (lambda.concurrentInvocations === 0 ? true : undefined));
      // And until the status read shows them: it may answer with a sum taken just before the last counts were stored.
      await waitUntil(async () => ((await status(cancelledId)).completedTasks === (await stats()).completedTasks - afterThree.completedTasks ? true : undefined));
      before = await status(cancelledId);
      live = await stats();
      after = await status(cancelledId);
    } finally {
      countsStill.release();
    }
    const atCancel = await status(cancelledId);
    const cancel = await api<{ cancelled: boolean }>(url, 'POST', `/batches/${cancelledId}/cancel`);
    expect(cancel.body).toEqual({ cancelled: true });
    // Tasks running at the cancel finish and are recorded; wait until none is left.
    await waitUntil(async () => ((await workers()).length === 0 ? true : undefined));
    const cancelled = await status(cancelledId);
    const end = await stats();

    // Assert: while it ran, its live counts were in the stats, each task once
    expect(after.status).toBe('processing');
    expect(live.totalBatches).toBe(afterThree.totalBatches + 1);
    expect(live.totalTasks).toBe(afterThree.totalTasks + 200);
    expect(live.completedTasks - afterThree.completedTasks).toBeGreaterThanOrEqual(before.completedTasks);
    expect(live.completedTasks - afterThree.completedTasks).toBeLessThanOrEqual(after.completedTasks);
    expect(live.failedTasks).toBe(afterThree.failedTasks);
    // Every running attempt is listed, and at most 4 run at once.
    expect(live.activeWorkers).toBeLessThanOrEqual(4);

    // Assert: a cancelled batch adds its counts as of the cancel; tasks that
    // were running then still finish into its status, not into the stats.
    expect(cancelled.status).toBe('cancelled');
    const addedCompleted = end.completedTasks - afterThree.completedTasks;
    const addedFailed = end.failedTasks - afterThree.failedTasks;
    expect(addedCompleted).toBeGreaterThanOrEqual(atCancel.completedTasks);
    expect(addedCompleted).toBeLessThanOrEqual(cancelled.completedTasks);
    expect(addedFailed).toBeGreaterThanOrEqual(atCancel.failedTasks);
    expect(addedFailed).toBeLessThanOrEqual(cancelled.failedTasks);
    expect(cancelled.completedTasks + cancelled.failedTasks).toBeLessThan(200);
    expect(end).toMatchObject({ totalBatches: afterThree.totalBatches + 1, totalTasks: afterThree.totalTasks + 200, activeWorkers: 0 });
    // Finished batches change the stats no more.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await stats()).toEqual(end);
    expect(await workers()).toEqual([]);
  });

  it('adds a finished batch once, however often its finish is counted again (a retried Finish batch)', async () => {
    // Arrange
    const batchId = await submit([{ id: 'only', type: 'echo', data: 1 }]);
    await waitForBatch(url, batchId);
    const before = await stats();
    const table = process.env.TABLE_NAME ?? '';
    const repository = new DynamoBatchRepository(dynamo(), table);
    const activity = new DynamoFleetActivity(dynamo(), table);

    // Act
    const again = await Promise.all([1, 2, 3].map(() => countFinishedBatch(repository, activity, batchId)));

    // Assert
    expect(again).toEqual([false, false, false]);
    expect(await stats()).toEqual(before);
  });
});

describe('getActiveWorkers: GET /workers', () => {
  it('lists the workers running a batch, at most maxConcurrentWorkers, and none once it is done', async () => {
    // Arrange
    await setConfig({ maxConcurrentWorkers: 3 });
    // Three rounds of three tasks, each running until the test opens its gate: every one is seen while it runs.
    const tasks = gateTasks('w', 9);
    const taskIds = new Set(tasks.map((t) => t.id));
    const submittedAt = Date.now();
    const batchId = await submit(tasks);

    // Act: sample while it runs; once three run, let them finish, and sample the next ones
    const samples: { at: number; workers: WorkerInfo[] }[] = [];
    const opened = new Set<string>();
    for (;;) {
      const listed = await workers();
      samples.push({ at: Date.now(), workers: listed });
      if (['completed', 'partial', 'failed'].includes((await status(batchId)).status)) break;
      const running = listed.filter((w) => !opened.has(w.taskId));
      if (running.length === 3 || (running.length > 0 && opened.size + running.length === tasks.length)) {
        for (const worker of running) {
          opened.add(worker.taskId);
          gateOf(worker.taskId).open();
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 15));
    }
    const afterwards = await workers();

    // Assert
    const seen = new Set<string>();
    for (const { at, workers: listed } of samples) {
      expect(listed.length).toBeLessThanOrEqual(3);
      for (const worker of listed) {
        expect(worker.batchId).toBe(batchId);
        expect(taskIds.has(worker.taskId), worker.taskId).toBe(true);
        expect(worker.status).toBe('active');
        expect(worker).not.toHaveProperty('completedAt');
        expect(worker.id).toContain(worker.taskId);
        expect(worker.spawnedAt).toBeGreaterThanOrEqual(submittedAt);
        expect(worker.spawnedAt).toBeLessThanOrEqual(at);
        seen.add(worker.taskId);
      }
      const spawns = listed.map((w) => w.spawnedAt);
      expect(spawns).toEqual([...spawns].sort((a, b) => a - b));
    }
    expect(Math.max(...samples.map((s) => s.workers.length))).toBe(3);
    expect(seen).toEqual(taskIds);
    expect(afterwards).toEqual([]);
  });

  it('shows a long task with its growing age, agrees with activeWorkers in the stats, and drops it when it ends', async () => {
    // Arrange
    // Long by construction: each runs until the test opens its gate.
    const batchId = await submit(gateTasks('long', 4));
    const first = await waitUntil(async () => {
      const listed = await workers();
      return listed.length === 4 ? listed : undefined;
    });

    // Act
    const fleetStats = await stats();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const later = await workers();
    for (const worker of later) gateOf(worker.taskId).open();
    await waitForBatch(url, batchId);

    // Assert
    expect(fleetStats.activeWorkers).toBe(4);
    expect(later.map((w) => [w.id, w.spawnedAt])).toEqual(first.map((w) => [w.id, w.spawnedAt]));
    expect(Date.now() - (later[0]?.spawnedAt ?? 0)).toBeGreaterThanOrEqual(300);
    expect(new Set(later.map((w) => w.taskId))).toEqual(new Set(['long0', 'long1', 'long2', 'long3']));
    expect(await workers()).toEqual([]);
    expect((await stats()).activeWorkers).toBe(0);
  });

  it('ignores a registry entry whose worker can no longer be running, or whose task has its result, and removes an entry only for its own worker', async () => {
    // Arrange: entries written as the worker Lambda writes them
    const table = process.env.TABLE_NAME ?? '';
    const activity = new DynamoFleetActivity(dynamo(), table);
    const repository = new DynamoBatchRepository(dynamo(), table);
    const now = Date.now();
    const inAnHour = Math.floor(now / 1000) + 3600;
    const crashed = { slot: 'env-gone-0', id: 'env-gone-t', batchId: 'ghost-batch', taskId: 'gone', spawnedAt: now - 20 * 60_000, expiresAt: Math.floor(now / 1000) - 1 };
    const running = { slot: 'env-stuck-0', id: 'env-stuck-t', batchId: 'ghost-batch', taskId: 'stuck', spawnedAt: now - 90_000, expiresAt: Math.floor(now / 1000) + 600 };
    // A success leaves its entry; the result recorded after it shows the attempt is over.
    const succeeded = { slot: 'env-done-0', id: 'env-done-t', batchId: 'ghost-batch', taskId: 'done', spawnedAt: now - 60_000, expiresAt: Math.floor(now / 1000) + 600 };

    // Act
    await activity.registerWorker(crashed);
    await activity.registerWorker(running);
    await activity.registerWorker(succeeded);
    const beforeResult = await workers();
    await repository.recordResult('ghost-batch', { taskId: 'done', success: true, result: 1, duration: 1, timestamp: now, attempts: 1, workerId: succeeded.id }, inAnHour);
    const listed = await workers();
    const counted = (await stats()).activeWorkers;
    await activity.deregisterWorker(running.slot, 'env-stuck-other');
    const afterOtherWorker = await workers();
    await activity.deregisterWorker(running.slot, running.id);

    // Assert
    expect(beforeResult.map((w) => w.taskId)).toEqual(['stuck', 'done']);
    expect(listed).toEqual([{ id: running.id, batchId: 'ghost-batch', taskId: 'stuck', status: 'active', spawnedAt: running.spawnedAt }]);
    expect(counted).toBe(1);
    expect(afterOtherWorker).toHaveLength(1);
    expect(await workers()).toEqual([]);
  });

  it('lists a short task (50 ms) from the moment it starts, in GET /workers and in activeWorkers, by default', async () => {
    // Arrange: 50 ms tasks, shorter than any delay: the seed's registry never listed them.
    expect((await api<FleetManagerConfig>(url, 'GET', '/config')).body.workerListing).toBe('every-attempt');
    await setConfig({ maxConcurrentWorkers: 2 });
    const tasks = sleepTasks('short', 150, 50);
    const taskIds = new Set(tasks.map((t) => t.id));
    const batchId = await submit(tasks);

    // Act: sample until a running short task is seen, both ways (or the batch is over)
    const over = async () => ['completed', 'partial', 'failed'].includes((await status(batchId)).status);
    const seen = await waitUntil(async () => {
      const listed = (await workers()).filter((w) => w.batchId === batchId);
      if (listed.length > 0) return { listed };
      return (await over()) ? { listed } : undefined;
    });
    const counted = await waitUntil(async () => {
      const active = (await stats()).activeWorkers;
      if (active > 0) return active;
      return (await over()) ? active : undefined;
    });
    await waitForBatch(url, batchId);

    // Assert
    expect(seen.listed.length).toBeGreaterThan(0);
    expect(seen.listed.length).toBeLessThanOrEqual(2);
    for (const worker of seen.listed) expect(taskIds.has(worker.taskId), worker.taskId).toBe(true);
    expect(counted).toBeGreaterThan(0);
    expect(counted).toBeLessThanOrEqual(2);
    expect(await workers()).toEqual([]);
    expect((await stats()).activeWorkers).toBe(0);
  });

  it('lists long attempts only once the fleet opts in (PATCH /config workerListing), and refuses an unknown mode naming the field', async () => {
    // Arrange
    const refused = await api<{ error: string; field?: string }>(url, 'PATCH', '/config', { workerListing: 'sometimes' });
    await setConfig({ workerListing: 'long-attempts', maxConcurrentWorkers: 2 });
    // Tasks that run until their gate opens: listed once they have run 100 ms (this file's FLEET_WORKER_LISTING_DELAY_MS).
    const batchId = await submit(gateTasks('opt', 2));

    // Act
    const listed = await waitUntil(async () => {
      const running = await workers();
      return running.length === 2 ? running : undefined;
    });
    for (const worker of listed) gateOf(worker.taskId).open();
    const final = await waitForBatch(url, batchId);

    // Assert
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('workerListing');
    expect(refused.text).toContain('every-attempt');
    expect((await api<FleetManagerConfig>(url, 'GET', '/config')).body.workerListing).toBe('long-attempts');
    expect(new Set(listed.map((w) => w.taskId))).toEqual(new Set(['opt0', 'opt1']));
    expect(Date.now() - Math.min(...listed.map((w) => w.spawnedAt))).toBeGreaterThanOrEqual(100);
    expect(final.status).toBe('completed');
    expect(await workers()).toEqual([]);
  });
});
