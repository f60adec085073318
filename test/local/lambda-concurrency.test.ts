/**
 * Lambda's account concurrency on a local fleet: a batch run wider than the
 * concurrency Lambda allows meets Lambda.TooManyRequestsException, which the
 * state machine retries (LAMBDA_TRANSIENT_ERRORS), and still ends with every
 * task recorded exactly once.
 *
 * Pages:
 * - LAMBDA_QUOTAS: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
 * - SFN_LAMBDA_ERRORS: https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { LAMBDA_DEFAULT_CONCURRENCY } from '../../infra/local/lambda-runtime';
import type { BatchStatus } from '../../lambdas/domain/types';
import { api, readAllResults } from './helpers';

const LAMBDA_QUOTAS = 'https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html';
const SFN_LAMBDA_ERRORS = 'https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html';
const LIMIT = 3;
let fleet: LocalFleet;

beforeAll(async () => {
  // From the environment, as `npm start` reads it.
  process.env.FLEET_LAMBDA_CONCURRENCY = String(LIMIT);
  try {
    // Retry delays scaled to 25 ms a second: the throttle retries (1 s doubling to 30 s, 6 attempts, on AWS)
    // must outlast a few 40 ms tasks, as on AWS they outlast tasks of seconds. At 1 ms they would not.
    fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 25, dashboard: false });
  } finally {
    delete process.env.FLEET_LAMBDA_CONCURRENCY;
  }
});

afterAll(async () => {
  await (fleet as LocalFleet | undefined)?.close();
});

describe(`Lambda's account concurrency (${LAMBDA_QUOTAS}, ${SFN_LAMBDA_ERRORS})`, () => {
  it('is 1,000 unless FLEET_LAMBDA_CONCURRENCY or lambdaConcurrencyLimit says otherwise', () => {
    expect(LAMBDA_DEFAULT_CONCURRENCY).toBe(1000);
    expect(fleet.lambda.concurrencyLimit).toBe(LIMIT);
  });

  it('a batch wider than the limit is throttled with Lambda.TooManyRequestsException, retried, and ends with every task once', async () => {
    expect((await api(fleet.url, 'PATCH', '/config', { maxConcurrentWorkers: 8 })).status).toBe(200);
    const tasks = Array.from({ length: 16 }, (_, i) => ({ id: `s${i}`, type: 'sleep', data: { ms: 40, value: i } }));
    const submitted = await api<{ batchId: string }>(fleet.url, 'POST', '/batches', { tasks });
    expect(submitted.status).toBe(202);
    // Waiting on the executions, not by polling the API: the API function shares the same small concurrency.
    await fleet.idle();

    expect(fleet.lambda.throttled).toBeGreaterThan(0);
    const status = await api<BatchStatus>(fleet.url, 'GET', `/batches/${submitted.body.batchId}`);
    expect(status.body).toMatchObject({ status: 'completed', completedTasks: 16, failedTasks: 0 });
    const { results } = await readAllResults(fleet.url, submitted.body.batchId);
    expect(results.map((r) => r.taskId).sort()).toEqual(tasks.map((t) => t.id).sort());
    expect(results.every((r) => r.success)).toBe(true);
  });
});
