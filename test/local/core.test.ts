/**
 * End to end through HTTP: the real API, worker and batch-lifecycle handlers
 * on dynalite, s3rver and the local Step Functions interpreter.
 *
 * One fleet for the whole file (the handlers read process.env once per
 * process). The tests run in order; each starts from the default config.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { DEFAULT_CONFIG } from '../../lambdas/domain/config';
import type { BatchStatus, FleetManagerConfig, TaskResult } from '../../lambdas/domain/types';
import { api, listAllBatches, readAllResults, waitForBatch, type ApiErrorBody } from './helpers';

let fleet: LocalFleet | undefined;
let url = '';

interface SubmittedTask {
  id: string;
  type: string;
  data?: unknown;
  priority?: number;
  timeout?: number;
}

async function setConfig(patch: Partial<FleetManagerConfig>): Promise<FleetManagerConfig> {
  const response = await api<FleetManagerConfig>(url, 'PATCH', '/config', patch);
  expect(response.status, response.text).toBe(200);
  expect(response.body).toMatchObject(patch);
  return response.body;
}

async function submit(tasks: SubmittedTask[]): Promise<BatchStatus> {
  const response = await api<BatchStatus>(url, 'POST', '/batches', { tasks });
  expect(response.status, response.text).toBe(202);
  return response.body;
}

/** Submits, waits for the end, and returns the final status and results by task id. */
async function runBatch(tasks: SubmittedTask[], timeoutMs = 30_000) {
  const { batchId } = await submit(tasks);
  const status = await waitForBatch(url, batchId, timeoutMs);
  const { results } = await readAllResults(url, batchId, 1000);
  const byId = new Map(results.map((r) => [r.taskId, r]));
  const result = (taskId: string): TaskResult => {
    const found = byId.get(taskId);
    if (!found) throw new Error(`no result for task ${taskId}; have ${[...byId.keys()].join(', ')}`);
    return found;
  };
  return { batchId, status, results, result };
}

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1 });
  url = fleet.url;
});

afterAll(async () => {
  await fleet?.close();
});

beforeEach(async () => {
  // A test that changes the config and then fails must not leak it into the next.
  await setConfig({ ...DEFAULT_CONFIG });
});

describe('a batch of echo tasks', () => {
  it('is accepted at once and completes with every task echoed', async () => {
    // Arrange
    const tasks = Array.from({ length: 5 }, (_, i) => ({
      id: `echo-${i}`,
      type: 'echo',
      data: { index: i, text: `hello ${i}`, nested: { list: [i, 'x', null], flag: i % 2 === 0 } },
    }));

    // Act
    const submitted = await api<BatchStatus>(url, 'POST', '/batches', { tasks });
    const final = await waitForBatch(url, submitted.body.batchId);
    const { results } = await readAllResults(url, submitted.body.batchId);
    const smallPages = await readAllResults(url, submitted.body.batchId, 2);

    // Assert
    expect(submitted.status).toBe(202);
    expect(submitted.body.batchId).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
    expect(submitted.body).toMatchObject({ status: 'pending', totalTasks: 5, completedTasks: 0, failedTasks: 0, progress: 0, startedAt: null, completedAt: null });

    expect(final).toMatchObject({ batchId: submitted.body.batchId, status: 'completed', totalTasks: 5, completedTasks: 5, failedTasks: 0, progress: 1 });
    expect(final.error).toBeUndefined();
    expect(final.startedAt).toEqual(expect.any(Number));
    expect(final.completedAt).toEqual(expect.any(Number));
    expect(final.startedAt as number).toBeGreaterThanOrEqual(final.createdAt);
    expect(final.completedAt as number).toBeGreaterThanOrEqual(final.startedAt as number);

    expect(results).toHaveLength(tasks.length);
    // Pages of 2 cross the result shards without losing or repeating a result.
    expect(Math.max(...smallPages.pageSizes)).toBeLessThanOrEqual(2);
    expect(smallPages.results.map((r) => r.taskId).sort()).toEqual(tasks.map((t) => t.id).sort());
    for (const task of tasks) {
      const result = results.find((r) => r.taskId === task.id);
      expect(result, task.id).toBeDefined();
      expect(result).toMatchObject({ taskId: task.id, success: true, result: task.data, attempts: 1 });
      expect(result?.error).toBeUndefined();
      expect(result?.workerId).toEqual(expect.any(String));
      expect(result?.workerId.length).toBeGreaterThan(0);
      expect(result?.duration).toEqual(expect.any(Number));
      expect(result?.timestamp).toEqual(expect.any(Number));
    }
  });
});

