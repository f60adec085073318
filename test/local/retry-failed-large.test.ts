/**
 * retry-failed on a batch of 100,000 failed tasks. API Gateway gives a
 * request 30 s (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html);
 * clearing 100,000 failed results takes far longer, so the request only
 * claims and queues the retry, and the retry's own Start batch prepares it.
 * The retry still runs every task again exactly once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import type { RetryFailedResult } from '../../lambdas/domain/retry-failed';
import type { BatchStatus } from '../../lambdas/domain/types';
import { api, readAllResults, waitForBatch } from './helpers';

let fleet: LocalFleet;

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1 });
});
afterAll(async () => {
  await (fleet as LocalFleet | undefined)?.close();
});

const TASKS = 100_000;

describe('retry-failed with 100,000 failed tasks', () => {
  it('answers at once (the request clears nothing), then reruns every failed task once, with exact counts', async () => {
    // Worker listing is not what this test is about: listing long attempts only spares its 200,000
    // short failing attempts a registry put and delete each (stats-workers.test.ts covers listing).
    expect((await api(fleet.url, 'PATCH', '/config', { maxRetries: 0, maxConcurrentWorkers: 200, workerListing: 'long-attempts' })).status).toBe(200);
    const tasks = Array.from({ length: TASKS }, (_, i) => ({ id: String(i), type: 'fail' }));
    const submitted = await api<BatchStatus>(fleet.url, 'POST', '/batches', { tasks });
    expect(submitted.status).toBe(202);
    const batchId = submitted.body.batchId;
    expect(await waitForBatch(fleet.url, batchId, 600_000, 500)).toMatchObject({ status: 'failed', completedTasks: 0, failedTasks: TASKS });

    // Act
    const retried = await api<RetryFailedResult>(fleet.url, 'POST', `/batches/${batchId}/retry-failed`);

    // Assert: the answer counts the tasks from the batch's exact final counts; the work is the retry's.
    expect(retried.status).toBe(202);
    expect(retried.body).toEqual({ batchId, mode: 'execution', retry: 1, retriedTasks: TASKS, executionName: `${batchId}-retry-1`, status: 'pending' });
    expect(await waitForBatch(fleet.url, batchId, 900_000, 500)).toMatchObject({ status: 'failed', completedTasks: 0, failedTasks: TASKS });
    const { results } = await readAllResults(fleet.url, batchId, 1000);
    expect(results).toHaveLength(TASKS);
    expect(new Set(results.map((r) => r.taskId)).size).toBe(TASKS);
    // Each result is the retry's: recorded after the retry was claimed.
    const claimedAt = (await api<BatchStatus>(fleet.url, 'GET', `/batches/${batchId}`)).body.startedAt ?? 0;
    expect(results.filter((r) => r.timestamp < claimedAt)).toEqual([]);
    // 200,000 attempts, 100,000 cleared failures and 200,000 dead-letter messages: a hang guard above the
    // suite's 10 minutes, for a busy 2-core machine (the test is bounded by its count, not by time).
  }, 1_800_000);
});
