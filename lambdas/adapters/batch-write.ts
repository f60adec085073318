/**
 * One BatchWriteItem of at most 25 requests, resending what DynamoDB leaves
 * unprocessed (throttling) with capped exponential backoff.
 */
import { BatchWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** BatchWriteItem takes at most 25 requests. */
export const BATCH_WRITE_MAX = 25;

type Key = Record<string, unknown>;
export type WriteRequest = { PutRequest: { Item: Key } } | { DeleteRequest: { Key: Key } };

/** A BatchWriteItem that stopped with requests left: those are not stored; the others are. */
export class BatchWriteIncomplete extends Error {
  constructor(
    message: string,
    readonly unprocessed: readonly WriteRequest[],
    options?: { cause: unknown },
  ) {
    super(message, options);
    this.name = 'BatchWriteIncomplete';
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const kind = (request: WriteRequest | undefined) => (request !== undefined && 'PutRequest' in request ? 'put' : 'delete');

/**
 * Sends `requests` (at most BATCH_WRITE_MAX) until DynamoDB has processed all
 * of them. Throws BatchWriteIncomplete, naming what is left, after `maxRounds`
 * sends that left some unprocessed, or when a send fails.
 */
export async function sendBatchWrite(client: DynamoDBDocumentClient, tableName: string, requests: readonly WriteRequest[], maxRounds = 12): Promise<void> {
  if (requests.length > BATCH_WRITE_MAX) throw new Error(`BatchWriteItem takes at most ${BATCH_WRITE_MAX} requests, not ${requests.length}`);
  let unprocessed = [...requests];
  for (let round = 0; unprocessed.length > 0; round++) {
    if (round >= maxRounds) throw new BatchWriteIncomplete(`DynamoDB left ${unprocessed.length} ${kind(unprocessed[0])}(s) unprocessed after ${maxRounds} attempts`, unprocessed);
    if (round > 0) await sleep(Math.min(2000, 25 * 2 ** round));
    let sent;
    try {
      sent = await client.send(new BatchWriteCommand({ RequestItems: { [tableName]: unprocessed } }));
    } catch (error) {
      // DynamoDB validates the whole request first: a refused send stored none of it.
      throw new BatchWriteIncomplete(error instanceof Error ? error.message : String(error), unprocessed, { cause: error });
    }
    unprocessed = (sent.UnprocessedItems?.[tableName] ?? []) as WriteRequest[];
  }
}
