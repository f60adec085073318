/**
 * What the steering dashboard reads, against real local fleets: the results
 * filters (`?status=`, `?taskIdPrefix=`), one task by id with its history
 * (`GET /batches/{id}/tasks/{taskId}`), the timeline (`GET /stats/timeline`),
 * in the API, FleetClient and the CLI; and `fleet dashboard`, the loopback
 * proxy, in front of a second fleet that needs a bearer token (standing in
 * for a deployed fleet's SigV4).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { FleetClient, type TaskDetail } from '../../client';
import { main, type CliIo } from '../../client/cli';
import type { Timeline } from '../../lambdas/domain/timeline';
import type { TaskResult } from '../../lambdas/domain/types';
import { startFleetProcess, signalAndWait, type FleetProcess } from './fleet-process';
import { api, waitForBatch, waitUntil, type ApiErrorBody } from './helpers';

let fleet: LocalFleet;
let client: FleetClient;
/** A finished partial batch: 6 successes (ids `ok-0`..`ok-5`), 3 failures (`bad-0`..`bad-2`), and one id with `/` and `#`. */
let batchId: string;
const ODD_ID = 'dir/sub#1';

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1 });
  client = new FleetClient({ url: fleet.url, auth: { type: 'none' } });
  await client.updateConfig({ maxRetries: 0 });
  batchId = await client.submitBatch([
    ...Array.from({ length: 6 }, (_, i) => ({ id: `ok-${i}`, type: 'echo', data: { i } })),
    ...Array.from({ length: 3 }, (_, i) => ({ id: `bad-${i}`, type: 'fail', data: { message: `no ${i}` } })),
    { id: ODD_ID, type: 'echo', data: { odd: true } },
  ]);
  expect(await waitForBatch(fleet.url, batchId)).toMatchObject({ status: 'partial', completedTasks: 7, failedTasks: 3 });
});

afterAll(async () => {
  await (fleet as LocalFleet | undefined)?.close();
});

const ids = (results: readonly TaskResult[]) => results.map((r) => r.taskId).sort();

describe('GET /batches/{id}/results filters', () => {
  it('?status=failed and ?status=succeeded return only those, in the API, the client and the CLI', async () => {
    const failed = await api<{ results: TaskResult[]; nextCursor: string | null }>(fleet.url, 'GET', `/batches/${batchId}/results?status=failed`);
    expect(failed.status).toBe(200);
    expect(ids(failed.body.results)).toEqual(['bad-0', 'bad-1', 'bad-2']);
    expect(failed.body.results.every((r) => !r.success && r.error === `no ${r.taskId.slice(4)}`)).toBe(true);

    expect(ids(await client.getBatchResults(batchId, { status: 'succeeded' }))).toEqual([ODD_ID, ...Array.from({ length: 6 }, (_, i) => `ok-${i}`)].sort());
    expect(ids(await client.getBatchResults(batchId, { status: 'failed', pageSize: 1 }))).toEqual(['bad-0', 'bad-1', 'bad-2']);

    const cli = await runCli(['results', batchId, '--failed', '--json', '--url', fleet.url]);
    expect(cli.code).toBe(0);
    expect(ids(JSON.parse(cli.stdout) as TaskResult[])).toEqual(['bad-0', 'bad-1', 'bad-2']);
    const table = await runCli(['results', batchId, '--succeeded', '--url', fleet.url]);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain('7 results: 7 succeeded, 0 failed');
    expect((await runCli(['results', batchId, '--succeeded', '--failed', '--url', fleet.url])).code).toBe(2);
  });

  it('paging a filter: pages of at most `limit` matches, every match once', async () => {
    const seen: string[] = [];
    let cursor: string | null | undefined;
    for (let pages = 0; cursor !== null; pages++) {
      expect(pages).toBeLessThan(40);
      const page = await client.getResultPage(batchId, { status: 'failed', limit: 2, ...(cursor ? { cursor } : {}) });
      expect(page.results.length).toBeLessThanOrEqual(2);
      seen.push(...page.results.map((r) => r.taskId));
      cursor = page.nextCursor;
    }
    expect(seen.sort()).toEqual(['bad-0', 'bad-1', 'bad-2']);
  });

  it('?taskIdPrefix= finds tasks by the start of their id, and combines with status', async () => {
    expect(ids(await client.getBatchResults(batchId, { taskIdPrefix: 'ok-' }))).toEqual(Array.from({ length: 6 }, (_, i) => `ok-${i}`));
    expect(ids(await client.getBatchResults(batchId, { taskIdPrefix: 'dir/' }))).toEqual([ODD_ID]);
    expect(ids(await client.getBatchResults(batchId, { taskIdPrefix: 'b', status: 'succeeded' }))).toEqual([]);
    expect(ids(await client.getBatchResults(batchId, { taskIdPrefix: 'bad-1', status: 'failed' }))).toEqual(['bad-1']);
  });

  it('refuses bad values with a 400 naming the field', async () => {
    for (const [query, field] of [
      ['status=ok', 'status'],
      ['status=FAILED', 'status'],
      [`taskIdPrefix=${'x'.repeat(257)}`, 'taskIdPrefix'],
      ['taskIdPrefix=%01', 'taskIdPrefix'],
      ['status=failed&limit=0', 'limit'],
      ['status=failed&cursor=nope!', 'cursor'],
    ] as const) {
      const response = await api<ApiErrorBody>(fleet.url, 'GET', `/batches/${batchId}/results?${query}`);
      expect({ query, status: response.status, field: response.body.error.field }).toEqual({ query, status: 400, field });
    }
    // A cursor of one prefix cannot continue another (its key would fall outside the key condition).
    const page = await client.getResultPage(batchId, { taskIdPrefix: 'ok-', limit: 1 });
    expect(page.nextCursor).not.toBeNull();
    const crossed = await api<ApiErrorBody>(fleet.url, 'GET', `/batches/${batchId}/results?taskIdPrefix=bad-&cursor=${page.nextCursor}`);
    expect(crossed.status).toBe(400);
    expect(crossed.body.error.field).toBe('cursor');
  });
});

