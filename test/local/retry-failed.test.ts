/**
 * POST /batches/{batchId}/retry-failed, end to end against the local fleet:
 * only failed tasks run again, counts and stats stay exact, the retry's
 * execution is the one cancel and capacity reach, and a batch whose own
 * execution failed is redriven instead.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StatesError } from '../../infra/local/asl/interpreter';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import type { RetryFailedResult } from '../../lambdas/domain/retry-failed';
import type { BatchStatus, FleetStatistics, TaskResult } from '../../lambdas/domain/types';
import { api, readAllResults, waitForBatch, waitUntil, type ApiErrorBody } from './helpers';
import { holdWorkers } from './hold-workers';

let fleet: LocalFleet;

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1 });
});
afterAll(async () => {
  await (fleet as LocalFleet | undefined)?.close();
});

const executionArn = (name: string) => `${fleet.resources.stateMachine.arn.replace(':stateMachine:', ':execution:')}:${name}`;

async function submit(tasks: unknown[]): Promise<string> {
  const response = await api<BatchStatus>(fleet.url, 'POST', '/batches', { tasks });
  expect(response.status).toBe(202);
  return response.body.batchId;
}

const retryFailed = (batchId: string) => api<RetryFailedResult & ApiErrorBody>(fleet.url, 'POST', `/batches/${encodeURIComponent(batchId)}/retry-failed`);

async function resultsById(batchId: string): Promise<Map<string, TaskResult>> {
  const { results } = await readAllResults(fleet.url, batchId, 1000);
  expect(new Set(results.map((r) => r.taskId)).size).toBe(results.length);
  return new Map(results.map((r) => [r.taskId, r]));
}

/** How an execution ended. Finish batch writes the final status a moment before its execution ends, as on AWS. */
const executionEnd = (name: string) =>
  waitUntil(() => {
    const { status } = fleet.stepFunctions.describeExecution(executionArn(name));
    return status === 'RUNNING' ? undefined : status;
  });

