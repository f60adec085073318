/**
 * BatchMaintenance on the DynamoDB table: deleting a batch's items at once.
 *
 * The layout is in table-layout.ts: a batch's record, and its result
 * partitions (results, counters, cleared failures). Each partition is queried whole (every sort key), so nothing stored under a
 * batch's shard keys is left behind.
 */
import { DeleteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { RESULT_SHARDS } from '../domain/batch';
import type { BatchMaintenance } from '../domain/ports';
import { BATCH_WRITE_MAX, sendBatchWrite } from './batch-write';
import { batchKey, shardPk } from './table-layout';
import { queryPages } from './query-pages';

/** Shards deleted at once: enough to finish a 100,000-result batch in seconds, few enough not to flood the table. */
const SHARD_CONCURRENCY = 8;

type Key = Record<string, unknown>;

/**
 * Deletes items by key with BatchWriteItem, 25 at a time, resending
 * UnprocessedItems (throttling) with capped exponential backoff until none
 * are left. Deleting a missing key is not an error, so this is idempotent.
 * Returns how many delete requests DynamoDB accepted.
 */
export async function deleteKeys(client: DynamoDBDocumentClient, tableName: string, keys: readonly Key[], maxRounds = 12): Promise<number> {
  for (let i = 0; i < keys.length; i += BATCH_WRITE_MAX) {
    await sendBatchWrite(client, tableName, keys.slice(i, i + BATCH_WRITE_MAX).map((Key) => ({ DeleteRequest: { Key } })), maxRounds);
  }
  return keys.length;
}

export class DynamoBatchMaintenance implements BatchMaintenance {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async deleteBatchItems(batchId: string): Promise<number> {
    // The record goes first: from here on every read answers 404, and if
    // anything below fails, what is left is unreachable and TTL removes it.
    const { Attributes } = await this.client.send(
      new DeleteCommand({ TableName: this.tableName, Key: batchKey(batchId), ReturnValues: 'ALL_OLD' }),
    );
    const shards = Array.from({ length: RESULT_SHARDS }, (_, shard) => shard);
    const workers = Array.from({ length: SHARD_CONCURRENCY }, async () => {
      let deleted = 0;
      for (let shard = shards.shift(); shard !== undefined; shard = shards.shift()) {
        const inShard = await this.deleteShard(shardPk(batchId, shard));
        deleted += inShard;
      }
      return deleted;
    });
    const perWorker = await Promise.all(workers);
    return perWorker.reduce((sum, n) => sum + n, Attributes ? 1 : 0);
  }

  private async deleteShard(pk: string): Promise<number> {
    let deleted = 0;
    // Keys only, a page at a time: a shard of a 100,000-task batch holds ~3,000 items.
    const pages = queryPages(this.client, {
      TableName: this.tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': pk },
      ProjectionExpression: 'pk, sk',
      ConsistentRead: true,
    });
    for await (const items of pages) deleted += await deleteKeys(this.client, this.tableName, items.map((item) => ({ pk: item.pk as string, sk: item.sk as string })));
    return deleted;
  }
}
