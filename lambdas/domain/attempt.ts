/**
 * One attempt at one task: resolve its handler, run it against a deadline,
 * and classify the outcome. No AWS here; the worker Lambda records the result.
 */
import { LIMITS, maxBackoffMs, mayRetry } from './config';
import { TaskPermanentError, TaskTimeoutError, UnknownTaskTypeError, describeError } from './errors';
import type { TaskHandler } from '../tasks/types';
import type { TaskSettings, Task } from './types';

export type AttemptOutcome =
  | { kind: 'succeeded'; result: unknown; duration: number }
  /** Worth another attempt under the batch's settings. */
  | { kind: 'retry'; error: string; errorName: string; duration: number }
  /** Final: no attempt left, or the failure is permanent. */
  | { kind: 'failed'; error: string; errorName: string; duration: number };

export interface AttemptInput {
  batchId: string;
  task: Task;
  settings: Pick<TaskSettings, 'workerTimeout' | 'maxRetries' | 'retryFailedTasks'>;
  attempt: number;
  /** Aborts the attempt early, e.g. when the batch is cancelled. */
  signal?: AbortSignal;
  /** Epoch ms the attempt must end by whatever its timeout (a bounded child's end). */
  notAfter?: number;
}

const MAX_RESULT_BYTES = 256 * 1024;

function checkSerialisable(result: unknown): unknown {
  let json: string | undefined;
  try {
    json = JSON.stringify(result);
  } catch (error) {
    throw new TaskPermanentError(`result is not JSON-serialisable: ${describeError(error)}`);
  }
  if (json === undefined) return null;
  const bytes = Buffer.byteLength(json);
  if (bytes > MAX_RESULT_BYTES) {
    throw new TaskPermanentError(`result is ${bytes} bytes; at most ${MAX_RESULT_BYTES} are kept`);
  }
  // What is stored is what JSON makes of it (Dates become strings, undefined goes).
  return JSON.parse(json) as unknown;
}

/** Runs one attempt; never throws. */
export async function runAttempt(
  handlers: Readonly<Record<string, TaskHandler>>,
  input: AttemptInput,
  now: () => number = Date.now,
): Promise<AttemptOutcome> {
  const { task, settings, attempt } = input;
  const started = now();
  const ownTimeoutMs = Math.min(task.timeout ?? settings.workerTimeout, LIMITS.workerTimeoutMs);
  const budgetMs = input.notAfter === undefined ? Infinity : Math.max(0, input.notAfter - started);
  const timeoutMs = Math.min(ownTimeoutMs, budgetMs);
  const deadline = started + timeoutMs;
  const timeoutMessage =
    timeoutMs < ownTimeoutMs
      ? `timed out after ${timeoutMs} ms: the child execution's time is up (EXPRESS children end at 5 minutes; use STANDARD children for longer tasks)`
      : `timed out after ${timeoutMs} ms`;
  const controller = new AbortController();
  const onOuterAbort = () => controller.abort(input.signal?.reason);
  // A signal that fired before the attempt began never dispatches 'abort' again.
  if (input.signal?.aborted) onOuterAbort();
  else input.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    const handler = Object.hasOwn(handlers, task.type) ? handlers[task.type] : undefined;
    if (!handler) {
      throw new UnknownTaskTypeError(`unknown task type "${task.type}"; known types: ${Object.keys(handlers).sort().join(', ')}`);
    }
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new TaskTimeoutError(timeoutMessage);
        controller.abort(error);
        reject(error);
      }, timeoutMs);
    });
    const running = Promise.resolve().then(() =>
      handler(task.data, { taskId: task.id, batchId: input.batchId, attempt, deadline, signal: controller.signal }),
    );
    // A handler that ignores its signal keeps running, but the attempt ends at the deadline.
    running.catch(() => undefined);
    const result = checkSerialisable(await Promise.race([running, timedOut]));
    return { kind: 'succeeded', result, duration: now() - started };
  } catch (error) {
    const duration = now() - started;
    const message = describeError(error);
    const errorName = error instanceof Error ? error.name : 'NonErrorThrown';
    const permanent = error instanceof TaskPermanentError;
    // A retry must also fit, backoff included, in what is left of a bounded child.
    const retryFits = input.notAfter === undefined || now() + maxBackoffMs(attempt) + Math.min(ownTimeoutMs, 1000) < input.notAfter;
    if (!permanent && retryFits && mayRetry(settings, attempt)) return { kind: 'retry', error: message, errorName, duration };
    return { kind: 'failed', error: message, errorName, duration };
  } finally {
    if (timer) clearTimeout(timer);
    input.signal?.removeEventListener('abort', onOuterAbort);
  }
}
