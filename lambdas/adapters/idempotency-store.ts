/**
 * IdempotencyStore on the Fleet table.
 *
 * One item per key (table-layout.ts): IDEMPOTENCY#<sha256 of the key> / KEY,
 * holding {bodyHash, batchId, state, createdAt, expiresAt}.
 *
 * The claim is one conditional PutItem, written before the batch exists, so
 * of two concurrent submissions with the same key exactly one claims it.
 */
import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { IdempotencyRecord, IdempotencyStore } from '../domain/ports';
import { unlessConditionFails } from './conditional-write';
import { idempotencyKey as keyOf, keyHashOfIdempotencyPk } from './table-layout';

/** An expired claim may still be in the table: DynamoDB TTL lags, dynalite has none. */
const isLive = (item: Record<string, unknown>, nowSeconds: number) => typeof item.expiresAt !== 'number' || item.expiresAt > nowSeconds;

function toRecord(item: Record<string, unknown>): IdempotencyRecord {
  return {
    keyHash: keyHashOfIdempotencyPk(String(item.pk)),
    bodyHash: String(item.bodyHash),
    batchId: String(item.batchId),
    state: item.state === 'created' ? 'created' : 'creating',
    createdAt: Number(item.createdAt),
    expiresAt: Number(item.expiresAt),
  };
}

export class DynamoIdempotencyStore implements IdempotencyStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly nowSeconds: () => number = () => Math.floor(Date.now() / 1000),
  ) {}

  async claim(record: IdempotencyRecord): Promise<{ claimed: true } | { claimed: false; existing: IdempotencyRecord }> {
    // A claim that expires between our failed put and our read frees the key:
    // try again. Twice is plenty; a third miss means something keeps deleting it.
    for (let round = 0; round < 3; round++) {
      const now = this.nowSeconds();
      const claimed = await unlessConditionFails(() =>
        this.client.send(
          new PutCommand({
            TableName: this.tableName,
            Item: {
              ...keyOf(record.keyHash),
              bodyHash: record.bodyHash,
              batchId: record.batchId,
              state: record.state,
              createdAt: record.createdAt,
              expiresAt: record.expiresAt,
            },
            // First writer wins; an expired claim counts as no claim.
            ConditionExpression: 'attribute_not_exists(pk) OR expiresAt <= :now',
            ExpressionAttributeValues: { ':now': now },
          }),
        ),
      );
      if (claimed) return { claimed: true };
      const { Item } = await this.client.send(new GetCommand({ TableName: this.tableName, Key: keyOf(record.keyHash), ConsistentRead: true }));
      if (Item && isLive(Item, now)) return { claimed: false, existing: toRecord(Item) };
    }
    throw new Error('Idempotency-Key: the claim neither succeeded nor could be read after 3 attempts');
  }

  async markCreated(keyHash: string, batchId: string): Promise<void> {
    // A refused condition: the key is someone else's now; leave it.
    await unlessConditionFails(() =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: keyOf(keyHash),
          UpdateExpression: 'SET #state = :created',
          // Only our own claim: after expiry the key may belong to another batch.
          ConditionExpression: 'batchId = :batchId',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: { ':created': 'created', ':batchId': batchId },
        }),
      ),
    );
  }
}
