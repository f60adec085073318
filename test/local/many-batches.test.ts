/**
 * Fleet under pressure: hundreds of batches waiting for capacity at once.
 *
 * 200 batches are submitted in one burst at the default cap of 10, while a
 * blocker holds the whole cap. Each gets 202 (no 5xx under the burst), none
 * has an execution while it waits (a waiting batch costs nothing and grows no
 * history), every one reaches its final status once the blocker is cancelled,
 * and they start in queue order: higher priority first, FIFO within a
 * priority (capacity.ts queueRankOf).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { AGING_MS } from '../../lambdas/domain/capacity';
import type { BatchStatus, FleetStatistics } from '../../lambdas/domain/types';
import { api, waitUntil } from './helpers';

let fleet: LocalFleet;

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1 });
});
afterAll(async () => {
  await (fleet as LocalFleet | undefined)?.close();
});

const BATCHES = 200;
const TASKS_PER_BATCH = 2;
const executionArn = (name: string) => `${fleet.resources.stateMachine.arn.replace(':stateMachine:', ':execution:')}:${name}`;
const executionOf = (batchId: string) => {
  try {
    return fleet.stepFunctions.describeExecution(executionArn(batchId));
  } catch {
    return undefined;
  }
};

describe(`${BATCHES} batches waiting for capacity at once`, () => {
  it('all answer 202, all finish exactly, and start in priority order, FIFO within a priority', async () => {
    const statsBefore = (await api<FleetStatistics>(fleet.url, 'GET', '/stats')).body;
    expect((await api(fleet.url, 'GET', '/config')).body).toMatchObject({ maxConcurrentWorkers: 10 });
    // A batch that holds the whole cap until it is cancelled, so every batch of the burst is queued before any is admitted.
    const blocker = await api<BatchStatus>(fleet.url, 'POST', '/batches', {
      tasks: Array.from({ length: 10 }, (_, i) => ({ id: `b${i}`, type: 'sleep', data: { ms: 120_000 } })),
    });
    await waitUntil(() => (executionOf(blocker.body.batchId)?.status === 'RUNNING' ? true : undefined));

    // Act: one burst of submits, three priorities interleaved.
    const submits = await Promise.all(
      Array.from({ length: BATCHES }, (_, i) =>
        api<BatchStatus>(fleet.url, 'POST', '/batches', {
          priority: i % 3,
          tasks: Array.from({ length: TASKS_PER_BATCH }, (_, t) => ({ id: `t${t}`, type: 'echo', data: { batch: i, task: t } })),
        }),
      ),
    );

    // Assert: no 5xx, every batch accepted.
    expect(submits.map((r) => r.status).filter((s) => s !== 202)).toEqual([]);
    const ids = submits.map((r) => r.body.batchId);
    expect(new Set(ids).size).toBe(BATCHES);

    // While they wait, none has an execution: no polling, and no history that could reach AWS's 25,000 events.
    expect(ids.filter((id) => executionOf(id) !== undefined)).toEqual([]);
    for (const id of ids.slice(0, 5)) expect((await api<BatchStatus>(fleet.url, 'GET', `/batches/${id}`)).body.status).toBe('pending');
    // The control plane answers while they wait: stats, config, scale.
    expect((await api(fleet.url, 'GET', '/stats')).status).toBe(200);
    expect((await api(fleet.url, 'POST', '/workers/scale', { count: 10 })).status).toBe(200);
    expect(ids.filter((id) => executionOf(id) !== undefined)).toEqual([]);

    // The blocker's cancel hands the cap on: admission begins.
    expect((await api(fleet.url, 'POST', `/batches/${blocker.body.batchId}/cancel`)).body).toEqual({ cancelled: true });

    // Every batch reaches its final status.
    const finals = await waitUntil(
      async () => {
        const statuses = await Promise.all(ids.map(async (id) => (await api<BatchStatus>(fleet.url, 'GET', `/batches/${id}`)).body));
        return statuses.every((s) => s.status === 'completed') ? statuses : undefined;
      },
      600_000,
      500,
    );
    for (const status of finals) expect(status).toMatchObject({ totalTasks: TASKS_PER_BATCH, completedTasks: TASKS_PER_BATCH, failedTasks: 0 });

    // Each ran one execution, which never failed; the fleet totals count each task once.
    for (const id of ids) expect(executionOf(id)?.status).toMatch(/^(SUCCEEDED|RUNNING)$/);
    const stats = (await api<FleetStatistics>(fleet.url, 'GET', '/stats')).body;
    expect(stats.totalBatches - statsBefore.totalBatches).toBe(BATCHES + 1);
    expect(stats.completedTasks - statsBefore.completedTasks).toBe(BATCHES * TASKS_PER_BATCH);
    expect(stats.totalTasks - statsBefore.totalTasks).toBe(BATCHES * TASKS_PER_BATCH + 10);

    // Queue order: by rank (createdAt − priority × AGING_MS, then id), executions started in that order.
    const rank = (s: BatchStatus, i: number) => s.createdAt - (i % 3) * AGING_MS;
    const byRank = finals
      .map((status, i) => ({ id: status.batchId, rank: rank(status, i), started: executionOf(status.batchId)!.startDate.getTime() }))
      .sort((a, b) => a.rank - b.rank || (a.id < b.id ? -1 : 1));
    const inversions = byRank.filter((entry, i) => i > 0 && entry.started < byRank[i - 1]!.started);
    expect(inversions).toEqual([]);
    // Within one aging step of each other, that is priority order, FIFO within a priority.
    const firstOfEach = [2, 1, 0].map((p) => byRank.findIndex((entry) => finals.findIndex((s) => s.batchId === entry.id) % 3 === p));
    const spread = Math.max(...finals.map((s) => s.createdAt)) - Math.min(...finals.map((s) => s.createdAt));
    if (spread < AGING_MS) expect(firstOfEach).toEqual([...firstOfEach].sort((a, b) => a - b));
  });
});
