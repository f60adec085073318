/**
 * Local storage lost mid-flight: the local DynamoDB's process (dynalite, a
 * child of the fleet) dies while the fleet runs.
 *
 * - On its own: the fleet restarts it on the same endpoint over the same
 *   folder and says so in one WARN line; /healthz answers 503 naming DynamoDB
 *   while the table is unreachable and 200 once it is back; everything written
 *   before is read back after.
 * - End to end: killed after N results of a 5,000-task batch are recorded
 *   (a count, not a time), the batch finishes by itself with every task run
 *   and recorded exactly once, and counts equal to its results. This relies on
 *   the run leg treating "cannot record" as transient (Fleet.StorageUnavailable,
 *   retried without consuming attempts) and on Start/Finish batch retrying
 *   storage errors.
 *
 * The fleet runs in this process, over a data folder of its own, so the test
 * knows the DynamoDB process's pid and kills only that.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import type { BatchStatus, TaskResult } from '../../lambdas/domain/types';
import { signalAndWait, startFleetProcess } from './fleet-process';
import { api, readAllResults, waitForBatch, waitUntil } from './helpers';

// One fleet for the file: the handlers' modules, and their clients, live once per process.
let fleet: LocalFleet;
let dataDir = '';
const lost = vi.fn<(error: Error) => void>();

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'fleet-storage-loss-'));
  fleet = await startLocalFleet({ port: 0, dataDir, retryUnitMs: 1, sweepIntervalMs: 0, dashboard: false, onStorageLost: lost });
});

afterEach(() => {
  vi.restoreAllMocks();
  // A stopped process would never answer; let it go on.
  try {
    process.kill(fleet.dynamoDbPid, 'SIGCONT');
  } catch {
    // already gone
  }
});

afterAll(async () => {
  await (fleet as LocalFleet | undefined)?.close({ drainMs: 0 });
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** The fleet's WARN lines about its DynamoDB process, from console.error. */
function warnings(spy: { mock: { calls: unknown[][] } }): string[] {
  return spy.mock.calls.map((call) => String(call[0])).filter((line) => line.includes('WARN the local DynamoDB process'));
}

type Health = { ok: boolean; unavailable?: string[]; error?: { code: string; message: string } };

async function healthWhen(url: string, status: number): Promise<Health> {
  return waitUntil(async () => {
    const health = await api<Health>(url, 'GET', '/healthz');
    return health.status === status ? health.body : undefined;
  }, 120_000);
}

describe('local storage supervision', () => {
  it('restarts a killed DynamoDB process with its data on the same endpoint; /healthz is 503 while it is unreachable, 200 after', { timeout: 300_000 }, async () => {
    const logged = vi.spyOn(console, 'error');
    const tasks = Array.from({ length: 40 }, (_, i) => ({ id: `t${i}`, type: 'echo', data: { i } }));
    const submitted = await api<BatchStatus>(fleet.url, 'POST', '/batches', { tasks });
    expect(submitted.status).toBe(202);
    const before = await waitForBatch(fleet.url, submitted.body.batchId, 60_000);
    expect(before).toMatchObject({ status: 'completed', completedTasks: 40 });
    const resultsBefore = (await readAllResults(fleet.url, before.batchId)).results;
    expect((await api(fleet.url, 'GET', '/healthz')).body).toEqual({ ok: true });

    // Frozen first: the table stops answering, and /healthz must say so.
    const firstPid = fleet.dynamoDbPid;
    process.kill(firstPid, 'SIGSTOP');
    const down = await healthWhen(fleet.url, 503);
    expect(down).toMatchObject({ ok: false, unavailable: ['dynamodb'], error: { code: 'dependency_unavailable' } });
    // Then dead: the supervisor starts another on the same endpoint, over the same folder.
    process.kill(firstPid, 'SIGKILL');
    expect(await healthWhen(fleet.url, 200)).toEqual({ ok: true });

    expect(fleet.dynamoDbPid).not.toBe(firstPid);
    expect(warnings(logged)).toHaveLength(1);
    expect(warnings(logged)[0]).toMatch(/ended unexpectedly \(code null, signal SIGKILL\); restarting it on http:\/\/127\.0\.0\.1:\d+/);
    expect(lost).not.toHaveBeenCalled();
    // Written before the kill, read after it.
    const after = await api<BatchStatus>(fleet.url, 'GET', `/batches/${before.batchId}`);
    expect(after.status).toBe(200);
    expect(after.body).toMatchObject({ status: 'completed', totalTasks: 40, completedTasks: 40, failedTasks: 0 });
    const resultsAfter = (await readAllResults(fleet.url, before.batchId)).results;
    expect(resultsAfter).toEqual(resultsBefore);
    // And the fleet goes on: a new batch runs.
    const next = await api<BatchStatus>(fleet.url, 'POST', '/batches', { tasks: tasks.map((t) => ({ ...t, id: `n-${t.id}` })) });
    expect(await waitForBatch(fleet.url, next.body.batchId, 60_000)).toMatchObject({ status: 'completed', completedTasks: 40 });
  });
});