describe('GET /batches/{id}/tasks/{taskId}', () => {
  it('returns the task as submitted, its result, and (after retry-failed) its earlier failure', async () => {
    const ok = await client.getTask(batchId, 'ok-3');
    expect(ok).toMatchObject({ batchId, taskId: 'ok-3', task: { id: 'ok-3', type: 'echo', data: { i: 3 } }, result: { taskId: 'ok-3', success: true }, failedAttempts: [] });
    expect((await client.getTask(batchId, ODD_ID)).task).toEqual({ id: ODD_ID, type: 'echo', data: { odd: true } });

    const before = await client.getTask(batchId, 'bad-1');
    expect(before.result).toMatchObject({ success: false, error: 'no 1' });
    expect(await client.retryFailed(batchId)).toMatchObject({ mode: 'execution', retry: 1, retriedTasks: 3 });
    expect(await client.waitForBatch(batchId, { intervalMs: 25 })).toMatchObject({ status: 'partial', failedTasks: 3 });

    const after = await client.getTask(batchId, 'bad-1');
    expect(after.task).toEqual({ id: 'bad-1', type: 'fail', data: { message: 'no 1' } });
    expect(after.result).toMatchObject({ success: false, error: 'no 1' });
    // The first run's failure, as it was recorded, kept with the retry that cleared it.
    expect(after.failedAttempts).toEqual([{ ...before.result, retry: 1 }]);
    expect(after.result?.timestamp).toBeGreaterThan(before.result?.timestamp ?? Infinity);
    const cli = await runCli(['task', batchId, 'bad-1', '--url', fleet.url]);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(/earlier failures \(cleared by retry-failed\):[\s\S]*\n1 +1 +/);
  });

  it('404 for an unknown task or batch; 400 naming taskId for an id no batch can hold', async () => {
    const unknownTask = await api<ApiErrorBody>(fleet.url, 'GET', `/batches/${batchId}/tasks/nope`);
    expect(unknownTask.status).toBe(404);
    expect(unknownTask.body.error.message).toContain('task nope not found');
    expect((await api(fleet.url, 'GET', '/batches/no-such-batch/tasks/ok-1')).status).toBe(404);
    for (const bad of ['%01', 'x'.repeat(257)]) {
      const response = await api<ApiErrorBody>(fleet.url, 'GET', `/batches/${batchId}/tasks/${bad}`);
      expect(response.status).toBe(400);
      expect(response.body.error.field).toBe('taskId');
    }
    const detail = await api<TaskDetail>(fleet.url, 'GET', `/batches/${batchId}/tasks/${encodeURIComponent(ODD_ID)}`);
    expect(detail.body.taskId).toBe(ODD_ID);
  });
});

