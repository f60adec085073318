/**
 * FleetClient end to end against a local fleet guarded by a bearer token:
 * every method, its typed errors, result pagination, waitForBatch, and the
 * seed's Common Usage Pattern example run as a script.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, REPO_ROOT, type LocalFleet } from '../../infra/local/local-fleet';
import { FleetApiError, FleetClient, FleetNetworkError, isFinished, isFleetApiError, type BatchStatus, type Task, type TaskResult, type WorkerInfo } from '../../client';

const TOKEN = 'client-test-token';
let fleet: LocalFleet;
let client: FleetClient<SleepData, SleepResult>;

interface SleepData {
  ms: number;
  value?: number;
  failTimes?: number;
}
interface SleepResult {
  sleptMs: number;
  value?: number;
}

beforeAll(async () => {
  // List attempts after 100 ms instead of the default 2 s, so the workers test's tasks can stay short.
  process.env.FLEET_WORKER_LISTING_DELAY_MS = '100';
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1, token: TOKEN });
  client = new FleetClient({ url: fleet.url, auth: { type: 'bearer', token: TOKEN } });
});
afterAll(async () => {
  await (fleet as LocalFleet | undefined)?.close();
});

const sleepTasks = (n: number, ms: number, prefix = 't'): Task<SleepData>[] =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, type: 'sleep', data: { ms, value: i } }));

/** Resolves with the error `promise` rejects with; fails the test if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

describe('submit, status, wait and results', () => {
  it('submitBatch returns the batchId; waitForBatch reports monotonic progress and resolves with the final status', async () => {
    const tasks: Task<SleepData>[] = [
      ...sleepTasks(10, 30),
      { id: 'retried', type: 'sleep', data: { ms: 10, value: 99, failTimes: 1 } },
      { id: 'doomed', type: 'fail', data: { ms: 0 } },
    ];
    const batchId = await client.submitBatch(tasks, { priority: 5 });
    expect(batchId).toMatch(/^[0-9a-f-]{36}$/);

    const first = await client.getBatchStatus(batchId);
    expect(first).toMatchObject({ batchId, totalTasks: 12 });

    const seen: BatchStatus[] = [];
    const final = await client.waitForBatch(batchId, { intervalMs: 20, onProgress: (status) => seen.push(status) });

    expect(final).toMatchObject({ batchId, status: 'partial', totalTasks: 12, completedTasks: 11, failedTasks: 1, progress: 1 });
    expect(seen.length).toBeGreaterThanOrEqual(1);
    expect(seen.at(-1)).toEqual(final);
    const order = ['pending', 'processing', 'partial'];
    for (let i = 1; i < seen.length; i++) {
      const [before, after] = [seen[i - 1]!, seen[i]!];
      expect(after.progress).toBeGreaterThanOrEqual(before.progress);
      expect(after.completedTasks).toBeGreaterThanOrEqual(before.completedTasks);
      expect(after.failedTasks).toBeGreaterThanOrEqual(before.failedTasks);
      expect(order.indexOf(after.status)).toBeGreaterThanOrEqual(order.indexOf(before.status));
    }

    // getBatchResults follows pagination; the results carry the caller's result type.
    const results: TaskResult<SleepResult>[] = await client.getBatchResults(batchId, { pageSize: 5 });
    expect(results.map((r) => r.taskId).sort()).toEqual(tasks.map((t) => t.id).sort());
    const retried = results.find((r) => r.taskId === 'retried');
    expect(retried).toMatchObject({ success: true, attempts: 2 });
    expect(retried?.result?.value).toBe(99);
    expect(results.find((r) => r.taskId === 'doomed')).toMatchObject({ success: false, error: expect.stringMatching(/.+/) });

    // getBatchSummary: the coordinator's view of the same results.
    const summary = await client.getBatchSummary(batchId);
    expect(summary).toMatchObject({ batchId, totalResults: 12, successCount: 11, failureCount: 1 });
    expect(summary.p95Duration).toBeGreaterThanOrEqual(summary.p50Duration ?? Infinity);
  });

  it('resultPages yields page by page, each at most `limit`, and ends at the last page', async () => {
    const batchId = await client.submitBatch(sleepTasks(23, 1, 'p'));
    await client.waitForBatch(batchId, { intervalMs: 20 });

    const pages = [];
    for await (const page of client.resultPages(batchId, { limit: 4 })) pages.push(page);
    expect(pages.length).toBeGreaterThanOrEqual(6);
    for (const page of pages) expect(page.results.length).toBeLessThanOrEqual(4);
    expect(pages.at(-1)?.nextCursor).toBeNull();
    for (const page of pages.slice(0, -1)) expect(page.nextCursor).toEqual(expect.any(String));
    const ids = pages.flatMap((page) => page.results.map((r) => r.taskId));
    expect(new Set(ids).size).toBe(23);
    expect(ids).toHaveLength(23);

    // Breaking out early stops the requests; resuming from a cursor continues after it.
    const [firstPage] = pages;
    const rest = [];
    for await (const page of client.resultPages(batchId, { limit: 4, cursor: firstPage!.nextCursor! })) rest.push(...page.results);
    expect(rest.map((r) => r.taskId)).toEqual(ids.slice(firstPage!.results.length));
  });

  it('waitForBatch rejects with the signal reason when aborted, and the batch runs on', async () => {
    await client.scaleWorkers(2);
    const batchId = await client.submitBatch(sleepTasks(40, 50, 'abort'));
    const controller = new AbortController();
    const reason = new Error('stop waiting');
    const error = await rejection(
      client.waitForBatch(batchId, {
        intervalMs: 20,
        signal: controller.signal,
        onProgress: () => { controller.abort(reason); },
      }),
    );
    expect(error).toBe(reason);
    expect((await client.getBatchStatus(batchId)).status).not.toBe('cancelled');

    // A signal that is already aborted rejects before any request.
    const aborted = AbortSignal.abort(new Error('already'));
    expect(await rejection(client.waitForBatch(batchId, { signal: aborted }))).toEqual(new Error('already'));

    expect(await client.cancelBatch(batchId)).toBe(true);
    expect((await client.waitForBatch(batchId, { intervalMs: 20 })).status).toBe('cancelled');
  });
});

describe('control: cancel, scale, config, stats, workers', () => {
  it('cancelBatch: true for a running batch, false for an unknown or finished one', async () => {
    await client.scaleWorkers(2);
    const batchId = await client.submitBatch(sleepTasks(50, 50, 'c'));
    expect(await client.cancelBatch(batchId)).toBe(true);
    const final = await client.waitForBatch(batchId, { intervalMs: 20 });
    expect(final.status).toBe('cancelled');
    expect(await client.cancelBatch(batchId)).toBe(false);
    expect(await client.cancelBatch('no-such-batch')).toBe(false);
  });

  it('scaleWorkers, updateConfig and getConfig', async () => {
    expect(await client.scaleWorkers(7)).toEqual({ maxConcurrentWorkers: 7, runningBatchesUpdated: expect.any(Number) });
    expect((await client.getConfig()).maxConcurrentWorkers).toBe(7);

    const updated = await client.updateConfig({ maxRetries: 2, workerTimeout: 60_000 });
    expect(updated).toEqual({ maxConcurrentWorkers: 7, maxRetries: 2, workerTimeout: 60_000, retryFailedTasks: true, workerListing: 'every-attempt' });
    expect(await client.getConfig()).toEqual(updated);
    await client.updateConfig({ maxRetries: 3, workerTimeout: 300_000, maxConcurrentWorkers: 10 });
  });

  it('getStats counts what was submitted; getActiveWorkers lists running workers as WorkerInfo', async () => {
    const before = await client.getStats();
    await client.scaleWorkers(4);
    const batchId = await client.submitBatch(sleepTasks(8, 1_000, 'w')); // listed from 100 ms on: long enough to be sampled on a busy machine

    // Sample until a worker of the batch shows up or the batch ends.
    let mine: WorkerInfo[] = [];
    for (;;) {
      mine = (await client.getActiveWorkers()).filter((w) => w.batchId === batchId);
      if (mine.length > 0 || isFinished(await client.getBatchStatus(batchId))) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(mine.length).toBeGreaterThan(0);
    for (const worker of mine) {
      expect(worker).toMatchObject({ id: expect.any(String), batchId, taskId: expect.stringMatching(/^w\d$/), status: 'active' });
      expect(worker.spawnedAt).toBeLessThanOrEqual(Date.now());
    }

    await client.waitForBatch(batchId, { intervalMs: 20 });
    const after = await client.getStats();
    expect(after.totalBatches).toBe(before.totalBatches + 1);
    expect(after.totalTasks).toBe(before.totalTasks + 8);
    expect(after.completedTasks).toBe(before.completedTasks + 8);
    expect(after.activeWorkers).toBeGreaterThanOrEqual(0);
  });
});

describe('retryFailed', () => {
  it('runs a finished batch’s failed tasks again; nothing when every task succeeded; not_found for an unknown batch', async () => {
    // Arrange: no retries on the first run, so the flaky task fails for good.
    await client.updateConfig({ maxRetries: 0 });
    const batchId = await client.submitBatch([
      { id: 'steady', type: 'sleep', data: { ms: 1, value: 1 } },
      { id: 'flaky', type: 'sleep', data: { ms: 1, value: 2, failTimes: 1 } },
    ] as Task<SleepData>[]);
    expect(await client.waitForBatch(batchId, { intervalMs: 20 })).toMatchObject({ status: 'partial', completedTasks: 1, failedTasks: 1 });
    await client.updateConfig({ maxRetries: 3 });

    // Act
    const retry = await client.retryFailed(batchId);
    const final = await client.waitForBatch(batchId, { intervalMs: 20 });

    // Assert
    expect(retry).toMatchObject({ batchId, mode: 'execution', retry: 1, retriedTasks: 1 });
    expect(final).toMatchObject({ status: 'completed', completedTasks: 2, failedTasks: 0 });
    const results = await client.getBatchResults(batchId);
    expect(results.map((r) => [r.taskId, r.success]).sort()).toEqual([
      ['flaky', true],
      ['steady', true],
    ]);
    expect(await client.retryFailed(batchId)).toMatchObject({ batchId, mode: 'none', retriedTasks: 0 });
    expect(await rejection(client.retryFailed('no-such-batch'))).toMatchObject({ code: 'not_found', status: 404 });
  });
});

describe('listBatches and deleteBatch', () => {
  it('lists newest first, one page at a time', async () => {
    const a = await client.submitBatch(sleepTasks(1, 1, 'la'));
    // Distinct createdAt milliseconds, so newest-first has one answer.
    await new Promise((resolve) => setTimeout(resolve, 5));
    const b = await client.submitBatch(sleepTasks(1, 1, 'lb'));
    const page = await client.listBatches({ limit: 2 });
    expect(page.batches.map((batch) => batch.batchId)).toEqual([b, a]);
    expect(page.nextCursor).toEqual(expect.any(String));
    const next = await client.listBatches({ limit: 2, cursor: page.nextCursor! });
    expect(next.batches.map((batch) => batch.batchId)).not.toContain(a);
    await client.waitForBatch(a, { intervalMs: 20 });
    await client.waitForBatch(b, { intervalMs: 20 });
  });

  it('deleteBatch: 409 conflict while running, then gone (404 not_found)', async () => {
    await client.scaleWorkers(1);
    const batchId = await client.submitBatch(sleepTasks(5, 200, 'd'));
    const conflict = await rejection(client.deleteBatch(batchId));
    expect(conflict).toBeInstanceOf(FleetApiError);
    expect(conflict).toMatchObject({ status: 409, code: 'conflict', request: `DELETE /batches/${batchId}` });

    await client.cancelBatch(batchId);
    await client.waitForBatch(batchId, { intervalMs: 20 });
    await client.deleteBatch(batchId);
    const gone = await rejection(client.getBatchStatus(batchId));
    expect(isFleetApiError(gone, 'not_found')).toBe(true);
    await client.scaleWorkers(10);
  });
});

describe('typed errors', () => {
  it('an unknown batch is a FleetApiError with code not_found and status 404', async () => {
    const error = await rejection(client.getBatchStatus('no-such-batch'));
    expect(error).toBeInstanceOf(FleetApiError);
    expect(error).toMatchObject({ name: 'FleetApiError', status: 404, code: 'not_found', field: undefined, retryable: false });
    expect((error as FleetApiError).message).toContain('no-such-batch');
    const others = await Promise.all([client.getBatchResults('nope'), client.getBatchSummary('nope'), client.deleteBatch('nope')].map(rejection));
    for (const other of others) expect(other).toMatchObject({ status: 404, code: 'not_found' });
  });

  it('a 400 names the field at fault', async () => {
    const duplicate = await rejection(
      client.submitBatch([
        { id: 'a', type: 'echo', data: { ms: 1 } },
        { id: 'a', type: 'echo', data: { ms: 1 } },
      ]),
    );
    expect(duplicate).toMatchObject({ status: 400, code: 'validation_error', field: 'tasks[1].id' });

    expect(await rejection(client.scaleWorkers(0))).toMatchObject({ status: 400, code: 'validation_error', field: 'count' });
    expect(await rejection(client.updateConfig({ maxRetries: 99 }))).toMatchObject({ status: 400, code: 'validation_error', field: 'maxRetries' });
    expect(await rejection(client.listBatches({ limit: 0 }))).toMatchObject({ status: 400, field: 'limit' });
  });

  it('auth: no token is 401 unauthorized; FLEET_TOKEN from the environment is used by default', async () => {
    const anonymous = new FleetClient({ url: fleet.url, env: {} });
    expect(await rejection(anonymous.getStats())).toMatchObject({ status: 401, code: 'unauthorized' });
    const wrong = new FleetClient({ url: fleet.url, auth: { type: 'bearer', token: 'wrong' } });
    expect(await rejection(wrong.getConfig())).toMatchObject({ status: 401, code: 'unauthorized' });

    const fromEnv = new FleetClient({ env: { FLEET_URL: fleet.url, FLEET_TOKEN: TOKEN } });
    expect(fromEnv.url).toBe(fleet.url);
    expect((await fromEnv.getConfig()).maxConcurrentWorkers).toEqual(expect.any(Number));
  });

  it('an unreachable fleet is a FleetNetworkError', async () => {
    const closed = new FleetClient({ url: 'http://127.0.0.1:9', maxRetries: 0, env: {} });
    const error = await rejection(closed.getStats());
    expect(error).toBeInstanceOf(FleetNetworkError);
    expect((error as FleetNetworkError).message).toContain('cannot reach http://127.0.0.1:9');
  });
});

describe('the Common Usage Pattern example', () => {
  it('runs against local mode: submit, wait with progress, successful and failed results', async () => {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', path.join(REPO_ROOT, 'client/examples/common-usage.ts')],
      { cwd: REPO_ROOT, env: { ...process.env, FLEET_URL: fleet.url, FLEET_TOKEN: TOKEN }, timeout: 60_000 },
    );
    expect(stdout).toMatch(/^Batch submitted: [0-9a-f-]{36}$/m);
    expect(stdout).toMatch(/^Progress: 100\.00% \(partial\)$/m);
    expect(stdout).toContain('Batch partial: 8/9 completed, 1 failed');
    expect(stdout).toContain('Successful: 8');
    expect(stdout).toContain('Failed: 1');
    expect(stdout).toMatch(/records \(2 attempts\)/);
    expect(stderr).toMatch(/Task task-[0-9a-f]{8} failed: source file is not valid JSON/);
  });
});
