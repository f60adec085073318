/**
 * retry-failed on a large batch of failed tasks. API Gateway gives a
 * request 30 s (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html);
 * clearing 100,000 failed results takes far longer, so the request only
 * claims and queues the retry, and the retry's own Start batch prepares it.
 * The retry still runs every task again exactly once.
 *
 * The test holds the retry's Start batch until it has read every result
 * back: the request's answer must not depend on clearing anything, whatever
 * the batch's size. That is checked by count, so 10,000 tasks show it as
 * well as 100,000 did (it was the suite's longest file, at 200,000 attempts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import type { RetryFailedResult } from '../../lambdas/domain/retry-failed';
import type { BatchStatus } from '../../lambdas/domain/types';
import { api, readAllResults, waitForBatch, waitUntil } from './helpers';
import type { StartInput } from '../../lambdas/batch-lifecycle';

let fleet: LocalFleet;

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1 });
});
afterAll(async () => {
  await (fleet as LocalFleet | undefined)?.close();
});

const TASKS = 10_000;

describe(`retry-failed with ${TASKS.toLocaleString('en')} failed tasks`, () => {
  it('answers at once (the request clears nothing), then reruns every failed task once, with exact counts', async () => {
    // Worker listing is not what this test is about: listing long attempts only spares its 200,000
    // short failing attempts a registry put and delete each (stats-workers.test.ts covers listing).
    expect((await api(fleet.url, 'PATCH', '/config', { maxRetries: 0, maxConcurrentWorkers: 200, workerListing: 'long-attempts' })).status).toBe(200);
    const tasks = Array.from({ length: TASKS }, (_, i) => ({ id: String(i), type: 'fail' }));
    const submitted = await api<BatchStatus>(fleet.url, 'POST', '/batches', { tasks });
    expect(submitted.status).toBe(202);
    const batchId = submitted.body.batchId;
    expect(await waitForBatch(fleet.url, batchId, 600_000, 500)).toMatchObject({ status: 'failed', completedTasks: 0, failedTasks: TASKS });

    const firstRun = await readAllResults(fleet.url, batchId, 1000);
    expect(firstRun.results).toHaveLength(TASKS);
    // The retry's Start batch waits until the test lets it go.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let startsHeld = 0;
    fleet.lambda.invokeFault = (functionArn, payload) => {
      if (!functionArn.toLowerCase().includes('startbatch') || (payload as { state?: StartInput }).state?.batchId !== batchId) return undefined;
      startsHeld++;
      return held;
    };

    // Act
    const retried = await api<RetryFailedResult>(fleet.url, 'POST', `/batches/${batchId}/retry-failed`);

    // Assert: the answer counts the tasks from the batch's exact final counts; the work is the retry's.
    expect(retried.status).toBe(202);
    expect(retried.body).toEqual({ batchId, mode: 'execution', retry: 1, retriedTasks: TASKS, executionName: `${batchId}-retry-1`, status: 'pending' });
    // The request cleared nothing: with the retry's Start batch held, every failed result is still there.
    await waitUntil(() => (startsHeld > 0 ? true : undefined));
    const whileHeld = await readAllResults(fleet.url, batchId, 1000);
    expect(whileHeld.results).toHaveLength(TASKS);
    expect(whileHeld.results.map((r) => r.timestamp).sort()).toEqual(firstRun.results.map((r) => r.timestamp).sort());
    fleet.lambda.invokeFault = undefined;
    release();
    expect(await waitForBatch(fleet.url, batchId, 900_000, 500)).toMatchObject({ status: 'failed', completedTasks: 0, failedTasks: TASKS });
    const { results } = await readAllResults(fleet.url, batchId, 1000);
    expect(results).toHaveLength(TASKS);
    expect(new Set(results.map((r) => r.taskId)).size).toBe(TASKS);
    // Each result is the retry's: recorded after the retry was claimed.
    const claimedAt = (await api<BatchStatus>(fleet.url, 'GET', `/batches/${batchId}`)).body.startedAt ?? 0;
    expect(results.filter((r) => r.timestamp < claimedAt)).toEqual([]);
    // 20,000 attempts, 10,000 cleared failures and 20,000 dead-letter messages: a hang guard only, for a
    // busy 2-core machine (the test is bounded by its count, not by time).
  }, 1_800_000);
});
