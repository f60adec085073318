/**
 * The worker's dead-letter message: sent after the final failure is
 * recorded, never instead of it, and never for a duplicate delivery.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RecordFailureEvent, WorkerEvent, WorkerOutput } from '../../lambdas/domain/types';
import { useHandlerEnvironment } from './handler-fixtures';

const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/111122223333/fleet-dlq';
const ddb = mockClient(DynamoDBDocumentClient);
const sqs = mockClient(SQSClient);
let handler: (event: WorkerEvent | RecordFailureEvent) => Promise<WorkerOutput>;

beforeAll(async () => {
  useHandlerEnvironment({
    FLEET_DLQ_URL: QUEUE_URL,
  });
  ({ handler } = await import('../../lambdas/worker'));
});
// A retry first reads its batch (lambdas/worker.ts): a batch that is not cancelled.
beforeEach(() => {
  ddb.on(GetCommand).resolves({});
});
afterEach(() => {
  ddb.reset();
  sqs.reset();
  vi.restoreAllMocks();
});

const failingTask = (attempt: number): WorkerEvent => ({
  batchId: 'batch-1',
  task: { id: 'task-1', type: 'fail', data: { message: 'out of paper' } },
  settings: { workerTimeout: 5_000, maxRetries: 1, retryFailedTasks: true, attemptTimeoutSeconds: 15, executionBudgetMs: null },
  attempt,
});

describe('worker: dead-letter queue', () => {
  it('records the final failure first, then sends batchId, taskId, last error and attempts', async () => {
    // Arrange
    const order: string[] = [];
    // Every attempt is listed from its start: the registry's put comes first, then the result's.
    ddb.on(PutCommand).callsFake((input: { Item?: { sk?: string } }) => {
      order.push(input.Item?.sk?.startsWith('RESULT#') ? 'record' : 'register');
      return {};
    });
    ddb.on(UpdateCommand).resolves({});
    sqs.on(SendMessageCommand).callsFake(() => {
      order.push('send');
      return { MessageId: 'm' };
    });

    // Act: the last attempt (maxRetries 1) fails.
    await expect(handler(failingTask(1))).rejects.toMatchObject({ name: 'TaskFailed' });

    // Assert
    expect(order).toEqual(['register', 'record', 'send']);
    const sent = sqs.commandCalls(SendMessageCommand)[0]?.args[0].input;
    expect(sent?.QueueUrl).toBe(QUEUE_URL);
    expect(JSON.parse(sent?.MessageBody ?? '{}')).toMatchObject({ batchId: 'batch-1', taskId: 'task-1', taskType: 'fail', error: 'out of paper', attempts: 2 });
    expect(sent?.MessageBody).not.toContain('"data"');
  });

  it('an attempt that ends in a retry deregisters its slot and notes the next attempt, for the Catch path', async () => {
    // Arrange
    ddb.on(PutCommand).resolves({});
    ddb.on(DeleteCommand).resolves({});

    // Act
    await expect(handler(failingTask(0))).rejects.toMatchObject({ name: 'TaskAttemptFailed' });

    // Assert: the slot's entry, then the note beside the task's result
    const puts = ddb.commandCalls(PutCommand).map((call) => call.args[0].input.Item);
    expect(puts.map((item) => String(item?.sk).split('#')[0])).toEqual(['SLOT', 'NEXT_ATTEMPT']);
    expect(puts[0]).toMatchObject({ batchId: 'batch-1', taskId: 'task-1', attempt: 0 });
    expect(puts[1]).toMatchObject({ pk: expect.stringMatching(/^BATCH#batch-1#S\d\d$/), sk: 'NEXT_ATTEMPT#task-1', attempt: 1 });
    const deleted = ddb.commandCalls(DeleteCommand).map((call) => call.args[0].input);
    expect(deleted).toHaveLength(1);
    expect(deleted[0]).toMatchObject({ Key: { sk: puts[0]?.sk }, ConditionExpression: 'id = :id', ExpressionAttributeValues: { ':id': puts[0]?.id } });
  });

  it('sends nothing while retries are left', async () => {
    await expect(handler(failingTask(0))).rejects.toMatchObject({ name: 'TaskAttemptFailed' });
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
  });

  it('keeps the result and fails the task as usual when SQS fails; the send failure is logged', async () => {
    // Arrange
    ddb.on(PutCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});
    sqs.on(SendMessageCommand).rejects(new Error('SQS is down'));
    // Powertools Logger writes its JSON lines to stderr (ERROR), not through the global console.
    const logged = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);

    // Act / Assert: the task's own failure, not SQS's, reaches Step Functions.
    await expect(handler(failingTask(1))).rejects.toMatchObject({ name: 'TaskFailed', message: 'out of paper' });
    expect(ddb.commandCalls(PutCommand).filter((call) => String(call.args[0].input.Item?.sk).startsWith('RESULT#'))).toHaveLength(1);
    expect(logged.mock.calls.map(([line]) => String(line)).join('\n')).toContain('dead-letter queue: send failed');
  });

  it('sends nothing for a duplicate delivery: the first final result won, and its invocation sent', async () => {
    ddb.on(PutCommand).rejects(new ConditionalCheckFailedException({ message: 'exists', $metadata: {} }));
    await expect(handler(failingTask(1))).rejects.toMatchObject({ name: 'TaskFailed' });
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
  });

  it('sends the failures recorded on the Catch path too (timeout backstop, crashed runtime)', async () => {
    ddb.on(PutCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm' });
    const event: RecordFailureEvent = {
      action: 'recordFailure',
      batchId: 'batch-1',
      task: { id: 'task-2', type: 'sleep', data: { ms: 1 } },
      error: { Error: 'States.Timeout', Cause: '' },
    };
    expect(await handler(event)).toEqual({ taskId: 'task-2', success: false });
    expect(JSON.parse(sqs.commandCalls(SendMessageCommand)[0]?.args[0].input.MessageBody ?? '{}')).toMatchObject({
      batchId: 'batch-1',
      taskId: 'task-2',
      taskType: 'sleep',
      attempts: 1,
    });
  });

  it('on the Catch path, takes the attempt count from the registry entry the timed-out attempt left', async () => {
    // Arrange: attempt 2 (the third) was listed in GET /workers when its backstop fired.
    ddb.on(DeleteCommand).resolves({ Attributes: { id: 'env-task-3-2', batchId: 'batch-1', taskId: 'task-3', attempt: 2 } });
    ddb.on(PutCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm' });
    const event: RecordFailureEvent = { action: 'recordFailure', batchId: 'batch-1', task: { id: 'task-3', type: 'sleep', data: { ms: 1 } }, error: { Error: 'States.Timeout', Cause: '' } };

    // Act
    await handler(event);

    // Assert
    expect(ddb.commandCalls(DeleteCommand)[0]?.args[0].input).toMatchObject({ ReturnValues: 'ALL_OLD' });
    expect(ddb.commandCalls(PutCommand)[0]?.args[0].input.Item).toMatchObject({ taskId: 'task-3', success: false, attempts: 3 });
    expect(JSON.parse(sqs.commandCalls(SendMessageCommand)[0]?.args[0].input.MessageBody ?? '{}')).toMatchObject({ taskId: 'task-3', attempts: 3 });
  });
});
