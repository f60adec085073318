/**
 * FleetActivity on the Fleet table: fleet-wide statistics and the registry
 * of running workers.
 *
 * Layout (pk / sk), beside the repository's (batch-repository.ts):
 *   STATS#S<n>            / TOTALS              one of STATS_SHARDS shards of the fleet totals
 *   STATS#BATCH#<batchId> / COUNTED             marks a finished batch whose counts are in the totals
 *   WORKERS#<nn>          / <batchId>#<taskId>  a worker running an attempt of that task
 *
 * None of these items is written by every task: the totals once or twice per
 * batch, a registry item by its own task's attempts only.
 */
import {
  BatchGetCommand,
  DeleteCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { STATS_SHARDS, WORKER_SHARDS, isExpiredAt, workerShardOf } from '../domain/fleet-activity';
import type { FleetActivity, FleetTotals, RunningWorker } from '../domain/ports';
import type { WorkerInfo } from '../domain/types';
import { unlessConditionFails } from './conditional-write';
import { countedKey, statsKey, workersPk } from './table-layout';

type Item = Record<string, unknown>;

const workerKey = (batchId: string, taskId: string) => ({ pk: workersPk(workerShardOf(batchId, taskId)), sk: `${batchId}#${taskId}` });

/** BatchGetItem takes at most 100 keys. */
const BATCH_GET_MAX = 100;

const randomShard = () => Math.floor(Math.random() * STATS_SHARDS);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const numberOf = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

export class DynamoFleetActivity implements FleetActivity {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly now: () => number = Date.now,
  ) {}

  async addSubmittedBatch(totalTasks: number): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: statsKey(randomShard()),
        UpdateExpression: 'ADD totalBatches :one, totalTasks :n',
        ExpressionAttributeValues: { ':one': 1, ':n': totalTasks },
      }),
    );
  }

  /**
   * Claims the batch, then adds. Neither DynamoDB transactions nor a
   * condition across two items are available (dynalite has no
   * TransactWriteItems), so the claim comes first: a failure between the two
   * writes leaves the batch out of the totals (an undercount) and can never
   * count it twice.
   */
  async addFinishedBatch(batchId: string, counts: { completedTasks: number; failedTasks: number }, expiresAt: number | undefined): Promise<boolean> {
    const claimed = await unlessConditionFails(() =>
      this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            ...countedKey(batchId),
            completedTasks: counts.completedTasks,
            failedTasks: counts.failedTasks,
            countedAt: this.now(),
            // Gone with the batch record: once that has expired nothing counts the batch again.
            ...(expiresAt !== undefined ? { expiresAt } : {}),
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
    if (!claimed) return false;
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: statsKey(randomShard()),
        UpdateExpression: 'ADD completedTasks :c, failedTasks :f',
        ExpressionAttributeValues: { ':c': counts.completedTasks, ':f': counts.failedTasks },
      }),
    );
    return true;
  }

  async countedBatchIds(batchIds: readonly string[]): Promise<Set<string>> {
    const counted = new Set<string>();
    for (let i = 0; i < batchIds.length; i += BATCH_GET_MAX) {
      const items = await this.getAll(batchIds.slice(i, i + BATCH_GET_MAX).map(countedKey), 'pk');
      for (const item of items) if (typeof item.pk === 'string') counted.add(item.pk.slice('STATS#BATCH#'.length));
    }
    return counted;
  }

  async readTotals(): Promise<FleetTotals> {
    const totals: FleetTotals = { totalBatches: 0, totalTasks: 0, completedTasks: 0, failedTasks: 0 };
    for (const item of await this.getAll(Array.from({ length: STATS_SHARDS }, (_, shard) => statsKey(shard)))) {
      totals.totalBatches += numberOf(item.totalBatches);
      totals.totalTasks += numberOf(item.totalTasks);
      totals.completedTasks += numberOf(item.completedTasks);
      totals.failedTasks += numberOf(item.failedTasks);
    }
    return totals;
  }

  /** Strongly consistent BatchGetItem of up to 100 keys, resending unprocessed keys with backoff. */
  private async getAll(keys: Item[], projection?: string): Promise<Item[]> {
    const found: Item[] = [];
    for (let round = 0; keys.length > 0; round++) {
      if (round > 0) await sleep(Math.min(1000, 25 * 2 ** round));
      const { Responses, UnprocessedKeys } = await this.client.send(
        new BatchGetCommand({
          RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true, ...(projection ? { ProjectionExpression: projection } : {}) } },
        }),
      );
      found.push(...(Responses?.[this.tableName] ?? []));
      keys = (UnprocessedKeys?.[this.tableName]?.Keys as Item[] | undefined) ?? [];
    }
    return found;
  }

  async registerWorker(worker: RunningWorker): Promise<void> {
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          ...workerKey(worker.batchId, worker.taskId),
          id: worker.id,
          batchId: worker.batchId,
          taskId: worker.taskId,
          spawnedAt: worker.spawnedAt,
          expiresAt: worker.expiresAt,
          ...(worker.attempt !== undefined ? { attempt: worker.attempt } : {}),
        },
      }),
    );
  }

  async deregisterWorker(batchId: string, taskId: string, workerId?: string): Promise<Pick<RunningWorker, 'attempt'> | undefined> {
    // A refused condition: someone else's entry now (a later attempt, a duplicate delivery), or none at all; leave it.
    const deleted = await unlessConditionFails(() =>
      this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: workerKey(batchId, taskId),
          ...(workerId !== undefined ? { ConditionExpression: 'id = :id', ExpressionAttributeValues: { ':id': workerId } } : {}),
          ReturnValues: 'ALL_OLD',
        }),
      ),
    );
    const attempt = deleted?.Attributes?.attempt;
    if (!deleted?.Attributes) return undefined;
    return typeof attempt === 'number' ? { attempt } : {};
  }

  async listWorkers(limit: number): Promise<WorkerInfo[]> {
    const now = this.now();
    const pages = await Promise.all(
      Array.from({ length: WORKER_SHARDS }, (_, shard) =>
        this.queryShard(shard, now, { ProjectionExpression: 'id, batchId, taskId, spawnedAt, expiresAt' }),
      ),
    );
    return pages
      .flatMap((page) => page.items)
      .map(
        (item): WorkerInfo => ({
          id: String(item.id),
          batchId: String(item.batchId),
          taskId: String(item.taskId),
          status: 'active',
          spawnedAt: numberOf(item.spawnedAt),
        }),
      )
      .sort((a, b) => a.spawnedAt - b.spawnedAt || a.batchId.localeCompare(b.batchId) || a.taskId.localeCompare(b.taskId))
      .slice(0, limit);
  }

  async countWorkers(): Promise<number> {
    const now = this.now();
    const counts = await Promise.all(Array.from({ length: WORKER_SHARDS }, (_, shard) => this.queryShard(shard, now, { Select: 'COUNT' })));
    return counts.reduce((sum, page) => sum + page.count, 0);
  }

  /** Every unexpired registry item of one shard, all pages. */
  private async queryShard(
    shard: number,
    now: number,
    shape: { Select: 'COUNT' } | { ProjectionExpression: string },
  ): Promise<{ items: Item[]; count: number }> {
    const items: Item[] = [];
    let count = 0;
    let start: Item | undefined;
    do {
      // dynalite has no TTL and DynamoDB's deletes lag, so expired items are filtered here.
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk',
          FilterExpression: 'expiresAt > :now',
          ExpressionAttributeValues: { ':pk': workersPk(shard), ':now': Math.floor(now / 1000) },
          ...shape,
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) if (!isExpiredAt(item.expiresAt, now)) items.push(item);
      count += page.Count ?? 0;
      start = page.LastEvaluatedKey;
    } while (start);
    return { items, count };
  }
}