describe('a 5,000-task batch when the DynamoDB process is killed mid-batch', () => {
  it('finishes by itself, every task run and recorded exactly once, counts equal to the results', { timeout: 600_000 }, async () => {
    const logged = vi.spyOn(console, 'error');
    expect((await api(fleet.url, 'PATCH', '/config', { maxConcurrentWorkers: 32 })).status).toBe(200);
    // 5,000 tasks, not 10,000: the property is by count and holds at this size. The kill comes after a
    // fifth of the results (1,000, as 2,000 of 10,000 before) with up to 32 tasks in flight, and 4,000
    // tasks are still to run on the restarted storage; every task is then checked for exactly one result.
    const total = 5_000;
    // Small tasks (1-8 ms), all of which succeed on their first attempt when nothing else goes wrong.
    const tasks = Array.from({ length: total }, (_, i) => ({ id: `t${i}`, type: 'sleep', data: { ms: 1 + (i % 8) } }));
    const submitted = await api<BatchStatus>(fleet.url, 'POST', '/batches', { tasks });
    expect(submitted.status).toBe(202);
    const batchId = submitted.body.batchId;

    // Count-bounded: the kill comes once a fifth of the results are recorded, whatever the time.
    const progress = await waitUntil(async () => {
      const now = await api<BatchStatus>(fleet.url, 'GET', `/batches/${batchId}`);
      if (now.body.status !== 'processing' && now.body.status !== 'pending') throw new Error(`the batch ended before the kill: ${now.text}`);
      return now.body.completedTasks + now.body.failedTasks >= total / 5 ? now.body : undefined;
    }, 300_000, 50);
    const killedPid = fleet.dynamoDbPid;
    process.kill(killedPid, 'SIGKILL');
    expect(progress.completedTasks + progress.failedTasks).toBeLessThan(total);

    // Storage back (the supervisor restarted it), the batch ends without anyone's help.
    await healthWhen(fleet.url, 200);
    expect(fleet.dynamoDbPid).not.toBe(killedPid);
    const final = await waitForBatch(fleet.url, batchId, 300_000, 250);
    expect(warnings(logged)).toHaveLength(1);
    expect(lost).not.toHaveBeenCalled();

    const { results } = await readAllResults(fleet.url, batchId, 1000);
    const byTask = new Map<string, TaskResult[]>();
    for (const result of results) byTask.set(result.taskId, [...(byTask.get(result.taskId) ?? []), result]);
    // Every check is reported (soft), so a failure shows the whole outcome, not only its first symptom.
    // Counts equal to the results, one result per task.
    expect.soft(final.completedTasks, 'completedTasks equals the successful results').toBe(results.filter((r) => r.success).length);
    expect.soft(final.failedTasks, 'failedTasks equals the failed results').toBe(results.filter((r) => !r.success).length);
    expect.soft(byTask.size, 'tasks with a result').toBe(total);
    expect.soft([...byTask.entries()].filter(([, list]) => list.length !== 1).map(([taskId]) => taskId).slice(0, 5), 'tasks with more than one result').toEqual([]);
    // No task failed because storage was away: each succeeded, on its first attempt
    // (a storage outage is retried without consuming the task's attempts).
    const failed = results.filter((r) => !r.success);
    expect.soft(failed.map((r) => `${r.taskId}: ${r.error}`).slice(0, 3), `failed results (${failed.length} in all)`).toEqual([]);
    const retried = results.filter((r) => r.attempts !== 1);
    expect.soft(retried.map((r) => `${r.taskId}: ${r.attempts}`).slice(0, 3), `results after more than one attempt (${retried.length} in all)`).toEqual([]);
    expect.soft(final, 'the batch at its end').toMatchObject({ status: 'completed', totalTasks: total, completedTasks: total, failedTasks: 0, progress: 1 });
  });
});

describe('npm start in memory, when its DynamoDB process dies', () => {
  it('exits with code 1 and says why (the data is gone; a supervisor must start it again)', { timeout: 180_000 }, async () => {
    const folder = mkdtempSync(path.join(tmpdir(), 'fleet-storage-loss-memory-'));
    const fleet = await startFleetProcess(folder, { FLEET_IN_MEMORY: '1' });
    try {
      // The fleet's own child running dynamodb-process.ts (ps works on Linux and macOS alike).
      const child = execFileSync('ps', ['-A', '-o', 'pid=,ppid=,args='], { encoding: 'utf8' })
        .split('\n')
        .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
        .find((match) => match && Number(match[2]) === fleet.pid && match[3]?.includes('dynamodb-process'));
      expect(child?.[1]).toBeDefined();
      process.kill(Number(child?.[1]), 'SIGKILL');

      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<never>((_, reject) => {
        timer = setTimeout(() => { reject(new Error(`the fleet did not exit after its DynamoDB process died:\n${fleet.output()}`)); }, 120_000);
      });
      const exit = await Promise.race([fleet.exited, bound]).finally(() => { clearTimeout(timer); });
      expect(exit).toEqual({ code: 1, signal: null });
      expect(fleet.output()).toMatch(/fleet: the local DynamoDB process ended unexpectedly \(code null, signal SIGKILL\) and its data was in memory only/);
    } finally {
      if (fleet.child.exitCode === null && fleet.child.signalCode === null) await signalAndWait(fleet, 'SIGKILL');
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
