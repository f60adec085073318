/**
 * Issue 4, AWS observability: what the worker tells CloudWatch. Each
 * invocation flushes one EMF blob, counting each outcome exactly once
 * (TasksSucceeded, TasksFailed, TaskRetries, WorkerDuration), and its log
 * lines carry the batch and task ids, cleared when it ends. Metrics are on
 * here, as on AWS; the EMF blobs and log lines are read from stdout/stderr.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RecordFailureEvent, WorkerEvent, WorkerOutput } from '../../lambdas/domain/types';
import { captureOutput, useHandlerEnvironment } from './handler-fixtures';

const SERVICE = 'Unit/Fleet';
const ddb = mockClient(DynamoDBDocumentClient);
mockClient(SQSClient);
let handler: (event: WorkerEvent | RecordFailureEvent) => Promise<WorkerOutput>;
let logger: typeof import('../../lambdas/adapters/observability').logger;

beforeAll(async () => {
  useHandlerEnvironment({
    // As the Fleet construct sets them, with metrics on and every log line shown.
    POWERTOOLS_SERVICE_NAME: SERVICE,
    POWERTOOLS_METRICS_NAMESPACE: 'Fleet',
    POWERTOOLS_METRICS_DISABLED: 'false',
    POWERTOOLS_LOG_LEVEL: 'DEBUG',
  });
  delete process.env.FLEET_DLQ_URL;
  ({ handler } = await import('../../lambdas/worker'));
  ({ logger } = await import('../../lambdas/adapters/observability'));
});

/** Everything the process writes, line by line, while a test runs. */
let written: string[] = [];
beforeEach(() => {
  written = captureOutput();
  ddb.on(PutCommand).resolves({});
  ddb.on(UpdateCommand).resolves({});
});
// A retry first reads its batch (lambdas/worker.ts): a batch that is not cancelled.
beforeEach(() => {
  ddb.on(GetCommand).resolves({});
});
afterEach(() => {
  ddb.reset();
  vi.restoreAllMocks();
});

interface Emf {
  _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
  [key: string]: unknown;
}
const jsonLines = () => written.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
const emfBlobs = () => jsonLines().filter((line): line is Emf => '_aws' in line);
const logLines = () => jsonLines().filter((line) => 'level' in line);

/** Metric name → the values the blobs carry for it. */
function metricValues(blobs: Emf[]): Record<string, number[]> {
  const values: Record<string, number[]> = {};
  for (const blob of blobs) {
    for (const directive of blob._aws.CloudWatchMetrics) {
      for (const { Name } of directive.Metrics) {
        const value = blob[Name] as number | number[];
        (values[Name] ??= []).push(...(Array.isArray(value) ? value : [value]));
      }
    }
  }
  return values;
}

const settings = { workerTimeout: 5_000, maxRetries: 2, retryFailedTasks: true, attemptTimeoutSeconds: 15, executionBudgetMs: null };
const echoTask = (attempt = 0, id = 'task-ok'): WorkerEvent => ({ batchId: 'batch-1', task: { id, type: 'echo', data: { n: 1 } }, settings, attempt });
const failingTask = (attempt: number): WorkerEvent => ({ batchId: 'batch-1', task: { id: 'task-bad', type: 'fail', data: { message: 'out of paper' } }, settings, attempt });

