import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { RESULT_SHARDS } from '../domain/batch';
import type { TaskResult } from '../domain/types';
import { RESULT_PREFIX, shardPk } from './table-layout';
import { queryItems } from './query-pages';

type Item = Record<string, unknown>;

export interface ResultItemsQuery {
  /** The attributes to read (a ProjectionExpression). */
  projection: string;
  /** Keeps only matching results (a FilterExpression). */
  filter?: string;
  names?: Record<string, string>;
  values?: Record<string, unknown>;
}

/**
 * Every result item of a batch, shard after shard and page after page,
 * strongly consistent: for the rare reads that need them all (a recount, a
 * retry's list of tasks that succeeded), never per task.
 */
export async function* resultItems(client: DynamoDBDocumentClient, tableName: string, batchId: string, query: ResultItemsQuery): AsyncGenerator<Item> {
  for (let shard = 0; shard < RESULT_SHARDS; shard++) {
    yield* queryItems(client, {
      TableName: tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :r)',
      ProjectionExpression: query.projection,
      ...(query.filter ? { FilterExpression: query.filter } : {}),
      ...(query.names ? { ExpressionAttributeNames: query.names } : {}),
      ExpressionAttributeValues: { ':pk': shardPk(batchId, shard), ':r': RESULT_PREFIX, ...query.values },
      ConsistentRead: true,
    });
  }
}

/** A stored result item (or a cleared failure in a batch's history) as the TaskResult the API returns. */
export function toResult(item: Record<string, unknown>): TaskResult {
  return {
    taskId: item.taskId as string,
    success: item.success as boolean,
    ...(item.result !== undefined ? { result: item.result } : {}),
    ...(typeof item.error === 'string' ? { error: item.error } : {}),
    duration: item.duration as number,
    timestamp: item.timestamp as number,
    attempts: item.attempts as number,
    workerId: item.workerId as string,
  };
}
