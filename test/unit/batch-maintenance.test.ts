import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DeleteCommand, DynamoDBDocumentClient, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { DynamoBatchMaintenance, deleteKeys } from '../../lambdas/adapters/batch-maintenance';
import { RESULT_SHARDS } from '../../lambdas/domain/batch';
import { sweepExpired, ttlTablesOf } from '../../infra/local/ttl-sweeper';

const client = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }));
const ddb = mockClient(client);

afterEach(() => {
  ddb.reset();
});

const keys = (n: number, prefix = 'k') => Array.from({ length: n }, (_, i) => ({ pk: `${prefix}${i}`, sk: 'X' }));

type DeleteRequests = { DeleteRequest: { Key: Record<string, unknown> } }[];
const sentDeletes = () =>
  ddb.commandCalls(BatchWriteCommand).map((call) => (call.args[0].input.RequestItems?.t ?? []) as DeleteRequests);

describe('deleteKeys', () => {
  it('deletes in BatchWriteItem groups of at most 25', async () => {
    // Arrange
    ddb.on(BatchWriteCommand).resolves({});

    // Act
    const deleted = await deleteKeys(client, 't', keys(60));

    // Assert
    expect(deleted).toBe(60);
    expect(sentDeletes().map((requests) => requests.length)).toEqual([25, 25, 10]);
    expect(sentDeletes().flat().map((r) => r.DeleteRequest.Key.pk)).toEqual(keys(60).map((k) => k.pk));
  });

  it('resends UnprocessedItems until DynamoDB has taken them all', async () => {
    // Arrange: the first write leaves 2 of 3 unprocessed, the second 1.
    const all = keys(3);
    ddb
      .on(BatchWriteCommand)
      .resolvesOnce({ UnprocessedItems: { t: [{ DeleteRequest: { Key: all[1]! } }, { DeleteRequest: { Key: all[2]! } }] } })
      .resolvesOnce({ UnprocessedItems: { t: [{ DeleteRequest: { Key: all[2]! } }] } })
      .resolves({});

    // Act
    const deleted = await deleteKeys(client, 't', all);

    // Assert
    expect(deleted).toBe(3);
    expect(sentDeletes().map((requests) => requests.map((r) => r.DeleteRequest.Key.pk))).toEqual([['k0', 'k1', 'k2'], ['k1', 'k2'], ['k2']]);
  });

  it('fails loudly, naming what is left, when throttling never ends', async () => {
    ddb.on(BatchWriteCommand).callsFake((input: { RequestItems: Record<string, unknown[]> }) => ({ UnprocessedItems: input.RequestItems }));

    await expect(deleteKeys(client, 't', keys(2), 3)).rejects.toThrow('DynamoDB left 2 delete(s) unprocessed after 3 attempts');
  });

  it('sends nothing for no keys', async () => {
    expect(await deleteKeys(client, 't', [])).toBe(0);
    expect(ddb.commandCalls(BatchWriteCommand)).toHaveLength(0);
  });
});