describe('retries', () => {
  it('retries a failing sleep task until it succeeds: attempts = failTimes + 1', async () => {
    const failTimes = [0, 1, 2, 3]; // 3 = maxRetries: the last allowed attempt succeeds
    const tasks = failTimes.map((n) => ({ id: `flaky-${n}`, type: 'sleep', data: { ms: 0, failTimes: n, value: `v${n}` } }));

    const { status, result } = await runBatch(tasks);

    expect(status).toMatchObject({ status: 'completed', totalTasks: 4, completedTasks: 4, failedTasks: 0, progress: 1 });
    for (const n of failTimes) {
      expect(result(`flaky-${n}`)).toMatchObject({ success: true, attempts: n + 1, result: { value: `v${n}` } });
    }
  });

  it('records a task that fails every attempt, keeping its message; the batch is partial', async () => {
    const message = 'disk full: could not write /tmp/out.bin';
    const tasks = [
      { id: 'doomed', type: 'fail', data: { message } },
      { id: 'fine', type: 'echo', data: { ok: true } },
    ];

    const { status, result } = await runBatch(tasks);

    expect(status).toMatchObject({ status: 'partial', totalTasks: 2, completedTasks: 1, failedTasks: 1, progress: 1 });
    expect(result('doomed')).toMatchObject({ success: false, error: message, attempts: DEFAULT_CONFIG.maxRetries + 1 });
    expect(result('doomed').result).toBeUndefined();
    expect(result('fine')).toMatchObject({ success: true, result: { ok: true }, attempts: 1 });
  });

  it('ends a batch whose every task fails as failed', async () => {
    const tasks = [
      { id: 'f1', type: 'fail', data: { message: 'first' } },
      { id: 'f2', type: 'fail', data: { message: 'second' } },
    ];

    const { status, result } = await runBatch(tasks);

    expect(status).toMatchObject({ status: 'failed', totalTasks: 2, completedTasks: 0, failedTasks: 2, progress: 1 });
    expect(result('f1')).toMatchObject({ success: false, error: 'first', attempts: 4 });
    expect(result('f2')).toMatchObject({ success: false, error: 'second', attempts: 4 });
  });
});

describe('timeouts', () => {
  it("fails a task that runs past its own timeout", async () => {
    const { status, result } = await runBatch([{ id: 'slow', type: 'sleep', timeout: 50, data: { ms: 5000 } }]);

    expect(status).toMatchObject({ status: 'failed', totalTasks: 1, completedTasks: 0, failedTasks: 1 });
    expect(result('slow').success).toBe(false);
    expect(result('slow').error).toMatch(/timed out/);
  });

  it('applies workerTimeout from PATCH /config to batches submitted afterwards', async () => {
    await setConfig({ workerTimeout: 100 });
    const tasks = [
      { id: 'slow', type: 'sleep', data: { ms: 5000 } },
      // A task's own timeout overrides the fleet's.
      { id: 'patient', type: 'sleep', timeout: 10_000, data: { ms: 300 } },
      { id: 'quick', type: 'echo', data: 'hi' },
    ];

    const { status, result } = await runBatch(tasks);

    expect(status).toMatchObject({ status: 'partial', totalTasks: 3, completedTasks: 2, failedTasks: 1 });
    expect(result('slow').success).toBe(false);
    expect(result('slow').error).toMatch(/timed out/);
    expect(result('patient')).toMatchObject({ success: true, attempts: 1 });
    expect(result('quick')).toMatchObject({ success: true, result: 'hi' });
  });
});

