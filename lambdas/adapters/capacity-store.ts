/**
 * The fleet's capacity allocations: one item, written only when a batch
 * starts, waits, finishes or is cancelled, or the cap changes (never per
 * task), under optimistic locking so concurrent writers cannot lose updates.
 */
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { emptyCapacity, type CapacityState } from '../domain/capacity';
import type { CapacityStore } from '../domain/ports';
import { unlessConditionFails } from './conditional-write';
import { capacityKey } from './table-layout';

const KEY = capacityKey();

export class DynamoCapacityStore implements CapacityStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async load(): Promise<{ state: CapacityState; version: number }> {
    const { Item } = await this.client.send(new GetCommand({ TableName: this.tableName, Key: KEY, ConsistentRead: true }));
    if (!Item) return { state: emptyCapacity(), version: 0 };
    return { state: JSON.parse(Item.state as string) as CapacityState, version: Item.version as number };
  }

  async save(state: CapacityState, version: number): Promise<boolean> {
    const saved = await unlessConditionFails(() =>
      this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...KEY, state: JSON.stringify(state), version: version + 1 },
          ConditionExpression: version === 0 ? 'attribute_not_exists(pk)' : 'version = :v',
          ...(version === 0 ? {} : { ExpressionAttributeValues: { ':v': version } }),
        }),
      ),
    );
    return saved !== undefined;
  }
}
