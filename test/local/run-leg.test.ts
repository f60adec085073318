/**
 * The run leg under faults that are not the task's: Lambda throttling the
 * worker, and a result store that will not take the outcome. Neither may
 * spend one of the task's attempts nor mark it failed.
 *
 * AWS behaviour relied on:
 * - `$$.State.RetryCount` counts the retries of every retrier of the state,
 *   so a Task whose Lambda is throttled and whose task fails would see the
 *   throttles as attempts:
 *   https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html
 *   https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
 * - A Parallel state's Parameters may read the Context object, and its Retry
 *   runs its branches again; a failed branch fails the Parallel with the
 *   branch's error, which the Parallel's own Retry and Catch see:
 *   https://docs.aws.amazon.com/step-functions/latest/dg/state-parallel.html
 * - The lambda:invoke integration reports Lambda's throttle as
 *   `Lambda.TooManyRequestsException`, and a function's own error by its
 *   errorType (the worker's `Fleet.StorageUnavailable`):
 *   https://docs.aws.amazon.com/step-functions/latest/dg/connect-lambda.html
 *   https://docs.aws.amazon.com/lambda/latest/dg/nodejs-exceptions.html
 * - A Distributed Map with ToleratedFailurePercentage 100 goes on past a
 *   failed child: https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html
 * - StopExecution does not apply to EXPRESS executions, so stopping a batch's
 *   execution leaves its EXPRESS children running, retries included:
 *   https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html
 * - An EXPRESS child ends at 5 minutes; a Task's TimeoutSeconds(Path) fails
 *   it with States.Timeout, which Catch can route:
 *   https://docs.aws.amazon.com/step-functions/latest/dg/choosing-workflow-type.html
 *   https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StatesError } from '../../infra/local/asl/interpreter';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { LOCAL_REGION } from '../../infra/local/template';
import { ATTEMPT_TIMEOUT_GRACE_SECONDS, STORAGE_RETRY } from '../../lambdas/domain/config';
import type { BatchStatus, TaskResult } from '../../lambdas/domain/types';
import { api, readAllResults, waitForBatch, waitUntil } from './helpers';

let fleet: LocalFleet;

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1 });
});

afterAll(async () => {
  await (fleet as LocalFleet | undefined)?.close();
});

afterEach(() => {
  fleet.lambda.invokeFault = undefined;
});

interface WorkerPayload {
  action?: string;
  task?: { id?: string };
  attempt?: number;
  settings?: { attemptTimeoutSeconds?: number; executionBudgetMs?: number | null };
}

async function submit(tasks: unknown[]): Promise<string> {
  const response = await api<{ batchId: string }>(fleet.url, 'POST', '/batches', { tasks });
  expect(response.status, response.text).toBe(202);
  return response.body.batchId;
}

describe('Lambda throttles are not task attempts', () => {
  it('runs a failing task with maxRetries 3 four times, and records attempts 4, after 3 throttles of its worker', async () => {
    await api(fleet.url, 'PATCH', '/config', { maxRetries: 3, retryFailedTasks: true });
    const taskId = 'throttled-then-failing';
    let throttles = 0;
    const runs: number[] = [];
    fleet.lambda.invokeFault = (_fn, payload) => {
      const event = payload as WorkerPayload;
      if (event.action !== undefined || event.task?.id !== taskId) return undefined;
      // Lambda refuses the first three invokes of the task: its handler never runs for them.
      if (throttles < 3) {
        throttles++;
        return new StatesError('Lambda.TooManyRequestsException', 'Rate Exceeded. (Service: Lambda, Status Code: 429)');
      }
      runs.push(event.attempt ?? -1);
      return undefined;
    };
    const batchId = await submit([{ id: taskId, type: 'fail', data: { message: 'always fails' } }]);
    const status = await waitForBatch(fleet.url, batchId);
    expect(status).toMatchObject<Partial<BatchStatus>>({ status: 'failed', failedTasks: 1 });
    expect(throttles).toBe(3);
    // The handler ran once per attempt: the first and three retries, numbered from 0.
    expect(runs).toEqual([0, 1, 2, 3]);
    const { results: [result] } = await readAllResults(fleet.url, batchId);
    expect(result).toMatchObject<Partial<TaskResult>>({ taskId, success: false, error: 'always fails', attempts: 4 });
  });
});

describe('storage that cannot take an outcome is not a task failure', () => {
  /** What the worker reports when it cannot store the outcome (lambdas/worker.ts): the handler has run. */
  const storageDown = () => new StatesError('Fleet.StorageUnavailable', JSON.stringify({ errorType: 'Fleet.StorageUnavailable', errorMessage: 'DynamoDB throttled' }));

  it('runs the task again without spending an attempt, and stores its result once', async () => {
    await api(fleet.url, 'PATCH', '/config', { maxRetries: 0, retryFailedTasks: true });
    const taskId = 'stored-late';
    const attempts: number[] = [];
    let refusals = 0;
    fleet.lambda.invokeFault = (_fn, payload) => {
      const event = payload as WorkerPayload;
      if (event.action !== undefined || event.task?.id !== taskId) return undefined;
      attempts.push(event.attempt ?? -1);
      // The first two runs cannot store their outcome.
      if (refusals < 2) {
        refusals++;
        return storageDown();
      }
      return undefined;
    };
    const batchId = await submit([{ id: taskId, type: 'echo', data: { v: 1 } }]);
    const status = await waitForBatch(fleet.url, batchId);
    // maxRetries 0: had a storage failure spent an attempt, the task would have failed.
    expect(status).toMatchObject<Partial<BatchStatus>>({ status: 'completed', completedTasks: 1, failedTasks: 0 });
    // At least once: the task ran three times, all as its first attempt.
    expect(attempts).toEqual([0, 0, 0]);
    const { results } = await readAllResults(fleet.url, batchId);
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject<Partial<TaskResult>>({ taskId, success: true, result: { v: 1 }, attempts: 1 });
  });

  it('fails only its own child when storage never comes back: not recorded as a task failure, counted lost by Finish batch', async () => {
    await api(fleet.url, 'PATCH', '/config', { maxRetries: 3, retryFailedTasks: true });
    const taskId = 'never-stored';
    const attempts: number[] = [];
    let recordFailureCalls = 0;
    fleet.lambda.invokeFault = (_fn, payload) => {
      const event = payload as WorkerPayload;
      if (event.task?.id !== taskId) return undefined;
      if (event.action === 'recordFailure') recordFailureCalls++;
      attempts.push(event.attempt ?? -1);
      return storageDown();
    };
    const batchId = await submit([
      { id: taskId, type: 'echo', data: {} },
      { id: 'fine', type: 'echo', data: {} },
    ]);
    const status = await waitForBatch(fleet.url, batchId);
    expect(status).toMatchObject<Partial<BatchStatus>>({ status: 'partial', completedTasks: 1, failedTasks: 1 });
    // The first run and every storage retry ran the task as its first attempt; none spent one of its 3 retries.
    expect(attempts).toEqual(new Array(STORAGE_RETRY.maxAttempts + 1).fill(0));
    // The child did not go on to record a task failure (there is no storage to record it in).
    expect(recordFailureCalls).toBe(0);
    const { results } = await readAllResults(fleet.url, batchId);
    expect(results.map((r) => r.taskId)).toEqual(['fine']);
  });
});

