/**
 * TimelineStore on the Fleet table: `TIMELINE / MINUTE#<epochMinute>`, one
 * item of four numbers a minute, written by a conditional PutItem (the
 * first reader of a minute wins; the others' writes fail the condition and
 * cost one WCU each, at most a few a minute) and read as one Query of at
 * most 61 items (well under 4 KB: a single RCU).
 */
import { PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { TimelineSnapshot, TimelineStore } from '../domain/ports';
import { unlessConditionFails } from './conditional-write';
import { timelineKey } from './table-layout';

export class DynamoTimelineStore implements TimelineStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async list(from: number, to: number): Promise<TimelineSnapshot[]> {
    const snapshots: TimelineSnapshot[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          ExpressionAttributeValues: { ':pk': timelineKey(from).pk, ':from': timelineKey(from).sk, ':to': timelineKey(to).sk },
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) {
        const { minute, takenAt, completedTasks, failedTasks } = item;
        if (typeof minute === 'number' && typeof takenAt === 'number' && typeof completedTasks === 'number' && typeof failedTasks === 'number') {
          snapshots.push({ minute, takenAt, completedTasks, failedTasks });
        }
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return snapshots;
  }

  async put(snapshot: TimelineSnapshot, expiresAt: number): Promise<boolean> {
    const written = await unlessConditionFails(() =>
      this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...timelineKey(snapshot.minute), ...snapshot, expiresAt },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
    return written !== undefined;
  }
}
