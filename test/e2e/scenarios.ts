/**
 * Fleet's end-to-end scenarios, written once and run against any fleet: a
 * local fleet in `npm test` (test/local/e2e-scenarios.test.ts) and a freshly
 * deployed stack in `npm run test:aws` (test/aws/scenarios.test.ts). Only
 * the base URL, the auth and the target's declared capabilities differ, so
 * the two runs cannot drift apart.
 *
 * The scenarios use nothing but the public contract: FleetClient, and signed
 * raw HTTP where the status code itself is the contract (202 vs 200, 401/403).
 * Whatever exists only on one target is a capability; a scenario that needs
 * a capability the target lacks is not defined for it at all.
 *
 * The target must be a fleet nobody else uses while the scenarios run, with
 * no autoscaling: they set its cap and config themselves and read exact
 * stats deltas.
 */
import { randomUUID } from 'node:crypto';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { peakConcurrency } from './overlap';
import {
  createAuthorizer,
  FleetApiError,
  FleetClient,
  type BatchStatus,
  type FleetAuth,
  type FleetManagerConfig,
  type RequestAuthorizer,
  type Task,
  type TaskResult,
} from '../../client';

/** What a target offers beyond the contract every Fleet honours. */
export interface FleetCapabilities {
  /**
   * The `fault.*` task types (FLEET_ENABLE_FAULT_TASKS=1 at cold start).
   * A deployed fleet never has them.
   */
  faultTasks: boolean;
  /**
   * Step Functions' retry delays are scaled down (local FLEET_RETRY_UNIT_MS),
   * so a task may use all 10 retries in a test's time.
   * On AWS ten retries wait about 5 minutes (1 s doubling, capped at 60 s),
   * longer than an EXPRESS child may live.
   */
  scaledDelays: boolean;
  /**
   * A Map Run starts its items in the tasks file's order, so within one batch
   * at a concurrency of 1 the task priority order is visible in the results.
   * The local runner does; AWS documents no processing order for a
   * Distributed Map, so on AWS only the batch-level priority (which Fleet's
   * own Start batch decides) is asserted.
   */
  orderedDispatch: boolean;
}

/** How long things take on the target. */
export interface FleetTiming {
  /** A short task that is still long enough to be seen running or overlapping, in ms. */
  taskMs: number;
  /** How long a batch may take to finish, in ms. */
  batchTimeoutMs: number;
  /** Time between status polls, in ms. */
  pollMs: number;
  /** Each scenario's own timeout, in ms. */
  testTimeoutMs: number;
  /** How long an attempt runs before GET /workers lists it (FLEET_WORKER_LISTING_DELAY_MS), in ms. */
  workerListingDelayMs: number;
}

export interface FleetTarget {
  /** Shown in the test names, e.g. `local` or `aws`. */
  name: string;
  /** The API's base URL; a function when it is known only once the fleet has started. */
  baseUrl: string | (() => string);
  /** How requests are authorized (bearer locally, SigV4 on AWS). */
  auth: FleetAuth | (() => FleetAuth);
  capabilities: FleetCapabilities;
  timing: FleetTiming;
}

/** The config every scenario starts from; each changes only what it tests. */
const BASELINE: FleetManagerConfig = { maxConcurrentWorkers: 10, maxRetries: 2, retryFailedTasks: true, workerTimeout: 60_000, workerListing: 'every-attempt' };

interface SleepData {
  ms: number;
  failTimes?: number;
  value?: unknown;
}

interface RawAnswer {
  status: number;
  body: unknown;
}

/** The error envelope's field, or undefined. */
const errorOf = (body: unknown) => (body as { error?: { code?: string; message?: string; field?: string } } | undefined)?.error;

/** Most attempts overlapping at any instant; each result's span is [timestamp - duration, timestamp]. */
export function peakOverlap(results: readonly Pick<TaskResult, 'timestamp' | 'duration'>[]): number {
  return peakConcurrency(results.map((r) => ({ start: r.timestamp - r.duration, end: r.timestamp })));
}

