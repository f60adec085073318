/**
 * FleetClient's transport, with a fake fetch: URLs and headers it sends,
 * how it maps answers to typed errors, and which requests it retries.
 * The methods themselves are exercised against a real local fleet in
 * test/local/client.test.ts.
 */
import { describe, expect, it, vi } from 'vitest';
import { FleetApiError, FleetClient, FleetNetworkError, type BatchStatus } from '../../client';

interface Sent {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/** A fetch that records each request and answers from `answers` in turn (the last one repeats). */
function fakeFetch(...answers: (Response | Error | (() => Response))[]) {
  const sent: Sent[] = [];
  const fetch = vi.fn(async (input: string | URL | Request, init?: RequestInit) => {
    sent.push({
      url: typeof input === 'string' ? input : input instanceof URL ? input.href : input.url,
      method: init?.method ?? 'GET',
      headers: { ...(init?.headers as Record<string, string>) },
      body: init?.body as string | undefined,
    });
    const answer = answers[Math.min(sent.length - 1, answers.length - 1)]!;
    if (answer instanceof Error) throw answer;
    return typeof answer === 'function' ? answer() : answer.clone();
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, sent };
}

const jsonResponse = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

const STATUS: BatchStatus = {
  batchId: 'b1',
  status: 'pending',
  totalTasks: 1,
  completedTasks: 0,
  failedTasks: 0,
  progress: 0,
  createdAt: 1,
  startedAt: null,
  completedAt: null,
};

describe('requests', () => {
  it('keeps a path prefix (an API Gateway stage) and percent-encodes batch ids', async () => {
    const { fetch, sent } = fakeFetch(jsonResponse(200, STATUS));
    const client = new FleetClient({ url: 'https://api.example.com/prod/', fetch, env: {} });
    expect(client.url).toBe('https://api.example.com/prod');

    await client.getBatchStatus('a/b c');

    expect(sent[0]?.url).toBe('https://api.example.com/prod/batches/a%2Fb%20c');
  });

  it('submitBatch sends the tasks, the batch priority and the Idempotency-Key header', async () => {
    const { fetch, sent } = fakeFetch(jsonResponse(202, STATUS));
    const client = new FleetClient<{ n: number }>({ url: 'http://127.0.0.1:3000', fetch, env: {} });

    const batchId = await client.submitBatch([{ id: 't1', type: 'echo', data: { n: 1 } }], { priority: 7, idempotencyKey: 'order-42' });

    expect(batchId).toBe('b1');
    expect(sent[0]).toMatchObject({ method: 'POST', url: 'http://127.0.0.1:3000/batches' });
    expect(sent[0]?.headers).toMatchObject({ 'content-type': 'application/json', 'idempotency-key': 'order-42' });
    expect(JSON.parse(sent[0]?.body ?? '')).toEqual({ tasks: [{ id: 't1', type: 'echo', data: { n: 1 } }], priority: 7 });
  });

  it('sends no priority unless asked, and a generated Idempotency-Key (a random UUID) when given none', async () => {
    const { fetch, sent } = fakeFetch(jsonResponse(202, STATUS));
    await new FleetClient({ fetch, env: {} }).submitBatch([{ id: 't1', type: 'echo', data: null }]);
    expect(sent[0]?.headers['idempotency-key']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(JSON.parse(sent[0]?.body ?? '')).toEqual({ tasks: [{ id: 't1', type: 'echo', data: null }] });
  });

  it('reads FLEET_URL and FLEET_TOKEN from the environment, and defaults to local mode', async () => {
    const fromEnv = fakeFetch(jsonResponse(200, { ok: 1 }));
    await new FleetClient({ fetch: fromEnv.fetch, env: { FLEET_URL: 'http://fleet.internal:8080', FLEET_TOKEN: 'tok' } }).getStats();
    expect(fromEnv.sent[0]).toMatchObject({ url: 'http://fleet.internal:8080/stats', headers: { authorization: 'Bearer tok' } });

    const local = fakeFetch(jsonResponse(200, { ok: 1 }));
    await new FleetClient({ fetch: local.fetch, env: {} }).getStats();
    expect(local.sent[0]?.url).toBe('http://127.0.0.1:3000/stats');
    expect(local.sent[0]?.headers).not.toHaveProperty('authorization');
  });

  it('signs requests to an execute-api URL with SigV4 by default', async () => {
    const { fetch, sent } = fakeFetch(jsonResponse(200, { ok: 1 }));
    const client = new FleetClient({
      url: 'https://abc123.execute-api.us-west-2.amazonaws.com',
      fetch,
      env: {},
      auth: { type: 'sigv4', region: 'us-west-2', credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'x' } },
    });
    await client.getConfig();
    expect(sent[0]?.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDTEST\/\d{8}\/us-west-2\/execute-api\/aws4_request, /);
    expect(sent[0]?.headers['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
  });

  it('rejects a URL that is not http(s)', () => {
    expect(() => new FleetClient({ url: 'ftp://x', env: {} })).toThrow(/http or https/);
    expect(() => new FleetClient({ url: 'not a url', env: {} })).toThrow(/not a valid URL/);
  });
});

describe('errors', () => {
  it("maps the API's error envelope to FleetApiError with code, status and field", async () => {
    const { fetch } = fakeFetch(jsonResponse(400, { error: { code: 'validation_error', message: 'tasks[0].id: must not be empty', field: 'tasks[0].id' } }));
    const error = await new FleetClient({ fetch, env: {} }).submitBatch([{ id: '', type: 'echo', data: 1 }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FleetApiError);
    expect(error).toMatchObject({ status: 400, code: 'validation_error', field: 'tasks[0].id', message: 'tasks[0].id: must not be empty', request: 'POST /batches' });
  });

  it("derives a code from the status for API Gateway's own answers", async () => {
    const { fetch } = fakeFetch(jsonResponse(403, { message: 'The security token included in the request is invalid.' }));
    const error = await new FleetClient({ fetch, env: {} }).getStats().catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'FleetApiError', status: 403, code: 'forbidden', message: 'The security token included in the request is invalid.' });
  });

  it('a 2xx answer that is not JSON is a FleetNetworkError (not the Fleet API)', async () => {
    const { fetch } = fakeFetch(() => new Response('<html>hello</html>', { status: 200 }));
    const error = await new FleetClient({ fetch, env: {} }).getStats().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FleetNetworkError);
  });
});

describe('retries', () => {
  it('retries a GET after a network error or a 503, then succeeds', async () => {
    const { fetch, sent } = fakeFetch(new TypeError('fetch failed'), jsonResponse(503, { message: 'Service Unavailable' }), jsonResponse(200, STATUS));
    const status = await new FleetClient({ fetch, env: {}, maxRetries: 2 }).getBatchStatus('b1');
    expect(status).toEqual(STATUS);
    expect(sent).toHaveLength(3);
  });

  it('gives up after maxRetries with the last error', async () => {
    const { fetch, sent } = fakeFetch(jsonResponse(502, { message: 'Bad Gateway' }));
    const error = await new FleetClient({ fetch, env: {}, maxRetries: 1 }).getStats().catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 502, code: 'server_error', retryable: true });
    expect(sent).toHaveLength(2);
  });

  it('never retries a 4xx or a cancel', async () => {
    const notFound = fakeFetch(jsonResponse(404, { error: { code: 'not_found', message: 'batch x not found' } }));
    await new FleetClient({ fetch: notFound.fetch, env: {} }).getBatchStatus('x').catch(() => undefined);
    expect(notFound.sent).toHaveLength(1);

    const cancel = fakeFetch(jsonResponse(503, {}));
    await new FleetClient({ fetch: cancel.fetch, env: {} }).cancelBatch('x').catch(() => undefined);
    expect(cancel.sent).toHaveLength(1);

    const rejected = fakeFetch(jsonResponse(400, { error: { code: 'validation_error', message: 'tasks: required', field: 'tasks' } }));
    await new FleetClient({ fetch: rejected.fetch, env: {} }).submitBatch([]).catch(() => undefined);
    expect(rejected.sent).toHaveLength(1);
  });

  it('retries a submit given no key after a 503 with the key it generated, and gives the next submit another key', async () => {
    // Arrange: the first attempt of the first submit meets a 503, everything else is accepted.
    const { fetch, sent } = fakeFetch(jsonResponse(503, { message: 'Service Unavailable' }), jsonResponse(202, STATUS));
    const client = new FleetClient({ fetch, env: {}, maxRetries: 2 });
    const tasks = [{ id: 'a', type: 'echo', data: 1 }];

    // Act
    const first = await client.submitBatch(tasks);
    const second = await client.submitBatch(tasks);

    // Assert: three requests; the retry repeats the first key, the separate submit does not.
    expect([first, second]).toEqual(['b1', 'b1']);
    expect(sent).toHaveLength(3);
    const keys = sent.map((s) => s.headers['idempotency-key']);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[1]).toBe(keys[0]);
    expect(keys[2]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[2]).not.toBe(keys[0]);
    // The body is the same on the retry, so the API recognizes it as a repeat rather than a conflict.
    expect(sent[1]?.body).toBe(sent[0]?.body);
  });

  it('retries a submit after a network error too, with the same generated key', async () => {
    const { fetch, sent } = fakeFetch(new TypeError('fetch failed'), jsonResponse(202, STATUS));
    await new FleetClient({ fetch, env: {} }).submitBatch([{ id: 'a', type: 'echo', data: 1 }]);
    expect(sent).toHaveLength(2);
    expect(sent[1]?.headers['idempotency-key']).toBe(sent[0]?.headers['idempotency-key']);
  });

  it('retries a submit that carries an idempotency key: the API answers a repeat with the same batch', async () => {
    const { fetch, sent } = fakeFetch(new TypeError('fetch failed'), jsonResponse(202, STATUS));
    const batchId = await new FleetClient({ fetch, env: {} }).submitBatch([{ id: 'a', type: 'echo', data: 1 }], { idempotencyKey: 'k1' });
    expect(batchId).toBe('b1');
    expect(sent).toHaveLength(2);
    expect(sent.map((s) => s.headers['idempotency-key'])).toEqual(['k1', 'k1']);
  });
});
