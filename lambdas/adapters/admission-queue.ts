/**
 * The admission queue on the Fleet table: one item per waiting batch,
 *
 *   QUEUE / <rank, 16 digits>#<batchId>      a batch waiting for capacity
 *
 * sorted by rank, so admission reads only the head (a strongly consistent
 * Query with a Limit), whatever the number of waiting batches. The item is
 * written once when a batch starts waiting and deleted once when it is
 * admitted or cancelled: the partition takes two writes per batch, never
 * one per task.
 */
import { DeleteCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AdmissionQueue, QueuedBatch } from '../domain/ports';
import { unlessConditionFails } from './conditional-write';
import { QUEUE_PARTITION, queueKey } from './table-layout';

/** Most entries one Query returns; the head is read in pages of this. */
const PAGE = 1_000;

export class DynamoAdmissionQueue implements AdmissionQueue {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async enqueue(entry: QueuedBatch): Promise<void> {
    await unlessConditionFails(() =>
      this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...queueKey(entry.rank, entry.batchId), entry: JSON.stringify(entry) },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
  }

  async head(limit: number): Promise<QueuedBatch[]> {
    const entries: QueuedBatch[] = [];
    let start: Record<string, unknown> | undefined;
    while (entries.length < limit) {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :q',
          ExpressionAttributeValues: { ':q': QUEUE_PARTITION },
          ConsistentRead: true,
          Limit: Math.min(PAGE, limit - entries.length),
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) entries.push(JSON.parse(String(item.entry)) as QueuedBatch);
      start = page.LastEvaluatedKey;
      if (!start) break;
    }
    return entries;
  }

  async remove(entry: Pick<QueuedBatch, 'batchId' | 'rank'>): Promise<void> {
    await this.client.send(new DeleteCommand({ TableName: this.tableName, Key: queueKey(entry.rank, entry.batchId) }));
  }
}
