import { describe, expect, it } from 'vitest';
import { SummaryAccumulator, nearestRank, summarizeBatch, type ResultPageReader } from '../../lambdas/domain/summary';

/** A paged reader over `n` synthetic results that records how it was called. */
function pagedReader(n: number, pageSize: number, make: (i: number) => { success: boolean; duration: number }) {
  const calls: (string | undefined)[] = [];
  let largestPage = 0;
  const read: ResultPageReader = async (cursor) => {
    calls.push(cursor);
    const start = cursor ? Number(cursor) : 0;
    const end = Math.min(n, start + pageSize);
    const items = Array.from({ length: end - start }, (_, k) => make(start + k));
    largestPage = Math.max(largestPage, items.length);
    return { items, nextCursor: end < n ? String(end) : null };
  };
  return { read, calls, largestPage: () => largestPage };
}

describe('nearestRank', () => {
  it('takes the value at rank ⌈p/100 × n⌉ of the sorted values', () => {
    // Arrange
    const sorted = [15, 20, 35, 40, 50];

    // Act / assert: the textbook example (ranks 2, 3, 4, 5)
    expect(nearestRank(sorted, 30)).toBe(20);
    expect(nearestRank(sorted, 40)).toBe(20);
    expect(nearestRank(sorted, 50)).toBe(35);
    expect(nearestRank(sorted, 95)).toBe(50);
    expect(nearestRank(sorted, 100)).toBe(50);
  });

  it('gives the smallest value for p = 0 and the only value for one value', () => {
    expect(nearestRank([3, 9], 0)).toBe(3);
    expect(nearestRank([7], 50)).toBe(7);
    expect(nearestRank([7], 95)).toBe(7);
  });

  it('never interpolates: the median of an even count is the lower middle value', () => {
    expect(nearestRank([10, 20, 30, 40], 50)).toBe(20);
  });

  it('is undefined without values and rejects p outside 0..100', () => {
    expect(nearestRank([], 50)).toBeUndefined();
    expect(() => nearestRank([1], -1)).toThrow(RangeError);
    expect(() => nearestRank([1], 101)).toThrow(RangeError);
    expect(() => nearestRank([1], Number.NaN)).toThrow(RangeError);
  });
});

describe('SummaryAccumulator', () => {
  it('counts successes and failures and averages durations exactly', () => {
    // Arrange
    const accumulator = new SummaryAccumulator();

    // Act
    for (const [success, duration] of [
      [true, 100],
      [false, 0],
      [true, 300],
      [true, 200],
    ] as const) {
      accumulator.add({ success, duration });
    }
    const summary = accumulator.summarize('b1');

    // Assert
    expect(summary).toEqual({
      batchId: 'b1',
      totalResults: 4,
      successCount: 3,
      failureCount: 1,
      averageDuration: 150,
      p50Duration: 100,
      p95Duration: 300,
    });
  });

  it('sorts durations numerically, not as strings', () => {
    const accumulator = new SummaryAccumulator();
    for (const duration of [9, 100, 20, 1000, 3]) accumulator.add({ success: true, duration });

    const summary = accumulator.summarize('b');

    // Sorted as strings (100, 1000, 20, 3, 9), p95 would be 9.
    expect(summary.p50Duration).toBe(20);
    expect(summary.p95Duration).toBe(1000);
  });

  it('reports null figures, not NaN, for a batch without results', () => {
    const summary = new SummaryAccumulator().summarize('empty');

    expect(summary).toEqual({
      batchId: 'empty',
      totalResults: 0,
      successCount: 0,
      failureCount: 0,
      averageDuration: null,
      p50Duration: null,
      p95Duration: null,
    });
    expect(JSON.parse(JSON.stringify(summary))).toEqual(summary);
  });

  it('counts a result without a usable duration at 0 ms', () => {
    const accumulator = new SummaryAccumulator();
    accumulator.add({ success: true, duration: Number.NaN });
    accumulator.add({ success: true, duration: 10 });

    expect(accumulator.summarize('b')).toMatchObject({ totalResults: 2, averageDuration: 5, p50Duration: 0, p95Duration: 10 });
  });
});

describe('summarizeBatch', () => {
  it('reads 100,000 results page by page and gets every figure exact', async () => {
    // Arrange: durations 1..100,000 ms in a scrambled order; every 10th task failed.
    const n = 100_000;
    const scrambled = (i: number) => ((i * 7919) % n) + 1; // 7919 is prime, so this is a permutation of 1..n
    const reader = pagedReader(n, 1000, (i) => ({ success: i % 10 !== 0, duration: scrambled(i) }));

    // Act
    const summary = await summarizeBatch('big', reader.read);

    // Assert
    expect(summary).toEqual({
      batchId: 'big',
      totalResults: n,
      successCount: 90_000,
      failureCount: 10_000,
      averageDuration: (n + 1) / 2,
      p50Duration: 50_000,
      p95Duration: 95_000,
    });
    // One pass, a page at a time, following each cursor once.
    expect(reader.calls).toHaveLength(100);
    expect(reader.calls[0]).toBeUndefined();
    expect(new Set(reader.calls).size).toBe(100);
    expect(reader.largestPage()).toBe(1000);
  });

  it('stops at the first page when it has no cursor', async () => {
    const reader = pagedReader(3, 1000, (i) => ({ success: true, duration: i }));

    const summary = await summarizeBatch('small', reader.read);

    expect(reader.calls).toEqual([undefined]);
    expect(summary.totalResults).toBe(3);
  });

  it('passes a read error through', async () => {
    const failing: ResultPageReader = async () => {
      throw new Error('throttled');
    };

    await expect(summarizeBatch('b', failing)).rejects.toThrow('throttled');
  });
});
