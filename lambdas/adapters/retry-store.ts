/**
 * RetryStore on the Fleet table: what POST /batches/{id}/retry-failed keeps.
 *
 * Beside the repository's layout (batch-repository.ts):
 *   BATCH#<id>       / META                          + retries, executionName, retriedAt
 *   BATCH#<id>#S<nn> / FAILED_ATTEMPT#<taskId>#<n>    a failed result that retry n cleared
 * and, in the stats (fleet-activity.ts), the COUNTED mark of a retried batch
 * keeps the counts last added to the totals and the retry they came from.
 *
 * Counts stay exact without transactions (dynalite has none): clearing a
 * failed result lowers its shard's counter *before* deleting it, so a crash in
 * between undercounts (Finish batch then recounts from the results), never
 * overcounts.
 */
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { randomCounterShard, shardOf } from '../domain/batch';
import { STATS_SHARDS } from '../domain/fleet-activity';
import type { RetryState, RetryStore } from '../domain/ports';
import { unlessConditionFails } from './conditional-write';
import { resultItems } from './result-items';
import { ACTIVE_PARTITION, RESULT_PREFIX, TABLE_KEYS, batchKey, countedKey, counterKey, failedAttemptKey, resultKey, statsKey } from './table-layout';

type Item = Record<string, unknown>;

const numberOf = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

export class DynamoRetryStore implements RetryStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async getRetryState(batchId: string): Promise<RetryState | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: batchKey(batchId),
        ConsistentRead: true,
        ProjectionExpression: 'pk, #r, executionName, retriedAt',
        ExpressionAttributeNames: { '#r': 'retries' },
      }),
    );
    if (!Item) return undefined;
    return {
      retries: numberOf(Item.retries),
      executionName: typeof Item.executionName === 'string' ? Item.executionName : batchId,
      ...(typeof Item.retriedAt === 'number' ? { retriedAt: Item.retriedAt } : {}),
    };
  }

  /** The batch's current execution name, for StepFunctionsWorkflow. */
  async currentExecutionName(batchId: string): Promise<string> {
    return (await this.getRetryState(batchId))?.executionName ?? batchId;
  }

  async listSucceededTaskIds(batchId: string): Promise<Set<string>> {
    const ids = new Set<string>();
    const succeeded = resultItems(this.client, this.tableName, batchId, {
      projection: 'sk',
      filter: '#ok = :true',
      names: { '#ok': 'success' },
      values: { ':true': true },
    });
    for await (const item of succeeded) ids.add(String(item.sk).slice(RESULT_PREFIX.length));
    return ids;
  }

  async claimRetry(batchId: string, claim: { retry: number; executionName: string; claimedAt: number }): Promise<boolean> {
    const claimed = await unlessConditionFails(() =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: batchKey(batchId),
          // Unfinished again: back in the Active index, no longer expiring, no final time or error.
          UpdateExpression: 'SET #s = :pending, retries = :n, executionName = :name, retriedAt = :at, #active = :active REMOVE completedAt, expiresAt, #e',
          ConditionExpression: `#s IN (:completed, :partial, :failed) AND ${claim.retry === 1 ? 'attribute_not_exists(retries)' : 'retries = :previous'}`,
          ExpressionAttributeNames: { '#s': 'status', '#e': 'error', '#active': TABLE_KEYS.activePartitionKey },
          ExpressionAttributeValues: {
            ':pending': 'pending',
            ':n': claim.retry,
            ':name': claim.executionName,
            ':at': claim.claimedAt,
            ':active': ACTIVE_PARTITION,
            ':completed': 'completed',
            ':partial': 'partial',
            ':failed': 'failed',
            ...(claim.retry === 1 ? {} : { ':previous': claim.retry - 1 }),
          },
        }),
      ),
    );
    return claimed !== undefined;
  }

  async clearFailedResult(batchId: string, taskId: string, clear: { retry: number; before: number; expiresAt: number }): Promise<boolean> {
    const key = resultKey(batchId, shardOf(taskId), taskId);
    const { Item } = await this.client.send(new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }));
    // Only a failure recorded before the claim: a result written since is a new attempt's.
    if (!Item || Item.success !== false || !(numberOf(Item.timestamp) < clear.before)) return false;
    const { pk: _pk, sk: _sk, ...result } = Item;
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: { ...result, ...failedAttemptKey(batchId, taskId, clear.retry), retry: clear.retry, expiresAt: clear.expiresAt },
      }),
    );
    // Counter first, then the delete: a crash in between undercounts, which Finish batch's recount repairs.
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: counterKey(batchId, randomCounterShard()),
        // The counter may not exist yet: it expires as the ones results write do.
        UpdateExpression: 'ADD failed :minus SET expiresAt = :exp',
        ExpressionAttributeValues: { ':minus': -1, ':exp': clear.expiresAt },
      }),
    );
    const deleted = await unlessConditionFails(() =>
      this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: key,
          ConditionExpression: '#ok = :false AND #t < :before',
          ExpressionAttributeNames: { '#ok': 'success', '#t': 'timestamp' },
          ExpressionAttributeValues: { ':false': false, ':before': clear.before },
        }),
      ),
    );
    return deleted !== undefined;
  }

  async recountRetriedBatch(batchId: string, counts: { completedTasks: number; failedTasks: number }): Promise<boolean> {
    const state = await this.getRetryState(batchId);
    if (!state || state.retries === 0) return false;
    // Mark first, then add (as addFinishedBatch does): a crash in between
    // leaves the difference out of the totals, and a repeat cannot add it twice.
    const marked = await unlessConditionFails(() =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: countedKey(batchId),
          UpdateExpression: 'SET completedTasks = :c, failedTasks = :f, countedRetry = :n',
          ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(countedRetry) OR countedRetry < :n)',
          ExpressionAttributeValues: { ':c': counts.completedTasks, ':f': counts.failedTasks, ':n': state.retries },
          ReturnValues: 'UPDATED_OLD',
        }),
      ),
    );
    if (!marked) return false;
    const previous: Item | undefined = marked.Attributes;
    const completed = counts.completedTasks - numberOf(previous?.completedTasks);
    const failed = counts.failedTasks - numberOf(previous?.failedTasks);
    if (completed !== 0 || failed !== 0) {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: statsKey(Math.floor(Math.random() * STATS_SHARDS)),
          UpdateExpression: 'ADD completedTasks :c, failedTasks :f',
          ExpressionAttributeValues: { ':c': completed, ':f': failed },
        }),
      );
    }
    return true;
  }
}
