/**
 * The shared end-to-end scenarios (test/e2e/scenarios.ts) on a local fleet
 * that injects AWS's transient faults (FLEET_FAULTS, infra/local/faults.ts):
 * Lambda.ServiceException and Lambda.TooManyRequestsException on Step
 * Functions' invokes, DynamoDB throttles and 500s and S3 SlowDown and 500s on
 * the wire, Step Functions ThrottlingException. Every scenario must still end
 * with its exact counts and attempts: a fleet on AWS meets these faults.
 *
 * Pages:
 * - SFN_LAMBDA_ERRORS: https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html
 * - DYNAMODB_ERRORS: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
 * - S3_ERRORS: https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
 * - SDK_RETRIES: https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
 *
 * The seed is fixed so a failure replays; the fleet prints the replay line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { defineFleetScenarios } from '../e2e/scenarios';
import { api } from './helpers';
import type { BatchStatus, TaskResult } from '../../lambdas/domain/types';

const TOKEN = 'e2e-faults-token';
const WORKER_LISTING_DELAY_MS = 100;
/**
 * Modest rates, a few faults per scenario, each retried by the SDK or the state
 * machine as on AWS; S3 and Step Functions see few calls, so theirs are higher.
 */
const FAULT_PROFILE = 'lambda=0.03,dynamodb=0.01,s3=0.05,sfn=0.05,seed=42';
let fleet: LocalFleet | undefined;

beforeAll(async () => {
  process.env.FLEET_ENABLE_FAULT_TASKS = '1';
  process.env.FLEET_WORKER_LISTING_DELAY_MS = String(WORKER_LISTING_DELAY_MS);
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1, token: TOKEN, dashboard: false, faults: FAULT_PROFILE });
});

afterAll(async () => {
  await fleet?.close();
  delete process.env.FLEET_ENABLE_FAULT_TASKS;
  delete process.env.FLEET_WORKER_LISTING_DELAY_MS;
});

defineFleetScenarios({
  name: `local, faults ${FAULT_PROFILE}`,
  baseUrl: () => {
    if (!fleet) throw new Error('the local fleet did not start');
    return fleet.url;
  },
  auth: { type: 'bearer', token: TOKEN },
  capabilities: { faultTasks: true, scaledDelays: true, orderedDispatch: true },
  timing: { taskMs: 100, batchTimeoutMs: 60_000, pollMs: 20, testTimeoutMs: 120_000, workerListingDelayMs: WORKER_LISTING_DELAY_MS },
});

describe('after every scenario, under faults', () => {
  it('faults were injected, no batch is left pending or processing, and each batch recorded every task exactly once', async () => {
    if (!fleet) throw new Error('the local fleet did not start');
    const url = fleet.url;
    const auth = { authorization: `Bearer ${TOKEN}` };
    await fleet.idle();
    const injected = fleet.faults?.injected;
    console.log('faults injected during the scenarios', injected);
    for (const service of ['lambda', 'dynamodb', 's3', 'sfn'] as const) expect(injected?.[service], service).toBeGreaterThan(0);
    const batches: BatchStatus[] = [];
    for (let cursor: string | null = null; ; ) {
      const page: Awaited<ReturnType<typeof api<{ batches: BatchStatus[]; nextCursor: string | null }>>> = await api(
        url,
        'GET',
        `/batches?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        undefined,
        auth,
      );
      expect(page.status).toBe(200);
      batches.push(...page.body.batches);
      cursor = page.body.nextCursor;
      if (!cursor) break;
    }
    expect(batches.length).toBeGreaterThan(0);
    expect(batches.filter((b) => b.status === 'pending' || b.status === 'processing').map((b) => `${b.batchId}: ${b.status}`)).toEqual([]);
    for (const batch of batches) {
      const ids: string[] = [];
      for (let cursor: string | null = null; ; ) {
        const page: Awaited<ReturnType<typeof api<{ results: TaskResult[]; nextCursor: string | null }>>> = await api(
          url,
          'GET',
          `/batches/${batch.batchId}/results?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
          undefined,
          auth,
        );
        expect(page.status).toBe(200);
        ids.push(...page.body.results.map((r) => r.taskId));
        cursor = page.body.nextCursor;
        if (!cursor) break;
      }
      expect(new Set(ids).size, `batch ${batch.batchId}: a task recorded twice`).toBe(ids.length);
      expect(ids.length, `batch ${batch.batchId} (${batch.status}): results against its counts`).toBe(batch.completedTasks + batch.failedTasks);
    }
  });
});
