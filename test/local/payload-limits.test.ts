/**
 * The API's size limits hold as they would on AWS, where the API function's
 * event and response are each capped at Lambda's 6 MB, and API Gateway's
 * integration timeout: end to end through HTTP on a local fleet.
 *
 * Pages:
 * - LAMBDA_QUOTAS: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
 * - PAYLOAD_V2: https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
 * - HTTP_API_QUOTAS: https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html
 * - HTTP_API_LAMBDA: https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-troubleshooting-lambda.html
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { DynamoBatchRepository } from '../../lambdas/adapters/batch-repository';
import { dynamo } from '../../lambdas/adapters/clients';
import { LIMITS } from '../../lambdas/domain/config';
import type { TaskResult } from '../../lambdas/domain/types';
import { batchRecord } from '../unit/handler-fixtures';
import { api, type ApiErrorBody } from './helpers';

const LAMBDA_QUOTAS = 'https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html';
const PAYLOAD_V2 = 'https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html';
const HTTP_API_QUOTAS = 'https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html';
const HTTP_API_LAMBDA = 'https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-troubleshooting-lambda.html';

const SIX_MB = 6 * 1024 * 1024;
const INTEGRATION_TIMEOUT_MS = 300;
let fleet: LocalFleet;

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1, dashboard: false });
});

afterAll(async () => {
  await (fleet as LocalFleet | undefined)?.close();
});

/** What the API function's result weighs as Lambda returns it: the whole structured result, serialized. */
const lambdaResponseBytes = (text: string) => Buffer.byteLength(JSON.stringify({ statusCode: 200, headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }, body: text }));

describe(`a results page stays under Lambda's 6 MB response (${LAMBDA_QUOTAS})`, () => {
  it('GET /batches/{id}/results?limit=1000 stops before 6 MB and returns a cursor; paging returns every result exactly once', async () => {
    // Large results, quote-heavy so they double once escaped into the response's body string.
    const repository = new DynamoBatchRepository(dynamo(), process.env.TABLE_NAME ?? '');
    const batchId = `large-results-${Date.now()}`;
    const total = 150;
    await repository.createBatch({ ...batchRecord(batchId, 'completed', total), createdAt: Date.now() });
    const expiresAt = Math.floor(Date.now() / 1000) + 3600;
    const big = '"'.repeat(20_000);
    for (let i = 0; i < total; i += 25) {
      await Promise.all(
        Array.from({ length: Math.min(25, total - i) }, (_, j) => {
          const result: TaskResult = { taskId: `t${String(i + j).padStart(3, '0')}`, success: true, result: { big }, duration: 1, timestamp: Date.now(), attempts: 1, workerId: 'test' };
          return repository.recordResult(batchId, result, expiresAt);
        }),
      );
    }

    const seen: string[] = [];
    const pageSizes: number[] = [];
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<typeof api<{ results: TaskResult[]; nextCursor: string | null }>>> = await api(
        fleet.url,
        'GET',
        `/batches/${batchId}/results?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(page.status).toBe(200);
      expect(lambdaResponseBytes(page.text)).toBeLessThanOrEqual(SIX_MB);
      seen.push(...page.body.results.map((r) => r.taskId));
      pageSizes.push(page.body.results.length);
      cursor = page.body.nextCursor;
      expect(pageSizes.length).toBeLessThan(20);
    } while (cursor);

    // All 150 in one page would be about 12 MB once escaped: the page was cut, more than once.
    expect(pageSizes.length).toBeGreaterThan(1);
    expect(pageSizes[0]).toBeLessThan(total);
    expect(seen).toHaveLength(total);
    expect(new Set(seen).size).toBe(total);
  });
});

describe(`request bodies are measured as the API event carries them (${PAYLOAD_V2}, ${LAMBDA_QUOTAS})`, () => {
  it('a 2.8 MB body of escaped quotes is 5.6 MB inside the event: Fleet answers 413 payload_too_large, naming the limit', async () => {
    const body = JSON.stringify({ tasks: [{ id: 'a', type: 'echo', data: '"'.repeat(1_400_000) }] });
    expect(Buffer.byteLength(body)).toBeLessThan(LIMITS.bodyBytes);
    const response = await api<ApiErrorBody>(fleet.url, 'POST', '/batches', body);
    expect(response.status).toBe(413);
    expect(response.body.error.code).toBe('payload_too_large');
    expect(response.body.error.message).toContain(`larger than ${LIMITS.bodyBytes} bytes as the API event carries it`);
    expect(response.body.error.message).toContain(`${SIX_MB} bytes`);
  });

  it(`a 5.2 MB body of escaped quotes makes an event over 6 MB: Lambda refuses it and API Gateway answers 500 {"message":"Internal Server Error"} (${HTTP_API_LAMBDA})`, async () => {
    const body = JSON.stringify({ tasks: [{ id: 'a', type: 'echo', data: '"'.repeat(2_600_000) }] });
    expect(Buffer.byteLength(body)).toBeLessThan(10 * 1024 * 1024);
    const response = await api(fleet.url, 'POST', '/batches', body);
    expect(response.status).toBe(500);
    expect(response.body).toEqual({ message: 'Internal Server Error' });
  });
});

describe(`API Gateway's integration timeout (${HTTP_API_QUOTAS})`, () => {
  // A fleet of its own: a short timeout would cut the large reads above.
  let shortFleet: LocalFleet;
  beforeAll(async () => {
    shortFleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1, dashboard: false, apiIntegrationTimeoutMs: INTEGRATION_TIMEOUT_MS });
  });
  afterAll(async () => {
    await (shortFleet as LocalFleet | undefined)?.close();
  });

  it('an API function still running at the timeout (startLocalFleet apiIntegrationTimeoutMs) gets 503 {"message":"Service Unavailable"}', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let blocked = 0;
    const original = shortFleet.lambda.invokeFunction.bind(shortFleet.lambda);
    // The API function blocks until released: the handler route never answers in time.
    const spy = vi.spyOn(shortFleet.lambda, 'invokeFunction').mockImplementation(async (name, payload) => {
      blocked++;
      await gate;
      return original(name, payload);
    });
    try {
      const response = await api(shortFleet.url, 'GET', '/healthz');
      expect(blocked).toBe(1);
      expect(response.status).toBe(503);
      expect(response.body).toEqual({ message: 'Service Unavailable' });
    } finally {
      spy.mockRestore();
      release();
    }
    expect((await api(shortFleet.url, 'GET', '/healthz')).status).toBe(200);
  });
});
