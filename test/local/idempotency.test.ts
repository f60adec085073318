/**
 * Idempotent submission end to end: `POST /batches` with an
 * `Idempotency-Key`, through HTTP, on the local fleet (dynalite, the local
 * Step Functions runner, the real handlers).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { dynamo } from '../../lambdas/adapters/clients';
import { DynamoIdempotencyStore } from '../../lambdas/adapters/idempotency-store';
import { fingerprintSubmitRequest, hashIdempotencyKey } from '../../lambdas/domain/idempotency';
import { parseSubmitRequest } from '../../lambdas/domain/schemas';
import type { BatchStatus } from '../../lambdas/domain/types';
import { api, listAllBatches, readAllResults, waitForBatch, type ApiErrorBody } from './helpers';

let fleet: LocalFleet | undefined;
let url = '';

/** POST /batches with an Idempotency-Key header. */
const submitWithKey = <T = BatchStatus>(key: string, body: unknown) => api<T>(url, 'POST', '/batches', body, { 'idempotency-key': key });

const echoTasks = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}`, type: 'echo', data: { i, prefix } }));

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1 });
  url = fleet.url;
});

afterAll(async () => {
  await fleet?.close();
});

describe('POST /batches with an Idempotency-Key', () => {
  it('answers a repeat with the same batch (200, its status now) and starts nothing new', async () => {
    // Arrange
    const body = { tasks: echoTasks('repeat', 3) };
    const before = await api<{ totalBatches: number }>(url, 'GET', '/stats');

    // Act
    const first = await submitWithKey('order-42', body);
    const second = await submitWithKey('order-42', body);
    const final = await waitForBatch(url, first.body.batchId);
    const afterFinish = await submitWithKey('order-42', body);
    const stats = await api<{ totalBatches: number }>(url, 'GET', '/stats');
    const { batches } = await listAllBatches(url);

    // Assert
    expect(first.status, first.text).toBe(202);
    expect(first.body).toMatchObject({ status: 'pending', totalTasks: 3, completedTasks: 0 });
    expect(second.status, second.text).toBe(200);
    expect(second.body.batchId).toBe(first.body.batchId);
    expect(second.body.totalTasks).toBe(3);
    expect(second.body.createdAt).toBe(first.body.createdAt);
    expect(final.status).toBe('completed');
    expect(afterFinish.status).toBe(200);
    expect(afterFinish.body).toEqual(final);
    expect(batches.filter((b) => b.batchId === first.body.batchId)).toHaveLength(1);
    expect(stats.body.totalBatches).toBe(before.body.totalBatches + 1);
    const { results } = await readAllResults(url, first.body.batchId);
    expect(results).toHaveLength(3);
  });

  it('refuses the same key with a different body: 409, and no batch is created', async () => {
    // Arrange
    const original = await submitWithKey('reused-key', { tasks: echoTasks('one', 1) });
    const countBefore = (await listAllBatches(url)).batches.length;

    // Act
    const conflict = await submitWithKey<ApiErrorBody>('reused-key', { tasks: echoTasks('two', 1) });

    // Assert
    expect(original.status).toBe(202);
    expect(conflict.status, conflict.text).toBe(409);
    expect(conflict.body.error.code).toBe('conflict');
    expect(conflict.body.error.message).toMatch(/^Idempotency-Key: this key was already used with a different request body/);
    expect((await listAllBatches(url)).batches.length).toBe(countBefore);
  });

  it('lets 12 concurrent identical sends race: one 202, eleven 200, one batch', async () => {
    // Arrange
    const body = { tasks: echoTasks('race', 4), priority: 3 };
    const countBefore = (await listAllBatches(url)).batches.length;

    // Act
    const responses = await Promise.all(Array.from({ length: 12 }, () => submitWithKey('race-key', body)));

    // Assert
    const ids = new Set(responses.map((r) => r.body.batchId));
    expect(ids.size, responses.map((r) => r.text).join('\n')).toBe(1);
    expect(responses.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 202]);
    const [batchId] = [...ids] as [string];
    expect((await waitForBatch(url, batchId)).status).toBe('completed');
    expect((await listAllBatches(url)).batches.length).toBe(countBefore + 1);
    expect((await readAllResults(url, batchId)).results.map((r) => r.taskId).sort()).toEqual(['race-0', 'race-1', 'race-2', 'race-3']);
  });

  it('completes a submission whose first send crashed after claiming the key: the claim’s batch id runs', async () => {
    // Arrange: a claim as the first send left it, with no batch behind it.
    const body = { tasks: echoTasks('crashed', 2) };
    const store = new DynamoIdempotencyStore(dynamo(), process.env.TABLE_NAME ?? '');
    const now = Date.now();
    const claimed = await store.claim({
      keyHash: hashIdempotencyKey('crashed-key'),
      bodyHash: fingerprintSubmitRequest(parseSubmitRequest(body)),
      batchId: 'crashed-batch-1',
      state: 'creating',
      createdAt: now,
      expiresAt: Math.floor(now / 1000) + 3600,
    });
    expect(claimed.claimed).toBe(true);

    // Act
    const retry = await submitWithKey('crashed-key', body);
    const final = await waitForBatch(url, 'crashed-batch-1');

    // Assert
    expect(retry.status, retry.text).toBe(202);
    expect(retry.body.batchId).toBe('crashed-batch-1');
    expect(final).toMatchObject({ status: 'completed', totalTasks: 2, completedTasks: 2 });
  });

  it('refuses a key whose batch was deleted: 409 naming the batch, nothing recreated', async () => {
    // Arrange
    const body = { tasks: echoTasks('deleted', 1) };
    const first = await submitWithKey('deleted-key', body);
    await waitForBatch(url, first.body.batchId);
    expect((await api(url, 'DELETE', `/batches/${first.body.batchId}`)).status).toBe(200);

    // Act
    const again = await submitWithKey<ApiErrorBody>('deleted-key', body);

    // Assert
    expect(again.status, again.text).toBe(409);
    expect(again.body.error.message).toContain(`batch ${first.body.batchId} was submitted with this key and no longer exists`);
    expect((await api(url, 'GET', `/batches/${first.body.batchId}`)).status).toBe(404);
  });

  it.each([
    ['empty', ''],
    ['129 characters', 'k'.repeat(129)],
    ['only spaces', '   '],
    ['a non-ASCII character', 'clé'],
  ])('rejects a key that is %s: 400 naming the header', async (_label, key) => {
    const response = await submitWithKey<ApiErrorBody>(key, { tasks: echoTasks('bad-key', 1) });

    expect(response.status, response.text).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'validation_error', field: 'Idempotency-Key' });
    expect(response.body.error.message).toBe('Idempotency-Key: must be 1 to 128 printable ASCII characters');
  });

  it('accepts a key of exactly 128 printable characters', async () => {
    const key = '!~ aZ09'.repeat(19).slice(0, 128);

    const response = await submitWithKey(key, { tasks: echoTasks('long-key', 1) });

    expect(response.status, response.text).toBe(202);
  });

  it('checks the body before the key is claimed: a rejected body does not use the key up', async () => {
    const bad = await submitWithKey<ApiErrorBody>('fix-me', { tasks: [{ id: 'x', type: 'echo', data: 1, extra: true }] });
    const good = await submitWithKey('fix-me', { tasks: echoTasks('fixed', 1) });

    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe('tasks[0].extra');
    expect(good.status, good.text).toBe(202);
  });
});
