/**
 * One BatchWriteItem of at most 25 requests, resending what DynamoDB leaves
 * unprocessed (throttling) with capped exponential backoff.
 */
import { BatchWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** BatchWriteItem takes at most 25 requests. */
export const BATCH_WRITE_MAX = 25;

type Key = Record<string, unknown>;
export type WriteRequest = { PutRequest: { Item: Key } } | { DeleteRequest: { Key: Key } };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Sends `requests` (at most BATCH_WRITE_MAX) until DynamoDB has processed all
 * of them, and throws after `maxRounds` sends that left some unprocessed.
 */
export async function sendBatchWrite(client: DynamoDBDocumentClient, tableName: string, requests: readonly WriteRequest[], maxRounds = 12): Promise<void> {
  if (requests.length > BATCH_WRITE_MAX) throw new Error(`BatchWriteItem takes at most ${BATCH_WRITE_MAX} requests, not ${requests.length}`);
  let unprocessed = [...requests];
  for (let round = 0; unprocessed.length > 0; round++) {
    if (round >= maxRounds) throw new Error(`DynamoDB left ${unprocessed.length} ${'PutRequest' in unprocessed[0]! ? 'put' : 'delete'}(s) unprocessed after ${maxRounds} attempts`);
    if (round > 0) await sleep(Math.min(2000, 25 * 2 ** round));
    const { UnprocessedItems } = await client.send(new BatchWriteCommand({ RequestItems: { [tableName]: unprocessed } }));
    unprocessed = (UnprocessedItems?.[tableName] ?? []) as WriteRequest[];
  }
}
