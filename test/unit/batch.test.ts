import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { COUNTER_SHARDS, RESULT_SHARDS, TASKS_PER_COUNTER_SHARD, counterShardsFor, finalStatusOf, randomCounterShard, orderByPriority, progressOf, shardOf } from '../../lambdas/domain/batch';
import type { Task } from '../../lambdas/domain/types';

const task = (id: string, priority?: number): Task => ({ id, type: 'echo', data: null, ...(priority === undefined ? {} : { priority }) });

describe('orderByPriority', () => {
  it('puts higher priority first', () => {
    // Arrange
    const tasks = [task('low', 1), task('high', 10), task('mid', 5)];

    // Act
    const ordered = orderByPriority(tasks);

    // Assert
    expect(ordered.map((t) => t.id)).toEqual(['high', 'mid', 'low']);
  });

  it('keeps submission order among equal priorities (stable)', () => {
    const tasks = [task('a', 1), task('b', 2), task('c', 1), task('d', 2), task('e', 1)];

    const ordered = orderByPriority(tasks);

    expect(ordered.map((t) => t.id)).toEqual(['b', 'd', 'a', 'c', 'e']);
  });

  it('treats a missing priority as 0, between positive and negative ones', () => {
    const tasks = [task('none-1'), task('neg', -3), task('pos', 2), task('none-2')];

    const ordered = orderByPriority(tasks);

    expect(ordered.map((t) => t.id)).toEqual(['pos', 'none-1', 'none-2', 'neg']);
  });

  it('leaves a batch without priorities in submission order', () => {
    const ids = Array.from({ length: 50 }, (_, i) => `t${i}`);

    const ordered = orderByPriority(ids.map((id) => task(id)));

    expect(ordered.map((t) => t.id)).toEqual(ids);
  });

  it('does not reorder its input', () => {
    const tasks = [task('a', 1), task('b', 2)];

    orderByPriority(tasks);

    expect(tasks.map((t) => t.id)).toEqual(['a', 'b']);
  });
});

describe('progressOf', () => {
  it('is the share of tasks finished, failed ones included', () => {
    expect(progressOf(10, 3, 2)).toBe(0.5);
    expect(progressOf(4, 1, 0)).toBe(0.25);
    expect(progressOf(4, 0, 1)).toBe(0.25);
  });

  it('is 0 before anything finished and 1 when everything did', () => {
    expect(progressOf(8, 0, 0)).toBe(0);
    expect(progressOf(8, 6, 2)).toBe(1);
  });

  it('is 0 for a batch without tasks (no division by zero)', () => {
    expect(progressOf(0, 0, 0)).toBe(0);
  });

  it('is clamped to 0..1 when counters are inconsistent', () => {
    expect(progressOf(2, 3, 1)).toBe(1);
    expect(progressOf(2, -5, 0)).toBe(0);
  });
});

describe('finalStatusOf', () => {
  it('is completed when every task succeeded', () => {
    expect(finalStatusOf(3, 3)).toBe('completed');
  });

  it('is failed when no task succeeded', () => {
    expect(finalStatusOf(3, 0)).toBe('failed');
  });

  it('is partial when some but not all tasks succeeded', () => {
    expect(finalStatusOf(3, 1)).toBe('partial');
    expect(finalStatusOf(3, 2)).toBe('partial');
  });

  it('is completed for a one-task batch that succeeded and failed for one that did not', () => {
    expect(finalStatusOf(1, 1)).toBe('completed');
    expect(finalStatusOf(1, 0)).toBe('failed');
  });
});

describe('shardOf', () => {
  it('returns an integer in 0..RESULT_SHARDS-1', () => {
    // Arrange
    const ids = Array.from({ length: 2000 }, (_, i) => `task-${i}`);

    // Act
    const shards = ids.map(shardOf);

    // Assert
    for (const shard of shards) {
      expect(Number.isInteger(shard)).toBe(true);
      expect(shard).toBeGreaterThanOrEqual(0);
      expect(shard).toBeLessThan(RESULT_SHARDS);
    }
  });

  it('spreads ids over every shard', () => {
    const ids = Array.from({ length: 2000 }, (_, i) => `task-${i}`);

    const used = new Set(ids.map(shardOf));

    expect(used.size).toBe(RESULT_SHARDS);
  });

  it('is stable: the same id always maps to the same shard', () => {
    const ids = ['a', 'task-1', 'ünïcødé', 'x'.repeat(256)];

    const first = ids.map(shardOf);
    const second = ids.map(shardOf);

    expect(second).toEqual(first);
  });

  it('keeps the shard of known ids across releases (stored results are keyed by it)', () => {
    // Pinned: changing the hash would orphan results stored under the old shards.
    expect(RESULT_SHARDS).toBe(32);
    expect(shardOf('task-1')).toBe(4);
    expect(shardOf('a')).toBe(23);
    expect(shardOf('0')).toBe(6);
    expect(shardOf('batch-item-42')).toBe(10);
  });
});

describe('randomCounterShard', () => {
  it('maps the whole range of the random source onto 0..COUNTER_SHARDS-1', () => {
    expect(randomCounterShard(COUNTER_SHARDS, () => 0)).toBe(0);
    expect(randomCounterShard(COUNTER_SHARDS, () => 0.999_999_999)).toBe(COUNTER_SHARDS - 1);
    expect(randomCounterShard(COUNTER_SHARDS, () => 0.5)).toBe(COUNTER_SHARDS / 2);
    const used = new Set(Array.from({ length: 20_000 }, () => randomCounterShard()));
    expect([...used].every((shard) => Number.isInteger(shard) && shard >= 0 && shard < COUNTER_SHARDS)).toBe(true);
    expect(used.size).toBe(COUNTER_SHARDS);
  });

  it("stays inside a batch's own, smaller layout", () => {
    expect(randomCounterShard(1, () => 0.999_999_999)).toBe(0);
    const used = new Set(Array.from({ length: 2_000 }, () => randomCounterShard(3)));
    expect([...used].sort()).toEqual([0, 1, 2]);
  });
});

describe('counterShardsFor', () => {
  it('gives a batch one counter per 250 tasks, at least one and at most COUNTER_SHARDS', () => {
    // A counter takes at most TASKS_PER_COUNTER_SHARD outcomes over the batch's life, a quarter of the
    // 1,000 writes/s a DynamoDB partition takes even if all landed in one second
    // (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html).
    expect(TASKS_PER_COUNTER_SHARD).toBe(250);
    expect(counterShardsFor(0)).toBe(1);
    expect(counterShardsFor(1)).toBe(1);
    expect(counterShardsFor(250)).toBe(1);
    expect(counterShardsFor(251)).toBe(2);
    expect(counterShardsFor(10_000)).toBe(40);
    expect(counterShardsFor(32_000)).toBe(COUNTER_SHARDS);
    expect(counterShardsFor(1_000_000)).toBe(COUNTER_SHARDS);
  });
});

describe('shardOf compatibility', () => {
  it('keeps the result shard every earlier version gave a task (sha1 of the id, modulo 32)', () => {
    for (const id of ['t0', 'task-1', 'img_42', 'x'.repeat(256)]) {
      const digest = createHash('sha1').update(id).digest();
      expect(shardOf(id)).toBe(digest.readUInt32BE(0) % 32);
    }
  });
});
