/**
 * TaskLookup on the Fleet table: one task's result and its cleared failures,
 * found by key from its id (the result shard is a hash of the id), so a
 * lookup costs the same in a batch of ten tasks or of a million.
 */
import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { shardOf } from '../domain/batch';
import type { FailedAttempt, TaskLookup } from '../domain/ports';
import type { TaskResult } from '../domain/types';
import { toResult } from './result-items';
import { failedAttemptPrefix, resultKey, shardPk } from './table-layout';
import { queryItems } from './query-pages';

type Item = Record<string, unknown>;

const nowSeconds = () => Math.floor(Date.now() / 1000);
const isExpired = (item: Item) => typeof item.expiresAt === 'number' && item.expiresAt <= nowSeconds();

export class DynamoTaskLookup implements TaskLookup {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async getResult(batchId: string, taskId: string): Promise<TaskResult | undefined> {
    const { Item } = await this.client.send(new GetCommand({ TableName: this.tableName, Key: resultKey(batchId, shardOf(taskId), taskId) }));
    return Item && !isExpired(Item) ? toResult(Item) : undefined;
  }

  async listFailedAttempts(batchId: string, taskId: string): Promise<FailedAttempt[]> {
    const attempts: FailedAttempt[] = [];
    const history = queryItems(this.client, {
      TableName: this.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
      // Task `a#1`'s history also begins with `FAILED_ATTEMPT#a#`: only this task's own items.
      FilterExpression: 'taskId = :id',
      ExpressionAttributeValues: { ':pk': shardPk(batchId, shardOf(taskId)), ':p': failedAttemptPrefix(taskId), ':id': taskId },
    });
    for await (const item of history) {
      if (!isExpired(item) && typeof item.retry === 'number') attempts.push({ ...toResult(item), retry: item.retry });
    }
    // Sort keys order retry 10 before retry 2.
    return attempts.sort((a, b) => a.retry - b.retry);
  }
}
