/**
 * No attempt starts after cancelBatch returns. On AWS, stopping a batch's
 * execution cannot stop its EXPRESS children (StopExecution does not apply to
 * EXPRESS executions: https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html),
 * so a child waiting to retry still invokes the worker. The worker reads the
 * batch, strongly consistent, before every retry, and runs nothing for a
 * cancelled batch. First attempts need no read.
 */
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RecordFailureEvent, WorkerEvent, WorkerOutput } from '../../lambdas/domain/types';
import { useHandlerEnvironment } from './handler-fixtures';

const ddb = mockClient(DynamoDBDocumentClient);
let handler: (event: WorkerEvent | RecordFailureEvent) => Promise<WorkerOutput>;

beforeAll(async () => {
  useHandlerEnvironment({});
  ({ handler } = await import('../../lambdas/worker'));
});
afterEach(() => {
  ddb.reset();
  vi.restoreAllMocks();
});

const settings = { workerTimeout: 5_000, maxRetries: 3, retryFailedTasks: true, attemptTimeoutSeconds: 15, executionBudgetMs: null };
const attemptOf = (attempt: number): WorkerEvent => ({ batchId: 'batch-1', task: { id: 'echo-1', type: 'echo', data: { n: 1 } }, settings, attempt });
const batchItem = (status: string) => ({ Item: { pk: 'BATCH#batch-1', sk: 'META', batchId: 'batch-1', status, totalTasks: 1, createdAt: 1, priority: 0, tasksKey: 'k' } });

describe('worker: a retry of a cancelled batch', () => {
  it('runs nothing and records nothing, after one strongly consistent read of the batch', async () => {
    ddb.on(GetCommand).resolves(batchItem('cancelled'));

    await expect(handler(attemptOf(1))).resolves.toEqual({ taskId: 'echo-1', success: false });

    expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(0);
    const reads = ddb.commandCalls(GetCommand);
    expect(reads).toHaveLength(1);
    expect(reads[0]?.args[0].input).toMatchObject({ Key: { pk: 'BATCH#batch-1' }, ConsistentRead: true });
  });

  it('runs and records a retry of a batch still processing', async () => {
    ddb.on(GetCommand).resolves(batchItem('processing'));
    ddb.on(PutCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});

    await expect(handler(attemptOf(2))).resolves.toEqual({ taskId: 'echo-1', success: true });
    expect(ddb.commandCalls(PutCommand).some((call) => call.args[0].input.Item?.attempts === 3)).toBe(true);
  });

  it('does not read the batch for a first attempt', async () => {
    ddb.on(PutCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});

    await expect(handler(attemptOf(0))).resolves.toEqual({ taskId: 'echo-1', success: true });
    expect(ddb.commandCalls(GetCommand)).toHaveLength(0);
  });
});