describe('worker metrics: one EMF blob per invocation, each outcome counted once', () => {
  it('a success counts TasksSucceeded once, with its duration, under the service dimension only', async () => {
    await expect(handler(echoTask())).resolves.toEqual({ taskId: 'task-ok', success: true });

    const blobs = emfBlobs();
    expect(blobs).toHaveLength(1);
    const values = metricValues(blobs);
    expect(Object.keys(values).sort()).toEqual(['TasksSucceeded', 'WorkerDuration']);
    expect(values.TasksSucceeded).toEqual([1]);
    expect(values.WorkerDuration).toHaveLength(1);
    const directive = blobs[0]!._aws.CloudWatchMetrics[0]!;
    expect(directive.Namespace).toBe('Fleet');
    // Low cardinality: never a batch or task id as a dimension.
    expect(directive.Dimensions).toEqual([['service']]);
    expect(blobs[0]!.service).toBe(SERVICE);
    expect(directive.Metrics).toContainEqual({ Name: 'WorkerDuration', Unit: 'Milliseconds' });
  });

  it('a failure with retries left counts only the attempt: no task outcome, and no retry for the first attempt', async () => {
    await expect(handler(failingTask(0))).rejects.toMatchObject({ name: 'TaskAttemptFailed' });

    const values = metricValues(emfBlobs());
    expect(emfBlobs()).toHaveLength(1);
    expect(Object.keys(values).sort()).toEqual(['WorkerDuration']);
  });

  it('a later attempt counts one TaskRetries, and still no outcome while retries are left', async () => {
    await expect(handler(failingTask(1))).rejects.toMatchObject({ name: 'TaskAttemptFailed' });

    const values = metricValues(emfBlobs());
    expect(values.TaskRetries).toEqual([1]);
    expect(values.TasksFailed).toBeUndefined();
    expect(values.TasksSucceeded).toBeUndefined();
  });

  it('the final failure counts TasksFailed once (and its retry)', async () => {
    await expect(handler(failingTask(2))).rejects.toMatchObject({ name: 'TaskFailed' });

    const blobs = emfBlobs();
    expect(blobs).toHaveLength(1);
    const values = metricValues(blobs);
    expect(values.TasksFailed).toEqual([1]);
    expect(values.TaskRetries).toEqual([1]);
    expect(values.TasksSucceeded).toBeUndefined();
    expect(values.WorkerDuration).toHaveLength(1);
  });

  it('a duplicate delivery counts no outcome: the first invocation already did', async () => {
    ddb.on(PutCommand).rejects(new ConditionalCheckFailedException({ message: 'exists', $metadata: {} }));

    await handler(echoTask());
    await expect(handler(failingTask(2))).rejects.toMatchObject({ name: 'TaskFailed' });

    const values = metricValues(emfBlobs());
    expect(values.TasksSucceeded).toBeUndefined();
    expect(values.TasksFailed).toBeUndefined();
  });

  it('a failure recorded on the Catch path (timeout backstop, crash) counts TasksFailed once, and no attempt', async () => {
    const event: RecordFailureEvent = { action: 'recordFailure', batchId: 'batch-1', task: { id: 'task-lost', type: 'sleep', data: { ms: 1 } }, error: { Error: 'States.Timeout', Cause: '' } };

    await handler(event);

    const values = metricValues(emfBlobs());
    expect(emfBlobs()).toHaveLength(1);
    expect(values).toEqual({ TasksFailed: [1] });
  });

  it('each invocation flushes its own metrics: two tasks, two blobs, nothing carried over', async () => {
    await handler(echoTask(0, 'task-a'));
    await handler(echoTask(0, 'task-b'));

    const blobs = emfBlobs();
    expect(blobs).toHaveLength(2);
    for (const blob of blobs) expect(metricValues([blob]).TasksSucceeded).toEqual([1]);
  });
});

describe('worker logs: batch and task ids as keys', () => {
  it("an attempt's DEBUG line carries its batch and task ids, and they are cleared when the invocation ends", async () => {
    await handler(echoTask(0, 'task-a'));
    logger.info('between invocations');
    await handler(echoTask(0, 'task-b'));

    const lines = logLines();
    const attempts = lines.filter((line) => line.message === 'task attempt ended');
    expect(attempts.map((line) => [line.batchId, line.taskId, line.outcome])).toEqual([
      ['batch-1', 'task-a', 'succeeded'],
      ['batch-1', 'task-b', 'succeeded'],
    ]);
    const between = lines.find((line) => line.message === 'between invocations');
    expect(between).toBeDefined();
    expect(between).not.toHaveProperty('batchId');
    expect(between).not.toHaveProperty('taskId');
    expect(between?.service).toBe(SERVICE);
  });

  it('a WARN line logged during the invocation carries its ids', async () => {
    // The Catch path takes the note of the attempt it records; the registry's failure is only logged.
    ddb.on(DeleteCommand).rejects(new Error('registry down'));
    const event: RecordFailureEvent = { action: 'recordFailure', batchId: 'batch-9', task: { id: 'task-lost', type: 'sleep', data: { ms: 1 } }, error: { Error: 'Sandbox.Timedout' } };

    await handler(event);

    const warning = logLines().find((line) => String(line.message).startsWith('worker registry:'));
    expect(warning).toMatchObject({ level: 'WARN', message: 'worker registry: take next attempt failed', batchId: 'batch-9', taskId: 'task-lost' });
  });

  it('no INFO line per task by default: at INFO, a successful task logs nothing', async () => {
    logger.setLogLevel('INFO');
    try {
      await handler(echoTask(0, 'task-quiet'));
    } finally {
      logger.setLogLevel('DEBUG');
    }
    expect(logLines()).toEqual([]);
  });
});
