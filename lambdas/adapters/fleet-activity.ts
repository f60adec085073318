/**
 * FleetActivity on the Fleet table: fleet-wide statistics and the registry
 * of running workers.
 *
 * Layout (pk / sk), beside the repository's (batch-repository.ts):
 *   STATS#S<n>            / TOTALS              one of STATS_SHARDS shards of the fleet totals
 *   STATS#BATCH#<batchId> / COUNTED             marks a finished batch whose counts are in the totals
 *   WORKERS#<nn>          / SLOT#<slot>         the attempt a worker slot runs, or last ran
 *   BATCH#<id>#S<nn>      / NEXT_ATTEMPT#<task> the attempt a retried task runs next
 *
 * The totals are written once or twice per batch. A slot's entry is written
 * once per attempt (by default every attempt: listing is exact), and once
 * more when an attempt fails; a success leaves it, since the task's result
 * shows the attempt is over. Reads therefore check each entry's task for a
 * result (runningWorkers in the domain).
 */
import {
  DeleteCommand,
  type DeleteCommandOutput,
  PutCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { shardOf } from '../domain/batch';
import { STATS_SHARDS, WORKER_SHARDS, isExpiredAt, runningWorkers, taskKeyOf } from '../domain/fleet-activity';
import type { FleetActivity, FleetTotals, RunningWorker } from '../domain/ports';
import type { WorkerInfo } from '../domain/types';
import { unlessConditionFails } from './conditional-write';
import { batchGetItems } from './batch-get';
import { sendBatchWrite } from './batch-write';
import type { WriteGrouping } from './write-grouping';
import { batchIdOfCountedPk, batchIdOfPk, countedKey, nextAttemptKey, resultKey, statsKey, workerSlotKey, workersPk } from './table-layout';
import { queryItems } from './query-pages';

type Item = Record<string, unknown>;

const randomShard = () => Math.floor(Math.random() * STATS_SHARDS);
const numberOf = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

export class DynamoFleetActivity implements FleetActivity {
  /** Registry puts sent at the same time go together when grouping is on (the local fleet). */
  private readonly registryPuts: { put(item: Record<string, unknown>): Promise<void> } | undefined;

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly now: () => number = Date.now,
    options: {
      /**
       * Grouped writes (adapters/write-grouping.ts): registry puts made at the
       * same time go in one BatchWriteItem. Only for a process that runs many
       * attempts at once (the local fleet).
       * @default none: one PutItem each, as on AWS
       */
      grouping?: WriteGrouping | undefined;
    } = {},
  ) {
    this.registryPuts = options.grouping?.puts<Record<string, unknown>>(
      (item) => `${String(item.pk)}\u0000${String(item.sk)}`,
      async (Item) => {
        await this.client.send(new PutCommand({ TableName: this.tableName, Item }));
      },
      (items) => sendBatchWrite(this.client, this.tableName, items.map((Item) => ({ PutRequest: { Item: Item as { pk: string; sk: string } } }))),
    );
  }

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
    for (const item of await this.getAll(batchIds.map(countedKey), 'pk')) if (typeof item.pk === 'string') counted.add(batchIdOfCountedPk(item.pk));
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

  private getAll(keys: Item[], projection?: string): Promise<Item[]> {
    return batchGetItems(this.client, this.tableName, keys, projection ? { projection } : {});
  }

  async registerWorker(worker: RunningWorker): Promise<void> {
    const Item = {
      ...workerSlotKey(worker.slot),
      slot: worker.slot,
      id: worker.id,
      batchId: worker.batchId,
      taskId: worker.taskId,
      spawnedAt: worker.spawnedAt,
      expiresAt: worker.expiresAt,
      ...(worker.attempt !== undefined ? { attempt: worker.attempt } : {}),
    };
    if (this.registryPuts) return this.registryPuts.put(Item);
    await this.client.send(new PutCommand({ TableName: this.tableName, Item }));
  }

  async deregisterWorker(slot: string, workerId: string): Promise<void> {
    // A refused condition: the slot runs a later attempt now, or has no entry; leave it.
    await unlessConditionFails(() =>
      this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: workerSlotKey(slot),
          ConditionExpression: 'id = :id',
          ExpressionAttributeValues: { ':id': workerId },
        }),
      ),
    );
  }

  async noteNextAttempt(batchId: string, taskId: string, attempt: number, expiresAt: number): Promise<void> {
    await this.client.send(new PutCommand({ TableName: this.tableName, Item: { ...nextAttemptKey(batchId, taskId), attempt, expiresAt } }));
  }

  async takeNextAttempt(batchId: string, taskId: string): Promise<number | undefined> {
    // DeleteItem with ALL_OLD: the worker may delete in its batch's result shards, not read them.
    // Typed as possibly undefined: a mocked client (aws-sdk-client-mock) answers a command it was given no answer for with undefined.
    const deleted = (await this.client.send(
      new DeleteCommand({ TableName: this.tableName, Key: nextAttemptKey(batchId, taskId), ReturnValues: 'ALL_OLD' }),
    )) as DeleteCommandOutput | undefined;
    const Attributes = deleted?.Attributes;
    return typeof Attributes?.attempt === 'number' && !isExpiredAt(Attributes.expiresAt, this.now()) ? Attributes.attempt : undefined;
  }

  async listWorkers(limit: number): Promise<WorkerInfo[]> {
    return (await this.running()).slice(0, limit).map(
      (worker): WorkerInfo => ({ id: worker.id, batchId: worker.batchId, taskId: worker.taskId, status: 'active', spawnedAt: worker.spawnedAt }),
    );
  }

  async countWorkers(): Promise<number> {
    return (await this.running()).length;
  }

  /**
   * Every running worker: the unexpired entries of the 16 shards, less those
   * whose task has a final result (one BatchGetItem per 100 tasks, keys only).
   */
  private async running(): Promise<RunningWorker[]> {
    const now = this.now();
    const shards = await Promise.all(Array.from({ length: WORKER_SHARDS }, (_, shard) => this.queryShard(shard, now)));
    const entries = shards.flat().map(
      (item): RunningWorker => ({
        slot: String(item.slot ?? item.sk),
        id: String(item.id),
        batchId: String(item.batchId),
        taskId: String(item.taskId),
        spawnedAt: numberOf(item.spawnedAt),
        expiresAt: numberOf(item.expiresAt),
        ...(typeof item.attempt === 'number' ? { attempt: item.attempt } : {}),
      }),
    );
    const tasks = new Map<string, { pk: string; sk: string }>();
    for (const entry of entries) tasks.set(taskKeyOf(entry.batchId, entry.taskId), resultKey(entry.batchId, shardOf(entry.taskId), entry.taskId));
    const keys = [...tasks.values()];
    const finished = new Set<string>();
    for (const item of await this.getAll(keys, 'pk, sk, taskId, expiresAt')) {
      if (isExpiredAt(item.expiresAt, now)) continue;
      finished.add(taskKeyOf(batchIdOfPk(String(item.pk)), String(item.taskId)));
    }
    return runningWorkers(entries, finished, now);
  }

  /** Every unexpired registry item of one shard, all pages. */
  private async queryShard(shard: number, now: number): Promise<Item[]> {
    const items: Item[] = [];
    // dynalite has no TTL and DynamoDB's deletes lag, so expired items are filtered here.
    const entries = queryItems(this.client, {
      TableName: this.tableName,
      KeyConditionExpression: 'pk = :pk',
      FilterExpression: 'expiresAt > :now',
      ExpressionAttributeValues: { ':pk': workersPk(shard), ':now': Math.floor(now / 1000) },
      ProjectionExpression: 'sk, slot, id, batchId, taskId, spawnedAt, expiresAt, attempt',
    });
    for await (const item of entries) if (!isExpiredAt(item.expiresAt, now)) items.push(item);
    return items;
  }
}
