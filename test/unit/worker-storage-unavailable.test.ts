/**
 * "Fleet under pressure" §2, the worker's part: when the worker cannot store
 * an attempt's outcome (DynamoDB throttled past the SDK's retries,
 * unreachable, failing inside), that is the fleet's fault, not the task's.
 * It throws Fleet.StorageUnavailable, which the child retries without
 * spending one of the task's attempts, never TaskAttemptFailed or TaskFailed,
 * and it sends nothing to the dead-letter queue. An error about the item
 * itself (ValidationException) stays the task's own, as before.
 *
 * DynamoDB's error names and which of them are retryable:
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
 */
import { InternalServerError, ProvisionedThroughputExceededException, RequestLimitExceeded, ThrottlingException } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { isStorageUnavailable } from '../../lambdas/adapters/storage-errors';
import type { RecordFailureEvent, WorkerEvent, WorkerOutput } from '../../lambdas/domain/types';
import { useHandlerEnvironment } from './handler-fixtures';

const ddb = mockClient(DynamoDBDocumentClient);
const sqs = mockClient(SQSClient);
let handler: (event: WorkerEvent | RecordFailureEvent) => Promise<WorkerOutput>;

beforeAll(async () => {
  useHandlerEnvironment({ FLEET_DLQ_URL: 'https://sqs.us-east-1.amazonaws.com/111122223333/fleet-dlq' });
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

const settings = { workerTimeout: 5_000, maxRetries: 1, retryFailedTasks: true, attemptTimeoutSeconds: 15, executionBudgetMs: null };
const succeeding: WorkerEvent = { batchId: 'batch-1', task: { id: 'ok-1', type: 'echo', data: { n: 1 } }, settings, attempt: 0 };
/** The last attempt (maxRetries 1) of a task that fails: its final failure must be stored. */
const finallyFailing: WorkerEvent = { batchId: 'batch-1', task: { id: 'bad-1', type: 'fail', data: { message: 'out of paper' } }, settings, attempt: 1 };
const catchPath: RecordFailureEvent = {
  action: 'recordFailure',
  batchId: 'batch-1',
  task: { id: 'hung-1', type: 'sleep', data: {} },
  error: { Error: 'States.Timeout', Cause: '' },
};

const networkDown = () => Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:443'), { code: 'ECONNREFUSED' });
const meta = { $metadata: { httpStatusCode: 400 } };

const storageFailures: [string, () => Error][] = [
  ['ProvisionedThroughputExceededException', () => new ProvisionedThroughputExceededException({ message: 'throughput exceeded', ...meta })],
  ['ThrottlingException', () => new ThrottlingException({ message: 'rate exceeded', ...meta })],
  ['RequestLimitExceeded', () => new RequestLimitExceeded({ message: 'account limit', ...meta })],
  ['InternalServerError', () => new InternalServerError({ message: 'internal', $metadata: { httpStatusCode: 500 } })],
  ['a refused connection (ECONNREFUSED)', networkDown],
  ['a 503 with no known name', () => Object.assign(new Error('Service Unavailable'), { name: 'Unknown', $metadata: { httpStatusCode: 503 } })],
];

describe('worker: an outcome that cannot be stored is Fleet.StorageUnavailable', () => {
  it.each(storageFailures)('a success whose result write fails with %s', async (_what, failure) => {
    ddb.on(PutCommand).rejects(failure());
    const logged = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);

    await expect(handler(succeeding)).rejects.toMatchObject({ name: 'Fleet.StorageUnavailable' });
    // Logged loudly, as the fleet's fault.
    expect(logged.mock.calls.map(([line]) => String(line)).join('\n')).toContain('storage unavailable');
  });

  it.each(storageFailures)('a final failure whose write fails with %s: neither TaskFailed nor TaskAttemptFailed, and no dead letter', async (_what, failure) => {
    ddb.on(PutCommand).rejects(failure());
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);

    const thrown = await handler(finallyFailing).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    expect(thrown?.name).toBe('Fleet.StorageUnavailable');
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
  });

  it('the Catch path (recordFailure) throws Fleet.StorageUnavailable too, so it is retried rather than lost', async () => {
    ddb.on(PutCommand).rejects(new ProvisionedThroughputExceededException({ message: 'throughput exceeded', ...meta }));
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);

    await expect(handler(catchPath)).rejects.toMatchObject({ name: 'Fleet.StorageUnavailable' });
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
  });

  it('stores and succeeds as before once storage answers', async () => {
    ddb.on(PutCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});
    await expect(handler(succeeding)).resolves.toEqual({ taskId: 'ok-1', success: true });
  });

  it('keeps an item DynamoDB refuses (ValidationException) the task\'s own failure: not retried as storage', async () => {
    const refused = Object.assign(new Error('Item size has exceeded the maximum allowed size'), { name: 'ValidationException', $metadata: { httpStatusCode: 400 } });
    ddb.on(PutCommand).rejects(refused);

    await expect(handler(succeeding)).rejects.toMatchObject({ name: 'ValidationException' });
    expect(isStorageUnavailable(refused)).toBe(false);
  });
});

describe('isStorageUnavailable', () => {
  it('looks through wrappers to the network error inside', () => {
    expect(isStorageUnavailable(new TypeError('fetch failed', { cause: networkDown() }))).toBe(true);
  });

  it('is false for what is not an error of the store', () => {
    for (const value of [undefined, null, 'ECONNREFUSED', new Error('boom'), new RangeError('x')]) expect(isStorageUnavailable(value)).toBe(false);
  });
});
