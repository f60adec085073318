/**
 * The autoscaling policy (lambdas/domain/autoscaling.ts): the decision,
 * table-driven, and one run against in-memory ports.
 */
import { describe, expect, it } from 'vitest';
import { autoscale, backlogOf, decideWorkers, parseAutoscalingPolicy, type AutoscalingPolicy } from '../../lambdas/domain/autoscaling';
import type { BatchStatus, FleetManagerConfig } from '../../lambdas/domain/types';

const policy = (overrides: Partial<AutoscalingPolicy> = {}): AutoscalingPolicy => ({ min: 2, max: 20, tasksPerWorker: 1, deadBand: 0.5, ...overrides });

describe('decideWorkers', () => {
  it.each([
    // [case, policy, backlog, current, action, desired]
    ['scales out to the backlog', policy(), 10, 4, 'scale-out', 10],
    ['scales out at most to max', policy(), 500, 4, 'scale-out', 20],
    ['divides the backlog by tasksPerWorker, rounding up', policy({ tasksPerWorker: 2 }), 9, 2, 'scale-out', 5],
    ['raises a cap below min to min, even with no backlog', policy(), 0, 1, 'scale-out', 2],
    ['holds when the backlog uses exactly the current cap', policy(), 8, 8, 'hold', 8],
    ['holds inside the dead band (needs 5 of 8: more than half)', policy(), 5, 8, 'hold', 8],
    ['scales in past the dead band (needs 4 of 8: half)', policy(), 4, 8, 'scale-in', 4],
    ['scales in to min, not below, once the backlog is gone', policy(), 0, 8, 'scale-in', 2],
    ['holds at min with no backlog', policy(), 0, 2, 'hold', 2],
    ['lowers a cap above max to max, whatever the dead band', policy({ deadBand: 0.9 }), 19, 25, 'scale-in', 20],
    ['lowers a cap above max to what the backlog needs', policy(), 3, 25, 'scale-in', 3],
    ['with a dead band of 0, follows the backlog down at once', policy({ deadBand: 0 }), 7, 8, 'scale-in', 7],
    ['with a wide dead band, waits for most workers to be idle', policy({ deadBand: 0.75 }), 3, 8, 'hold', 8],
    ['with a wide dead band, scales in once they are', policy({ deadBand: 0.75 }), 2, 8, 'scale-in', 2],
    ['min equal to max pins the cap', policy({ min: 5, max: 5 }), 1000, 3, 'scale-out', 5],
  ] as const)('%s', (_case, p, backlog, current, action, desired) => {
    const decision = decideWorkers(p, backlog, current);

    expect(decision).toMatchObject({ action, desired });
    expect(decision.desired).toBeGreaterThanOrEqual(Math.min(p.min, current));
    if (decision.action !== 'hold') {
      expect(decision.desired).toBeGreaterThanOrEqual(p.min);
      expect(decision.desired).toBeLessThanOrEqual(p.max);
    }
  });

  it('does not flap: as a backlog drains task by task, each change is a step down past the band', () => {
    const p = policy({ min: 1, max: 16 });
    let current = 1;
    const caps: number[] = [];
    for (let backlog = 40; backlog >= 0; backlog--) {
      current = decideWorkers(p, backlog, current).desired;
      caps.push(current);
    }
    // Up once, then only down, and in few steps (16 → 8 → 4 → 2 → 1), not one per task.
    expect(caps[0]).toBe(16);
    for (let i = 1; i < caps.length; i++) expect(caps[i]!).toBeLessThanOrEqual(caps[i - 1]!);
    expect([...new Set(caps)]).toEqual([16, 8, 4, 2, 1]);
    expect(caps.at(-1)).toBe(1);
  });
});

describe('backlogOf', () => {
  const batch = (status: BatchStatus['status'], totalTasks: number, completedTasks: number, failedTasks: number) => ({ status, totalTasks, completedTasks, failedTasks });

  it('counts tasks not finished yet in pending and processing batches only', () => {
    expect(backlogOf([batch('pending', 50, 0, 0), batch('processing', 100, 60, 10), batch('completed', 70, 70, 0), batch('cancelled', 30, 5, 0)])).toBe(80);
  });

  it('is 0 for no batches, and never negative', () => {
    expect(backlogOf([])).toBe(0);
    expect(backlogOf([batch('processing', 3, 3, 1)])).toBe(0);
  });
});

describe('parseAutoscalingPolicy', () => {
  it('fills in the defaults', () => {
    expect(parseAutoscalingPolicy({ min: 1, max: 8 })).toEqual({ min: 1, max: 8, tasksPerWorker: 2, deadBand: 0.5 });
  });

  it.each([
    [{ min: 0, max: 8 }, 'min'],
    [{ min: 5, max: 4 }, 'max must be at least min'],
    [{ min: 1.5, max: 4 }, 'min'],
    [{ min: 1, max: 100_000 }, 'max'],
    [{ min: 1, max: 4, tasksPerWorker: 0 }, 'tasksPerWorker'],
    [{ min: 1, max: 4, deadBand: 1 }, 'deadBand'],
    [{ min: 1, max: 4, extra: true }, 'extra'],
    [{ max: 4 }, 'min'],
  ])('refuses %j, naming %s', (input, named) => {
    expect(() => parseAutoscalingPolicy(input)).toThrow(named);
  });
});

describe('autoscale (one run)', () => {
  function fleet(statuses: BatchStatus[], maxConcurrentWorkers: number) {
    const config: FleetManagerConfig = { maxConcurrentWorkers, workerTimeout: 60_000, retryFailedTasks: true, maxRetries: 3, workerListing: 'every-attempt' };
    const scaled: number[] = [];
    const deps = {
      repository: {
        listActiveBatchIds: async () => statuses.map((s) => s.batchId),
        getStatus: async (batchId: string) => statuses.find((s) => s.batchId === batchId),
        getConfig: async () => config,
      },
      scaleWorkers: async (count: number) => {
        scaled.push(count);
      },
    };
    return { deps, scaled };
  }
  const status = (batchId: string, totalTasks: number, done: number): BatchStatus => ({
    batchId,
    status: 'processing',
    totalTasks,
    completedTasks: done,
    failedTasks: 0,
    progress: done / totalTasks,
    createdAt: 0,
    startedAt: 0,
    completedAt: null,
  });

  it('reads the backlog from the unfinished batches and scales through scaleWorkers', async () => {
    const { deps, scaled } = fleet([status('a', 100, 40), status('b', 30, 0)], 2);

    const result = await autoscale(deps, policy({ max: 50, tasksPerWorker: 2 }));

    expect(result).toMatchObject({ backlog: 90, previous: 2, needed: 45, action: 'scale-out', desired: 45 });
    expect(scaled).toEqual([45]);
  });

  it('changes nothing when it holds', async () => {
    const { deps, scaled } = fleet([status('a', 10, 4)], 6);

    const result = await autoscale(deps, policy());

    expect(result).toMatchObject({ action: 'hold', desired: 6, backlog: 6 });
    expect(scaled).toEqual([]);
  });

  it('skips a batch that disappeared between the listing and the read', async () => {
    const { deps, scaled } = fleet([status('a', 10, 0)], 2);
    deps.repository.listActiveBatchIds = async () => ['a', 'gone'];

    expect(await autoscale(deps, policy())).toMatchObject({ backlog: 10, desired: 10 });
    expect(scaled).toEqual([10]);
  });
});