describe('an EXPRESS child\'s 5 minutes hold the attempt, its backstop and the recording of a killed attempt', () => {
  it('runs a default batch with a worker deadline, backstop and Record failure reserve inside 300 s', async () => {
    await api(fleet.url, 'PATCH', '/config', { maxRetries: 3, workerTimeout: 300_000 });
    let seen: WorkerPayload['settings'];
    fleet.lambda.invokeFault = (_fn, payload) => {
      const event = payload as WorkerPayload;
      if (event.task?.id === 'measured' && event.action === undefined) seen = event.settings;
      return undefined;
    };
    const batchId = await submit([{ id: 'measured', type: 'echo', data: {} }]);
    await waitForBatch(fleet.url, batchId);
    expect(seen?.executionBudgetMs).not.toBeNull();
    const budgetMs = seen?.executionBudgetMs ?? Infinity;
    const backstopMs = (seen?.attemptTimeoutSeconds ?? Infinity) * 1000;
    // The worker's deadline (at most child start + budget), then the backstop's grace, then 20 s to record: 300 s.
    expect(budgetMs + ATTEMPT_TIMEOUT_GRACE_SECONDS * 1000).toBeLessThanOrEqual(backstopMs);
    expect(backstopMs + 20_000).toBeLessThanOrEqual(300_000);
  });

  it('records a worker that never answers as failed when its backstop fires: counted by Finish batch and sent to the dead-letter queue', async () => {
    // The backstop covers the batch's longest timeout: 1 s here, so it fires after 1 + 10 s of grace,
    // real seconds (only retry waits are scaled locally).
    await api(fleet.url, 'PATCH', '/config', { maxRetries: 3, workerTimeout: 1000 });
    const queue = fleet.resources.queues.find((q) => q.logicalId.startsWith('FleetDeadLetterQueue'));
    if (!queue) throw new Error('the template has no dead-letter queue');
    const sqs = new SQSClient({ region: LOCAL_REGION, endpoint: fleet.endpoints.sqs, credentials: fleet.credentials });
    try {
      const taskId = 'blocks-its-event-loop';
      fleet.lambda.invokeFault = (_fn, payload) => {
        const event = payload as WorkerPayload;
        // The attempt never answers (as a handler blocking its event loop); Record failure does.
        return event.task?.id === taskId && event.action === undefined ? 'hang' : undefined;
      };
      const batchId = await submit([
        { id: taskId, type: 'echo', data: {} },
        { id: 'fine', type: 'echo', data: {} },
      ]);
      const status = await waitForBatch(fleet.url, batchId, 60_000);
      expect(status).toMatchObject<Partial<BatchStatus>>({ status: 'partial', completedTasks: 1, failedTasks: 1 });
      const { results } = await readAllResults(fleet.url, batchId);
      expect(results.find((r) => r.taskId === taskId)).toMatchObject<Partial<TaskResult>>({
        success: false,
        error: 'timed out: the attempt exceeded its backstop timeout',
        attempts: 1,
      });
      const messages = await waitUntil(async () => {
        const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
        const mine = Messages.filter((m) => (JSON.parse(m.Body ?? '{}') as { batchId?: string }).batchId === batchId);
        return mine.length > 0 ? mine : undefined;
      }, 30_000);
      expect(messages.map((m) => JSON.parse(m.Body ?? '{}') as unknown)).toEqual([
        expect.objectContaining({ batchId, taskId, error: 'timed out: the attempt exceeded its backstop timeout', attempts: 1 }),
      ]);
    } finally {
      sqs.destroy();
      await api(fleet.url, 'PATCH', '/config', { workerTimeout: 300_000 });
    }
  }, 90_000);
});

