/**
 * The one BatchGetItem loop (lambdas/adapters/batch-get.ts) and its error
 * paths. BatchGetItem reads at most 100 keys a request and returns what it
 * could not read in UnprocessedKeys, to be resent with exponential backoff:
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html
 * A table that keeps throttling ends the read with BatchGetIncomplete, a
 * storage error the worker turns into Fleet.StorageUnavailable.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BATCH_GET_MAX, BATCH_GET_MAX_ROUNDS, BatchGetIncomplete, batchGetItems } from '../../lambdas/adapters/batch-get';
import { DynamoFleetActivity } from '../../lambdas/adapters/fleet-activity';
import { isStorageUnavailable } from '../../lambdas/adapters/storage-errors';

const ddbClient = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }));
const ddb = mockClient(ddbClient);
const TABLE = 'FleetTable';

afterEach(() => {
  ddb.reset();
  vi.useRealTimers();
});

const keys = (n: number) => Array.from({ length: n }, (_, i) => ({ pk: `P#${i}`, sk: 'S' }));
const sentKeys = () => ddb.commandCalls(BatchGetCommand).map((call) => call.args[0].input.RequestItems?.[TABLE]?.Keys ?? []);

/** Runs `read` with fake timers, so the backoff between rounds takes no real time. */
async function withFakeTimers<T>(read: () => Promise<T>): Promise<T> {
  vi.useFakeTimers();
  const pending = read();
  // Observed whatever it settles to, so a rejection is not reported as unhandled while the timers run.
  pending.catch(() => undefined);
  await vi.runAllTimersAsync();
  return pending;
}

describe('batchGetItems', () => {
  it('reads 100 keys a request, strongly consistent, with the projection asked for', async () => {
    // Arrange
    ddb.on(BatchGetCommand).callsFake((input: { RequestItems: Record<string, { Keys: Record<string, unknown>[] }> }) => ({
      Responses: { [TABLE]: input.RequestItems[TABLE]!.Keys.map((key) => ({ ...key, found: true })) },
    }));

    // Act
    const items = await batchGetItems(ddbClient, TABLE, keys(250), { projection: 'pk, sk' });

    // Assert
    expect(sentKeys().map((sent) => sent.length)).toEqual([BATCH_GET_MAX, BATCH_GET_MAX, 50]);
    const inputs = ddb.commandCalls(BatchGetCommand).map((call) => call.args[0].input.RequestItems?.[TABLE]);
    expect(inputs.every((input) => input?.ConsistentRead === true && input.ProjectionExpression === 'pk, sk')).toBe(true);
    expect(items.map((item) => item.pk).sort()).toEqual(keys(250).map((key) => key.pk).sort());
  });

  it('sends nothing for no keys', async () => {
    expect(await batchGetItems(ddbClient, TABLE, [])).toEqual([]);
    expect(ddb.commandCalls(BatchGetCommand)).toHaveLength(0);
  });

  it('resends only the UnprocessedKeys, with growing waits, until none are left', async () => {
    // Arrange
    const all = keys(3);
    ddb
      .on(BatchGetCommand)
      .resolvesOnce({ Responses: { [TABLE]: [all[0]!] }, UnprocessedKeys: { [TABLE]: { Keys: [all[1]!, all[2]!] } } })
      .resolvesOnce({ Responses: { [TABLE]: [all[1]!] }, UnprocessedKeys: { [TABLE]: { Keys: [all[2]!] } } })
      .resolvesOnce({ Responses: { [TABLE]: [all[2]!] } });
    // The waits asked for are recorded, and each is cut to nothing.
    const waits: number[] = [];
    const realSetTimeout = globalThis.setTimeout;
    const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation((fn: () => void, ms?: number) => {
      waits.push(ms ?? 0);
      return realSetTimeout(fn, 0);
    });

    // Act
    const items = await batchGetItems(ddbClient, TABLE, all).finally(() => {
      spy.mockRestore();
    });

    // Assert
    expect(sentKeys()).toEqual([all, [all[1], all[2]], [all[2]]]);
    expect(items).toEqual(all);
    expect(waits).toHaveLength(2);
    expect(waits[1]!).toBeGreaterThan(waits[0]!);
  });

  it(`gives up after ${BATCH_GET_MAX_ROUNDS} sends that leave keys unprocessed: BatchGetIncomplete, a storage error`, async () => {
    // Arrange: a table that throttles every read.
    const all = keys(5);
    ddb.on(BatchGetCommand).resolves({ Responses: { [TABLE]: [] }, UnprocessedKeys: { [TABLE]: { Keys: all } } });

    // Act
    const error = await withFakeTimers(() => batchGetItems(ddbClient, TABLE, all)).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );

    // Assert
    expect(error).toBeInstanceOf(BatchGetIncomplete);
    expect((error as BatchGetIncomplete).name).toBe('BatchGetIncomplete');
    expect((error as BatchGetIncomplete).unprocessed).toBe(5);
    expect((error as Error).message).toBe(`DynamoDB left 5 read(s) unprocessed after ${BATCH_GET_MAX_ROUNDS} attempts`);
    expect(isStorageUnavailable(error)).toBe(true);
    expect(ddb.commandCalls(BatchGetCommand)).toHaveLength(BATCH_GET_MAX_ROUNDS);
  });

  it('honours a smaller maxRounds', async () => {
    ddb.on(BatchGetCommand).resolves({ UnprocessedKeys: { [TABLE]: { Keys: keys(1) } } });

    await expect(withFakeTimers(() => batchGetItems(ddbClient, TABLE, keys(1), { maxRounds: 2 }))).rejects.toThrow(BatchGetIncomplete);
    expect(ddb.commandCalls(BatchGetCommand)).toHaveLength(2);
  });

  it('lets a failed send through as it is: throttling stays a storage error, a refused request does not', async () => {
    const throttled = Object.assign(new Error('Rate of requests exceeds the allowed throughput.'), { name: 'ProvisionedThroughputExceededException' });
    const refused = Object.assign(new Error('Too many items requested for the BatchGetItem call'), { name: 'ValidationException' });
    ddb.on(BatchGetCommand).rejectsOnce(throttled).rejectsOnce(refused);

    const first = await batchGetItems(ddbClient, TABLE, keys(1)).catch((thrown: unknown) => thrown);
    const second = await batchGetItems(ddbClient, TABLE, keys(1)).catch((thrown: unknown) => thrown);

    expect(first).toMatchObject({ name: 'ProvisionedThroughputExceededException' });
    expect(isStorageUnavailable(first)).toBe(true);
    expect(second).toMatchObject({ name: 'ValidationException' });
    expect(isStorageUnavailable(second)).toBe(false);
  });
});

describe('DynamoFleetActivity reads through it', () => {
  it('readTotals on a table that keeps throttling fails with BatchGetIncomplete instead of resending for ever', async () => {
    // Arrange
    ddb.on(BatchGetCommand).callsFake((input: { RequestItems: Record<string, { Keys: Record<string, unknown>[] }> }) => ({
      UnprocessedKeys: { [TABLE]: { Keys: input.RequestItems[TABLE]!.Keys } },
    }));
    const activity = new DynamoFleetActivity(ddbClient, TABLE);

    // Act
    const error = await withFakeTimers(() => activity.readTotals()).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );

    // Assert
    expect(error).toBeInstanceOf(BatchGetIncomplete);
    expect(ddb.commandCalls(BatchGetCommand)).toHaveLength(BATCH_GET_MAX_ROUNDS);
  });
});
