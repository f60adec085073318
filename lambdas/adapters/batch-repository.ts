/**
 * BatchRepository on one DynamoDB table (the layout is in table-layout.ts).
 *
 * Results are spread over RESULT_SHARDS partition keys per batch, and
 * progress counters over COUNTER_SHARDS items: no item or partition takes
 * every worker's write.
 */
import {
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { BATCH_ID_PATTERN, COUNTER_SHARDS, RESULT_SHARDS, progressOf, randomCounterShard, shardOf } from '../domain/batch';
import { DEFAULT_CONFIG, LIMITS } from '../domain/config';
import { parseWorkerListing } from '../domain/fleet-activity';
import { ValidationError } from '../domain/errors';
import type { TasksFileBatches } from '../domain/file-jobs';
import type { BatchRecord, BatchRepository, Page, ResultListOptions } from '../domain/ports';
import type { TasksFileError, TasksFileState } from '../domain/tasks-file';
import type { BatchState, BatchStatus, FleetManagerConfig, TaskResult } from '../domain/types';
import { FINISHED_STATES } from '../domain/types';
import { escapedJsonBytes } from '../domain/payload-size';
import { unlessConditionFails } from './conditional-write';
import { batchGetItems } from './batch-get';
import { BatchWriteIncomplete, sendBatchWrite } from './batch-write';
import type { CounterWrite, InsertTarget, WriteGrouping } from './write-grouping';
import { resultItems, toResult } from './result-items';
import {
  ACTIVE_PARTITION,
  COUNTER_LAYOUT_ATTRIBUTE,
  LIST_PARTITION,
  RESULT_PREFIX,
  TABLE_KEYS,
  batchIdOfPk,
  batchKey,
  configKey,
  counterKey,
  isListSortKey,
  listSortKey,
  resultKey,
  shardPk,
} from './table-layout';
import { queryItems } from './query-pages';

/**
 * The results a filtered page (`?status=`) reads at most, matching or not:
 * DynamoDB filters after reading, so a batch of a million results with ten
 * failures would otherwise read it all for one page. Such a page may hold
 * fewer than `limit` results, even none, with a cursor to go on from.
 * At ~200 bytes a result, 2,000 results are ~100 RCUs per page (eventually consistent).
 */
export const FILTERED_PAGE_SCAN = 2000;
/** A filtered query reads at least this many results, so sparse matches are not found 25 at a time. */
const FILTERED_QUERY_MIN = 200;

/** Batches whose recent counter sums getStatus keeps. */
const RECENT_SUMS_KEPT = 1000;

const nowSeconds = () => Math.floor(Date.now() / 1000);
const isExpired = (item: { expiresAt?: unknown } | undefined, at = nowSeconds()) =>
  typeof item?.expiresAt === 'number' && item.expiresAt <= at;

type Item = Record<string, unknown>;

function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function decodeCursor<T>(cursor: string, check: (value: unknown) => value is T): T {
  try {
    if (cursor.length > 2048) throw new Error('too long');
    // Node decodes base64 leniently (it skips stray characters): only the exact form we hand out counts.
    if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error('not base64url');
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (check(value)) return value;
  } catch {
    // fall through
  }
  throw new ValidationError('cursor', 'is not a cursor this endpoint returned');
}

interface ResultCursor {
  s: number;
  k?: string;
}
// A cursor's key parts go into ExclusiveStartKey: anything DynamoDB would
// refuse there (an empty or over-long key) must be a 400 here, never a 500.
function isResultCursor(v: unknown): v is ResultCursor {
  if (typeof v !== 'object' || v === null) return false;
  const { s, k } = v as { s?: unknown; k?: unknown };
  const shardOk = typeof s === 'number' && Number.isInteger(s) && s >= 0 && s < RESULT_SHARDS;
  // k is a task id: 1 to 256 characters, so `RESULT#<k>` stays under DynamoDB's 1,024-byte sort key.
  return shardOk && (k === undefined || (typeof k === 'string' && k.length >= 1 && k.length <= LIMITS.taskIdLength));
}

interface ListCursor {
  sk: string;
  id: string;
}
const isListCursor = (v: unknown): v is ListCursor =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as ListCursor).sk === 'string' &&
  typeof (v as ListCursor).id === 'string' &&
  isListSortKey((v as ListCursor).sk) &&
  BATCH_ID_PATTERN.test((v as ListCursor).id);

