/** The example task types Fleet ships: `echo`, `sleep` and `fail`. */
import { TaskPermanentError, TaskRetryableError } from '../domain/errors';
import type { TaskHandler } from '../domain/task-handler';

/** Returns its data unchanged. */
export const echo: TaskHandler = (data) => data;

export interface SleepData {
  ms: number;
  /** Throw a retryable error on each of the first `failTimes` attempts. */
  failTimes?: number;
  value?: unknown;
}

function parseSleepData(data: unknown): SleepData {
  const d = (data ?? {}) as Partial<SleepData>;
  if (typeof d.ms !== 'number' || !Number.isFinite(d.ms) || d.ms < 0) {
    throw new TaskPermanentError('sleep: data.ms must be a non-negative number');
  }
  if (d.failTimes !== undefined && (!Number.isInteger(d.failTimes) || d.failTimes < 0)) {
    throw new TaskPermanentError('sleep: data.failTimes must be a non-negative integer');
  }
  return { ms: d.ms, failTimes: d.failTimes, value: d.value };
}

/** Waits `ms` (aborting early if the signal fires), failing its first `failTimes` attempts. */
export const sleep: TaskHandler<unknown, { sleptMs: number; value: unknown }> = async (data, context) => {
  const { ms, failTimes = 0, value } = parseSleepData(data);
  const started = Date.now();
  if (ms > 0) {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, ms);
      context.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          reject(context.signal.reason instanceof Error ? context.signal.reason : new Error('aborted'));
        },
        { once: true },
      );
    });
  }
  if (context.attempt < failTimes) {
    throw new TaskRetryableError(`sleep: planned failure on attempt ${context.attempt + 1} of ${failTimes}`);
  }
  return { sleptMs: ms > 0 ? Date.now() - started : 0, value: value ?? null };
};

/** Always throws `data.message`. */
export const fail: TaskHandler = (data) => {
  const message = (data as { message?: unknown } | null | undefined)?.message;
  throw new Error(typeof message === 'string' && message ? message : 'fail: task failed as asked');
};
