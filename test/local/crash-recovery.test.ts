/**
 * Crash recovery and graceful shutdown of the local fleet, with the fleet as
 * a real process (`npm start`'s entry point) over one data folder:
 *
 * - SIGKILL three times in the middle of a 5,000-task batch, restarting each
 *   time: the batch finishes with one final result per task and exact counts;
 *   tasks that had ended are not run again, tasks in flight are.
 * - SIGTERM: running tasks finish, the process exits 0, and the batch resumes
 *   on the next start without running any task twice.
 *
 * What ran is read from the API; what was launched from the execution
 * journal, the local runner's history (as a Map Run's child executions are on AWS).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readJournal, type JournalEntry } from '../../infra/local/journal';
import type { BatchStatus, FleetStatistics } from '../../lambdas/domain/types';
import { startFleetProcess, signalAndWait, type FleetProcess } from './fleet-process';
import { api, readAllResults, waitForBatch } from './helpers';

const running: FleetProcess[] = [];
const folders: string[] = [];

afterEach(async () => {
  for (const fleet of running.splice(0)) {
    if (fleet.child.exitCode === null && fleet.child.signalCode === null) await signalAndWait(fleet, 'SIGKILL').catch(() => undefined);
  }
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

async function start(dataDir: string): Promise<FleetProcess> {
  const fleet = await startFleetProcess(dataDir);
  running.push(fleet);
  return fleet;
}

function dataFolder(): string {
  const folder = mkdtempSync(path.join(tmpdir(), 'fleet-recovery-'));
  folders.push(folder);
  return folder;
}

async function status(url: string, batchId: string): Promise<BatchStatus> {
  const response = await api<BatchStatus>(url, 'GET', `/batches/${batchId}`);
  if (response.status !== 200) throw new Error(`GET /batches/${batchId}: ${response.status} ${response.text}`);
  return response.body;
}

/** Polls until the batch has at least `done` final results, and is still running. */
async function waitForProgress(url: string, batchId: string, done: number, timeoutMs = 120_000): Promise<BatchStatus> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const now = await status(url, batchId);
    if (now.status !== 'pending' && now.status !== 'processing') throw new Error(`batch ended before ${done} results: ${JSON.stringify(now)}`);
    if (now.completedTasks + now.failedTasks >= done) return now;
    if (Date.now() > until) throw new Error(`batch did not reach ${done} results: ${JSON.stringify(now)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Per item index of the batch's Map Run: how often its child was launched, and the journal order of launches and ends. */
function childHistory(entries: JournalEntry[], batchId: string) {
  const execution = entries.find((e) => e.e === 'start' && e.name === batchId);
  if (!execution) throw new Error(`the journal has no execution ${batchId}`);
  const launches = new Map<number, number[]>();
  const ends = new Map<number, number[]>();
  entries.forEach((entry, position) => {
    if (entry.x !== execution.x) return;
    if (entry.e === 'launch') launches.set(entry.i, [...(launches.get(entry.i) ?? []), position]);
    if (entry.e === 'child') ends.set(entry.i, [...(ends.get(entry.i) ?? []), position]);
  });
  const mapRuns = new Set(entries.filter((e) => e.x === execution.x && e.e === 'map').map((e) => (e as { arn: string }).arn));
  return { launches, ends, mapRuns };
}

// 5,000 tasks, not 10,000: what the test shows is by count, and holds at this size. Each kill comes after a
// count of results (15%, 40% and 65% of the batch, as before), with up to 32 children in flight, so each
// restart resumes a Map Run holding ended, running and unstarted children; the rest is checked per item.
const TOTAL = 5_000;

describe('local crash recovery: SIGKILL three times within one 5,000-task batch', () => {
  it('finishes with one final result per task and exact counts; ended tasks are not re-run, tasks in flight are', async () => {
    const dataDir = dataFolder();
    let fleet = await start(dataDir);
    expect((await api(fleet.url, 'PATCH', '/config', { maxConcurrentWorkers: 32 })).status).toBe(200);
    // Small tasks (5-20 ms), so 5,000 of them span several seconds; 1 in 100 always
    // fails and 1 in 100 succeeds on its second attempt.
    const tasks = Array.from({ length: TOTAL }, (_, i) =>
      i % 100 === 99
        ? { id: `t${i}`, type: 'fail', data: { message: `task ${i} fails` } }
        : { id: `t${i}`, type: 'sleep', data: { ms: 5 + (i % 16), ...(i % 100 === 50 ? { failTimes: 1 } : {}) } },
    );
    const submitted = await api<BatchStatus>(fleet.url, 'POST', '/batches', { tasks });
    expect(submitted.status).toBe(202);
    const batchId = submitted.body.batchId;

    const killedAt: number[] = [];
    for (const threshold of [0.15 * TOTAL, 0.4 * TOTAL, 0.65 * TOTAL]) {
      const before = await waitForProgress(fleet.url, batchId, threshold);
      const killed = await signalAndWait(fleet, 'SIGKILL');
      expect(killed.signal).toBe('SIGKILL');
      killedAt.push(before.completedTasks + before.failedTasks);
      fleet = await start(dataDir);
      expect(fleet.output()).toContain('resumed: 1 batch execution');
      // Killed mid-batch: it is still running after the restart.
      expect((await status(fleet.url, batchId)).status).toBe('processing');
    }
    expect(killedAt.every((done) => done < TOTAL)).toBe(true);

    const final = await waitForBatch(fleet.url, batchId, 180_000, 250);
    expect(final).toMatchObject({ status: 'partial', totalTasks: TOTAL, completedTasks: TOTAL - TOTAL / 100, failedTasks: TOTAL / 100, progress: 1 });

    // Exactly one final result per task.
    const { results } = await readAllResults(fleet.url, batchId, 1000);
    expect(results).toHaveLength(TOTAL);
    expect(new Set(results.map((r) => r.taskId)).size).toBe(TOTAL);
    for (const result of results) {
      const i = Number(result.taskId.slice(1));
      expect(result.success).toBe(i % 100 !== 99);
      if (i % 100 === 50) expect(result.attempts).toBe(2);
    }

    // The runner's history: every child ended exactly once, none was launched
    // again after it ended, and the children in flight at a kill were relaunched.
    const { launches, ends, mapRuns } = childHistory(readJournal(path.join(dataDir, 'executions.jsonl')), batchId);
    expect(mapRuns.size).toBe(1); // one Map Run, resumed each time (same ARN), as a redriven one is
    expect(ends.size).toBe(TOTAL);
    for (let i = 0; i < TOTAL; i++) {
      const endedAt = ends.get(i) ?? [];
      const launchedAt = launches.get(i) ?? [];
      expect(endedAt).toHaveLength(1);
      expect(launchedAt.every((position) => position < (endedAt[0] ?? -1))).toBe(true);
    }
    const relaunched = [...launches.values()].filter((positions) => positions.length > 1).length;
    expect(relaunched).toBeGreaterThan(0);
    // Only children in flight are relaunched: at most MaxConcurrency per kill.
    expect(relaunched).toBeLessThanOrEqual(3 * 32);

    // The fleet-wide capacity the killed executions held is not lost: a new batch runs.
    const next = await api<BatchStatus>(fleet.url, 'POST', '/batches', { tasks: Array.from({ length: 20 }, (_, i) => ({ id: `n${i}`, type: 'echo', data: i })) });
    expect(await waitForBatch(fleet.url, next.body.batchId, 60_000, 100)).toMatchObject({ status: 'completed', completedTasks: 20 });
    const stats = await api<FleetStatistics>(fleet.url, 'GET', '/stats');
    expect(stats.body).toMatchObject({ totalBatches: 2, totalTasks: TOTAL + 20, completedTasks: TOTAL - TOTAL / 100 + 20, failedTasks: TOTAL / 100 });
  });
});

describe('graceful SIGTERM', () => {
  it('lets running tasks finish, exits 0, and the batch resumes on the next start without re-running a task', async () => {
    const dataDir = dataFolder();
    let fleet = await start(dataDir);
    expect((await api(fleet.url, 'PATCH', '/config', { maxConcurrentWorkers: 16 })).status).toBe(200);
    const tasks = Array.from({ length: 1_200 }, (_, i) => ({ id: `t${i}`, type: 'sleep', data: { ms: 5 + (i % 16) } }));
    const submitted = await api<BatchStatus>(fleet.url, 'POST', '/batches', { tasks });
    const batchId = submitted.body.batchId;
    await waitForProgress(fleet.url, batchId, 300);

    const stopped = await signalAndWait(fleet, 'SIGTERM');
    expect(stopped).toEqual({ code: 0, signal: null });
    expect(fleet.output()).toContain('stopped: every running task finished');

    fleet = await start(dataDir);
    expect(fleet.output()).toContain('resumed: 1 batch execution');
    const final = await waitForBatch(fleet.url, batchId, 120_000, 250);
    expect(final).toMatchObject({ status: 'completed', totalTasks: 1_200, completedTasks: 1_200, failedTasks: 0 });
    const { results } = await readAllResults(fleet.url, batchId, 1000);
    expect(new Set(results.map((r) => r.taskId)).size).toBe(1_200);

    // Drained, not dropped: every child was launched once and ended once.
    const { launches, ends } = childHistory(readJournal(path.join(dataDir, 'executions.jsonl')), batchId);
    expect(ends.size).toBe(1_200);
    expect([...launches.values()].every((positions) => positions.length === 1)).toBe(true);
    expect([...ends.values()].every((positions) => positions.length === 1)).toBe(true);

    const last = await signalAndWait(fleet, 'SIGTERM');
    expect(last.code).toBe(0);
  });
});