function toRecord(item: Item): BatchRecord {
  return {
    batchId: item.batchId as string,
    status: item.status as BatchState,
    totalTasks: item.totalTasks as number,
    createdAt: item.createdAt as number,
    startedAt: (item.startedAt as number | undefined) ?? null,
    completedAt: (item.completedAt as number | undefined) ?? null,
    completedTasks: (item.completedTasks as number | undefined) ?? 0,
    failedTasks: (item.failedTasks as number | undefined) ?? 0,
    priority: (item.priority as number | undefined) ?? 0,
    longestTaskTimeoutMs: (item.longestTaskTimeoutMs as number | undefined) ?? 0,
    tasksKey: item.tasksKey as string,
    ...(typeof item.error === 'string' ? { error: item.error } : {}),
    ...(typeof item.expiresAt === 'number' ? { expiresAt: item.expiresAt } : {}),
    ...(item.tasksFile ? { tasksFile: item.tasksFile as TasksFileState } : {}),
    ...(Array.isArray(item.validationErrors) ? { validationErrors: item.validationErrors as TasksFileError[] } : {}),
    ...(item.validationErrorsTruncated === true ? { validationErrorsTruncated: true } : {}),
    ...(typeof item[COUNTER_LAYOUT_ATTRIBUTE] === 'number' ? { counterShards: item[COUNTER_LAYOUT_ATTRIBUTE] } : {}),
  };
}

export function statusOf(record: BatchRecord, completedTasks: number, failedTasks: number): BatchStatus {
  return {
    batchId: record.batchId,
    status: record.status,
    totalTasks: record.totalTasks,
    completedTasks,
    failedTasks,
    progress: progressOf(record.totalTasks, completedTasks, failedTasks),
    createdAt: record.createdAt,
    startedAt: record.startedAt,
    completedAt: record.completedAt,
    ...(record.error ? { error: record.error } : {}),
    ...(record.tasksFile ? { tasksFile: { state: record.tasksFile.state, linesRead: record.tasksFile.linesRead } } : {}),
    ...(record.validationErrors
      ? { validationErrors: record.validationErrors, validationErrorsTruncated: record.validationErrorsTruncated === true }
      : {}),
  };
}

type Key = { pk: string; sk: string };
/** A batch's counters: which batch, over how many counter items (BatchRecord.counterShards). */
type CounterKey = { batchId: string; counterShards: number };
type ResultItem = Key & Item;
/** An item's key as one string. */
const itemId = ({ pk, sk }: Key) => `${pk}\u0000${sk}`;

export class DynamoBatchRepository implements BatchRepository, TasksFileBatches {
  /**
   * A batch's counts. With grouping (the local fleet runs many invocations in
   * one process), results recorded while one of its counter writes is in
   * flight share the next UpdateItem; a lone result is counted at once.
   */
  private readonly counters: { add(key: CounterKey, field: string, amount: number, expiresAt: number): Promise<void> };