describe('DynamoBatchMaintenance.deleteBatchItems', () => {
  it('deletes the record first, then every item of all 32 shards, page by page', async () => {
    // Arrange: shard 05 has two pages; every other shard has its counter only.
    const order: string[] = [];
    ddb.on(DeleteCommand).callsFake(() => {
      order.push('meta');
      return { Attributes: { pk: 'BATCH#b1', sk: 'META' } };
    });
    ddb.on(QueryCommand).callsFake((input: { ExpressionAttributeValues: { ':pk': string }; ExclusiveStartKey?: unknown }) => {
      order.push('query');
      const pk = input.ExpressionAttributeValues[':pk'];
      if (pk === 'BATCH#b1#S05' && !input.ExclusiveStartKey) {
        return { Items: [{ pk, sk: 'COUNT' }, { pk, sk: 'RESULT#a' }], LastEvaluatedKey: { pk, sk: 'RESULT#a' } };
      }
      if (pk === 'BATCH#b1#S05') return { Items: [{ pk, sk: 'RESULT#b' }] };
      return { Items: [{ pk, sk: 'COUNT' }] };
    });
    ddb.on(BatchWriteCommand).resolves({});

    // Act
    const deleted = await new DynamoBatchMaintenance(client, 't').deleteBatchItems('b1');

    // Assert
    expect(order[0]).toBe('meta');
    expect(ddb.commandCalls(DeleteCommand)[0]?.args[0].input.Key).toEqual({ pk: 'BATCH#b1', sk: 'META' });
    const queried = new Set(ddb.commandCalls(QueryCommand).map((c) => c.args[0].input.ExpressionAttributeValues?.[':pk']));
    expect(queried).toEqual(new Set(Array.from({ length: RESULT_SHARDS }, (_, s) => `BATCH#b1#S${String(s).padStart(2, '0')}`)));
    for (const call of ddb.commandCalls(QueryCommand)) expect(call.args[0].input.ConsistentRead).toBe(true);
    const deletedKeys = sentDeletes().flat().map((r) => `${String(r.DeleteRequest.Key.pk)}/${String(r.DeleteRequest.Key.sk)}`);
    expect(deletedKeys).toEqual(expect.arrayContaining(['BATCH#b1#S05/RESULT#a', 'BATCH#b1#S05/RESULT#b', 'BATCH#b1#S31/COUNT']));
    expect(deleted).toBe(1 + RESULT_SHARDS + 2);
  });

  it('is idempotent: a batch already gone deletes nothing and does not fail', async () => {
    ddb.on(DeleteCommand).resolves({});
    ddb.on(QueryCommand).resolves({ Items: [] });

    const deleted = await new DynamoBatchMaintenance(client, 't').deleteBatchItems('gone');

    expect(deleted).toBe(0);
    expect(ddb.commandCalls(BatchWriteCommand)).toHaveLength(0);
  });
});

describe('sweepExpired', () => {
  it('scans for items expired at the given time, keys only, and deletes each page', async () => {
    // Arrange: two scan pages
    ddb
      .on(ScanCommand)
      .resolvesOnce({ Items: keys(30, 'a'), ScannedCount: 100, LastEvaluatedKey: { pk: 'a29', sk: 'X' } })
      .resolvesOnce({ Items: keys(5, 'b'), ScannedCount: 40 });
    ddb.on(BatchWriteCommand).resolves({});

    // Act
    const result = await sweepExpired(client, 't', 1_700_000_000);

    // Assert
    expect(result).toEqual({ scanned: 140, deleted: 35 });
    const scans = ddb.commandCalls(ScanCommand).map((c) => c.args[0].input);
    expect(scans[0]).toMatchObject({
      TableName: 't',
      FilterExpression: '#ttl <= :now',
      ProjectionExpression: '#k0, #k1',
      ExpressionAttributeNames: { '#ttl': 'expiresAt', '#k0': 'pk', '#k1': 'sk' },
      ExpressionAttributeValues: { ':now': 1_700_000_000 },
    });
    expect(scans[1]?.ExclusiveStartKey).toEqual({ pk: 'a29', sk: 'X' });
    expect(sentDeletes().map((requests) => requests.length)).toEqual([25, 5, 5]);
  });

  it('reads the TTL attribute and key names from the template', () => {
    const tables = ttlTablesOf([
      {
        name: 'with-ttl',
        properties: {
          KeySchema: [
            { AttributeName: 'sk', KeyType: 'RANGE' },
            { AttributeName: 'pk', KeyType: 'HASH' },
          ],
          TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        },
      },
      { name: 'no-ttl', properties: { KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }] } },
      { name: 'ttl-off', properties: { KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }], TimeToLiveSpecification: { AttributeName: 'x', Enabled: false } } },
    ]);

    expect(tables).toEqual([{ name: 'with-ttl', ttlAttribute: 'expiresAt', keyAttributes: ['pk', 'sk'] }]);
  });
});
