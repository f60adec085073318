/**
 * Nobody let in, nothing leaked, in local mode:
 * - the server binds loopback unless a bearer token is set, and then every
 *   API request without that exact token gets 401 and changes nothing;
 * - a cursor or batch id cannot read another batch's data, and a tampered
 *   cursor is a 400;
 * - the fleet's own logs never carry task data.
 *
 * This file's fleet listens on all interfaces, which it may only do because
 * it has a token; requests reach it through 127.0.0.1.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { bearerTokenMatches } from '../../infra/local/http-api';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import type { BatchStatus, TaskResult } from '../../lambdas/domain/types';
import { api, type ApiResponse } from './helpers';

const TOKEN = randomBytes(24).toString('base64url');
let fleet: LocalFleet | undefined;
let url = '';

async function call<T = unknown>(method: string, path: string, options: { token?: string | null; authorization?: string; body?: unknown } = {}): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = {};
  if (options.authorization !== undefined) headers.authorization = options.authorization;
  else if (options.token !== null) headers.authorization = `Bearer ${options.token ?? TOKEN}`;
  return api<T>(url, method, path, options.body, headers);
}

async function runBatch(prefix: string, count: number): Promise<string> {
  const tasks = Array.from({ length: count }, (_, i) => ({ id: `${prefix}-${String(i).padStart(3, '0')}`, type: 'echo', data: { owner: prefix, i } }));
  const submitted = await call<BatchStatus>('POST', '/batches', { body: { tasks } });
  expect(submitted.status, submitted.text).toBe(202);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const status = await call<BatchStatus>('GET', `/batches/${submitted.body.batchId}`);
    if (status.body.status === 'completed') return submitted.body.batchId;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`batch ${prefix} did not complete`);
}

async function allResults(batchId: string, firstCursor?: string): Promise<TaskResult[]> {
  const results: TaskResult[] = [];
  let cursor: string | null | undefined = firstCursor;
  for (let page = 0; page < 1000; page++) {
    const answer: ApiResponse<{ results: TaskResult[]; nextCursor: string | null }> = await call(
      'GET',
      `/batches/${batchId}/results?limit=7${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    expect(answer.status, answer.text).toBe(200);
    results.push(...answer.body.results);
    cursor = answer.body.nextCursor;
    if (!cursor) return results;
  }
  throw new Error('pagination did not end');
}

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, host: '0.0.0.0', token: TOKEN, inMemory: true, retryUnitMs: 1 });
  url = `http://127.0.0.1:${new URL(fleet.url).port}`;
});

afterAll(async () => {
  await fleet?.close();
});

describe('binding', () => {
  it.each(['0.0.0.0', '::', '192.0.2.10', '127.0.0.2'])('refuses to listen on %s without a token, before starting anything', async (host) => {
    await expect(startLocalFleet({ port: 0, host, inMemory: true })).rejects.toThrow(
      `refusing to listen on ${host} without a token: set FLEET_TOKEN, or bind 127.0.0.1`,
    );
  });

  it('listens on 0.0.0.0 once a token is set (this file’s fleet)', async () => {
    expect(new URL(fleet?.url ?? '').hostname).toBe('0.0.0.0');
    expect((await call('GET', '/healthz')).status).toBe(200);
  });
});

describe('the bearer token', () => {
  const routes: [string, string, unknown?][] = [
    ['GET', '/healthz'],
    ['GET', '/batches'],
    ['POST', '/batches', { tasks: [{ id: 'sneaky', type: 'echo', data: 1 }] }],
    ['GET', '/batches/some-batch'],
    ['GET', '/batches/some-batch/results'],
    ['GET', '/batches/some-batch/summary'],
    ['POST', '/batches/some-batch/cancel'],
    ['DELETE', '/batches/some-batch'],
    ['GET', '/config'],
    ['PATCH', '/config', { maxConcurrentWorkers: 1 }],
    ['POST', '/workers/scale', { count: 1 }],
    ['GET', '/workers'],
    ['GET', '/stats'],
    ['GET', '/no/such/route'],
  ];
  const wrong: [string, { token?: string | null; authorization?: string }][] = [
    ['no Authorization header', { token: null }],
    ['an empty token', { token: '' }],
    ['a wrong token of the same length', { token: TOKEN.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')) }],
    ['the token with one character more', { token: `${TOKEN}x` }],
    ['a prefix of the token', { token: TOKEN.slice(0, -1) }],
    ['the token without the Bearer scheme', { authorization: TOKEN }],
    ['the token under another scheme', { authorization: `Basic ${TOKEN}` }],
    ['the token with a doubled space', { authorization: `Bearer  ${TOKEN}` }],
  ];

  it.each(wrong)('answers every API route with 401 and changes nothing, given %s', async (_label, credentials) => {
    const configBefore = await call('GET', '/config');
    const batchesBefore = await call('GET', '/batches');

    for (const [method, path, body] of routes) {
      const answer = await call<{ error: { code: string; message: string } }>(method, path, { ...credentials, body });
      expect(answer.status, `${method} ${path}: ${answer.text}`).toBe(401);
      expect(answer.body.error).toEqual({ code: 'unauthorized', message: 'send Authorization: Bearer <token>' });
      expect(answer.headers.get('www-authenticate')).toBe('Bearer');
    }

    expect((await call('GET', '/config')).text).toBe(configBefore.text);
    expect((await call('GET', '/batches')).text).toBe(batchesBefore.text);
  });

  it('does not take the token from the query string', async () => {
    expect((await call('GET', `/healthz?token=${TOKEN}`, { token: null })).status).toBe(401);
  });

  it('lets the right token through on every route', async () => {
    expect((await call('GET', '/healthz')).status).toBe(200);
    expect((await call('GET', '/config')).status).toBe(200);
    expect((await call('GET', '/batches/some-batch')).status).toBe(404);
  });

  it('compares tokens exactly (bearerTokenMatches, a constant-time comparison of hashes)', () => {
    expect(bearerTokenMatches(`Bearer ${TOKEN}`, TOKEN)).toBe(true);
    expect(bearerTokenMatches(undefined, TOKEN)).toBe(false);
    expect(bearerTokenMatches('', TOKEN)).toBe(false);
    expect(bearerTokenMatches(`bearer ${TOKEN}`, TOKEN)).toBe(false);
    expect(bearerTokenMatches(`Bearer ${TOKEN} `, TOKEN)).toBe(false);
    expect(bearerTokenMatches(`Bearer ${TOKEN}`.repeat(1000), TOKEN)).toBe(false);
  });
});

describe('cursors and batch ids', () => {
  let batchA = '';
  let batchB = '';
  let resultsA: TaskResult[] = [];
  let resultsB: TaskResult[] = [];

  beforeAll(async () => {
    // Ids chosen to fall on the same shards in both batches, so a cursor from A is a valid position in B.
    batchA = await runBatch('a', 40);
    batchB = await runBatch('b', 40);
    resultsA = await allResults(batchA);
    resultsB = await allResults(batchB);
    expect(resultsA).toHaveLength(40);
    expect(resultsB).toHaveLength(40);
  });

  it("never returns A's results when A's cursors are used on B: B's own partitions are the only ones read", async () => {
    // Arrange: every cursor A's pagination hands out.
    const cursorsOfA: string[] = [];
    let cursor: string | null = null;
    do {
      const page: ApiResponse<{ nextCursor: string | null }> = await call('GET', `/batches/${batchA}/results?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      cursor = page.body.nextCursor;
      if (cursor) cursorsOfA.push(cursor);
    } while (cursor);
    expect(cursorsOfA.length).toBeGreaterThan(5);

    // Act and assert
    const idsOfB = new Set(resultsB.map((r) => r.taskId));
    for (const cursorOfA of cursorsOfA) {
      const seen = await allResults(batchB, cursorOfA);
      for (const result of seen) {
        expect(result.taskId.startsWith('b-'), `cursor ${cursorOfA} on B returned ${result.taskId}`).toBe(true);
        expect(idsOfB.has(result.taskId)).toBe(true);
        expect(result.result).toEqual({ owner: 'b', i: Number(result.taskId.slice(2)) });
      }
    }
  });

  it("reads only B's data with a forged cursor that names A's partition or task ids", async () => {
    const forged = [
      { s: 0, k: 'a-000' },
      { s: 5, pk: `BATCH#${batchA}#S05` },
      { s: 0, k: 'a-039', batchId: batchA },
      { s: 0, k: `../BATCH#${batchA}` },
    ].map((value) => Buffer.from(JSON.stringify(value)).toString('base64url'));

    for (const cursor of forged) {
      const answer = await call<{ results: TaskResult[] }>('GET', `/batches/${batchB}/results?limit=1000&cursor=${encodeURIComponent(cursor)}`);
      expect(answer.status, answer.text).toBe(200);
      expect(answer.body.results.every((r) => r.taskId.startsWith('b-'))).toBe(true);
    }
  });

  it('rejects tampered and foreign cursors with 400 naming the cursor', async () => {
    const page = await call<{ nextCursor: string }>('GET', `/batches/${batchA}/results?limit=2`);
    const listPage = await call<{ nextCursor: string }>('GET', '/batches?limit=1');
    const real = page.body.nextCursor;
    const b64 = (text: string) => Buffer.from(text).toString('base64url');
    const tampered = [
      real.slice(0, Math.floor(real.length / 2)),
      `${real}!`,
      b64('{"s":32}'),
      b64('{"s":-1}'),
      b64('{"s":1.5}'),
      b64('{"s":"0"}'),
      b64('{"s":0,"k":""}'),
      b64('{"s":0,"k":123}'),
      b64(`{"s":0,"k":"${'k'.repeat(257)}"}`),
      b64('[]'),
      b64('null'),
      b64('not json'),
      'A'.repeat(3000),
      listPage.body.nextCursor, // a GET /batches cursor is not a results cursor
    ];
    const tamperedList = [real, b64('{"sk":"","id":""}'), b64(`{"sk":"x","id":"${batchA}"}`), b64('{"sk":"000000000000001#a","id":"../x"}')];

    for (const cursor of tampered) {
      const answer = await call<{ error: { code: string; field: string } }>('GET', `/batches/${batchB}/results?cursor=${encodeURIComponent(cursor)}`);
      expect(answer.status, `${cursor}: ${answer.text}`).toBe(400);
      expect(answer.body.error).toMatchObject({ code: 'validation_error', field: 'cursor' });
    }
    for (const cursor of tamperedList) {
      const answer = await call<{ error: { field: string } }>('GET', `/batches?cursor=${encodeURIComponent(cursor)}`);
      expect(answer.status, `${cursor}: ${answer.text}`).toBe(400);
      expect(answer.body.error.field).toBe('cursor');
    }
  });

  it('rejects batch ids that try to reach other keys (400), and answers 404 for one that names nothing', async () => {
    for (const id of [`${batchA}%23S00`, `BATCH%23${batchA}`, `${batchA}%2Fresults`, '%00', 'a'.repeat(81), '%E2%80%AE']) {
      const answer = await call('GET', `/batches/${id}/results`);
      expect(answer.status, `${id}: ${answer.text}`).toBe(400);
    }
    expect((await call('GET', `/batches/${batchA.slice(0, -1)}/results`)).status).toBe(404);
    // A dot segment is resolved before routing, as URLs are: it leaves the batch routes altogether.
    expect((await call('GET', '/batches/%2E%2E/results')).status).toBe(404);
  });
});

describe('logs', () => {
  it('never carry task data: a batch with a marker in every task leaves no trace of it in stdout or stderr', async () => {
    // Arrange: capture everything the process prints while the batch runs.
    const marker = `SECRET-${randomBytes(8).toString('hex')}`;
    const printed: string[] = [];
    const capture = (chunk: unknown) => {
      printed.push(String(chunk));
      return true;
    };
    vi.spyOn(process.stdout, 'write').mockImplementation(capture);
    vi.spyOn(process.stderr, 'write').mockImplementation(capture);
    for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) vi.spyOn(console, level).mockImplementation((...args) => printed.push(args.map(String).join(' ')));

    try {
      // Act: successes, retries, final failures and a rejected request, each carrying the marker.
      const tasks = [
        { id: 'echo', type: 'echo', data: { marker } },
        { id: 'retried', type: 'sleep', data: { ms: 1, failTimes: 1, value: marker } },
        { id: 'failed', type: 'sleep', data: { ms: 1, failTimes: 99, value: marker } },
        { id: 'unknown', type: 'no-such-type', data: { marker } },
      ];
      const submitted = await call<BatchStatus>('POST', '/batches', { body: { tasks } });
      await call('POST', '/batches', { body: { tasks: [{ id: 'bad', type: 'echo', data: { marker }, extra: marker }] } });
      const deadline = Date.now() + 60_000;
      let status = '';
      while (Date.now() < deadline && !['completed', 'partial', 'failed'].includes(status)) {
        status = (await call<BatchStatus>('GET', `/batches/${submitted.body.batchId}`)).body.status;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      const results = await allResults(submitted.body.batchId);

      // Assert: the marker went through (it is in the results), and nowhere into the logs.
      expect(status).toBe('partial');
      expect(JSON.stringify(results)).toContain(marker);
    } finally {
      vi.restoreAllMocks();
    }
    expect(printed.filter((line) => line.includes(marker))).toEqual([]);
  });
});