  /**
   * Results: each one conditional PutItem; with grouping (the local fleet)
   * those recorded at the same time are written together. See
   * insert-coalescer.ts for why that stays exactly once.
   */
  private readonly results: { insert(item: ResultItem): Promise<boolean> };

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    options: {
      /**
       * Grouped writes (adapters/write-grouping.ts). Only for a process that
       * is the table's only writer of results (the local fleet).
       * @default none: every write on its own, as on AWS
       */
      grouping?: WriteGrouping | undefined;
    } = {},
  ) {
    const { grouping } = options;
    this.results = grouping ? grouping.results(tableName, itemId, this.resultWrites()) : { insert: (item) => this.resultWrites().insertOne(item) };
    this.counters = grouping
      ? grouping.counters<CounterKey>(({ batchId }) => batchId, ({ batchId, counterShards }, merged) => this.addToCounter(batchId, counterShards, merged))
      : { add: ({ batchId, counterShards }, field, amount, expiresAt) => this.addToCounter(batchId, counterShards, { deltas: { [field]: amount }, expiresAt }) };
  }

  /** How results are written: a conditional put, and with grouping the existence read of a group and a group's puts. */
  private resultWrites(): InsertTarget<ResultItem> {
    return {
      insertOne: async (item) =>
        (await unlessConditionFails(() =>
          this.client.send(new PutCommand({ TableName: this.tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' })),
        )) !== undefined,
      existing: async (items) =>
        new Set((await batchGetItems(this.client, this.tableName, items.map(({ pk, sk }) => ({ pk, sk })), { projection: 'pk, sk' })).map((found) => itemId(found as Key))),
      putAll: async (items) => {
        try {
          await sendBatchWrite(this.client, this.tableName, items.map((Item) => ({ PutRequest: { Item } })));
          return [];
        } catch (error) {
          if (!(error instanceof BatchWriteIncomplete)) throw error;
          return error.unprocessed.flatMap((request) => ('PutRequest' in request ? [request.PutRequest.Item as ResultItem] : []));
        }
      },
    };
  }

  async createBatch(record: BatchRecord): Promise<void> {
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          ...batchKey(record.batchId),
          ...record,
          [TABLE_KEYS.byCreationPartitionKey]: LIST_PARTITION,
          [TABLE_KEYS.byCreationSortKey]: listSortKey(record.createdAt, record.batchId),
          [TABLE_KEYS.activePartitionKey]: ACTIVE_PARTITION,
          [COUNTER_LAYOUT_ATTRIBUTE]: record.counterShards ?? COUNTER_SHARDS,
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async getBatch(batchId: string): Promise<BatchRecord | undefined> {
    const item = await this.getBatchItem(batchId);
    return item && toRecord(item);
  }

  private async getBatchItem(batchId: string): Promise<Item | undefined> {
    const { Item } = await this.client.send(new GetCommand({ TableName: this.tableName, Key: batchKey(batchId), ConsistentRead: true }));
    return !Item || isExpired(Item) ? undefined : Item;
  }

  async getStatus(batchId: string, options: { countsMaxAgeMs?: number } = {}): Promise<BatchStatus | undefined> {
    const item = await this.getBatchItem(batchId);
    if (!item) return undefined;
    const record = toRecord(item);
    if (this.hasFinalCounts(record)) return statusOf(record, record.completedTasks, record.failedTasks);
    const maxAge = options.countsMaxAgeMs ?? 0;
    const now = Date.now();
    const recent = maxAge > 0 && record.status === 'processing' ? this.recentSums.get(batchId) : undefined;
    if (recent && now - recent.at <= maxAge) return statusOf(record, recent.completedTasks, recent.failedTasks);
    const counts = await this.sumCounters(batchId, record.counterShards);
    if (maxAge > 0) {
      // Bounded: the oldest sum goes first (a Map keeps insertion order).
      this.recentSums.delete(batchId);
      if (this.recentSums.size >= RECENT_SUMS_KEPT) this.recentSums.delete(this.recentSums.keys().next().value as string);
      this.recentSums.set(batchId, { ...counts, at: now });
    }
    return statusOf(record, counts.completedTasks, counts.failedTasks);
  }

  /** Counter sums taken for getStatus callers that accept counts a little old, by batch. */
  private readonly recentSums = new Map<string, { completedTasks: number; failedTasks: number; at: number }>();

  /** Completed, partial and failed batches store exact final counts; a cancelled one's may still grow. */
  private hasFinalCounts(record: BatchRecord): boolean {
    return FINISHED_STATES.has(record.status) && record.status !== 'cancelled';
  }

  async listBatches(limit: number, cursor: string | undefined): Promise<Page<BatchStatus>> {
    const start = cursor ? decodeCursor(cursor, isListCursor) : undefined;
    const { Items = [], LastEvaluatedKey } = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: TABLE_KEYS.byCreationIndex,
        KeyConditionExpression: '#lp = :lp',
        ExpressionAttributeNames: { '#lp': TABLE_KEYS.byCreationPartitionKey },
        ExpressionAttributeValues: { ':lp': LIST_PARTITION },
        ScanIndexForward: false,
        Limit: limit,
        ...(start
          ? {
              ExclusiveStartKey: {
                ...batchKey(start.id),
                [TABLE_KEYS.byCreationPartitionKey]: LIST_PARTITION,
                [TABLE_KEYS.byCreationSortKey]: start.sk,
              },
            }
          : {}),
      }),
    );
    const at = nowSeconds();
    // Finished batches carry their final counts; the others are counted live, as GET /batches/{id} does.
    const items = await Promise.all(
      Items.filter((item) => !isExpired(item, at)).map(async (item) => {
        const record = toRecord(item);
        const counts = this.hasFinalCounts(record) ? record : await this.sumCounters(record.batchId, record.counterShards);
        return statusOf(record, counts.completedTasks, counts.failedTasks);
      }),
    );
    // An index's LastEvaluatedKey holds the table key and the index key.
    const nextCursor =
      LastEvaluatedKey && typeof LastEvaluatedKey.pk === 'string'
        ? encodeCursor({ sk: String(LastEvaluatedKey[TABLE_KEYS.byCreationSortKey]), id: batchIdOfPk(LastEvaluatedKey.pk) })
        : null;
    return { items, nextCursor };
  }

  async markStarted(batchId: string, startedAt: number): Promise<BatchRecord | undefined> {
    const updated = await unlessConditionFails(() =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: batchKey(batchId),
          UpdateExpression: 'SET #s = :processing, startedAt = :now',
          ConditionExpression: '#s = :pending',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':processing': 'processing', ':pending': 'pending', ':now': startedAt },
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    return updated?.Attributes ? toRecord(updated.Attributes) : undefined;
  }

  async recordResult(batchId: string, result: TaskResult, expiresAt: number, counterShards = COUNTER_SHARDS): Promise<boolean> {
    // The first final result of a task wins: a duplicate delivery, or a late
    // success after the Catch path recorded a timeout, is refused.
    const stored = await this.results.insert({ ...resultKey(batchId, shardOf(result.taskId), result.taskId), ...result, expiresAt });
    if (!stored) return false;
    // Not atomic with the put: a crash in between undercounts, never double-counts,
    // and countResults() recounts from the results when the sum falls short.
    await this.counters.add({ batchId, counterShards }, result.success ? 'completed' : 'failed', 1, expiresAt);
    return true;
  }

  /**
   * Adds to one of the batch's counters, chosen at random: only the sum of
   * all of them means anything, and spreading the writes keeps every counter
   * cool (at 10,000 tasks/s, ~78 writes/s each).
   */
  private async addToCounter(batchId: string, counterShards: number, { deltas, expiresAt }: CounterWrite): Promise<void> {
    const fields = Object.keys(deltas);
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: counterKey(batchId, randomCounterShard(counterShards)),
        UpdateExpression: `ADD ${fields.map((_, i) => `#f${i} :d${i}`).join(', ')} SET expiresAt = :exp`,
        ExpressionAttributeNames: Object.fromEntries(fields.map((field, i) => [`#f${i}`, field])),
        ExpressionAttributeValues: { ...Object.fromEntries(fields.map((field, i) => [`:d${i}`, deltas[field]])), ':exp': expiresAt },
      }),
    );
  }

  /** Sums a batch's counters: `counterShards` of them (BatchRecord.counterShards). */
  private async sumCounters(batchId: string, counterShards = COUNTER_SHARDS): Promise<{ completedTasks: number; failedTasks: number }> {
    const keys = Array.from({ length: counterShards }, (_, shard) => counterKey(batchId, shard));
    const items = await batchGetItems(this.client, this.tableName, keys);
    let completedTasks = 0;
    let failedTasks = 0;
    for (const item of items) {
      completedTasks += (item.completed as number | undefined) ?? 0;
      failedTasks += (item.failed as number | undefined) ?? 0;
    }
    return { completedTasks, failedTasks };
  }

  async countResults(batchId: string, totalTasks: number, counterShards?: number): Promise<{ completedTasks: number; failedTasks: number }> {
    const counted = await this.sumCounters(batchId, counterShards);
    if (counted.completedTasks + counted.failedTasks >= totalTasks) return counted;
    let completedTasks = 0;
    let failedTasks = 0;
    for await (const item of resultItems(this.client, this.tableName, batchId, { projection: 'success' })) {
      if (item.success === true) completedTasks++;
      else failedTasks++;
    }
    return { completedTasks, failedTasks };
  }

  async finish(
    batchId: string,
    fields: { status: BatchState; completedTasks: number; failedTasks: number; completedAt: number; expiresAt: number; error?: string },
  ): Promise<boolean> {
    const finished = await unlessConditionFails(() =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: batchKey(batchId),
          UpdateExpression:
            'SET #s = :status, completedTasks = :c, failedTasks = :f, completedAt = :at, expiresAt = :exp' +
            (fields.error ? ', #e = :err' : '') +
            ' REMOVE #active',
          ConditionExpression: 'attribute_exists(pk) AND NOT #s IN (:completed, :failed, :partial, :cancelled)',
          ExpressionAttributeNames: { '#s': 'status', '#active': TABLE_KEYS.activePartitionKey, ...(fields.error ? { '#e': 'error' } : {}) },
          ExpressionAttributeValues: {
            ':status': fields.status,
            ':c': fields.completedTasks,
            ':f': fields.failedTasks,
            ':at': fields.completedAt,
            ':exp': fields.expiresAt,
            ':completed': 'completed',
            ':failed': 'failed',
            ':partial': 'partial',
            ':cancelled': 'cancelled',
            ...(fields.error ? { ':err': fields.error } : {}),
          },
        }),
      ),
    );
    return finished !== undefined;
  }

  /** Only while the batch is pending with its file validating: a cancel stops the validation at its next progress write. */
  private static readonly VALIDATING = 'attribute_exists(pk) AND #s = :pending AND tasksFile.#state = :validating';

  private async updateValidating(batchId: string, update: string, names: Record<string, string>, values: Record<string, unknown>): Promise<boolean> {
    const updated = await unlessConditionFails(() =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: batchKey(batchId),
          UpdateExpression: update,
          ConditionExpression: DynamoBatchRepository.VALIDATING,
          ExpressionAttributeNames: { '#s': 'status', '#state': 'state', ...names },
          ExpressionAttributeValues: { ':pending': 'pending', ':validating': 'validating', ...values },
        }),
      ),
    );
    return updated !== undefined;
  }

  progress(batchId: string, linesRead: number): Promise<boolean> {
    return this.updateValidating(batchId, 'SET tasksFile.linesRead = :lines', {}, { ':lines': linesRead });
  }

  ready(batchId: string, fields: { totalTasks: number; longestTaskTimeoutMs: number; linesRead: number }): Promise<boolean> {
    return this.updateValidating(
      batchId,
      'SET tasksFile.#state = :ready, tasksFile.linesRead = :lines, totalTasks = :total, longestTaskTimeoutMs = :longest',
      {},
      { ':ready': 'ready', ':lines': fields.linesRead, ':total': fields.totalTasks, ':longest': fields.longestTaskTimeoutMs },
    );
  }

  invalid(
    batchId: string,
    fields: { error: string; validationErrors: TasksFileError[]; truncated: boolean; linesRead: number; completedAt: number; expiresAt: number },
  ): Promise<boolean> {
    return this.updateValidating(
      batchId,
      'SET #s = :failed, tasksFile.#state = :invalid, tasksFile.linesRead = :lines, #e = :error, validationErrors = :errors, ' +
        'validationErrorsTruncated = :truncated, completedTasks = :zero, failedTasks = :zero, completedAt = :at, expiresAt = :exp REMOVE #active',
      { '#e': 'error', '#active': TABLE_KEYS.activePartitionKey },
      {
        ':failed': 'failed',
        ':invalid': 'invalid',
        ':lines': fields.linesRead,
        ':error': fields.error.slice(0, 2000),
        ':errors': fields.validationErrors,
        ':truncated': fields.truncated,
        ':zero': 0,
        ':at': fields.completedAt,
        ':exp': fields.expiresAt,
      },
    );
  }

  async listActiveBatchIds(): Promise<string[]> {
    const ids: string[] = [];
    const active = queryItems(this.client, {
      TableName: this.tableName,
      IndexName: TABLE_KEYS.activeIndex,
      KeyConditionExpression: '#a = :a',
      ExpressionAttributeNames: { '#a': TABLE_KEYS.activePartitionKey },
      ExpressionAttributeValues: { ':a': ACTIVE_PARTITION },
    });
    // The index projects keys only: the batch id is in the table key.
    for await (const item of active) if (typeof item.pk === 'string') ids.push(batchIdOfPk(item.pk));
    return ids;
  }

  async cancel(batchId: string, fields: { completedTasks: number; failedTasks: number; completedAt: number; expiresAt: number }): Promise<boolean> {
    return this.finish(batchId, { status: 'cancelled', ...fields });
  }

  async listResults(batchId: string, limit: number, cursor: string | undefined, options: ResultListOptions = {}): Promise<Page<TaskResult>> {
    const prefix = options.taskIdPrefix ?? '';
    const position = cursor ? decodeCursor(cursor, isResultCursor) : { s: 0 };
    // The cursor's key goes into ExclusiveStartKey, which must satisfy the key condition: a cursor of another prefix is a 400, not a 500.
    if (position.k !== undefined && !position.k.startsWith(prefix)) throw new ValidationError('cursor', 'is not a cursor this endpoint returned for this taskIdPrefix');
    const filtered = options.success !== undefined;
    // A filter is applied after the read: a page stops once it has read this many results, matching or not.
    let budget = filtered ? (options.maxScanned ?? FILTERED_PAGE_SCAN) : Number.POSITIVE_INFINITY;
    const items: TaskResult[] = [];
    let shard = position.s;
    let startSk = position.k;
    let bytes = 0;
    let full = false;
    const at = nowSeconds();
    while (shard < RESULT_SHARDS && items.length < limit && budget > 0) {
      const wanted = limit - items.length;
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :r)',
          ExpressionAttributeValues: {
            ':pk': shardPk(batchId, shard),
            ':r': `${RESULT_PREFIX}${prefix}`,
            ...(filtered ? { ':ok': options.success } : {}),
          },
          // Limit counts the items read, before the filter: read more than wanted, within the budget.
          Limit: filtered ? Math.min(budget, Math.max(wanted, FILTERED_QUERY_MIN)) : wanted,
          ...(filtered ? { FilterExpression: '#ok = :ok', ExpressionAttributeNames: { '#ok': 'success' } } : {}),
          ...(startSk !== undefined ? { ExclusiveStartKey: { pk: shardPk(batchId, shard), sk: `${RESULT_PREFIX}${startSk}` } } : {}),
        }),
      );
      if (filtered) budget -= page.ScannedCount ?? (page.Items ?? []).length;
      let stopped = false;
      for (const item of page.Items ?? []) {
        if (items.length >= limit) {
          stopped = true;
          break;
        }
        if (!isExpired(item, at)) {
          const result = toResult(item);
          // A page stops before its size would pass the budget (one result always fits: items are at most 400 KB).
          const size = options.maxBytes === undefined ? 0 : escapedJsonBytes(result) + 1;
          if (options.maxBytes !== undefined && items.length > 0 && bytes + size > options.maxBytes) {
            full = true;
            break;
          }
          bytes += size;
          items.push(result);
        }
        startSk = String(item.sk).slice(RESULT_PREFIX.length);
      }
      if (full || stopped) break;
      if (page.LastEvaluatedKey) {
        startSk = String(page.LastEvaluatedKey.sk).slice(RESULT_PREFIX.length);
      } else {
        shard++;
        startSk = undefined;
      }
    }
    const done = shard >= RESULT_SHARDS;
    return { items, nextCursor: done ? null : encodeCursor(startSk !== undefined ? { s: shard, k: startSk } : { s: shard }) };
  }

  async getConfig(): Promise<FleetManagerConfig> {
    // Strongly consistent: admission must never share out a cap that was just changed.
    const { Item } = await this.client.send(new GetCommand({ TableName: this.tableName, Key: configKey(), ConsistentRead: true }));
    return configOf(Item);
  }

  async updateConfig(patch: Partial<FleetManagerConfig>): Promise<FleetManagerConfig> {
    const fields = Object.entries<unknown>(patch).filter(([, value]) => value !== undefined);
    if (fields.length === 0) return this.getConfig();
    const { Attributes } = await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: configKey(),
        UpdateExpression: `SET ${fields.map((_, i) => `#f${i} = :v${i}`).join(', ')}`,
        ExpressionAttributeNames: Object.fromEntries(fields.map(([name], i) => [`#f${i}`, name])),
        ExpressionAttributeValues: Object.fromEntries(fields.map(([, value], i) => [`:v${i}`, value])),
        ReturnValues: 'ALL_NEW',
      }),
    );
    return configOf(Attributes);
  }
}

/**
 * The deployment's default listing mode (FleetProps.workerListing, which the
 * Fleet construct passes to every function), read once at cold start.
 */
const deployedWorkerListing = parseWorkerListing(process.env.FLEET_WORKER_LISTING, 'FLEET_WORKER_LISTING');

/** The stored config, with defaults for what was never set. */
function configOf(Item: Item | undefined): FleetManagerConfig {
  if (!Item) return { ...DEFAULT_CONFIG, workerListing: deployedWorkerListing };
  return {
    maxConcurrentWorkers: (Item.maxConcurrentWorkers as number | undefined) ?? DEFAULT_CONFIG.maxConcurrentWorkers,
    workerTimeout: (Item.workerTimeout as number | undefined) ?? DEFAULT_CONFIG.workerTimeout,
    retryFailedTasks: (Item.retryFailedTasks as boolean | undefined) ?? DEFAULT_CONFIG.retryFailedTasks,
    maxRetries: (Item.maxRetries as number | undefined) ?? DEFAULT_CONFIG.maxRetries,
    workerListing: (Item.workerListing as FleetManagerConfig['workerListing'] | undefined) ?? deployedWorkerListing,
  };
}
