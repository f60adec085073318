/**
 * Issue 7, item 4: adapter contract tests. Each adapter's AWS calls are sent
 * to mocked clients (aws-sdk-client-mock), and the parameters are checked
 * against what the AWS APIs require:
 * - StartExecution: https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html
 *   (name: 1-80 characters of A-Za-z0-9 - _ for a name Fleet controls; input: a JSON string)
 * - StopExecution / DescribeExecution / RedriveExecution: an execution ARN,
 *   arn:<partition>:states:<region>:<account>:execution:<stateMachineName>:<executionName>
 * - ListMapRuns / UpdateMapRun: https://docs.aws.amazon.com/step-functions/latest/apireference/API_UpdateMapRun.html
 * - DynamoDB ConditionExpression and ConditionalCheckFailedException:
 *   https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
 * - BatchWriteItem UnprocessedItems / BatchGetItem UnprocessedKeys, to be resent with backoff:
 *   https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html
 * - SQS SendMessage: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
 */
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, BatchWriteCommand, DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  ListMapRunsCommand,
  RedriveExecutionCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
  UpdateMapRunCommand,
} from '@aws-sdk/client-sfn';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deleteKeys } from '../../lambdas/adapters/batch-maintenance';
import { DynamoBatchRepository } from '../../lambdas/adapters/batch-repository';
import { DynamoCapacityStore } from '../../lambdas/adapters/capacity-store';
import { MAX_DEAD_LETTER_ERROR_CHARS, SqsDeadLetterQueue } from '../../lambdas/adapters/dead-letter-queue';
import { DynamoIdempotencyStore } from '../../lambdas/adapters/idempotency-store';
import { DynamoRetryStore } from '../../lambdas/adapters/retry-store';
import { StepFunctionsWorkflow } from '../../lambdas/adapters/workflow';
import { COUNTER_SHARDS, RESULT_SHARDS } from '../../lambdas/domain/batch';
import { emptyCapacity } from '../../lambdas/domain/capacity';
import type { BatchExecutionInput, DeadLetteredTask } from '../../lambdas/domain/ports';
import type { TaskResult } from '../../lambdas/domain/types';

const credentials = { accessKeyId: 'x', secretAccessKey: 'x' };
const ddbClient = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1', credentials }));
const sfnClient = new SFNClient({ region: 'us-east-1', credentials });
const sqsClient = new SQSClient({ region: 'us-east-1', credentials });
const ddb = mockClient(ddbClient);
const states = mockClient(sfnClient);
const queue = mockClient(sqsClient);

afterEach(() => {
  ddb.reset();
  states.reset();
  queue.reset();
  vi.useRealTimers();
});

const STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:123456789012:stateMachine:FleetBatchStateMachine-AbC123';
const EXECUTION_PREFIX = 'arn:aws:states:us-east-1:123456789012:execution:FleetBatchStateMachine-AbC123:';
/** StartExecution's name rule, narrowed to the characters Fleet's batch ids use. */
const EXECUTION_NAME = /^[A-Za-z0-9_-]{1,80}$/;

const conditionFailed = () => new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });

function executionInput(batchId: string): BatchExecutionInput {
  return { batchId, tasksBucket: 'fleet-tasks-bucket', tasksKey: `batches/${batchId}/tasks.jsonl` };
}

