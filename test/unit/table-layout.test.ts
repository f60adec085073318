/**
 * The table layout (lambdas/adapters/table-layout.ts) is what is stored: a
 * key's format may never change under items already written. These pin
 * every key and prefix to the layout its header documents, and check that
 * each reader of a key gives back what the builder put in.
 */
import { describe, expect, it } from 'vitest';
import {
  ACTIVE_PARTITION,
  LIST_PARTITION,
  TABLE_KEYS,
  batchIdOfCountedPk,
  batchIdOfPk,
  batchKey,
  capacityKey,
  configKey,
  countedKey,
  counterKey,
  exportKey,
  failedAttemptKey,
  failedAttemptPrefix,
  idempotencyKey,
  isListSortKey,
  keyHashOfIdempotencyPk,
  listSortKey,
  nextAttemptKey,
  queueKey,
  resultKey,
  shardPk,
  statsKey,
  timelineKey,
  uploadKey,
  workerSlotKey,
  workersPk,
} from '../../lambdas/adapters/table-layout';
import { shardOf } from '../../lambdas/domain/batch';
import { workerShardOf } from '../../lambdas/domain/fleet-activity';

const two = (n: number) => String(n).padStart(2, '0');

describe('the table layout', () => {
  it('names the table attributes and indexes the CDK table defines', () => {
    expect(TABLE_KEYS).toEqual({
      partitionKey: 'pk',
      sortKey: 'sk',
      ttlAttribute: 'expiresAt',
      byCreationIndex: 'ByCreation',
      byCreationPartitionKey: 'listPk',
      byCreationSortKey: 'listSk',
      activeIndex: 'Active',
      activePartitionKey: 'activePk',
    });
    expect([LIST_PARTITION, ACTIVE_PARTITION]).toEqual(['BATCHES', 'ACTIVE']);
  });

  it('keeps every key as documented', () => {
    const task = 'task-7';
    const shard = shardOf(task);
    expect(batchKey('b1')).toEqual({ pk: 'BATCH#b1', sk: 'META' });
    expect(shardPk('b1', 3)).toBe('BATCH#b1#S03');
    expect(resultKey('b1', 3, task)).toEqual({ pk: 'BATCH#b1#S03', sk: `RESULT#${task}` });
    expect(counterKey('b1', 99)).toEqual({ pk: 'BATCH#b1#S03', sk: 'COUNT#99' });
    expect(failedAttemptPrefix(task)).toBe(`FAILED_ATTEMPT#${task}#`);
    expect(failedAttemptKey('b1', task, 2)).toEqual({ pk: `BATCH#b1#S${two(shard)}`, sk: `FAILED_ATTEMPT#${task}#2` });
    expect(nextAttemptKey('b1', task)).toEqual({ pk: `BATCH#b1#S${two(shard)}`, sk: `NEXT_ATTEMPT#${task}` });
    expect(statsKey(4)).toEqual({ pk: 'STATS#S4', sk: 'TOTALS' });
    expect(countedKey('b1')).toEqual({ pk: 'STATS#BATCH#b1', sk: 'COUNTED' });
    expect(workersPk(5)).toBe('WORKERS#05');
    expect(workerSlotKey('env1-0')).toEqual({ pk: `WORKERS#${two(workerShardOf('env1-0'))}`, sk: 'SLOT#env1-0' });
    expect(configKey()).toEqual({ pk: 'FLEET', sk: 'CONFIG' });
    expect(capacityKey()).toEqual({ pk: 'FLEET', sk: 'CAPACITY' });
    expect(timelineKey(42)).toEqual({ pk: 'TIMELINE', sk: 'MINUTE#0000000042' });
    expect(queueKey(0, 'b1')).toEqual({ pk: 'QUEUE', sk: '1000000000000000#b1' });
    expect(uploadKey('u1')).toEqual({ pk: 'UPLOAD#u1', sk: 'UPLOAD' });
    expect(exportKey('b1')).toEqual({ pk: 'EXPORT#b1', sk: 'EXPORT' });
    expect(idempotencyKey('abc')).toEqual({ pk: 'IDEMPOTENCY#abc', sk: 'KEY' });
    expect(listSortKey(1_700_000_000_000, 'b1')).toBe('001700000000000#b1');
  });

  it('reads back the ids its keys hold', () => {
    expect(batchIdOfPk(batchKey('batch_01-a').pk)).toBe('batch_01-a');
    expect(batchIdOfPk(shardPk('batch_01-a', 31))).toBe('batch_01-a');
    expect(batchIdOfCountedPk(countedKey('batch_01-a').pk)).toBe('batch_01-a');
    expect(keyHashOfIdempotencyPk(idempotencyKey('f'.repeat(64)).pk)).toBe('f'.repeat(64));
  });

  it('accepts as a list sort key only what listSortKey makes of a valid batch id', () => {
    expect(isListSortKey(listSortKey(1, 'batch_01-a'))).toBe(true);
    expect(isListSortKey(listSortKey(1, 'x'.repeat(80)))).toBe(true);
    for (const bad of ['', '1#b1', `${'0'.repeat(15)}#`, `${'0'.repeat(15)}#${'x'.repeat(81)}`, `${'0'.repeat(15)}#a#S01`, `${'0'.repeat(15)}#a b`, `${'0'.repeat(16)}#b1`]) {
      expect(isListSortKey(bad), bad).toBe(false);
    }
  });
});