describe('GET /stats/timeline', () => {
  it('counts tasks per minute from one snapshot a minute: what finished since the first read is in the buckets', async () => {
    const first = await client.getTimeline();
    expect(first.minuteMs).toBe(60_000);
    expect(first.buckets).toHaveLength(60);
    expect(first.buckets.at(-1)?.start).toBe(Math.floor(Date.now() / 60_000) * 60_000);
    const counted = (timeline: Timeline) =>
      timeline.buckets.reduce((sum, b) => ({ succeeded: sum.succeeded + (b.succeeded ?? 0), failed: sum.failed + (b.failed ?? 0) }), { succeeded: 0, failed: 0 });
    const base = counted(first);

    const next = await client.submitBatch([
      ...Array.from({ length: 4 }, (_, i) => ({ id: `t${i}`, type: 'echo', data: {} })),
      { id: 'f', type: 'fail', data: { message: 'x' } },
    ]);
    await waitForBatch(fleet.url, next);
    // The batch's counts reach the totals at its finish; read until they show.
    const after = await waitUntil(async () => {
      const timeline = await client.getTimeline({ minutes: 5 });
      const sum = counted(timeline);
      return sum.succeeded - base.succeeded >= 4 ? { timeline, sum } : undefined;
    });
    expect(after.timeline.buckets).toHaveLength(5);
    expect(after.sum.succeeded - base.succeeded).toBe(4);
    expect(after.sum.failed - base.failed).toBe(1);
  });

  it('refuses minutes outside 1-60 naming the field', async () => {
    for (const minutes of ['0', '61', 'x', '-1']) {
      const response = await api<ApiErrorBody>(fleet.url, 'GET', `/stats/timeline?minutes=${minutes}`);
      expect(response.status).toBe(400);
      expect(response.body.error.field).toBe('minutes');
    }
  });
});

