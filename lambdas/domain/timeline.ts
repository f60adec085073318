/**
 * GET /stats/timeline: tasks finished per minute over the last hour, from
 * one snapshot of the fleet's totals a minute. Pure: the snapshots come in.
 *
 * Why snapshots: a per-minute counter written by every result would add a
 * write per task (on AWS each worker records its own result). A snapshot is
 * one conditional PutItem a minute, fleet-wide, whatever the load: the
 * admission reconciler (on its one-minute schedule) or the first timeline
 * read of the minute writes it, from the totals GET /stats computes. A
 * minute's bucket is the difference between its snapshot and the next one
 * (or, for the current minute, the totals now). A minute without a snapshot
 * makes it and the minute before unknown (null), never guessed.
 */
import { ValidationError } from './errors';
import type { TimelineSnapshot } from './ports';

export const MINUTE_MS = 60_000;
/** Minutes a timeline covers at most (and by default). */
export const TIMELINE_MAX_MINUTES = 60;
/** Snapshots are kept a little longer than the longest timeline. */
export const TIMELINE_RETENTION_SECONDS = 2 * 3600;

export interface TimelineBucket {
  /** The minute's start (epoch ms). */
  start: number;
  /** Tasks that succeeded in that minute; null when it was not observed. */
  succeeded: number | null;
  /** Tasks that failed in that minute; null when it was not observed. */
  failed: number | null;
}

export interface Timeline {
  minuteMs: number;
  /** Oldest first; the last is the current minute, so far. */
  buckets: TimelineBucket[];
}

export const minuteOf = (epochMs: number) => Math.floor(epochMs / MINUTE_MS);

/** Validates `minutes` (1 to 60, default 60). */
export function parseTimelineMinutes(raw: string | undefined): number {
  if (raw === undefined || raw === '') return TIMELINE_MAX_MINUTES;
  if (!/^\d{1,3}$/.test(raw) || Number(raw) < 1 || Number(raw) > TIMELINE_MAX_MINUTES) {
    throw new ValidationError('minutes', `must be an integer from 1 to ${TIMELINE_MAX_MINUTES}`);
  }
  return Number(raw);
}

/**
 * Buckets for the `minutes` minutes ending with the current one. Totals only
 * grow, except when retry-failed clears a failure (the failed count goes
 * down by one before the new attempt counts): a drop shows as 0, never below.
 */
export function timelineOf(snapshots: readonly TimelineSnapshot[], now: Pick<TimelineSnapshot, 'completedTasks' | 'failedTasks'> & { at: number }, minutes: number): Timeline {
  const current = minuteOf(now.at);
  const byMinute = new Map(snapshots.map((snapshot) => [snapshot.minute, snapshot]));
  const buckets: TimelineBucket[] = [];
  for (let minute = current - minutes + 1; minute <= current; minute++) {
    const from = byMinute.get(minute);
    const to = minute === current ? now : byMinute.get(minute + 1);
    buckets.push({
      start: minute * MINUTE_MS,
      succeeded: from && to ? Math.max(0, to.completedTasks - from.completedTasks) : null,
      failed: from && to ? Math.max(0, to.failedTasks - from.failedTasks) : null,
    });
  }
  return { minuteMs: MINUTE_MS, buckets };
}