describe('unknown task types', () => {
  it('fails only that task, naming the type, without retrying', async () => {
    const tasks = [
      { id: 'a', type: 'echo', data: 1 },
      { id: 'mystery', type: 'transcode-video', data: {} },
      { id: 'b', type: 'echo', data: 2 },
    ];

    const { status, result } = await runBatch(tasks);

    expect(status).toMatchObject({ status: 'partial', totalTasks: 3, completedTasks: 2, failedTasks: 1 });
    expect(result('mystery')).toMatchObject({ success: false, attempts: 1 });
    expect(result('mystery').error).toMatch(/unknown task type/i);
    expect(result('mystery').error).toContain('"transcode-video"');
    expect(result('a')).toMatchObject({ success: true, result: 1 });
    expect(result('b')).toMatchObject({ success: true, result: 2 });
  });
});

describe('a large batch', () => {
  // 4,000 tasks, not 20,000: what this shows is by count and holds at this size too. 4,000 results are
  // ~125 in each of the 32 result shards, so every page of 1,000 spans several shards and the read takes
  // at least 4 pages; 4,000 random counter adds reach all 16 of the batch's counters (counterShardsFor; a counter is
  // missed with probability (15/16)^4000, about 1e-112). The 32,000-task run is test/local/tasks-files-large.
  it('runs 4,000 tasks with exact totals and pages through every result', async () => {
    const total = 4_000;
    await setConfig({ maxConcurrentWorkers: 200 });
    const tasks = Array.from({ length: total }, (_, i) => ({ id: `t${i}`, type: 'echo', data: i }));

    const { batchId } = await submit(tasks);
    // A bound, not a timing assertion: CI runs other heavy files beside it on 2 cores.
    const status = await waitForBatch(url, batchId, 300_000, 250);
    const { results, pageSizes } = await readAllResults(url, batchId, 1000);

    expect(status).toMatchObject({ status: 'completed', totalTasks: total, completedTasks: total, failedTasks: 0, progress: 1 });
    expect(Math.max(...pageSizes)).toBeLessThanOrEqual(1000);
    expect(pageSizes.length).toBeGreaterThanOrEqual(total / 1000);
    const ids = new Set(results.map((r) => r.taskId));
    expect(results).toHaveLength(total);
    expect(ids.size).toBe(total);
    expect(ids).toEqual(new Set(tasks.map((t) => t.id)));
    expect(results.every((r) => r.success && r.attempts === 1 && r.result === Number(r.taskId.slice(1)))).toBe(true);
  });
});