describe('POST /batches/{batchId}/retry-failed', () => {
  it('runs only the failed tasks again, keeps one result per task and exact counts and stats, and can be repeated', async () => {
    // No retries on the first run: the flaky tasks fail; the retry gets retries and they succeed.
    await api(fleet.url, 'PATCH', '/config', { maxRetries: 0, maxConcurrentWorkers: 8 });
    const tasks = [
      ...Array.from({ length: 30 }, (_, i) => ({ id: `echo-${i}`, type: 'echo', data: { i } })),
      ...Array.from({ length: 15 }, (_, i) => ({ id: `flaky-${i}`, type: 'sleep', data: { ms: 1, failTimes: 1, value: i } })),
      ...Array.from({ length: 5 }, (_, i) => ({ id: `broken-${i}`, type: 'fail', data: { message: `broken ${i}` } })),
    ];
    const batchId = await submit(tasks);
    const first = await waitForBatch(fleet.url, batchId);
    expect(first).toMatchObject({ status: 'partial', completedTasks: 30, failedTasks: 20 });
    const before = await resultsById(batchId);

    await api(fleet.url, 'PATCH', '/config', { maxRetries: 3 });
    const retried = await retryFailed(batchId);
    expect(retried.status).toBe(202);
    expect(retried.body).toEqual({ batchId, mode: 'execution', retry: 1, retriedTasks: 20, executionName: `${batchId}-retry-1`, status: 'pending' });

    const second = await waitForBatch(fleet.url, batchId);
    expect(second).toMatchObject({ status: 'partial', totalTasks: 50, completedTasks: 45, failedTasks: 5, progress: 1 });
    expect(second.completedAt).toBeGreaterThan(first.completedAt ?? Infinity);
    const after = await resultsById(batchId);
    expect(after.size).toBe(50);
    for (const [taskId, result] of after) {
      // Tasks that had succeeded did not run again: their result is the very same.
      if (taskId.startsWith('echo-')) expect(result).toEqual(before.get(taskId));
      if (taskId.startsWith('flaky-')) expect(result).toMatchObject({ success: true, attempts: 2 });
      if (taskId.startsWith('broken-')) {
        expect(result).toMatchObject({ success: false, attempts: 4 });
        expect(result.timestamp).toBeGreaterThan(before.get(taskId)?.timestamp ?? Infinity);
      }
    }
    // The fleet totals hold the batch's new final counts, once.
    expect((await api<FleetStatistics>(fleet.url, 'GET', '/stats')).body).toMatchObject({ totalBatches: 1, totalTasks: 50, completedTasks: 45, failedTasks: 5 });

    // Again: only the 5 that still fail.
    const again = await retryFailed(batchId);
    expect(again.body).toMatchObject({ mode: 'execution', retry: 2, retriedTasks: 5 });
    expect(await waitForBatch(fleet.url, batchId)).toMatchObject({ status: 'partial', completedTasks: 45, failedTasks: 5 });
    expect((await resultsById(batchId)).size).toBe(50);
    expect(await executionEnd(`${batchId}-retry-2`)).toBe('SUCCEEDED');
    expect((await api<FleetStatistics>(fleet.url, 'GET', '/stats')).body).toMatchObject({ completedTasks: 45, failedTasks: 5 });

    // A deleted batch takes its retries' task files along; nothing is left to retry.
    expect((await api(fleet.url, 'DELETE', `/batches/${batchId}`)).status).toBe(200);
    expect((await retryFailed(batchId)).status).toBe(404);
  });

  it('answers 404 for an unknown batch, 409 while a batch runs or once cancelled, and 200 with nothing to do when every task succeeded', async () => {
    await api(fleet.url, 'PATCH', '/config', { maxRetries: 0 });
    const unknown = await retryFailed('no-such-batch');
    expect(unknown.status).toBe(404);

    // Its worker is held until the cancel: the batch is still running when the retry is asked for, by construction.
    const workersHeld = holdWorkers(fleet);
    let running: Awaited<ReturnType<typeof retryFailed>>;
    let slow: string;
    try {
      slow = await submit([{ id: 'slow', type: 'sleep', data: { ms: 20 } }]);
      await waitUntil(() => (workersHeld.held() === 1 ? true : undefined));
      await waitUntil(async () => ((await api<BatchStatus>(fleet.url, 'GET', `/batches/${slow}`)).body.status === 'processing' ? true : undefined));
      running = await retryFailed(slow);
      expect((await api(fleet.url, 'POST', `/batches/${slow}/cancel`)).body).toEqual({ cancelled: true });
    } finally {
      workersHeld.release();
    }
    expect(running.status).toBe(409);
    expect(running.body.error.message).toContain('processing');
    const cancelled = await retryFailed(slow);
    expect(cancelled.status).toBe(409);
    expect(cancelled.body.error.message).toContain('cancelled');

    const fine = await submit([{ id: 'fine', type: 'echo', data: 1 }]);
    await waitForBatch(fleet.url, fine);
    const nothing = await retryFailed(fine);
    expect(nothing.status).toBe(200);
    expect(nothing.body).toEqual({ batchId: fine, mode: 'none', retry: null, retriedTasks: 0, executionName: null, status: 'completed' });
  });

  it('cancelling a retried batch stops its retry execution', async () => {
    await api(fleet.url, 'PATCH', '/config', { maxRetries: 0 });
    const batchId = await submit(Array.from({ length: 4 }, (_, i) => ({ id: `s${i}`, type: 'sleep', data: { ms: 10, failTimes: 1 } })));
    expect(await waitForBatch(fleet.url, batchId)).toMatchObject({ status: 'failed', failedTasks: 4 });
    await api(fleet.url, 'PATCH', '/config', { maxRetries: 3 });
    // The retry's 4 workers are held until after the cancel: the retry is still running when the cancel
    // comes, by construction (3 s attempts only made that likely on a busy machine).
    const workersHeld = holdWorkers(fleet);
    try {
      expect((await retryFailed(batchId)).status).toBe(202);
      await waitUntil(() => (workersHeld.held() === 4 ? true : undefined));
      await waitUntil(async () => ((await api<BatchStatus>(fleet.url, 'GET', `/batches/${batchId}`)).body.status === 'processing' ? true : undefined));

      expect((await api(fleet.url, 'POST', `/batches/${batchId}/cancel`)).body).toEqual({ cancelled: true });
      expect(fleet.stepFunctions.describeExecution(executionArn(`${batchId}-retry-1`)).status).toBe('ABORTED');
      expect((await api<BatchStatus>(fleet.url, 'GET', `/batches/${batchId}`)).body.status).toBe('cancelled');
    } finally {
      workersHeld.release();
    }
  });

  it('redrives a batch whose own execution failed: it continues from the state that failed, without running tasks again', async () => {
    await api(fleet.url, 'PATCH', '/config', { maxRetries: 3 });
    // The fault: Finish batch fails on every try, past all of its retries, so the execution FAILS.
    const finish = fleet.resources.functions.find((fn) => fn.entry === 'lambdas/batch-lifecycle.ts' && fn.handler === 'finish');
    if (!finish) throw new Error('no Finish batch function in the template');
    const invoke = fleet.lambda.invoke.bind(fleet.lambda);
    let inject = true;
    fleet.lambda.invoke = async (resource: string, parameters: unknown) => {
      if (inject && (parameters as { FunctionName?: string }).FunctionName === finish.arn) {
        throw new StatesError('Fleet.InjectedFault', 'Finish batch could not reach its table');
      }
      return invoke(resource, parameters);
    };
    try {
      const batchId = await submit(Array.from({ length: 10 }, (_, i) => ({ id: `t${i}`, type: 'echo', data: i })));
      await waitUntil(() => (fleet.stepFunctions.describeExecution(executionArn(batchId)).status === 'FAILED' ? true : undefined));
      inject = false;
      expect((await api<BatchStatus>(fleet.url, 'GET', `/batches/${batchId}`)).body).toMatchObject({ status: 'processing', completedTasks: 10 });
      const before = await resultsById(batchId);

      const redriven = await retryFailed(batchId);
      expect(redriven.status).toBe(202);
      expect(redriven.body).toEqual({ batchId, mode: 'redrive', retry: null, retriedTasks: 0, executionName: batchId, status: 'processing' });
      expect(await waitForBatch(fleet.url, batchId)).toMatchObject({ status: 'completed', completedTasks: 10, failedTasks: 0 });
      expect(await executionEnd(batchId)).toBe('SUCCEEDED');
      expect(fleet.stepFunctions.describeExecution(executionArn(batchId)).redriveCount).toBe(1);
      expect(await resultsById(batchId)).toEqual(before);
    } finally {
      fleet.lambda.invoke = invoke;
    }
  });
});