describe('StepFunctionsWorkflow', () => {
  const workflow = new StepFunctionsWorkflow(sfnClient, STATE_MACHINE_ARN);

  it('StartExecution: the state machine ARN, the batch id as name, the input as a JSON string', async () => {
    // Arrange
    states.on(StartExecutionCommand).resolves({ executionArn: `${EXECUTION_PREFIX}batch_01-a`, startDate: new Date() });
    const input = executionInput('batch_01-a');

    // Act
    const arn = await workflow.startBatch(input);

    // Assert
    const [call] = states.commandCalls(StartExecutionCommand);
    const sent = call?.args[0].input;
    expect(sent?.stateMachineArn).toBe(STATE_MACHINE_ARN);
    expect(sent?.name).toBe('batch_01-a');
    expect(sent?.name).toMatch(EXECUTION_NAME);
    expect(JSON.parse(sent?.input ?? '')).toEqual(input);
    expect(arn).toBe(`${EXECUTION_PREFIX}batch_01-a`);
  });

  it('StartExecution of an 80-character batch id stays within the name limit', async () => {
    states.on(StartExecutionCommand).resolves({ executionArn: 'x', startDate: new Date() });
    const batchId = 'a'.repeat(80);
    await workflow.startBatch(executionInput(batchId));
    expect(states.commandCalls(StartExecutionCommand)[0]?.args[0].input.name).toMatch(EXECUTION_NAME);
  });

  it('ExecutionAlreadyExists on a repeated start answers the existing execution ARN', async () => {
    // Arrange
    states.on(StartExecutionCommand).rejects(new ExecutionAlreadyExists({ message: 'Execution Already Exists', $metadata: {} }));

    // Act
    const arn = await workflow.startBatch(executionInput('b1'));

    // Assert
    expect(arn).toBe(`${EXECUTION_PREFIX}b1`);
  });

  it('any other StartExecution error propagates', async () => {
    states.on(StartExecutionCommand).rejects(new Error('ThrottlingException'));
    await expect(workflow.startBatch(executionInput('b1'))).rejects.toThrow('ThrottlingException');
  });

  it('startRetry names the execution after the retry and maps ExecutionAlreadyExists to its ARN', async () => {
    states.on(StartExecutionCommand).rejects(new ExecutionAlreadyExists({ message: 'exists', $metadata: {} }));
    const arn = await workflow.startRetry(executionInput('b1'), 'b1-retry-2');
    expect(states.commandCalls(StartExecutionCommand)[0]?.args[0].input).toMatchObject({ stateMachineArn: STATE_MACHINE_ARN, name: 'b1-retry-2' });
    expect(arn).toBe(`${EXECUTION_PREFIX}b1-retry-2`);
  });

  it('StopExecution: the execution ARN derived from the state machine ARN, with a named error', async () => {
    states.on(StopExecutionCommand).resolves({ stopDate: new Date() });
    await workflow.stopBatch('b1');
    expect(states.commandCalls(StopExecutionCommand)[0]?.args[0].input).toEqual({
      executionArn: `${EXECUTION_PREFIX}b1`,
      error: 'Fleet.Cancelled',
      cause: 'cancelBatch was called',
    });
  });

  it('StopExecution of a retried batch stops its current execution', async () => {
    const retried = new StepFunctionsWorkflow(sfnClient, STATE_MACHINE_ARN, { executionNameOf: async (id) => `${id}-retry-1` });
    states.on(StopExecutionCommand).resolves({ stopDate: new Date() });
    await retried.stopBatch('b1');
    expect(states.commandCalls(StopExecutionCommand)[0]?.args[0].input.executionArn).toBe(`${EXECUTION_PREFIX}b1-retry-1`);
  });

  it('StopExecution of an execution that does not exist is not an error', async () => {
    states.on(StopExecutionCommand).rejects(new ExecutionDoesNotExist({ message: 'no', $metadata: {} }));
    await expect(workflow.stopBatch('b1')).resolves.toBeUndefined();
  });

  const described = (name: string, status: 'RUNNING' | 'SUCCEEDED') => ({
    executionArn: `${EXECUTION_PREFIX}${name}`,
    stateMachineArn: STATE_MACHINE_ARN,
    startDate: new Date(),
    status,
  });

  it('DescribeExecution: RUNNING means running; a missing execution is not running', async () => {
    states.on(DescribeExecutionCommand, { executionArn: `${EXECUTION_PREFIX}live` }).resolves(described('live', 'RUNNING'));
    states.on(DescribeExecutionCommand, { executionArn: `${EXECUTION_PREFIX}gone` }).rejects(new ExecutionDoesNotExist({ message: 'no', $metadata: {} }));
    states.on(DescribeExecutionCommand, { executionArn: `${EXECUTION_PREFIX}done` }).resolves(described('done', 'SUCCEEDED'));

    expect(await workflow.isBatchRunning('live')).toBe(true);
    expect(await workflow.isBatchRunning('gone')).toBe(false);
    expect(await workflow.isBatchRunning('done')).toBe(false);
    expect(await workflow.executionStatus('gone')).toBeUndefined();
    expect(await workflow.executionStatus('done')).toBe('SUCCEEDED');
  });

  it('RedriveExecution: the execution ARN of the named execution', async () => {
    states.on(RedriveExecutionCommand).resolves({ redriveDate: new Date() });
    await workflow.redrive('b1-retry-1');
    expect(states.commandCalls(RedriveExecutionCommand)[0]?.args[0].input).toEqual({ executionArn: `${EXECUTION_PREFIX}b1-retry-1` });
  });

  it('ListMapRuns then UpdateMapRun with maxConcurrency on each running Map Run, skipping stopped ones', async () => {
    // Arrange
    const running = 'arn:aws:states:us-east-1:123456789012:mapRun:FleetBatchStateMachine-AbC123/b1:run-1';
    const stopped = 'arn:aws:states:us-east-1:123456789012:mapRun:FleetBatchStateMachine-AbC123/b1:run-0';
    states.on(ListMapRunsCommand).resolves({
      mapRuns: [
        { executionArn: `${EXECUTION_PREFIX}b1`, mapRunArn: stopped, stateMachineArn: 'x', startDate: new Date(), stopDate: new Date() },
        { executionArn: `${EXECUTION_PREFIX}b1`, mapRunArn: running, stateMachineArn: 'x', startDate: new Date() },
      ],
    });
    states.on(UpdateMapRunCommand).resolves({});

    // Act
    const updated = await workflow.setBatchConcurrency('b1', 7);

    // Assert
    expect(updated).toBe(true);
    expect(states.commandCalls(ListMapRunsCommand)[0]?.args[0].input).toEqual({ executionArn: `${EXECUTION_PREFIX}b1` });
    const updates = states.commandCalls(UpdateMapRunCommand).map((call) => call.args[0].input);
    expect(updates).toEqual([{ mapRunArn: running, maxConcurrency: 7 }]);
  });

  it('no Map Run yet, or no execution: nothing updated', async () => {
    states.on(ListMapRunsCommand, { executionArn: `${EXECUTION_PREFIX}early` }).resolves({ mapRuns: [] });
    states.on(ListMapRunsCommand, { executionArn: `${EXECUTION_PREFIX}gone` }).rejects(new ExecutionDoesNotExist({ message: 'no', $metadata: {} }));
    expect(await workflow.setBatchConcurrency('early', 3)).toBe(false);
    expect(await workflow.setBatchConcurrency('gone', 3)).toBe(false);
    expect(states.commandCalls(UpdateMapRunCommand)).toHaveLength(0);
  });
});