/** Resolves with the error `promise` rejects with; fails if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

/** Defines every scenario `target` supports, in one `describe`. */
export function defineFleetScenarios(target: FleetTarget): void {
  const { capabilities: can, timing } = target;
  const T = timing.taskMs;
  let client: FleetClient;
  let baseUrl = '';
  let authorize: RequestAuthorizer;

  /** One request, signed like the client's, for assertions on the HTTP status itself. */
  async function raw(method: string, path: string, options: { body?: unknown; headers?: Record<string, string>; unsigned?: boolean } = {}): Promise<RawAnswer> {
    const url = new URL(`${baseUrl}${path}`);
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const sent = options.unsigned ? headers : await authorize({ method, url, headers, ...(body !== undefined ? { body } : {}) });
    const response = await fetch(url, { method, headers: sent, body, signal: AbortSignal.timeout(30_000) });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    return { status: response.status, body: parsed };
  }

  const waitFor = (batchId: string): Promise<BatchStatus> =>
    client.waitForBatch(batchId, { intervalMs: timing.pollMs, signal: AbortSignal.timeout(timing.batchTimeoutMs) });

  /** Polls `probe` until it returns something other than undefined. */
  async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + timing.batchTimeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, timing.pollMs));
    }
  }

  const byId = (results: TaskResult[]) => new Map(results.map((r) => [r.taskId, r]));
  const sleepTask = (id: string, data: SleepData, extra: Partial<Task> = {}): Task => ({ id, type: 'sleep', data, ...extra });
  const scenario = (name: string, fn: () => Promise<void>) => { it(name, fn, timing.testTimeoutMs); };

  describe(`Fleet end to end (${target.name})`, () => {
    beforeAll(() => {
      baseUrl = (typeof target.baseUrl === 'function' ? target.baseUrl() : target.baseUrl).replace(/\/+$/, '');
      const auth = typeof target.auth === 'function' ? target.auth() : target.auth;
      client = new FleetClient({ url: baseUrl, auth, env: {} });
      authorize = createAuthorizer(auth);
    });

    beforeEach(async () => {
      expect(await client.updateConfig(BASELINE)).toMatchObject(BASELINE);
    }, timing.testTimeoutMs);

    describe('submit, status and results', () => {
      scenario('a batch is accepted at once (202), its status progresses monotonically to completed, and its results page by page', async () => {
        const tasks: Task[] = [
          ...Array.from({ length: 25 }, (_, i) => ({ id: `echo-${i}`, type: 'echo', data: { i, nested: { list: [i, 'x', null, true] } } })),
          ...Array.from({ length: 3 }, (_, i) => sleepTask(`sleep-${i}`, { ms: T, value: i })),
        ];
        const accepted = await raw('POST', '/batches', { body: { tasks } });
        expect(accepted.status).toBe(202);
        const first = accepted.body as BatchStatus;
        expect(first).toMatchObject({ totalTasks: 28, completedTasks: 0, failedTasks: 0, progress: 0 });
        expect(['pending', 'processing']).toContain(first.status);
        const batchId = first.batchId;

        const seen: BatchStatus[] = [];
        const final = await client.waitForBatch(batchId, {
          intervalMs: timing.pollMs,
          signal: AbortSignal.timeout(timing.batchTimeoutMs),
          onProgress: (status) => seen.push(status),
        });
        expect(final).toMatchObject({ batchId, status: 'completed', totalTasks: 28, completedTasks: 28, failedTasks: 0, progress: 1 });
        expect(final.startedAt).toEqual(expect.any(Number));
        expect(final.completedAt).toBeGreaterThanOrEqual(final.startedAt ?? Infinity);
        const order = ['pending', 'processing', 'completed'];
        for (let i = 1; i < seen.length; i++) {
          const [before, after] = [seen[i - 1] as BatchStatus, seen[i] as BatchStatus];
          expect(order.indexOf(after.status)).toBeGreaterThanOrEqual(order.indexOf(before.status));
          expect(after.completedTasks + after.failedTasks).toBeGreaterThanOrEqual(before.completedTasks + before.failedTasks);
          expect(after.progress).toBeGreaterThanOrEqual(before.progress);
        }

        const pages = [];
        for await (const page of client.resultPages(batchId, { limit: 10 })) pages.push(page);
        expect(pages.length).toBeGreaterThanOrEqual(3);
        for (const page of pages) expect(page.results.length).toBeLessThanOrEqual(10);
        expect(pages.at(-1)?.nextCursor).toBeNull();
        for (const page of pages.slice(0, -1)) expect(page.nextCursor).toEqual(expect.any(String));
        const results = pages.flatMap((page) => page.results);
        expect(results.map((r) => r.taskId).sort()).toEqual(tasks.map((t) => t.id).sort());
        const result = byId(results);
        for (const task of tasks) {
          const r = result.get(task.id);
          expect(r).toMatchObject({ taskId: task.id, success: true, attempts: 1, workerId: expect.any(String), duration: expect.any(Number), timestamp: expect.any(Number) });
          expect(r?.error).toBeUndefined();
          if (task.type === 'echo') expect(r?.result).toEqual(task.data);
          else expect(r?.result).toMatchObject({ value: (task.data as SleepData).value, sleptMs: expect.any(Number) });
        }
        // getBatchResults follows the same pages.
        expect((await client.getBatchResults(batchId, { pageSize: 7 })).map((r) => r.taskId).sort()).toEqual(tasks.map((t) => t.id).sort());
      });

      scenario('summary, list and delete: a running batch cannot be deleted (409), a finished one can, and is gone (404)', async () => {
        const tasks = [1, 2, 3].map((n) => sleepTask(`s${n}`, { ms: n * T, value: n }));
        const batchId = await client.submitBatch(tasks);
        const listed = await client.listBatches({ limit: 5 });
        expect(listed.batches[0]?.batchId).toBe(batchId);

        const conflict = await rejection(client.deleteBatch(batchId));
        expect(conflict).toBeInstanceOf(FleetApiError);
        expect(conflict).toMatchObject({ status: 409, code: 'conflict' });

        expect((await waitFor(batchId)).status).toBe('completed');
        const summary = await client.getBatchSummary(batchId);
        expect(summary).toMatchObject({ batchId, totalResults: 3, successCount: 3, failureCount: 0 });
        const durations = (await client.getBatchResults(batchId)).map((r) => r.duration).sort((a, b) => a - b);
        expect(durations).toContain(summary.p50Duration);
        expect(durations).toContain(summary.p95Duration);
        expect(summary.p95Duration).toBe(durations.at(-1));

        await client.deleteBatch(batchId);
        for (const read of [() => client.getBatchStatus(batchId), () => client.getBatchSummary(batchId), () => client.getResultPage(batchId)]) {
          expect(await rejection(read())).toMatchObject({ status: 404, code: 'not_found' });
        }
        const after = await client.listBatches({ limit: 50 });
        expect(after.batches.map((b) => b.batchId)).not.toContain(batchId);
      });
    });

    describe('retries and failures', () => {
      scenario('retries with backoff: a flaky task succeeds after failTimes failed attempts; one failing every attempt keeps its message; the batch is partial', async () => {
        const message = 'disk full: could not write /tmp/out.bin';
        const tasks: Task[] = [
          ...[0, 1, 2].map((n) => sleepTask(`flaky-${n}`, { ms: 0, failTimes: n, value: `v${n}` })),
          { id: 'doomed', type: 'fail', data: { message } },
          { id: 'fine', type: 'echo', data: 'ok' },
        ];
        const batchId = await client.submitBatch(tasks);
        expect(await waitFor(batchId)).toMatchObject({ status: 'partial', totalTasks: 5, completedTasks: 4, failedTasks: 1, progress: 1 });
        const result = byId(await client.getBatchResults(batchId));
        for (const n of [0, 1, 2]) expect(result.get(`flaky-${n}`)).toMatchObject({ success: true, attempts: n + 1, result: { value: `v${n}` } });
        expect(result.get('doomed')).toMatchObject({ success: false, error: message, attempts: BASELINE.maxRetries + 1 });
        expect(result.get('doomed')?.result).toBeUndefined();
        expect(result.get('fine')).toMatchObject({ success: true, result: 'ok', attempts: 1 });
        expect(await client.getBatchSummary(batchId)).toMatchObject({ totalResults: 5, successCount: 4, failureCount: 1 });
      });

      scenario('retryFailedTasks: false makes one attempt; a batch whose every task fails ends failed; an unknown type fails alone, unretried', async () => {
        await client.updateConfig({ retryFailedTasks: false });
        const batchId = await client.submitBatch([
          sleepTask('would-succeed-on-retry', { ms: 0, failTimes: 1 }),
          { id: 'fails', type: 'fail', data: { message: 'no' } },
        ]);
        expect(await waitFor(batchId)).toMatchObject({ status: 'failed', completedTasks: 0, failedTasks: 2 });
        const result = byId(await client.getBatchResults(batchId));
        expect(result.get('would-succeed-on-retry')).toMatchObject({ success: false, attempts: 1 });
        expect(result.get('fails')).toMatchObject({ success: false, error: 'no', attempts: 1 });

        await client.updateConfig({ retryFailedTasks: true });
        const mixed = await client.submitBatch([
          { id: 'a', type: 'echo', data: 1 },
          { id: 'mystery', type: 'transcode-video', data: {} },
        ]);
        expect(await waitFor(mixed)).toMatchObject({ status: 'partial', completedTasks: 1, failedTasks: 1 });
        const mystery = byId(await client.getBatchResults(mixed)).get('mystery');
        expect(mystery).toMatchObject({ success: false, attempts: 1 });
        expect(mystery?.error).toContain('"transcode-video"');
      });

      scenario('timeouts: a task past its own timeout or past workerTimeout is timed out; a task timeout overrides workerTimeout', async () => {
        await client.updateConfig({ workerTimeout: 2 * T, maxRetries: 0 });
        const batchId = await client.submitBatch([
          sleepTask('own-timeout', { ms: 50 * T }, { timeout: T }),
          sleepTask('fleet-timeout', { ms: 50 * T }),
          sleepTask('patient', { ms: 4 * T, value: 'done' }, { timeout: 40 * T }),
          { id: 'quick', type: 'echo', data: 'hi' },
        ]);
        expect(await waitFor(batchId)).toMatchObject({ status: 'partial', completedTasks: 2, failedTasks: 2 });
        const result = byId(await client.getBatchResults(batchId));
        for (const id of ['own-timeout', 'fleet-timeout']) {
          expect(result.get(id)).toMatchObject({ success: false, attempts: 1 });
          expect(result.get(id)?.error).toMatch(/timed out/);
        }
        expect(result.get('patient')).toMatchObject({ success: true, attempts: 1, result: { value: 'done' } });
        expect(result.get('quick')).toMatchObject({ success: true, result: 'hi' });
      });

      scenario('retry-failed runs only the failed tasks again (202), leaves the succeeded ones as they were, and has nothing to do for a completed batch (200)', async () => {
        await client.updateConfig({ maxRetries: 0 });
        const tasks: Task[] = [
          ...[0, 1, 2].map((i) => ({ id: `echo-${i}`, type: 'echo', data: { i } })),
          ...[0, 1].map((i) => sleepTask(`flaky-${i}`, { ms: 0, failTimes: 1, value: i })),
          { id: 'broken', type: 'fail', data: { message: 'broken' } },
        ];
        const batchId = await client.submitBatch(tasks);
        const first = await waitFor(batchId);
        expect(first).toMatchObject({ status: 'partial', completedTasks: 3, failedTasks: 3 });
        const before = byId(await client.getBatchResults(batchId));

        await client.updateConfig({ maxRetries: 2 });
        const retried = await raw('POST', `/batches/${batchId}/retry-failed`);
        expect(retried.status).toBe(202);
        expect(retried.body).toEqual({ batchId, mode: 'execution', retry: 1, retriedTasks: 3, executionName: `${batchId}-retry-1`, status: 'pending' });
        const second = await waitFor(batchId);
        expect(second).toMatchObject({ status: 'partial', totalTasks: 6, completedTasks: 5, failedTasks: 1, progress: 1 });
        const after = byId(await client.getBatchResults(batchId));
        expect(after.size).toBe(6);
        for (const i of [0, 1, 2]) expect(after.get(`echo-${i}`)).toEqual(before.get(`echo-${i}`));
        for (const i of [0, 1]) expect(after.get(`flaky-${i}`)).toMatchObject({ success: true, attempts: 2, result: { value: i } });
        expect(after.get('broken')).toMatchObject({ success: false, error: 'broken', attempts: 3 });

        const fine = await client.submitBatch([{ id: 'fine', type: 'echo', data: 1 }]);
        await waitFor(fine);
        const nothing = await raw('POST', `/batches/${fine}/retry-failed`);
        expect(nothing).toEqual({ status: 200, body: { batchId: fine, mode: 'none', retry: null, retriedTasks: 0, executionName: null, status: 'completed' } });
        expect((await raw('POST', `/batches/${randomUUID()}/retry-failed`)).status).toBe(404);
      });

      if (can.scaledDelays) {
        scenario('maxRetries 10, the maximum: a task failing 10 times succeeds on its 11th attempt', async () => {
          await client.updateConfig({ maxRetries: 10 });
          const batchId = await client.submitBatch([sleepTask('stubborn', { ms: 0, failTimes: 10, value: 11 })]);
          expect(await waitFor(batchId)).toMatchObject({ status: 'completed', completedTasks: 1 });
          expect((await client.getBatchResults(batchId))[0]).toMatchObject({ success: true, attempts: 11, result: { value: 11 } });
        });
      }

      if (can.faultTasks) {
        scenario('handler faults stay in their task: a hang is timed out, a non-Error throw is recorded as such', async () => {
          await client.updateConfig({ maxRetries: 0 });
          const batchId = await client.submitBatch([
            { id: 'hang', type: 'fault.hang', data: null, timeout: 2 * T },
            { id: 'number', type: 'fault.throw-non-error', data: { kind: 'number' } },
            { id: 'fine', type: 'echo', data: 1 },
          ]);
          expect(await waitFor(batchId)).toMatchObject({ status: 'partial', completedTasks: 1, failedTasks: 2 });
          const result = byId(await client.getBatchResults(batchId));
          expect(result.get('hang')?.error).toMatch(/timed out/);
          expect(result.get('number')).toMatchObject({ success: false, error: 'Non-Error thrown: 42' });
        });
      }
    });

    describe('control: cancel, scale, config, capacity and priority', () => {
      scenario('cancelBatch stops a running batch: true, then cancelled with what ran so far; false for a finished or unknown batch; a cancelled batch cannot be retried (409)', async () => {
        await client.scaleWorkers(2);
        const batchId = await client.submitBatch(Array.from({ length: 30 }, (_, i) => sleepTask(`t${i}`, { ms: 2 * T })));
        await until('the batch to run a task', async () => ((await client.getBatchStatus(batchId)).completedTasks >= 1 ? true : undefined));
        expect(await client.cancelBatch(batchId)).toBe(true);
        const final = await waitFor(batchId);
        expect(final.status).toBe('cancelled');
        expect(final.completedTasks).toBeGreaterThanOrEqual(1);
        expect(final.completedTasks + final.failedTasks).toBeLessThan(30);
        expect(final.completedAt).toEqual(expect.any(Number));
        expect(await client.cancelBatch(batchId)).toBe(false);
        expect(await client.cancelBatch(randomUUID())).toBe(false);
        const retry = await raw('POST', `/batches/${batchId}/retry-failed`);
        expect(retry.status).toBe(409);
        expect(errorOf(retry.body)?.message).toContain('cancelled');
      });

      for (const lever of ['scaleWorkers', 'updateConfig'] as const) {
        scenario(`${lever} reaches a running batch: raised from 1 to 6, its tasks start overlapping, never more than 6`, async () => {
          expect(await client.scaleWorkers(1)).toEqual({ maxConcurrentWorkers: 1, runningBatchesUpdated: 0 });
          const batchId = await client.submitBatch(Array.from({ length: 16 }, (_, i) => sleepTask(`t${i}`, { ms: 2 * T })));
          await until('two tasks to finish one at a time', async () => ((await client.getBatchStatus(batchId)).completedTasks >= 2 ? true : undefined));
          if (lever === 'scaleWorkers') expect(await client.scaleWorkers(6)).toEqual({ maxConcurrentWorkers: 6, runningBatchesUpdated: 1 });
          else expect(await client.updateConfig({ maxConcurrentWorkers: 6 })).toMatchObject({ maxConcurrentWorkers: 6 });
          expect((await client.getConfig()).maxConcurrentWorkers).toBe(6);
          expect((await waitFor(batchId)).status).toBe('completed');

          // Only the recorded spans are compared, all on the workers' clocks.
          const results = [...(await client.getBatchResults(batchId))].sort((a, b) => a.timestamp - a.duration - (b.timestamp - b.duration));
          expect(results).toHaveLength(16);
          expect(peakOverlap(results.slice(0, 2))).toBe(1);
          const peak = peakOverlap(results);
          expect(peak).toBeGreaterThan(1);
          expect(peak).toBeLessThanOrEqual(6);
        });
      }

      scenario('the fleet-wide cap holds across batches; a waiting batch stays pending, and the higher-priority one is admitted first', async () => {
        await client.scaleWorkers(1);
        // Long enough that both later batches are submitted and seen waiting while it runs.
        const blocker = await client.submitBatch(Array.from({ length: 3 }, (_, i) => sleepTask(`b${i}`, { ms: 5 * T })));
        await until('the blocker to hold the slot', async () => ((await client.getBatchStatus(blocker)).status === 'processing' ? true : undefined));
        const low = await client.submitBatch([{ id: 'low', type: 'echo', data: 'low' }], { priority: 0 });
        const high = await client.submitBatch([{ id: 'high', type: 'echo', data: 'high' }], { priority: 5 });
        expect((await client.getBatchStatus(low)).status).toBe('pending');
        expect((await client.getBatchStatus(high)).status).toBe('pending');

        const [b, l, h] = await Promise.all([blocker, low, high].map(waitFor));
        for (const status of [b, l, h]) expect(status?.status).toBe('completed');
        expect(h?.startedAt).toBeLessThan(l?.startedAt ?? -Infinity);
        const all = (await Promise.all([blocker, low, high].map((id) => client.getBatchResults(id)))).flat();
        expect(all).toHaveLength(5);
        expect(peakOverlap(all)).toBe(1);
      });

      if (can.orderedDispatch) {
        scenario('within a batch, higher task priority runs first; ties keep submission order', async () => {
          await client.scaleWorkers(1);
          const tasks: Task[] = [
            sleepTask('low-a', { ms: 5 }, { priority: 0 }),
            sleepTask('high-a', { ms: 5 }, { priority: 10 }),
            sleepTask('low-b', { ms: 5 }),
            sleepTask('mid', { ms: 5 }, { priority: 5 }),
            sleepTask('high-b', { ms: 5 }, { priority: 10 }),
            sleepTask('negative', { ms: 5 }, { priority: -1 }),
          ];
          const batchId = await client.submitBatch(tasks);
          expect((await waitFor(batchId)).status).toBe('completed');
          const finished = [...(await client.getBatchResults(batchId))].sort((a, b) => a.timestamp - b.timestamp).map((r) => r.taskId);
          expect(finished).toEqual(['high-a', 'high-b', 'mid', 'low-a', 'low-b', 'negative']);
        });
      }
    });

    describe('stats and workers', () => {
      scenario('getActiveWorkers lists a long-running attempt with its batch and task; getStats counts each finished batch once', async () => {
        await client.updateConfig({ maxRetries: 0 });
        const before = await client.getStats();
        const longMs = timing.workerListingDelayMs + 10 * T;
        const batchId = await client.submitBatch([
          sleepTask('long', { ms: longMs, value: 'long' }),
          { id: 'quick', type: 'echo', data: 1 },
          { id: 'fails', type: 'fail', data: { message: 'x' } },
        ]);
        // Every running attempt is listed (the quick ones too, while they run): look for the long one.
        const listed = await until('the long attempt to be listed', async () => (await client.getActiveWorkers()).find((w) => w.batchId === batchId && w.taskId === 'long'));
        expect(listed).toMatchObject({ batchId, taskId: 'long', status: 'active', id: expect.any(String), spawnedAt: expect.any(Number) });
        expect(listed.completedAt).toBeUndefined();

        expect((await waitFor(batchId)).status).toBe('partial');
        expect((await client.getBatchResults(batchId)).find((r) => r.taskId === 'long')?.workerId).toBe(listed.id);
        expect((await client.getActiveWorkers()).filter((w) => w.batchId === batchId)).toEqual([]);
        const after = await client.getStats();
        expect(after).toMatchObject({
          totalBatches: before.totalBatches + 1,
          totalTasks: before.totalTasks + 3,
          completedTasks: before.completedTasks + 2,
          failedTasks: before.failedTasks + 1,
        });
        expect(after.activeWorkers).toBe(0);
      });
    });

    describe('idempotency keys', () => {
      scenario('the same key and body name the same batch (202, then 200); another body is 409; a bad key is 400 naming Idempotency-Key', async () => {
        const key = `e2e-${randomUUID()}`;
        const tasks = [{ id: 't1', type: 'echo', data: { a: 1, b: 2 } }];
        const first = await raw('POST', '/batches', { body: { tasks }, headers: { 'idempotency-key': key } });
        expect(first.status).toBe(202);
        const batchId = (first.body as BatchStatus).batchId;
        // Key order and a left-out default priority do not change the body's meaning.
        const repeat = await raw('POST', '/batches', { body: { priority: 0, tasks: [{ data: { b: 2, a: 1 }, type: 'echo', id: 't1' }] }, headers: { 'idempotency-key': key } });
        expect(repeat.status).toBe(200);
        expect((repeat.body as BatchStatus).batchId).toBe(batchId);
        expect(await client.submitBatch(tasks, { idempotencyKey: key })).toBe(batchId);

        const other = await rejection(client.submitBatch([{ id: 't1', type: 'echo', data: 'other' }], { idempotencyKey: key }));
        expect(other).toMatchObject({ status: 409, code: 'conflict' });
        // (Only a too-long key: whitespace or non-ASCII would also change how SigV4 canonicalizes the header.)
        for (const bad of ['x'.repeat(129)]) {
          const refused = await raw('POST', '/batches', { body: { tasks }, headers: { 'idempotency-key': bad } });
          expect(refused.status).toBe(400);
          expect(errorOf(refused.body)).toMatchObject({ code: 'validation_error', field: 'Idempotency-Key' });
        }
        expect((await waitFor(batchId)).status).toBe('completed');
        expect(await client.getBatchResults(batchId)).toHaveLength(1);
      });
    });

    describe('bad input and auth', () => {
      scenario('bad input is a 4xx naming the field at fault, and creates nothing', async () => {
        const before = (await client.listBatches({ limit: 1 })).batches[0]?.batchId;
        const valid = { id: 'a', type: 'echo', data: 1 };
        const submits: [unknown, string][] = [
          [{}, 'tasks'],
          [{ tasks: [] }, 'tasks'],
          [{ tasks: [valid, { ...valid, data: 2 }] }, 'tasks[1].id'],
          [{ tasks: [{ id: 'a', type: 7, data: 1 }] }, 'tasks[0].type'],
          [{ tasks: [{ ...valid, colour: 'red' }] }, 'tasks[0].colour'],
          [{ tasks: [valid], callbackUrl: 'https://example.com' }, 'callbackUrl'],
        ];
        for (const [body, field] of submits) {
          const answer = await raw('POST', '/batches', { body });
          expect(answer.status, JSON.stringify(body)).toBe(400);
          expect(errorOf(answer.body)).toMatchObject({ code: 'validation_error', field });
          expect(errorOf(answer.body)?.message).toContain(field);
        }
        // Thunks: each request is sent only when its turn comes.
        const refusals: [() => Promise<unknown>, number, string | undefined][] = [
          [() => client.scaleWorkers(0), 400, 'count'],
          [() => client.scaleWorkers(10_001), 400, 'count'],
          [() => client.updateConfig({ maxRetries: 11 }), 400, 'maxRetries'],
          [() => client.updateConfig({ maxConcurrentWorkers: 0 }), 400, 'maxConcurrentWorkers'],
          [() => client.getResultPage(randomUUID(), { limit: 0 }), 400, 'limit'],
          [() => client.getResultPage('bad.id'), 400, 'batchId'],
          [() => client.listBatches({ cursor: 'not-a-cursor' }), 400, 'cursor'],
          [() => client.getBatchStatus(randomUUID()), 404, undefined],
          [() => client.getBatchSummary(randomUUID()), 404, undefined],
          [() => client.deleteBatch(randomUUID()), 404, undefined],
        ];
        for (const [call, status, field] of refusals) {
          const error = await rejection(call());
          expect(error).toBeInstanceOf(FleetApiError);
          expect(error).toMatchObject({ status, code: status === 404 ? 'not_found' : 'validation_error', field });
        }
        expect(await client.getConfig()).toMatchObject(BASELINE);
        expect((await client.listBatches({ limit: 1 })).batches[0]?.batchId).toBe(before);
      });

      scenario('a request without credentials is refused (401 or 403) and changes nothing; GET /healthz answers when authorized', async () => {
        for (const [method, path, body] of [
          ['GET', '/stats', undefined],
          ['PATCH', '/config', { maxRetries: 7 }],
          ['POST', '/batches', { tasks: [{ id: 'a', type: 'echo', data: 1 }] }],
        ] as const) {
          const answer = await raw(method, path, { body, unsigned: true });
          expect([401, 403], `${method} ${path}`).toContain(answer.status);
        }
        expect(await client.getConfig()).toMatchObject(BASELINE);
        expect(await raw('GET', '/healthz')).toEqual({ status: 200, body: { ok: true } });
      });
    });
  });
}
