/**
 * Where each kind of item lives in Fleet's one DynamoDB table (pk / sk):
 *
 *   BATCH#<id>        / META                        the batch record; listed through the ByCreation index
 *   BATCH#<id>#S<nn>  / RESULT#<taskId>             a task's one final result
 *   BATCH#<id>#S<nn>  / COUNT#<c>                   progress counter c (c mod 32 = nn)
 *   BATCH#<id>#S<nn>  / FAILED_ATTEMPT#<taskId>#<n> a failed result that retry n cleared
 *   BATCH#<id>#S<nn>  / NEXT_ATTEMPT#<taskId>       which attempt of the task runs next (written on retries only)
 *   STATS#S<n>        / TOTALS                      fleet totals, sharded
 *   STATS#BATCH#<id>  / COUNTED                     what a finished batch added to the totals
 *   WORKERS#<nn>      / SLOT#<slot>                 the attempt a worker slot runs or last ran
 *   FLEET             / CONFIG                      the fleet's config
 *   FLEET             / CAPACITY                    running batches' shares of the cap (capacity-store.ts)
 *   TIMELINE          / MINUTE#<epochMinute>        fleet totals as read in that minute (timeline-store.ts)
 *   QUEUE             / <rank>#<batchId>            a batch waiting for capacity (admission-queue.ts)
 *   UPLOAD#<id>       / UPLOAD                      an upload of a tasks file (upload-store.ts)
 *   EXPORT#<batchId>  / EXPORT                      a batch's results export (results-export-store.ts)
 *   IDEMPOTENCY#<sha256 of the key> / KEY           an Idempotency-Key's claim (idempotency-store.ts)
 *
 * One module, so the adapters that share a batch's items cannot drift apart,
 * and the one place infra/ reads the table's names from: it imports nothing
 * from the AWS SDK, so `cdk synth` does not load the DynamoDB client.
 */
import { BATCH_ID_PATTERN, RESULT_SHARDS, shardOf } from '../domain/batch';
import { WORKER_SHARDS, workerShardOf } from '../domain/fleet-activity';

/** The table's attribute and index names, shared with the CDK table definition (infra/fleet.ts). */
export const TABLE_KEYS = Object.freeze({
  partitionKey: 'pk',
  sortKey: 'sk',
  ttlAttribute: 'expiresAt',
  byCreationIndex: 'ByCreation',
  byCreationPartitionKey: 'listPk',
  byCreationSortKey: 'listSk',
  /** Sparse index of batches not yet finished: what live scaling must reach. */
  activeIndex: 'Active',
  activePartitionKey: 'activePk',
});

/** The ByCreation index's one partition: every batch, newest first by `listSortKey`. */
export const LIST_PARTITION = 'BATCHES';
/** The Active index's one partition: batches not yet finished. */
export const ACTIVE_PARTITION = 'ACTIVE';
export const META = 'META';
export const RESULT_PREFIX = 'RESULT#';
export const COUNT_PREFIX = 'COUNT#';

