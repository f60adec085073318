/**
 * Nobody let in, nothing leaked, in local mode:
 * - the server binds loopback unless a bearer token is set, and then every
 *   API request without that exact token gets 401 and changes nothing;
 * - a cursor or batch id cannot read another batch's data, and a tampered
 *   cursor is a 400;
 * - the fleet's own logs never carry task data;
 * - a hostile web page in the user's browser (cross-site requests, "simple"
 *   text/plain bodies, DNS rebinding) changes nothing on a fleet without a
 *   token, while the fleet's own origin and clients still work.
 *
 * This file's fleet listens on all interfaces, which it may only do because
 * it has a token; requests reach it through 127.0.0.1.
 */
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
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

/**
 * One request with exactly these headers (fetch would not let a test set
 * Host, and adds its own Sec-Fetch-Mode); `host` defaults to 127.0.0.1:<port>.
 */
function rawRequest(
  baseUrl: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<{ status: number; text: string; json: { error?: { code: string; message: string; field?: string } } & Record<string, unknown> }> {
  const target = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: Number(target.port), method, path, headers: { ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}), ...headers }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json = {};
          try {
            json = text ? (JSON.parse(text) as object) : {};
          } catch {
            json = {};
          }
          resolve({ status: res.statusCode ?? 0, text, json: json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, host: '0.0.0.0', token: TOKEN, inMemory: true, retryUnitMs: 1, allowedHosts: ['fleet.test'] });
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