describe('bad input', () => {
  let batchId = '';

  beforeAll(async () => {
    const { batchId: id } = await submit([{ id: 'x', type: 'echo', data: null }]);
    await waitForBatch(url, id);
    batchId = id;
  });

  const validTask = { id: 'a', type: 'echo', data: 1 };
  const fiveMiB = 5 * 1024 * 1024;

  interface Case {
    name: string;
    method: string;
    path: () => string;
    body?: () => unknown;
    status: number;
    code: string;
    /** The field the message (and `field`) must name. */
    field?: string;
  }

  const submitCases: Case[] = [
    { name: 'malformed JSON', method: 'POST', path: () => '/batches', body: () => '{"tasks": [', status: 400, code: 'validation_error', field: 'body' },
    { name: 'an empty body', method: 'POST', path: () => '/batches', body: () => '', status: 400, code: 'validation_error', field: 'body' },
    { name: 'a JSON array body', method: 'POST', path: () => '/batches', body: () => [validTask], status: 400, code: 'validation_error', field: 'body' },
    { name: '{}', method: 'POST', path: () => '/batches', body: () => ({}), status: 400, code: 'validation_error', field: 'tasks' },
    { name: 'no tasks', method: 'POST', path: () => '/batches', body: () => ({ tasks: [] }), status: 400, code: 'validation_error', field: 'tasks' },
    {
      name: 'duplicate ids',
      method: 'POST',
      path: () => '/batches',
      body: () => ({ tasks: [validTask, { ...validTask, data: 2 }] }),
      status: 400,
      code: 'validation_error',
      field: 'tasks[1].id',
    },
    {
      name: 'a numeric type',
      method: 'POST',
      path: () => '/batches',
      body: () => ({ tasks: [{ id: 'a', type: 7, data: 1 }] }),
      status: 400,
      code: 'validation_error',
      field: 'tasks[0].type',
    },
    {
      name: 'an unknown top-level field',
      method: 'POST',
      path: () => '/batches',
      body: () => ({ tasks: [validTask], callbackUrl: 'http://example.com' }),
      status: 400,
      code: 'validation_error',
      field: 'callbackUrl',
    },
    {
      name: 'an unknown task field',
      method: 'POST',
      path: () => '/batches',
      body: () => ({ tasks: [{ ...validTask, colour: 'red' }] }),
      status: 400,
      code: 'validation_error',
      field: 'tasks[0].colour',
    },
    {
      name: 'a too-long id',
      method: 'POST',
      path: () => '/batches',
      body: () => ({ tasks: [{ ...validTask, id: 'i'.repeat(257) }] }),
      status: 400,
      code: 'validation_error',
      field: 'tasks[0].id',
    },
    {
      name: 'an oversize task',
      method: 'POST',
      path: () => '/batches',
      body: () => ({ tasks: [validTask, { id: 'big', type: 'echo', data: 'x'.repeat(33 * 1024) }] }),
      status: 400,
      code: 'validation_error',
      field: 'tasks[1]',
    },
    {
      name: 'a body over 5 MiB',
      method: 'POST',
      path: () => '/batches',
      body: () => JSON.stringify({ tasks: [{ id: 'a', type: 'echo', data: 'x'.repeat(fiveMiB) }] }),
      status: 413,
      code: 'payload_too_large',
    },
  ];

  const readCases: Case[] = [
    { name: 'limit=0 on results', method: 'GET', path: () => `/batches/${batchId}/results?limit=0`, status: 400, code: 'validation_error', field: 'limit' },
    { name: 'limit=abc on results', method: 'GET', path: () => `/batches/${batchId}/results?limit=abc`, status: 400, code: 'validation_error', field: 'limit' },
    { name: 'limit=1001 on results', method: 'GET', path: () => `/batches/${batchId}/results?limit=1001`, status: 400, code: 'validation_error', field: 'limit' },
    {
      name: 'an invalid results cursor',
      method: 'GET',
      path: () => `/batches/${batchId}/results?cursor=not-a-cursor`,
      status: 400,
      code: 'validation_error',
      field: 'cursor',
    },
    { name: 'limit=0 on the list', method: 'GET', path: () => '/batches?limit=0', status: 400, code: 'validation_error', field: 'limit' },
    { name: 'an invalid list cursor', method: 'GET', path: () => '/batches?cursor=%7B%7D', status: 400, code: 'validation_error', field: 'cursor' },
    { name: 'an unknown batch id', method: 'GET', path: () => '/batches/no-such-batch', status: 404, code: 'not_found' },
    { name: 'results of an unknown batch id', method: 'GET', path: () => '/batches/no-such-batch/results', status: 404, code: 'not_found' },
    { name: 'a batch id with bad characters', method: 'GET', path: () => '/batches/bad!id', status: 400, code: 'validation_error', field: 'batchId' },
    { name: 'a batch id with a dot', method: 'GET', path: () => '/batches/bad.id/results', status: 400, code: 'validation_error', field: 'batchId' },
    { name: 'an unknown route', method: 'GET', path: () => '/nope', status: 404, code: 'not_found' },
    { name: 'DELETE /batches', method: 'DELETE', path: () => '/batches', status: 405, code: 'method_not_allowed' },
    { name: 'PUT /batches/{id}', method: 'PUT', path: () => `/batches/${batchId}`, body: () => ({}), status: 405, code: 'method_not_allowed' },
    {
      name: 'an out-of-range config value',
      method: 'PATCH',
      path: () => '/config',
      body: () => ({ maxConcurrentWorkers: 0 }),
      status: 400,
      code: 'validation_error',
      field: 'maxConcurrentWorkers',
    },
  ];

  it.each([...submitCases, ...readCases])('rejects $name with $status', async (c) => {
    const response = await api<ApiErrorBody>(url, c.method, c.path(), c.body?.());

    expect(response.status, response.text).toBe(c.status);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.body.error.code).toBe(c.code);
    expect(response.body.error.message).toEqual(expect.any(String));
    expect(response.body.error.message.length).toBeGreaterThan(0);
    if (c.field) {
      expect(response.body.error.message).toContain(c.field);
      expect(response.body.error.field).toBe(c.field);
    }
    // Never a stack trace.
    expect(response.text).not.toMatch(/\n\s+at /);
  });

  it('stores nothing for rejected submissions or config patches', async () => {
    const before = await listAllBatches(url);
    const configBefore = await api<FleetManagerConfig>(url, 'GET', '/config');

    for (const c of submitCases) {
      const response = await api(url, c.method, c.path(), c.body?.());
      expect(response.status, c.name).toBe(c.status);
    }
    const badPatch = await api(url, 'PATCH', '/config', { workerTimeout: 1, bogus: true });
    expect(badPatch.status).toBe(400);

    const after = await listAllBatches(url);
    const configAfter = await api<FleetManagerConfig>(url, 'GET', '/config');
    expect(before.batches.length).toBeGreaterThan(0);
    expect(after.batches.map((b) => b.batchId)).toEqual(before.batches.map((b) => b.batchId));
    expect(configAfter.body).toEqual(configBefore.body);
  });
});

