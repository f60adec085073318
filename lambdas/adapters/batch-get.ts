/**
 * Strongly consistent BatchGetItem of any number of keys: the one loop every
 * adapter that reads items by key in bulk uses. BatchGetItem takes at most
 * 100 keys a request and may return some of them in UnprocessedKeys
 * (throttling, or a response over 16 MB); those are resent with capped
 * exponential backoff, a bounded number of times, so a table that keeps
 * throttling fails the read with a named storage error instead of looping
 * for ever.
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html
 */
import { BatchGetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mapConcurrently } from '../domain/fleet-activity';

/** BatchGetItem reads at most 100 keys. */
export const BATCH_GET_MAX = 100;
/** Sends of one chunk before giving up on what is still unprocessed. */
export const BATCH_GET_MAX_ROUNDS = 12;
/** Chunks of 100 keys read at once. */
const CHUNK_CONCURRENCY = 4;

type Item = Record<string, unknown>;

/**
 * DynamoDB kept leaving keys unprocessed: the table is throttling. A storage
 * error (storage-errors.ts), which the worker turns into StorageUnavailable.
 */
export class BatchGetIncomplete extends Error {
  constructor(readonly unprocessed: number, rounds: number) {
    super(`DynamoDB left ${unprocessed} read(s) unprocessed after ${rounds} attempts`);
    this.name = 'BatchGetIncomplete';
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface BatchGetOptions {
  /** The attributes to read (a ProjectionExpression). @default every attribute */
  projection?: string;
  /** Sends of each chunk of 100 keys, the first included. @default BATCH_GET_MAX_ROUNDS */
  maxRounds?: number;
}

/**
 * Every item found under `keys` (missing items are simply absent), read
 * strongly consistent, 100 keys a request. Throws BatchGetIncomplete once a
 * chunk's keys are still unprocessed after `maxRounds` sends; a send that
 * fails throws its own error.
 */
export async function batchGetItems(client: DynamoDBDocumentClient, tableName: string, keys: readonly Item[], options: BatchGetOptions = {}): Promise<Item[]> {
  const chunks: Item[][] = [];
  for (let i = 0; i < keys.length; i += BATCH_GET_MAX) chunks.push(keys.slice(i, i + BATCH_GET_MAX));
  return (await mapConcurrently(chunks, CHUNK_CONCURRENCY, (chunk) => getChunk(client, tableName, chunk, options))).flat();
}

async function getChunk(client: DynamoDBDocumentClient, tableName: string, keys: Item[], options: BatchGetOptions): Promise<Item[]> {
  const maxRounds = options.maxRounds ?? BATCH_GET_MAX_ROUNDS;
  const found: Item[] = [];
  let unprocessed = keys;
  for (let round = 0; unprocessed.length > 0; round++) {
    if (round >= maxRounds) throw new BatchGetIncomplete(unprocessed.length, maxRounds);
    if (round > 0) await sleep(Math.min(1000, 25 * 2 ** round));
    const { Responses, UnprocessedKeys } = await client.send(
      new BatchGetCommand({
        RequestItems: { [tableName]: { Keys: unprocessed, ConsistentRead: true, ...(options.projection ? { ProjectionExpression: options.projection } : {}) } },
      }),
    );
    found.push(...(Responses?.[tableName] ?? []));
    unprocessed = (UnprocessedKeys?.[tableName]?.Keys as Item[] | undefined) ?? [];
  }
  return found;
}