describe('DynamoBatchRepository conditional writes', () => {
  const repository = new DynamoBatchRepository(ddbClient, 'FleetTable');
  const result: TaskResult = { taskId: 't1', success: true, result: 1, duration: 5, timestamp: 1_700_000_000_000, attempts: 1, workerId: 'w' };

  it('recordResult puts the result only if none exists, then counts it', async () => {
    // Arrange
    ddb.on(PutCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});

    // Act
    const recorded = await repository.recordResult('b1', result, 1_800_000_000);

    // Assert
    expect(recorded).toBe(true);
    const put = ddb.commandCalls(PutCommand)[0]?.args[0].input;
    expect(put?.TableName).toBe('FleetTable');
    expect(put?.ConditionExpression).toBe('attribute_not_exists(pk)');
    expect(put?.Item).toMatchObject({ sk: 'RESULT#t1', taskId: 't1', expiresAt: 1_800_000_000 });
    expect(put?.Item?.pk).toMatch(/^BATCH#b1#S\d{2}$/);
    const update = ddb.commandCalls(UpdateCommand)[0]?.args[0].input;
    // One of the batch's counters: COUNT#c lives in partition c mod RESULT_SHARDS.
    const counter = Number(String(update?.Key?.sk).replace(/^COUNT#/, ''));
    expect(Number.isInteger(counter) && counter >= 0 && counter < COUNTER_SHARDS).toBe(true);
    expect(update?.Key).toEqual({ pk: `BATCH#b1#S${String(counter % RESULT_SHARDS).padStart(2, '0')}`, sk: `COUNT#${counter}` });
    expect(update?.UpdateExpression).toBe('ADD #f0 :d0 SET expiresAt = :exp');
    expect(update?.ExpressionAttributeNames).toEqual({ '#f0': 'completed' });
    expect(update?.ExpressionAttributeValues).toEqual({ ':d0': 1, ':exp': 1_800_000_000 });
  });

  it('recordResult of a duplicate delivery: ConditionalCheckFailed → false, and nothing counted', async () => {
    ddb.on(PutCommand).rejects(conditionFailed());
    expect(await repository.recordResult('b1', result, 1)).toBe(false);
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(0);
  });

  it('recordResult rethrows errors that are not a failed condition', async () => {
    ddb.on(PutCommand).rejects(new Error('ProvisionedThroughputExceededException'));
    await expect(repository.recordResult('b1', result, 1)).rejects.toThrow('ProvisionedThroughputExceededException');
  });

  it('results recorded together: one consistent BatchGetItem of their keys, BatchWriteItem of the absent ones, each counted once', async () => {
    // Arrange: t2 already has its result.
    const grouped = new DynamoBatchRepository(ddbClient, 'GroupTable', { groupResultWrites: true });
    ddb.on(PutCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});
    ddb.on(BatchGetCommand).callsFake((input: { RequestItems: Record<string, { Keys: { pk: string; sk: string }[] }> }) => ({
      Responses: { GroupTable: input.RequestItems.GroupTable!.Keys.filter((key) => key.sk === 'RESULT#t2') },
    }));
    ddb.on(BatchWriteCommand).resolves({});

    // Act: the first is written alone; the three that arrive meanwhile go together.
    const outcomes = await Promise.all(['t0', 't1', 't2', 't3'].map((taskId) => grouped.recordResult('b1', { ...result, taskId }, 1_800_000_000)));

    // Assert
    expect(outcomes).toEqual([true, true, false, true]);
    expect(ddb.commandCalls(PutCommand).map((call) => call.args[0].input.Item?.sk)).toEqual(['RESULT#t0']);
    const read = ddb.commandCalls(BatchGetCommand)[0]?.args[0].input.RequestItems?.GroupTable;
    expect(read).toMatchObject({ ConsistentRead: true, ProjectionExpression: 'pk, sk' });
    expect(read?.Keys?.map((key) => key.sk)).toEqual(['RESULT#t1', 'RESULT#t2', 'RESULT#t3']);
    const written = ddb.commandCalls(BatchWriteCommand).flatMap((call) => call.args[0].input.RequestItems?.GroupTable ?? []);
    expect(written.map((request) => request.PutRequest?.Item)).toEqual([
      expect.objectContaining({ sk: 'RESULT#t1', taskId: 't1', expiresAt: 1_800_000_000 }),
      expect.objectContaining({ sk: 'RESULT#t3', taskId: 't3', expiresAt: 1_800_000_000 }),
    ]);
    const counted = ddb.commandCalls(UpdateCommand).reduce((sum, call) => sum + Number(call.args[0].input.ExpressionAttributeValues?.[':d0']), 0);
    expect(counted).toBe(3);
  });

  it('without groupResultWrites (AWS), results recorded together are still one conditional PutItem each', async () => {
    ddb.on(PutCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});

    const outcomes = await Promise.all(['t0', 't1', 't2'].map((taskId) => repository.recordResult('b1', { ...result, taskId }, 1)));

    expect(outcomes).toEqual([true, true, true]);
    expect(ddb.commandCalls(PutCommand).map((call) => call.args[0].input.ConditionExpression)).toEqual(Array(3).fill('attribute_not_exists(pk)'));
    expect(ddb.commandCalls(BatchGetCommand)).toHaveLength(0);
    expect(ddb.commandCalls(BatchWriteCommand)).toHaveLength(0);
  });

  it('results recorded together: a refused BatchWriteItem fails only the item DynamoDB refuses, the others are put alone', async () => {
    const grouped = new DynamoBatchRepository(ddbClient, 'RefusingTable', { groupResultWrites: true });
    ddb.on(UpdateCommand).resolves({});
    ddb.on(BatchGetCommand).resolves({ Responses: { RefusingTable: [] } });
    ddb.on(BatchWriteCommand).rejects(new Error('ValidationException: Item size has exceeded the maximum allowed size'));
    ddb.on(PutCommand).callsFake((input: { Item: { taskId: string } }) => {
      if (input.Item.taskId === 'big') throw new Error('ValidationException: Item size has exceeded the maximum allowed size');
      return {};
    });

    const outcomes = await Promise.allSettled(['t0', 't1', 'big', 't3'].map((taskId) => grouped.recordResult('b1', { ...result, taskId }, 1)));

    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : 'rejected'))).toEqual([true, true, 'rejected', true]);
    expect(ddb.commandCalls(BatchWriteCommand)).toHaveLength(1);
  });

  it('results recorded together: keys DynamoDB never processes fail their inserts after 12 reads, naming what is left', async () => {
    vi.useFakeTimers();
    const grouped = new DynamoBatchRepository(ddbClient, 'ThrottledTable', { groupResultWrites: true });
    ddb.on(PutCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});
    ddb.on(BatchGetCommand).callsFake((input: { RequestItems: Record<string, unknown> }) => ({ UnprocessedKeys: input.RequestItems }));

    const outcomes = ['t0', 't1', 't2'].map((taskId) => grouped.recordResult('b1', { ...result, taskId }, 1));
    const assertions = outcomes.slice(1).map((outcome) => expect(outcome).rejects.toThrow('DynamoDB left 2 read(s) unprocessed after 12 attempts'));
    await vi.runAllTimersAsync();

    expect(await outcomes[0]).toBe(true);
    await Promise.all(assertions);
    expect(ddb.commandCalls(BatchGetCommand)).toHaveLength(12);
    expect(ddb.commandCalls(BatchWriteCommand)).toHaveLength(0);
  });

  it('finish only moves a batch that exists and is not already final', async () => {
    // Arrange
    ddb.on(UpdateCommand).resolves({});

    // Act
    const done = await repository.finish('b1', { status: 'partial', completedTasks: 3, failedTasks: 1, completedAt: 10, expiresAt: 20, error: 'one failed' });

    // Assert
    expect(done).toBe(true);
    const input = ddb.commandCalls(UpdateCommand)[0]?.args[0].input;
    expect(input?.Key).toEqual({ pk: 'BATCH#b1', sk: 'META' });
    expect(input?.ConditionExpression).toBe('attribute_exists(pk) AND NOT #s IN (:completed, :failed, :partial, :cancelled)');
    expect(input?.ExpressionAttributeNames).toMatchObject({ '#s': 'status', '#e': 'error', '#active': 'activePk' });
    expect(input?.ExpressionAttributeValues).toMatchObject({
      ':status': 'partial',
      ':completed': 'completed',
      ':failed': 'failed',
      ':partial': 'partial',
      ':cancelled': 'cancelled',
      ':err': 'one failed',
    });
    // Every placeholder used is defined, and every one defined is used: DynamoDB refuses either mismatch.
    const expressions = `${input?.UpdateExpression} ${input?.ConditionExpression}`;
    expect(new Set(expressions.match(/:\w+/g))).toEqual(new Set(Object.keys(input?.ExpressionAttributeValues ?? {})));
    expect(new Set(expressions.match(/#\w+/g))).toEqual(new Set(Object.keys(input?.ExpressionAttributeNames ?? {})));
  });

  it('finish without an error defines no unused #e / :err placeholders', async () => {
    ddb.on(UpdateCommand).resolves({});
    await repository.finish('b1', { status: 'completed', completedTasks: 3, failedTasks: 0, completedAt: 10, expiresAt: 20 });
    const input = ddb.commandCalls(UpdateCommand)[0]?.args[0].input;
    const expressions = `${input?.UpdateExpression} ${input?.ConditionExpression}`;
    expect(new Set(expressions.match(/:\w+/g))).toEqual(new Set(Object.keys(input?.ExpressionAttributeValues ?? {})));
    expect(new Set(expressions.match(/#\w+/g))).toEqual(new Set(Object.keys(input?.ExpressionAttributeNames ?? {})));
  });

  it('finish of a batch already final: ConditionalCheckFailed → false', async () => {
    ddb.on(UpdateCommand).rejects(conditionFailed());
    expect(await repository.finish('b1', { status: 'completed', completedTasks: 1, failedTasks: 0, completedAt: 1, expiresAt: 2 })).toBe(false);
  });

  it('markStarted moves pending → processing only; a failed condition → undefined', async () => {
    ddb.on(UpdateCommand).rejects(conditionFailed());
    expect(await repository.markStarted('b1', 5)).toBeUndefined();
    const input = ddb.commandCalls(UpdateCommand)[0]?.args[0].input;
    expect(input?.ConditionExpression).toBe('#s = :pending');
    expect(input?.ReturnValues).toBe('ALL_NEW');
  });

  it('createBatch names the counter layout; a batch is summed from its COUNTER_SHARDS COUNT#<c> items, nothing else', async () => {
    // Arrange
    ddb.on(PutCommand).resolves({});
    ddb.on(GetCommand).resolves({ Item: { pk: 'BATCH#old', sk: 'META', batchId: 'old', status: 'cancelled', totalTasks: 10, createdAt: 1, tasksKey: 'k' } });
    ddb
      .on(BatchGetCommand)
      .resolvesOnce({ Responses: { FleetTable: [{ pk: 'BATCH#old#S03', sk: 'COUNT#3', completed: 1 }] } })
      .resolvesOnce({ Responses: { FleetTable: [{ pk: 'BATCH#old#S07', sk: 'COUNT#103', completed: 5, failed: 2 }] } });

    // Act
    await repository.createBatch({ batchId: 'new', status: 'pending', totalTasks: 1, createdAt: 1, startedAt: null, completedAt: null, completedTasks: 0, failedTasks: 0, priority: 0, longestTaskTimeoutMs: 0, tasksKey: 'k' });
    const status = await repository.getStatus('old');

    // Assert
    expect(ddb.commandCalls(PutCommand)[0]?.args[0].input.Item).toMatchObject({ counterShards: COUNTER_SHARDS });
    const keys = ddb.commandCalls(BatchGetCommand).flatMap((call) => (call.args[0].input.RequestItems?.FleetTable?.Keys ?? []) as { pk: string; sk: string }[]);
    expect(keys).toHaveLength(COUNTER_SHARDS);
    expect(keys.map((key) => key.sk)).toEqual(Array.from({ length: COUNTER_SHARDS }, (_, c) => `COUNT#${c}`));
    expect(keys.map((key) => key.pk)).toEqual(Array.from({ length: COUNTER_SHARDS }, (_, c) => `BATCH#old#S${String(c % RESULT_SHARDS).padStart(2, '0')}`));
    expect(status).toMatchObject({ completedTasks: 6, failedTasks: 2 });
  });

  it('sumCounters (getStatus) resends BatchGetItem UnprocessedKeys with backoff until none are left', async () => {
    // Arrange
    vi.useFakeTimers();
    const allKeys = Array.from({ length: COUNTER_SHARDS }, (_, c) => ({ pk: `BATCH#b1#S${String(c % RESULT_SHARDS).padStart(2, '0')}`, sk: `COUNT#${c}` }));
    // BatchGetItem reads at most 100 keys: the counters come in two reads, the first one partly unprocessed.
    const firstRead = allKeys.slice(0, 100);
    const secondRead = allKeys.slice(100);
    const [first, second, ...rest] = firstRead;
    ddb.on(GetCommand).resolves({ Item: { pk: 'BATCH#b1', sk: 'META', batchId: 'b1', status: 'processing', totalTasks: 10, createdAt: 1, tasksKey: 'k', counterShards: 128 } });
    ddb
      .on(BatchGetCommand)
      .resolvesOnce({
        Responses: { FleetTable: [{ ...first, completed: 2, failed: 1 }] },
        UnprocessedKeys: { FleetTable: { Keys: [second, ...rest] as Record<string, unknown>[] } },
      })
      .resolvesOnce({ Responses: { FleetTable: [{ ...secondRead[0], completed: 10 }] }, UnprocessedKeys: {} })
      .resolvesOnce({ Responses: { FleetTable: [{ ...second, completed: 4 }] }, UnprocessedKeys: {} });

    // Act
    const pending = repository.getStatus('b1');
    await vi.runAllTimersAsync();
    const status = await pending;

    // Assert
    const calls = ddb.commandCalls(BatchGetCommand).map((call) => call.args[0].input.RequestItems?.FleetTable);
    expect(calls).toHaveLength(3);
    expect(calls[0]?.Keys).toEqual(firstRead);
    expect(calls[1]?.Keys).toEqual(secondRead);
    expect(calls.every((call) => call?.ConsistentRead === true)).toBe(true);
    expect(calls[2]?.Keys).toEqual([second, ...rest]);
    expect(status).toMatchObject({ completedTasks: 16, failedTasks: 1 });
  });

  it('BatchGetItem requests stay within its 100-key limit', () => {
    expect(RESULT_SHARDS).toBeLessThanOrEqual(100);
  });
});

describe('DynamoBatchRepository getStatus with countsMaxAgeMs (GET /batches/{id})', () => {
  const record = (status: string) => ({ pk: 'BATCH#b9', sk: 'META', batchId: 'b9', status, totalTasks: 10, createdAt: 1, tasksKey: 'k', counterShards: COUNTER_SHARDS });
  const counter = (completed: number) => ({ Responses: { FleetTable: [{ pk: 'BATCH#b9#S00', sk: 'COUNT#0', completed }] } });

  it('reads the record every time, and a processing batch\'s counters at most once per window', async () => {
    const repository = new DynamoBatchRepository(ddbClient, 'FleetTable');
    ddb.on(GetCommand).resolves({ Item: record('processing') });
    ddb.on(BatchGetCommand).resolvesOnce(counter(3)).resolvesOnce({}).resolvesOnce(counter(7)).resolves({});

    const first = await repository.getStatus('b9', { countsMaxAgeMs: 60_000 });
    const second = await repository.getStatus('b9', { countsMaxAgeMs: 60_000 });
    const fresh = await repository.getStatus('b9');

    expect(first?.completedTasks).toBe(3);
    expect(second?.completedTasks).toBe(3);
    expect(fresh?.completedTasks).toBe(7);
    expect(ddb.commandCalls(GetCommand)).toHaveLength(3);
    // The first sum (two BatchGetItem calls: 128 counters, 100 keys a call), none for the second, a new one for the third.
    expect(ddb.commandCalls(BatchGetCommand)).toHaveLength(4);
  });

  it('never keeps an old status: a batch cancelled meanwhile shows cancelled, with fresh counts', async () => {
    const repository = new DynamoBatchRepository(ddbClient, 'FleetTable');
    ddb.on(GetCommand).resolvesOnce({ Item: record('processing') }).resolves({ Item: record('cancelled') });
    ddb.on(BatchGetCommand).resolvesOnce(counter(3)).resolvesOnce({}).resolvesOnce(counter(9)).resolves({});

    await repository.getStatus('b9', { countsMaxAgeMs: 60_000 });
    const after = await repository.getStatus('b9', { countsMaxAgeMs: 60_000 });

    expect(after).toMatchObject({ status: 'cancelled', completedTasks: 9 });
  });
});

describe('DynamoBatchRepository config', () => {
  const repository = new DynamoBatchRepository(ddbClient, 'FleetTable');

  it('updateConfig sets only the fields given, so a concurrent change of another field is kept', async () => {
    // Arrange: the stored item as it is after the update.
    ddb.on(UpdateCommand).resolves({ Attributes: { pk: 'FLEET', sk: 'CONFIG', maxConcurrentWorkers: 8, maxRetries: 1 } });

    // Act
    const config = await repository.updateConfig({ maxConcurrentWorkers: 8 });

    // Assert
    const update = ddb.commandCalls(UpdateCommand)[0]?.args[0].input;
    expect(update).toMatchObject({ TableName: 'FleetTable', Key: { pk: 'FLEET', sk: 'CONFIG' }, UpdateExpression: 'SET #f0 = :v0', ReturnValues: 'ALL_NEW' });
    expect(update?.ExpressionAttributeNames).toEqual({ '#f0': 'maxConcurrentWorkers' });
    expect(update?.ExpressionAttributeValues).toEqual({ ':v0': 8 });
    expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
    expect(config).toEqual({ maxConcurrentWorkers: 8, maxRetries: 1, workerTimeout: 300_000, retryFailedTasks: true, workerListing: 'every-attempt' });
  });
});

describe('DynamoRetryStore', () => {
  it('clearFailedResult lowers a counter that expires with the batch (it may be created by this very update)', async () => {
    // Arrange
    const store = new DynamoRetryStore(ddbClient, 'FleetTable');
    ddb.on(GetCommand).resolves({ Item: { pk: 'BATCH#b1#S01', sk: 'RESULT#t1', taskId: 't1', success: false, timestamp: 5 } });
    ddb.on(PutCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});
    ddb.on(DeleteCommand).resolves({});

    // Act
    const cleared = await store.clearFailedResult('b1', 't1', { retry: 1, before: 10, expiresAt: 1_900_000_000 });

    // Assert
    expect(cleared).toBe(true);
    const update = ddb.commandCalls(UpdateCommand)[0]?.args[0].input;
    expect(update?.UpdateExpression).toBe('ADD failed :minus SET expiresAt = :exp');
    expect(update?.ExpressionAttributeValues).toEqual({ ':minus': -1, ':exp': 1_900_000_000 });
    expect(String(update?.Key?.sk)).toMatch(/^COUNT#\d+$/);
  });
});

describe('DynamoCapacityStore optimistic locking', () => {
  const store = new DynamoCapacityStore(ddbClient, 'FleetTable');

  it('the first save requires that no item exists', async () => {
    ddb.on(PutCommand).resolves({});
    expect(await store.save(emptyCapacity(), 0)).toBe(true);
    const input = ddb.commandCalls(PutCommand)[0]?.args[0].input;
    expect(input?.ConditionExpression).toBe('attribute_not_exists(pk)');
    expect(input?.ExpressionAttributeValues).toBeUndefined();
    expect(input?.Item).toMatchObject({ pk: 'FLEET', sk: 'CAPACITY', version: 1 });
  });

  it('a later save requires the version it read, and writes the next', async () => {
    ddb.on(PutCommand).resolves({});
    await store.save(emptyCapacity(), 4);
    const input = ddb.commandCalls(PutCommand)[0]?.args[0].input;
    expect(input?.ConditionExpression).toBe('version = :v');
    expect(input?.ExpressionAttributeValues).toEqual({ ':v': 4 });
    expect(input?.Item?.version).toBe(5);
  });

  it('a lost race: ConditionalCheckFailed → false', async () => {
    ddb.on(PutCommand).rejects(conditionFailed());
    expect(await store.save(emptyCapacity(), 4)).toBe(false);
  });

  it('load reads consistently', async () => {
    ddb.on(GetCommand).resolves({ Item: { pk: 'FLEET', sk: 'CAPACITY', state: JSON.stringify(emptyCapacity()), version: 3 } });
    expect((await store.load()).version).toBe(3);
    expect(ddb.commandCalls(GetCommand)[0]?.args[0].input).toMatchObject({ Key: { pk: 'FLEET', sk: 'CAPACITY' }, ConsistentRead: true });
  });
});

describe('DynamoIdempotencyStore claim', () => {
  const record = { keyHash: 'abc', bodyHash: 'def', batchId: 'b1', state: 'creating' as const, createdAt: 1, expiresAt: 2_000 };
  const store = new DynamoIdempotencyStore(ddbClient, 'FleetTable', () => 1_000);

  it('claims with one conditional put: no claim, or an expired one', async () => {
    ddb.on(PutCommand).resolves({});
    expect(await store.claim(record)).toEqual({ claimed: true });
    const input = ddb.commandCalls(PutCommand)[0]?.args[0].input;
    expect(input?.ConditionExpression).toBe('attribute_not_exists(pk) OR expiresAt <= :now');
    expect(input?.ExpressionAttributeValues).toEqual({ ':now': 1_000 });
    expect(input?.Item).toMatchObject({ pk: 'IDEMPOTENCY#abc', sk: 'KEY', batchId: 'b1' });
  });

  it('a live claim held by another: ConditionalCheckFailed → the existing record, read consistently', async () => {
    ddb.on(PutCommand).rejects(conditionFailed());
    ddb.on(GetCommand).resolves({ Item: { pk: 'IDEMPOTENCY#abc', sk: 'KEY', bodyHash: 'zzz', batchId: 'b0', state: 'created', createdAt: 1, expiresAt: 5_000 } });
    const answer = await store.claim(record);
    expect(answer).toEqual({ claimed: false, existing: { keyHash: 'abc', bodyHash: 'zzz', batchId: 'b0', state: 'created', createdAt: 1, expiresAt: 5_000 } });
    expect(ddb.commandCalls(GetCommand)[0]?.args[0].input.ConsistentRead).toBe(true);
  });

  it('markCreated only updates its own claim; a failed condition is ignored', async () => {
    ddb.on(UpdateCommand).rejects(conditionFailed());
    await expect(store.markCreated('abc', 'b1')).resolves.toBeUndefined();
    const input = ddb.commandCalls(UpdateCommand)[0]?.args[0].input;
    expect(input?.ConditionExpression).toBe('batchId = :batchId');
    expect(input?.ExpressionAttributeValues).toMatchObject({ ':batchId': 'b1' });
  });
});

describe('deleteKeys (BatchWriteItem)', () => {
  it('resends UnprocessedItems with growing delays until none are left', async () => {
    // Arrange
    vi.useFakeTimers();
    const keys = Array.from({ length: 3 }, (_, i) => ({ pk: `k${i}`, sk: 'X' }));
    const unprocessed = (n: number) => ({ FleetTable: keys.slice(0, n).map((Key) => ({ DeleteRequest: { Key } })) });
    const sentAt: number[] = [];
    ddb.on(BatchWriteCommand).callsFake((input: { RequestItems: Record<string, unknown[]> }) => {
      sentAt.push(Date.now());
      const n = sentAt.length === 1 ? 2 : sentAt.length === 2 ? 1 : 0;
      expect(input.RequestItems.FleetTable).toHaveLength(sentAt.length === 1 ? 3 : sentAt.length === 2 ? 2 : 1);
      return Promise.resolve(n > 0 ? { UnprocessedItems: unprocessed(n) } : {});
    });

    // Act
    const pending = deleteKeys(ddbClient, 'FleetTable', keys);
    await vi.runAllTimersAsync();
    const deleted = await pending;

    // Assert
    expect(deleted).toBe(3);
    expect(sentAt).toHaveLength(3);
    const gaps = [(sentAt[1] ?? 0) - (sentAt[0] ?? 0), (sentAt[2] ?? 0) - (sentAt[1] ?? 0)];
    expect(gaps[0]).toBeGreaterThan(0);
    expect(gaps[1]).toBeGreaterThan(gaps[0] ?? 0);
  });

  it('gives up loudly after maxRounds instead of looping forever', async () => {
    vi.useFakeTimers();
    const keys = [{ pk: 'k', sk: 'X' }];
    ddb.on(BatchWriteCommand).resolves({ UnprocessedItems: { FleetTable: [{ DeleteRequest: { Key: keys[0] } }] } });
    const pending = deleteKeys(ddbClient, 'FleetTable', keys, 3);
    const assertion = expect(pending).rejects.toThrow('unprocessed after 3 attempts');
    await vi.runAllTimersAsync();
    await assertion;
    expect(ddb.commandCalls(BatchWriteCommand)).toHaveLength(3);
  });
});

describe('SqsDeadLetterQueue', () => {
  const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/FleetDeadLetters';

  it('SendMessage: the queue URL, a JSON body of the task identity and failure, and a batchId attribute', async () => {
    // Arrange
    queue.on(SendMessageCommand).resolves({ MessageId: 'm1' });
    const dlq = new SqsDeadLetterQueue(sqsClient, QUEUE_URL);
    const task: DeadLetteredTask = {
      batchId: 'b1',
      taskId: 't1',
      taskType: 'echo',
      error: 'x'.repeat(MAX_DEAD_LETTER_ERROR_CHARS + 100),
      attempts: 3,
      workerId: 'w1',
      failedAt: 1_700_000_000_000,
    };

    // Act
    await dlq.send(task);

    // Assert
    const input = queue.commandCalls(SendMessageCommand)[0]?.args[0].input;
    expect(input?.QueueUrl).toBe(QUEUE_URL);
    const body = JSON.parse(input?.MessageBody ?? '') as Record<string, unknown>;
    expect(body).toEqual({ ...task, error: 'x'.repeat(MAX_DEAD_LETTER_ERROR_CHARS) });
    expect(String(body.error)).toHaveLength(MAX_DEAD_LETTER_ERROR_CHARS);
    // SendMessage's limit is 256 KiB for body and attributes together.
    expect(Buffer.byteLength(input?.MessageBody ?? '')).toBeLessThan(256 * 1024);
    expect(input?.MessageAttributes).toEqual({ batchId: { DataType: 'String', StringValue: 'b1' } });
  });
});