const BATCH_PREFIX = 'BATCH#';
export const batchKey = (batchId: string) => ({ pk: `${BATCH_PREFIX}${batchId}`, sk: META });
/** The batch id in a batch record's partition key (`BATCH#<id>`), or in a result shard's (`BATCH#<id>#S<nn>`). */
export const batchIdOfPk = (pk: string) => pk.slice(BATCH_PREFIX.length).replace(/#S\d+$/, '');

/** A batch's ByCreation sort key: `<createdAt, 15 digits>#<batchId>`, so the newest sort last. */
export const listSortKey = (createdAt: number, batchId: string) => `${String(createdAt).padStart(15, '0')}#${batchId}`;
/** Whether `sk` is a ByCreation sort key `listSortKey` could have made (a list cursor's, checked before it reaches DynamoDB). */
export const isListSortKey = (sk: string) => /^\d{15}#/.test(sk) && BATCH_ID_PATTERN.test(sk.slice(16));
/** The partition holding result shard `shard` of a batch: its results, counters and cleared failures. */
export const shardPk = (batchId: string, shard: number) => `${BATCH_PREFIX}${batchId}#S${String(shard).padStart(2, '0')}`;
export const resultKey = (batchId: string, shard: number, taskId: string) => ({ pk: shardPk(batchId, shard), sk: `${RESULT_PREFIX}${taskId}` });
/** Counter shard c sits in result shard c mod RESULT_SHARDS, beside the results it counts. */
export const counterKey = (batchId: string, counterShard: number) => ({
  pk: shardPk(batchId, counterShard % RESULT_SHARDS),
  sk: `${COUNT_PREFIX}${counterShard}`,
});
/**
 * Stored on each batch record: its counters are the COUNTER_SHARDS `COUNT#<c>`
 * items, so a later change of the counter layout can tell its batches apart.
 */
export const COUNTER_LAYOUT_ATTRIBUTE = 'counterShards';
const FLEET_PARTITION = 'FLEET';
export const configKey = () => ({ pk: FLEET_PARTITION, sk: 'CONFIG' });
/** The running batches' shares of the cap: one item, written under optimistic locking (capacity-store.ts). */
export const capacityKey = () => ({ pk: FLEET_PARTITION, sk: 'CAPACITY' });
export const statsKey = (shard: number) => ({ pk: `STATS#S${shard}`, sk: 'TOTALS' });
const COUNTED_PREFIX = 'STATS#BATCH#';
export const countedKey = (batchId: string) => ({ pk: `${COUNTED_PREFIX}${batchId}`, sk: 'COUNTED' });
/** The batch id in a COUNTED mark's partition key. */
export const batchIdOfCountedPk = (pk: string) => pk.slice(COUNTED_PREFIX.length);

/** The admission queue's one partition, sorted by rank (see admission-queue.ts). */
export const QUEUE_PARTITION = 'QUEUE';
/** Ranks are epoch-ms-sized and may be negative (a high priority): offset so they sort as fixed-width text. */
const RANK_OFFSET = 1e15;
export const queueKey = (rank: number, batchId: string) => ({
  pk: QUEUE_PARTITION,
  sk: `${String(Math.round(rank + RANK_OFFSET)).padStart(16, '0')}#${batchId}`,
});

/** The timeline's one partition: one small item a minute, kept two hours. */
export const timelineKey = (minute: number) => ({ pk: 'TIMELINE', sk: `MINUTE#${String(minute).padStart(10, '0')}` });
/** Where retry-failed keeps a task's cleared failures: `FAILED_ATTEMPT#<taskId>#<retry>` in its result shard. */
export const failedAttemptPrefix = (taskId: string) => `FAILED_ATTEMPT#${taskId}#`;
/** Retry `retry`'s cleared failure of a task, in the task's result shard. */
export const failedAttemptKey = (batchId: string, taskId: string, retry: number) => ({
  pk: shardPk(batchId, shardOf(taskId)),
  sk: `${failedAttemptPrefix(taskId)}${retry}`,
});

const IDEMPOTENCY_PREFIX = 'IDEMPOTENCY#';
/** An Idempotency-Key's claim, by the key's SHA-256 (idempotency-store.ts). */
export const idempotencyKey = (keyHash: string) => ({ pk: `${IDEMPOTENCY_PREFIX}${keyHash}`, sk: 'KEY' });
/** The key hash in an idempotency claim's partition key. */
export const keyHashOfIdempotencyPk = (pk: string) => pk.slice(IDEMPOTENCY_PREFIX.length);

export const uploadKey = (uploadId: string) => ({ pk: `UPLOAD#${uploadId}`, sk: 'UPLOAD' });
export const exportKey = (batchId: string) => ({ pk: `EXPORT#${batchId}`, sk: 'EXPORT' });

/** The running-workers registry's partition `shard` (fleet-activity.ts). */
export const workersPk = (shard: number) => `WORKERS#${String(shard).padStart(2, '0')}`;
/** A worker slot's registry entry: its shard is a hash of the slot. */
export const workerSlotKey = (slot: string) => ({ pk: workersPk(workerShardOf(slot)), sk: `SLOT#${slot}` });
/** A task's note of its next attempt, beside its result (the worker writes only its batch's result shards). */
export const nextAttemptKey = (batchId: string, taskId: string) => ({ pk: shardPk(batchId, shardOf(taskId)), sk: `NEXT_ATTEMPT#${taskId}` });

/**
 * IAM `StringLike` patterns matching every partition key `partition(0 … shards-1)`
 * yields, each digit of the shard number a `?` (e.g. `WORKERS#??`).
 */
function shardPatterns(partition: (shard: number) => string, shards: number): string[] {
  const patterns = new Set<string>();
  for (let shard = 0; shard < shards; shard++) patterns.add(partition(shard).replace(/\d+$/, (digits) => '?'.repeat(digits.length)));
  return [...patterns];
}

/** The batch records' partitions (`BATCH#<id>`), which the worker only reads: a retry first checks its batch is not cancelled. */
export const BATCH_RECORD_PARTITION_PATTERN = batchKey('*').pk;

/**
 * The partitions a worker function reads and writes, as IAM `StringLike`
 * patterns for the `dynamodb:LeadingKeys` condition on its role (infra/fleet.ts):
 * a batch's result shards (its results and progress counters) and the
 * running-workers registry. Built from the key builders above, so the policy
 * follows the layout. Nothing else matches: not a batch record (`BATCH#<id>`,
 * whose id holds no `#`), the config, the capacity, the admission
 * queue, the stats or an idempotency key.
 */
export const WORKER_PARTITION_PATTERNS: readonly string[] = Object.freeze([
  ...shardPatterns((shard) => shardPk('*', shard), RESULT_SHARDS),
  ...shardPatterns(workersPk, WORKER_SHARDS),
]);
