/**
 * The Coordinator's `getSummary()` for one batch: how many results, how many
 * succeeded, and the average, median and 95th-percentile duration.
 *
 * Built for batches of 100,000 tasks: results are read a page at a time and
 * only their durations are kept, as numbers in a Float64Array (800 KB for
 * 100,000), never the results themselves.
 */
import type { Page } from './ports';
import type { TaskResult } from './types';

export interface BatchSummary {
  batchId: string;
  /** Results recorded so far: one per finished task. */
  totalResults: number;
  successCount: number;
  failureCount: number;
  /** Arithmetic mean of `TaskResult.duration` (ms), unrounded; null without results. */
  averageDuration: number | null;
  /** Median duration (ms), nearest-rank; null without results. */
  p50Duration: number | null;
  /** 95th-percentile duration (ms), nearest-rank; null without results. */
  p95Duration: number | null;
}

/**
 * The nearest-rank percentile of values sorted in ascending order: the
 * smallest value such that at least p% of the values are at or below it, i.e.
 * the value at 1-based rank ⌈p/100 × n⌉ (rank 1 for p = 0). It is always one
 * of the observed values, never an interpolation. Undefined for no values.
 */
export function nearestRank(sortedAscending: ArrayLike<number>, p: number): number | undefined {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be from 0 to 100, got ${p}`);
  const n = sortedAscending.length;
  if (n === 0) return undefined;
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  return sortedAscending[rank - 1];
}

/** Folds results into a summary one at a time; keeps counts, a running sum and the durations. */
export class SummaryAccumulator {
  private durations = new Float64Array(1024);
  private count = 0;
  private successes = 0;
  private sum = 0;

  add(result: Pick<TaskResult, 'success' | 'duration'>): void {
    // A result without a usable duration (e.g. hand-written data) counts, at 0 ms.
    const duration = Number.isFinite(result.duration) ? result.duration : 0;
    if (this.count === this.durations.length) {
      const grown = new Float64Array(this.durations.length * 2);
      grown.set(this.durations);
      this.durations = grown;
    }
    this.durations[this.count++] = duration;
    this.sum += duration;
    if (result.success) this.successes++;
  }

  summarize(batchId: string): BatchSummary {
    // TypedArray sort is numeric, unlike Array.prototype.sort's default.
    const sorted = this.durations.subarray(0, this.count).sort();
    const empty = this.count === 0;
    return {
      batchId,
      totalResults: this.count,
      successCount: this.successes,
      failureCount: this.count - this.successes,
      averageDuration: empty ? null : this.sum / this.count,
      p50Duration: nearestRank(sorted, 50) ?? null,
      p95Duration: nearestRank(sorted, 95) ?? null,
    };
  }
}

/** Reads one page of a batch's results; the first page has no cursor. */
export type ResultPageReader = (cursor: string | undefined) => Promise<Page<Pick<TaskResult, 'success' | 'duration'>>>;

/**
 * Summarizes a batch by reading every page of its results once. Memory grows
 * with one number per result, plus one page.
 */
export async function summarizeBatch(batchId: string, readPage: ResultPageReader): Promise<BatchSummary> {
  const accumulator = new SummaryAccumulator();
  let cursor: string | undefined;
  do {
    const page = await readPage(cursor);
    for (const result of page.items) accumulator.add(result);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return accumulator.summarize(batchId);
}
