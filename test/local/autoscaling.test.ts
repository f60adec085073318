/**
 * The built-in autoscaling policy, end to end against the local fleet: the
 * template's schedule (FleetProps.autoscaling) runs the autoscaler function
 * on a fast timer. With the fleet at `min`, a large backlog raises
 * maxConcurrentWorkers to `max` and the running batch's Map Run follows; once
 * the batch is done it falls back to `min`. Only observed values are
 * asserted, never how long anything took.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import type { BatchStatus, FleetManagerConfig } from '../../lambdas/domain/types';
import { api, readAllResults, peakConcurrency } from './helpers';

const POLICY = { min: 1, max: 8 };

let fleet: LocalFleet;

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1, fleetProps: { autoscaling: POLICY }, autoscaleIntervalMs: 50 });
});
afterAll(async () => {
  await (fleet as LocalFleet | undefined)?.close();
});

const cap = async () => (await api<FleetManagerConfig>(fleet.url, 'GET', '/config')).body.maxConcurrentWorkers;

/** Polls GET /config until the cap is `value`; returns the last one seen. */
async function capReaches(value: number, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let seen = await cap();
  while (seen !== value && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    seen = await cap();
  }
  return seen;
}


describe('autoscaling (FleetProps.autoscaling), locally', () => {
  it('the local template carries the schedule: the autoscaler module, with the policy as its input', () => {
    // The autoscaler's, and the admission reconciler's that every fleet has.
    const targets = fleet.resources.schedules.map((schedule) => fleet.resources.functions.find((fn) => fn.arn === schedule.targetArn)?.entry).sort();
    expect(targets).toEqual(['lambdas/admission-reconciler.ts', 'lambdas/autoscaler.ts']);
    const schedule = fleet.resources.schedules.find((s) => fleet.resources.functions.find((fn) => fn.arn === s.targetArn)?.entry === 'lambdas/autoscaler.ts');
    const target = fleet.resources.functions.find((fn) => fn.arn === schedule?.targetArn);
    expect(target).toMatchObject({ entry: 'lambdas/autoscaler.ts', handler: 'handler' });
    expect(schedule).toMatchObject({ intervalMs: 60_000, input: { ...POLICY, tasksPerWorker: 2, deadBand: 0.5 } });
  });

  it('raises maxConcurrentWorkers toward max while the backlog is high, and back to min once it is done', async () => {
    // No backlog: the policy brings the default cap (10, above max) down to min.
    expect(await capReaches(POLICY.min)).toBe(POLICY.min);

    const tasks = Array.from({ length: 80 }, (_, i) => ({ id: `t${i}`, type: 'sleep', data: { ms: 100 } }));
    const submitted = await api<BatchStatus>(fleet.url, 'POST', '/batches', { tasks });
    expect(submitted.status).toBe(202);
    const batchId = submitted.body.batchId;

    const caps: number[] = [];
    const mapRunConcurrency: number[] = [];
    let status: BatchStatus | undefined;
    const deadline = Date.now() + 60_000;
    do {
      caps.push(await cap());
      const run = fleet.stepFunctions.list().find((execution) => execution.name === batchId)?.mapRuns[0];
      if (run) mapRunConcurrency.push(run.maxConcurrency);
      status = (await api<BatchStatus>(fleet.url, 'GET', `/batches/${batchId}`)).body;
      await new Promise((resolve) => setTimeout(resolve, 25));
    } while ((status.status === 'pending' || status.status === 'processing') && Date.now() < deadline);

    expect(status).toMatchObject({ status: 'completed', completedTasks: 80, failedTasks: 0 });
    // 80 waiting tasks at 2 per worker want 40 workers: the policy gives max, never more.
    expect(Math.max(...caps)).toBe(POLICY.max);
    expect(caps.every((c) => c >= POLICY.min && c <= POLICY.max)).toBe(true);
    // The running batch got the new cap through UpdateMapRun, and used it.
    expect(Math.max(...mapRunConcurrency)).toBeGreaterThan(POLICY.min);
    const { results } = await readAllResults(fleet.url, batchId, 1000);
    expect(peakConcurrency(results.map((r) => ({ start: r.timestamp - r.duration, end: r.timestamp })))).toBeGreaterThan(POLICY.min);

    // Backlog gone: back to min.
    expect(await capReaches(POLICY.min)).toBe(POLICY.min);
  });
});