describe('host names with a token on a non-loopback address', () => {
  const bearer = () => ({ authorization: `Bearer ${TOKEN}` });

  it('serves the bind address, loopback names and the allowedHosts option, with or without the port', async () => {
    const port = new URL(url).port;
    for (const host of [`0.0.0.0:${port}`, '127.0.0.1', `localhost:${port}`, `[::1]:${port}`, 'fleet.test', `FLEET.test:${port}`]) {
      const answer = await rawRequest(url, 'GET', '/config', { host, ...bearer() });
      expect(answer.status, `${host}: ${answer.text}`).toBe(200);
    }
  });

  it('refuses any other Host with 421 naming it, even with the right token', async () => {
    for (const host of ['rebind.evil.example', 'fleet.test.evil.example', '127.0.0.1.nip.io', `evil.example:${new URL(url).port}`, 'localhost.', '127.0.0.1:3000:1']) {
      const answer = await rawRequest(url, 'GET', '/config', { host, ...bearer() });
      expect(answer.status, `${host}: ${answer.text}`).toBe(421);
      expect(answer.json.error).toMatchObject({ code: 'misdirected_request', field: 'Host' });
    }
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

describe('hostile web pages, against a fleet on loopback without a token', () => {
  // The default setup (`npm start`): nothing but these checks keeps a page in the user's browser out.
  let open: LocalFleet | undefined;
  let base = '';
  let port = '';
  let savedAllowedHosts: string | undefined;

  const json = 'application/json';
  const maxWorkers = async () => (await rawRequest(base, 'GET', '/config')).json.maxConcurrentWorkers;
  const batchCount = async () => ((await rawRequest(base, 'GET', '/batches')).json.batches as unknown[]).length;
  const batchBody = JSON.stringify({ tasks: [{ id: 'from-a-page', type: 'echo', data: 1 }] });

  beforeAll(async () => {
    // Names configured through the environment, as `npm start` reads them.
    savedAllowedHosts = process.env.FLEET_ALLOWED_HOSTS;
    process.env.FLEET_ALLOWED_HOSTS = ' env-one.test , env-two.test';
    try {
      open = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1 });
    } finally {
      if (savedAllowedHosts === undefined) delete process.env.FLEET_ALLOWED_HOSTS;
      else process.env.FLEET_ALLOWED_HOSTS = savedAllowedHosts;
    }
    base = open.url;
    port = new URL(base).port;
    expect(new URL(base).hostname).toBe('127.0.0.1');
  });

  afterAll(async () => {
    await open?.close();
  });

  it('refuses a cross-site text/plain POST /workers/scale from https://evil.example (403 naming Origin), and the cap stays', async () => {
    // Arrange
    const before = await maxWorkers();
    expect(typeof before).toBe('number');
    const count = Number(before) + 7;

    // Act: what <form enctype="text/plain"> or fetch(..., {mode: 'no-cors'}) on evil.example sends.
    const answer = await rawRequest(
      base,
      'POST',
      '/workers/scale',
      { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site', 'content-type': 'text/plain' },
      JSON.stringify({ count }),
    );

    // Assert
    expect(answer.status, answer.text).toBe(403);
    expect(answer.json.error).toMatchObject({ code: 'forbidden', field: 'Origin' });
    expect(answer.json.error?.message).toContain('Origin');
    expect(await maxWorkers()).toBe(before);
  });

  it('refuses a POST /batches with a text/plain body (415 naming Content-Type), and no batch is made', async () => {
    const before = await batchCount();
    for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'application/json-patch+json']) {
      const answer = await rawRequest(base, 'POST', '/batches', { 'content-type': type }, batchBody);
      expect(answer.status, `${type}: ${answer.text}`).toBe(415);
      expect(answer.json.error).toMatchObject({ code: 'unsupported_media_type', field: 'Content-Type' });
    }
    const none = await rawRequest(base, 'POST', '/batches', {}, batchBody);
    expect(none.status, none.text).toBe(415);
    const patch = await rawRequest(base, 'PATCH', '/config', { 'content-type': 'text/plain' }, JSON.stringify({ maxConcurrentWorkers: 3 }));
    expect(patch.status, patch.text).toBe(415);
    expect(await batchCount()).toBe(before);
  });

  it('refuses DNS rebinding: Host rebind.evil.example gets 421 on reads, writes and the dashboard, and changes nothing', async () => {
    const [workersBefore, batchesBefore] = [await maxWorkers(), await batchCount()];
    const host = `rebind.evil.example:${port}`;
    // Rebound, the page is "same origin" with the fleet, so its requests look like the fleet's own.
    const sameOrigin = { host, origin: `http://${host}`, 'sec-fetch-site': 'same-origin', 'content-type': json };
    const attempts = [
      await rawRequest(base, 'GET', '/config', { host }),
      await rawRequest(base, 'GET', '/', { host }),
      await rawRequest(base, 'POST', '/workers/scale', sameOrigin, JSON.stringify({ count: Number(workersBefore) + 3 })),
      await rawRequest(base, 'POST', '/batches', sameOrigin, batchBody),
    ];
    for (const answer of attempts) {
      expect(answer.status, answer.text).toBe(421);
      expect(answer.json.error).toMatchObject({ code: 'misdirected_request', field: 'Host' });
      expect(answer.json.error?.message).toContain('rebind.evil.example');
    }
    expect(await maxWorkers()).toBe(workersBefore);
    expect(await batchCount()).toBe(batchesBefore);
  });

  it('refuses Sec-Fetch-Site cross-site and same-site (403 naming it), even with a JSON body and no Origin', async () => {
    const [workersBefore, batchesBefore] = [await maxWorkers(), await batchCount()];
    for (const site of ['cross-site', 'same-site', 'Cross-Site']) {
      const scale = await rawRequest(base, 'POST', '/workers/scale', { 'sec-fetch-site': site, 'content-type': json }, JSON.stringify({ count: Number(workersBefore) + 5 }));
      const submit = await rawRequest(base, 'POST', '/batches', { 'sec-fetch-site': site, 'content-type': json }, batchBody);
      const read = await rawRequest(base, 'GET', '/config', { 'sec-fetch-site': site });
      for (const answer of [scale, submit, read]) {
        expect(answer.status, `${site}: ${answer.text}`).toBe(403);
        expect(answer.json.error).toMatchObject({ code: 'forbidden', field: 'Sec-Fetch-Site' });
      }
    }
    expect(await maxWorkers()).toBe(workersBefore);
    expect(await batchCount()).toBe(batchesBefore);
  });

  it("refuses other origins: another port on localhost, https, and the opaque 'null' origin", async () => {
    const before = await maxWorkers();
    for (const origin of [`http://localhost:${Number(port) + 1}`, `https://127.0.0.1:${port}`, 'null', `http://127.0.0.1:${port}.evil.example`]) {
      const answer = await rawRequest(base, 'POST', '/workers/scale', { origin, 'content-type': json }, JSON.stringify({ count: Number(before) + 1 }));
      expect(answer.status, `${origin}: ${answer.text}`).toBe(403);
      expect(answer.json.error?.field).toBe('Origin');
    }
    expect(await maxWorkers()).toBe(before);
  });

  it("lets the same requests through from the fleet's own origin, under every loopback name and the configured ones", async () => {
    const before = Number(await maxWorkers());
    const own = [
      { host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}` },
      { host: `localhost:${port}`, origin: `http://localhost:${port}` },
      { host: `[::1]:${port}`, origin: `http://[::1]:${port}` },
      // Names from FLEET_ALLOWED_HOSTS, trimmed.
      { host: `env-one.test:${port}`, origin: `http://env-one.test:${port}` },
      { host: 'env-two.test', origin: 'http://env-two.test' },
    ];
    let count = before;
    for (const { host, origin } of own) {
      count += 1;
      const headers = { host, origin, 'sec-fetch-site': 'same-origin', 'content-type': 'application/json; charset=utf-8' };
      const scale = await rawRequest(base, 'POST', '/workers/scale', headers, JSON.stringify({ count }));
      expect(scale.status, `${host}: ${scale.text}`).toBe(200);
      expect(scale.json.maxConcurrentWorkers).toBe(count);
    }
    expect(await maxWorkers()).toBe(count);

    const batchesBefore = await batchCount();
    const submit = await rawRequest(base, 'POST', '/batches', { origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin', 'content-type': 'Application/JSON' }, batchBody);
    expect(submit.status, submit.text).toBe(202);
    // A client that is not a browser sends neither Origin nor Sec-Fetch-Site; a typed-in address is Sec-Fetch-Site: none.
    expect((await rawRequest(base, 'POST', '/batches', { 'content-type': json }, batchBody)).status).toBe(202);
    expect((await rawRequest(base, 'GET', '/', { 'sec-fetch-site': 'none' })).status).toBe(200);
    // A POST without a body needs no Content-Type.
    expect((await rawRequest(base, 'POST', '/batches/no-such-batch/cancel', { origin: `http://localhost:${port}` })).status).toBe(200);
    expect(await batchCount()).toBe(batchesBefore + 2);

    // A name configured nowhere is still refused on this fleet (fleet.test belongs to the other one).
    expect((await rawRequest(base, 'GET', '/config', { host: 'fleet.test' })).status).toBe(421);
  });

  it('refuses a malformed FLEET_ALLOWED_HOSTS entry at start, naming it', async () => {
    await expect(startLocalFleet({ port: 0, inMemory: true, allowedHosts: ['http://fleet.test:3000/'] })).rejects.toThrow('"http://fleet.test:3000/" is not a host name');
  });
});