describe('listing batches', () => {
  it('lists newest first and pages with limit and nextCursor', async () => {
    const before = await listAllBatches(url);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { batchId } = await submit([{ id: `list-${i}`, type: 'echo', data: i }]);
      ids.push(batchId);
      // createdAt has ms resolution: keep the three apart.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    for (const id of ids) await waitForBatch(url, id);

    const firstPage = await api<{ batches: BatchStatus[]; nextCursor: string | null }>(url, 'GET', '/batches?limit=2');
    const all = await listAllBatches(url, 2);

    expect(firstPage.status).toBe(200);
    expect(firstPage.body.batches).toHaveLength(2);
    expect(firstPage.body.nextCursor).toEqual(expect.any(String));
    expect(firstPage.body.batches.map((b) => b.batchId)).toEqual([ids[2], ids[1]]);
    expect(Math.max(...all.pageSizes)).toBeLessThanOrEqual(2);
    const listed = all.batches.map((b) => b.batchId);
    expect(new Set(listed).size).toBe(listed.length);
    expect(listed.slice(0, 3)).toEqual([...ids].reverse());
    expect(listed).toEqual([...[...ids].reverse(), ...before.batches.map((b) => b.batchId)]);
    const created = all.batches.map((b) => b.createdAt);
    expect(created).toEqual([...created].sort((a, b) => b - a));
    expect(all.batches[0]).toMatchObject({ batchId: ids[2], status: 'completed', totalTasks: 1, completedTasks: 1, failedTasks: 0, progress: 1 });
  });

  it('answers GET /healthz', async () => {
    const response = await api<{ ok: boolean }>(url, 'GET', '/healthz');

    expect(response.status).toBe(200);
    expect(response.body).toEqual({ ok: true });
  });
});

describe('priority', () => {
  it('runs higher priority first and keeps submission order among ties', async () => {
    await setConfig({ maxConcurrentWorkers: 1 });
    const tasks: SubmittedTask[] = [
      { id: 'low-a', type: 'sleep', priority: 0, data: { ms: 20 } },
      { id: 'high-a', type: 'sleep', priority: 10, data: { ms: 20 } },
      { id: 'low-b', type: 'sleep', data: { ms: 20 } },
      { id: 'mid', type: 'sleep', priority: 5, data: { ms: 20 } },
      { id: 'high-b', type: 'sleep', priority: 10, data: { ms: 20 } },
      { id: 'negative', type: 'sleep', priority: -1, data: { ms: 20 } },
      { id: 'low-c', type: 'sleep', priority: 0, data: { ms: 20 } },
    ];

    const { status, results } = await runBatch(tasks);

    expect(status).toMatchObject({ status: 'completed', totalTasks: tasks.length, completedTasks: tasks.length });
    const finished = [...results].sort((a, b) => a.timestamp - b.timestamp).map((r) => r.taskId);
    expect(finished).toEqual(['high-a', 'high-b', 'mid', 'low-a', 'low-b', 'low-c', 'negative']);
    // One at a time: no two results recorded in the same instant.
    expect(new Set(results.map((r) => r.timestamp)).size).toBe(tasks.length);
  });
});