describe('cancel during a retry backoff', () => {
  it('starts no attempt of the task after cancelBatch returns, and records nothing for it', async () => {
    await api(fleet.url, 'PATCH', '/config', { maxRetries: 3, retryFailedTasks: true, workerTimeout: 300_000 });
    const taskId = 'cancelled-in-backoff';
    let batchId = '';
    let cancelReturned = false;
    const handlerRuns: { attempt: number; afterCancel: boolean }[] = [];
    const ended: number[] = [];
    fleet.lambda.invokeFault = (_fn, payload) => {
      const event = payload as WorkerPayload;
      if (event.action !== undefined || event.task?.id !== taskId || (event.attempt ?? 0) < 1) return undefined;
      // The first retry: its backoff has run out and Step Functions invokes the worker. The batch is
      // cancelled first; on AWS the EXPRESS child keeps going, as here, and the worker must not run the task.
      return (async () => {
        if (!cancelReturned) {
          const response = await api<{ cancelled: boolean }>(fleet.url, 'POST', `/batches/${batchId}/cancel`);
          expect(response.body.cancelled).toBe(true);
          cancelReturned = true;
        }
      })();
    };
    // Which invocations ran the handler: a `fail` task's handler always throws, so its attempt fails.
    const invokeFunction = fleet.lambda.invokeFunction.bind(fleet.lambda);
    fleet.lambda.invokeFunction = async (functionName, payload) => {
      const event = payload as WorkerPayload;
      const ours = event.action === undefined && event.task?.id === taskId;
      try {
        return await invokeFunction(functionName, payload);
      } catch (error) {
        if (ours && /^Task(Attempt)?Failed$/.test((error as StatesError).error)) handlerRuns.push({ attempt: event.attempt ?? -1, afterCancel: cancelReturned });
        throw error;
      } finally {
        if (ours) ended.push(event.attempt ?? -1);
      }
    };
    try {
      batchId = await submit([{ id: taskId, type: 'fail', data: { message: 'fails every time' } }]);
      // The retry invoked after the cancel has ended.
      await waitUntil(() => (cancelReturned && ended.includes(1) ? true : undefined), 30_000);
      const status = await waitForBatch(fleet.url, batchId);
      expect(status.status).toBe('cancelled');
      expect(handlerRuns).toEqual([{ attempt: 0, afterCancel: false }]);
      const { results } = await readAllResults(fleet.url, batchId);
      expect(results).toEqual([]);
    } finally {
      fleet.lambda.invokeFunction = invokeFunction;
    }
  });
});