describe('fleet dashboard: the page for another fleet, on loopback, its calls forwarded with the credentials', () => {
  const UPSTREAM_TOKEN = 'upstream-token';
  let upstream: FleetProcess;
  let dataDir: string;
  let stop: AbortController;
  let running: Promise<CliResult>;
  let proxy: { url: string; upstream: string };

  beforeAll(async () => {
    // Its own process: two fleets in one process would share the handlers' module-scope clients, hence their tables.
    dataDir = mkdtempSync(path.join(tmpdir(), 'fleet-upstream-'));
    upstream = await startFleetProcess(dataDir, { FLEET_TOKEN: UPSTREAM_TOKEN, FLEET_IN_MEMORY: '1' });
    stop = new AbortController();
    const stdout = new Capture();
    running = runCli(['dashboard', '--url', upstream.url, '--token', UPSTREAM_TOKEN, '--json'], stop.signal, stdout);
    proxy = JSON.parse(await waitUntil(() => stdout.text.split('\n').find((line) => line.startsWith('{')))) as typeof proxy;
  });
  afterAll(async () => {
    (stop as AbortController | undefined)?.abort();
    await running;
    if (upstream as FleetProcess | undefined) await signalAndWait(upstream, 'SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  });

  const session = () => new URL(proxy.url).searchParams.get('token') ?? '';
  const origin = () => new URL(proxy.url).origin;
  const viaProxy = <T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    api<T>(origin(), method, path, body, { authorization: `Bearer ${session()}`, ...headers });

  it('binds 127.0.0.1, serves the page, and forwards reads and writes with the upstream token', async () => {
    expect(new URL(proxy.url).hostname).toBe('127.0.0.1');
    expect(proxy.upstream).toBe(upstream.url);
    expect(session()).toMatch(/^[0-9a-f]{64}$/);
    const page = await fetch(`${origin()}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("connect-src 'self'");

    // It is the other fleet that answers: it has none of this file's batches.
    const listed = await viaProxy<{ batches: { batchId: string }[] }>('GET', '/batches');
    expect(listed.body.batches.map((b) => b.batchId)).not.toContain(batchId);
    const scaled = await viaProxy<{ maxConcurrentWorkers: number }>('POST', '/workers/scale', { count: 7 });
    expect(scaled.status).toBe(200);
    expect((await client.getConfig()).maxConcurrentWorkers).not.toBe(7);
    const direct = await api<{ maxConcurrentWorkers: number }>(upstream.url, 'GET', '/config', undefined, { authorization: `Bearer ${UPSTREAM_TOKEN}` });
    expect(direct.body.maxConcurrentWorkers).toBe(7);
    const submitted = await viaProxy<{ batchId: string }>('POST', '/batches', { tasks: [{ id: 'a', type: 'echo', data: {} }] }, { 'idempotency-key': 'proxy-k' });
    expect(submitted.status).toBe(202);
    const again = await viaProxy<{ batchId: string }>('POST', '/batches', { tasks: [{ id: 'a', type: 'echo', data: {} }] }, { 'idempotency-key': 'proxy-k' });
    expect(again.body.batchId).toBe(submitted.body.batchId);
    // The API's refusals come through as they are, field and all.
    const refused = await viaProxy<ApiErrorBody>('GET', `/batches/${submitted.body.batchId}/results?status=nope`);
    expect(refused.status).toBe(400);
    expect(refused.body.error.field).toBe('status');
  });

  it('refuses calls without its session token, other Hosts, other origins and non-JSON bodies, before forwarding', async () => {
    const cap = async () => (await api<{ maxConcurrentWorkers: number }>(upstream.url, 'GET', '/config', undefined, { authorization: `Bearer ${UPSTREAM_TOKEN}` })).body.maxConcurrentWorkers;
    const before = await cap();
    expect((await api(origin(), 'GET', '/stats')).status).toBe(401);
    // Even with the upstream's own token: only the session token opens the proxy.
    expect((await api(origin(), 'GET', '/stats', undefined, { authorization: `Bearer ${UPSTREAM_TOKEN}` })).status).toBe(401);
    // fetch will not send another Host: node:http will, as a rebinding page's browser does.
    const rebound = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = http.request(
        { host: '127.0.0.1', port: Number(new URL(origin()).port), path: '/stats', headers: { host: 'rebind.evil.example', authorization: `Bearer ${session()}` }, agent: false },
        (response) => {
          let body = '';
          response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
          response.on('end', () => { resolve({ status: response.statusCode ?? 0, body }); });
        },
      );
      request.on('error', reject);
      request.end();
    });
    expect([rebound.status, (JSON.parse(rebound.body) as ApiErrorBody).error.field]).toEqual([421, 'Host']);
    const crossSite = await viaProxy<ApiErrorBody>('POST', '/workers/scale', { count: 1 }, { origin: 'https://evil.example' });
    expect([crossSite.status, crossSite.body.error.field]).toEqual([403, 'Origin']);
    const plain = await viaProxy<ApiErrorBody>('POST', '/workers/scale', '{"count":1}', { 'content-type': 'text/plain' });
    expect([plain.status, plain.body.error.field]).toEqual([415, 'Content-Type']);
    // None of the refused writes reached the fleet.
    expect(await cap()).toBe(before);
  });

  it('a fleet it cannot reach is a 502 naming it', async () => {
    const down = new AbortController();
    const out = new Capture();
    const run = runCli(['dashboard', '--url', 'http://127.0.0.1:9', '--json'], down.signal, out);
    const started = JSON.parse(await waitUntil(() => out.text.split('\n').find((line) => line.startsWith('{')))) as typeof proxy;
    const token = new URL(started.url).searchParams.get('token') ?? '';
    const response = await api<ApiErrorBody>(new URL(started.url).origin, 'GET', '/stats', undefined, { authorization: `Bearer ${token}` });
    down.abort();
    expect((await run).code).toBe(0);
    expect(response.status).toBe(502);
    expect(response.body.error).toMatchObject({ code: 'bad_gateway', message: expect.stringContaining('http://127.0.0.1:9') });
  });
});

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString('utf8');
    done();
  }
}

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function runCli(argv: string[], interrupt?: AbortSignal, stdout = new Capture()): Promise<CliResult> {
  const stderr = new Capture();
  const io: CliIo = { stdout, stderr, stdin: process.stdin, env: {}, ...(interrupt ? { interrupt } : {}) };
  const code = await main(argv, io);
  return { code, stdout: stdout.text, stderr: stderr.text };
}
