/**
 * retry-failed's rules on in-memory ports, and the Step Functions adapter
 * finding a retried batch's current execution.
 */
import { DescribeExecutionCommand, ListMapRunsCommand, SFNClient, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { StepFunctionsWorkflow } from '../../lambdas/adapters/workflow';
import { ConflictError } from '../../lambdas/domain/errors';
import type { BatchRecord, RetryState, RetryStore, RetryTaskFiles, RetryWorkflow } from '../../lambdas/domain/ports';
import { prepareRetry, retryFailedTasks, type RetryFailedDeps } from '../../lambdas/domain/retry-failed';
import type { BatchState, Task } from '../../lambdas/domain/types';

const task = (id: string): Task => ({ id, type: 'echo', data: id });

/** A batch of tasks a..e whose a, b, c succeeded. */
function fakes(status: BatchState, retryState?: RetryState) {
  const record: BatchRecord = {
    batchId: 'b',
    status,
    totalTasks: 5,
    createdAt: 1,
    startedAt: 2,
    completedAt: 3,
    completedTasks: 3,
    failedTasks: 2,
    priority: 0,
    longestTaskTimeoutMs: 0,
    tasksKey: 'batches/b/tasks.jsonl',
  };
  const calls: string[] = [];
  const files = new Map<string, Task[]>([['batches/b/tasks.jsonl', ['a', 'b', 'c', 'd', 'e'].map(task)]]);
  let claims = 0;
  const store: RetryStore = {
    getRetryState: async () => retryState,
    listSucceededTaskIds: async () => new Set(['a', 'b', 'c']),
    claimRetry: async (_id, claim) => {
      calls.push(`claim ${claim.retry} ${claim.executionName}`);
      return claims++ === 0;
    },
    clearFailedResult: async (_id, taskId, clear) => {
      calls.push(`clear ${taskId} ${clear.retry} ${clear.before}`);
      return true;
    },
    recountRetriedBatch: async () => false,
  };
  const taskFiles: RetryTaskFiles = {
    // Streamed in chunks that cut lines apart, as S3 streams them.
    readTasks: async function* (key) {
      const text = (files.get(key) ?? []).map((t) => JSON.stringify(t)).join('\n');
      for (let i = 0; i < text.length; i += 7) yield Buffer.from(text.slice(i, i + 7));
    },
    writeRetryTasks: async (_id, retry, fill) => {
      const key = `batches/b/retry-${retry}.jsonl`;
      const lines: string[] = [];
      await fill(async (line) => void lines.push(line));
      const tasks = lines.map((line) => JSON.parse(line) as Task);
      files.set(key, tasks);
      calls.push(`put ${key} ${tasks.map((t) => t.id).join(',')}`);
      return { bucket: 'bucket', key };
    },
    bucket: 'bucket',
    deleteRetryTasks: async () => undefined,
  };
  const executions = new Map<string, string>();
  const workflow: RetryWorkflow = {
    startRetry: async (input, name) => {
      calls.push(`start ${name} ${input.tasksKey}`);
      return name;
    },
    executionStatus: async (name) => executions.get(name),
    redrive: async (name) => {
      calls.push(`redrive ${name}`);
    },
  };
  const deps: RetryFailedDeps = {
    repository: {
      getBatch: async (id) => (id === 'b' ? record : undefined),
      getStatus: async () => ({ batchId: 'b', status, totalTasks: 5, completedTasks: 3, failedTasks: 0, progress: 0.6, createdAt: 1, startedAt: 2, completedAt: null }),
    },
    store,
    taskFiles,
    workflow,
    now: () => 1_000,
  };
  return { deps, calls, files, executions };
}

describe('retryFailedTasks', () => {
  it('claims the batch and starts the retry at once: no work that grows with the batch happens in the request', async () => {
    // Arrange
    const { deps, calls } = fakes('partial', { retries: 1, executionName: 'b-retry-1' });

    // Act
    const result = await retryFailedTasks(deps, 'b');

    // Assert: the tasks without a success (5 - 3) come from the batch's exact final counts.
    expect(result).toEqual({ batchId: 'b', mode: 'execution', retry: 2, retriedTasks: 2, executionName: 'b-retry-2', status: 'pending' });
    expect(calls).toEqual(['claim 2 b-retry-2', 'start b-retry-2 batches/b/tasks.jsonl']);
  });

  it('queues the retry for admission when there is admission, with its claim time as when it started waiting', async () => {
    const { deps, calls } = fakes('failed');
    const queued: unknown[] = [];
    await retryFailedTasks({ ...deps, queue: async (record, run) => void queued.push({ batchId: record.batchId, ...run }) }, 'b');
    expect(calls).toEqual(['claim 1 b-retry-1']);
    expect(queued).toEqual([
      { batchId: 'b', executionName: 'b-retry-1', demand: 2, since: 1_000, input: { batchId: 'b', tasksBucket: 'bucket', tasksKey: 'batches/b/tasks.jsonl', retry: 1 } },
    ]);
  });

  it("prepares the retry in its Start batch: writes the tasks without a success, then clears their failures recorded before the claim", async () => {
    // Arrange: claimed as retry 2 at t=500.
    const { deps, calls } = fakes('pending', { retries: 2, executionName: 'b-retry-2', retriedAt: 500 });

    // Act
    const file = await prepareRetry(deps, { batchId: 'b', tasksKey: 'batches/b/tasks.jsonl' }, 2);

    // Assert: the file first, so a Start batch retried midway finds it; clearing is idempotent.
    expect(file).toEqual({ bucket: 'bucket', key: 'batches/b/retry-2.jsonl', tasks: 2 });
    expect(calls).toEqual(['put batches/b/retry-2.jsonl d,e', 'clear d 2 500', 'clear e 2 500']);
  });

  it('is a conflict when a concurrent retry-failed claimed the batch first', async () => {
    const { deps } = fakes('failed');
    await retryFailedTasks(deps, 'b');
    await expect(retryFailedTasks(deps, 'b')).rejects.toBeInstanceOf(ConflictError);
  });

  it('finishes a retry-failed interrupted after its claim: same retry, same claim, started again (idempotent)', async () => {
    // Arrange: claimed as retry 1 at t=500, but no execution started.
    const { deps, calls } = fakes('pending', { retries: 1, executionName: 'b-retry-1', retriedAt: 500 });

    // Act
    const result = await retryFailedTasks(deps, 'b');

    // Assert
    expect(result).toMatchObject({ mode: 'execution', retry: 1, retriedTasks: 2 });
    expect(calls).toEqual(['start b-retry-1 batches/b/tasks.jsonl']);
  });

  it('redrives the current execution of an unfinished batch when that execution FAILED, and refuses a running one', async () => {
    const { deps, calls, executions } = fakes('processing', { retries: 0, executionName: 'b' });
    executions.set('b', 'RUNNING');
    await expect(retryFailedTasks(deps, 'b')).rejects.toBeInstanceOf(ConflictError);

    executions.set('b', 'FAILED');
    expect(await retryFailedTasks(deps, 'b')).toMatchObject({ mode: 'redrive', retriedTasks: 2, executionName: 'b' });
    expect(calls).toEqual(['redrive b']);
  });
});

describe('StepFunctionsWorkflow: a retried batch runs <batchId>-retry-<n>', () => {
  const sfnMock = mockClient(SFNClient);
  afterEach(() => sfnMock.reset());
  const client = new SFNClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  const stateMachineArn = 'arn:aws:states:us-east-1:111122223333:stateMachine:Fleet';

  it('checks, stops and rescales the current execution, not the first one', async () => {
    // Arrange
    sfnMock.on(DescribeExecutionCommand).resolves({ status: 'RUNNING' });
    sfnMock.on(StopExecutionCommand).resolves({});
    sfnMock.on(ListMapRunsCommand).resolves({ mapRuns: [] });
    const workflow = new StepFunctionsWorkflow(client, stateMachineArn, { executionNameOf: async (batchId) => `${batchId}-retry-2` });

    // Act
    const running = await workflow.isBatchRunning('b');
    await workflow.stopBatch('b');
    await workflow.setBatchConcurrency('b', 3);

    // Assert
    const current = 'arn:aws:states:us-east-1:111122223333:execution:Fleet:b-retry-2';
    expect(running).toBe(true);
    expect(sfnMock.commandCalls(DescribeExecutionCommand)[0]?.args[0].input.executionArn).toBe(current);
    expect(sfnMock.commandCalls(StopExecutionCommand)[0]?.args[0].input.executionArn).toBe(current);
    expect(sfnMock.commandCalls(ListMapRunsCommand)[0]?.args[0].input.executionArn).toBe(current);
  });

  it('without a lookup, a batch runs the execution named after it', async () => {
    sfnMock.on(DescribeExecutionCommand).resolves({ status: 'SUCCEEDED' });
    const workflow = new StepFunctionsWorkflow(client, stateMachineArn);
    expect(await workflow.isBatchRunning('b')).toBe(false);
    expect(sfnMock.commandCalls(DescribeExecutionCommand)[0]?.args[0].input.executionArn).toBe('arn:aws:states:us-east-1:111122223333:execution:Fleet:b');
  });
});
