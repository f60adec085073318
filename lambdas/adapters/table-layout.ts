/**
 * Where each kind of item lives in Fleet's one DynamoDB table (pk / sk):
 *
 *   BATCH#<id>        / META                        the batch record; listed through the ByCreation index
 *   BATCH#<id>#S<nn>  / RESULT#<taskId>             a task's one final result
 *   BATCH#<id>#S<nn>  / COUNT#<c>                   progress counter c (c mod 32 = nn)
 *   BATCH#<id>#S<nn>  / COUNT                       a shard's counter, as versions before COUNT#<c> kept it
 *   BATCH#<id>#S<nn>  / FAILED_ATTEMPT#<taskId>#<n> a failed result that retry n cleared
 *   STATS#S<n>        / TOTALS                      fleet totals, sharded
 *   STATS#BATCH#<id>  / COUNTED                     what a finished batch added to the totals
 *   WORKERS#<nn>      / <batchId>#<taskId>          a worker running an attempt of that task
 *   FLEET             / CONFIG                      the fleet's config
 *   FLEET             / CAPACITY                    running batches' shares of the cap
 *   TIMELINE          / MINUTE#<epochMinute>        fleet totals as read in that minute (timeline-store.ts)
 *   QUEUE             / <rank>#<batchId>            a batch waiting for capacity (admission-queue.ts)
 *   UPLOAD#<id>       / UPLOAD                      an upload of a tasks file (upload-store.ts)
 *   EXPORT#<batchId>  / EXPORT                      a batch's results export (results-export-store.ts)
 *
 * One module, so the adapters that share a batch's items cannot drift apart.
 */
import { RESULT_SHARDS } from '../domain/batch';
import { WORKER_SHARDS } from '../domain/fleet-activity';

export const LIST_PARTITION = 'BATCHES';
/** The Active index's one partition: batches not yet finished. */
export const ACTIVE_PARTITION = 'ACTIVE';
export const META = 'META';
export const RESULT_PREFIX = 'RESULT#';
export const COUNT_PREFIX = 'COUNT#';

export const batchKey = (batchId: string) => ({ pk: `BATCH#${batchId}`, sk: META });
/** The partition holding result shard `shard` of a batch: its results, counters and cleared failures. */
export const shardPk = (batchId: string, shard: number) => `BATCH#${batchId}#S${String(shard).padStart(2, '0')}`;
export const resultKey = (batchId: string, shard: number, taskId: string) => ({ pk: shardPk(batchId, shard), sk: `${RESULT_PREFIX}${taskId}` });
/** Counter shard c sits in result shard c mod RESULT_SHARDS, beside the results it counts. */
export const counterKey = (batchId: string, counterShard: number) => ({
  pk: shardPk(batchId, counterShard % RESULT_SHARDS),
  sk: `${COUNT_PREFIX}${counterShard}`,
});
/**
 * Where versions before 128 random counters kept a result shard's counter.
 * Batches they stored (records without `counterShards`) are still summed from these too.
 */
export const legacyCounterKey = (batchId: string, shard: number) => ({ pk: shardPk(batchId, shard), sk: 'COUNT' });
/** Stored on each batch record: its counters are the COUNTER_SHARDS `COUNT#<c>` items. */
export const COUNTER_LAYOUT_ATTRIBUTE = 'counterShards';
export const configKey = () => ({ pk: 'FLEET', sk: 'CONFIG' });
export const statsKey = (shard: number) => ({ pk: `STATS#S${shard}`, sk: 'TOTALS' });
export const countedKey = (batchId: string) => ({ pk: `STATS#BATCH#${batchId}`, sk: 'COUNTED' });

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

export const uploadKey = (uploadId: string) => ({ pk: `UPLOAD#${uploadId}`, sk: 'UPLOAD' });
export const exportKey = (batchId: string) => ({ pk: `EXPORT#${batchId}`, sk: 'EXPORT' });

/** The running-workers registry's partition `shard` (fleet-activity.ts). */
export const workersPk = (shard: number) => `WORKERS#${String(shard).padStart(2, '0')}`;

/**
 * IAM `StringLike` patterns matching every partition key `partition(0 … shards-1)`
 * yields, each digit of the shard number a `?` (e.g. `WORKERS#??`).
 */
function shardPatterns(partition: (shard: number) => string, shards: number): string[] {
  const patterns = new Set<string>();
  for (let shard = 0; shard < shards; shard++) patterns.add(partition(shard).replace(/\d+$/, (digits) => '?'.repeat(digits.length)));
  return [...patterns];
}

/**
 * The partitions a worker function reads and writes, as IAM `StringLike`
 * patterns for the `dynamodb:LeadingKeys` condition on its role (infra/fleet.ts):
 * a batch's result shards (its results and progress counters) and the
 * running-workers registry. Built from the key builders above, so the policy
 * follows the layout. Nothing else matches: not a batch record (`BATCH#<id>`,
 * whose id holds no `#`), the config, the capacity, the admission
 * queue, the stats or an idempotency key.
 */
/** The batch records' partitions (`BATCH#<id>`), which the worker only reads: a retry first checks its batch is not cancelled. */
export const BATCH_RECORD_PARTITION_PATTERN = batchKey('*').pk;

export const WORKER_PARTITION_PATTERNS: readonly string[] = Object.freeze([
  ...shardPatterns((shard) => shardPk('*', shard), RESULT_SHARDS),
  ...shardPatterns(workersPk, WORKER_SHARDS),
]);
