/**
 * One attempt at one task: resolve its handler, run it against a deadline,
 * and classify the outcome. No AWS here; the worker Lambda records the result.
 */
import { LIMITS, maxBackoffMs, mayRetry } from './config';
import { TaskPermanentError, TaskTimeoutError, UnknownTaskTypeError, describeError } from './errors';
import { stringifyJson } from './payload-size';
import { ON_ERROR_HOOK_TIMEOUT_MS, type TaskContext, type TaskHandler, type TaskMiddleware } from './task-handler';
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
  /** Hooks around the handler (task-handler.ts); the worker passes `taskMiddleware`. @default [] */
  middleware?: readonly TaskMiddleware[];
}

const MAX_RESULT_BYTES = 256 * 1024;

function checkSerialisable(result: unknown): unknown {
  let json: string | undefined;
  try {
    json = stringifyJson(result);
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

/**
 * The handler wrapped in its middleware: `before` hooks in order, the
 * handler, the result's JSON check, then `after` hooks in reverse. After
 * hooks get a copy of the result, so they cannot alter what is stored.
 */
async function runWrapped(middleware: readonly TaskMiddleware[], task: Task, context: TaskContext, handler: TaskHandler): Promise<unknown> {
  for (const hooks of middleware) await hooks.before?.(task, context);
  const result = checkSerialisable(await handler(task.data, context));
  const afters = middleware.filter((hooks) => hooks.after !== undefined).reverse();
  for (const hooks of afters) await hooks.after?.(task, context, JSON.parse(JSON.stringify(result)) as unknown);
  return result;
}

/**
 * Lets each `onError` hook, innermost first, see the error; one that throws
 * replaces it. Each hook gets ON_ERROR_HOOK_TIMEOUT_MS: on a timeout the
 * deadline has already passed, and a hung reporter must not hold the attempt.
 */
async function runOnError(middleware: readonly TaskMiddleware[], task: Task, context: TaskContext, error: unknown): Promise<unknown> {
  let current = error;
  for (const hooks of [...middleware].reverse()) {
    if (!hooks.onError) continue;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => { resolve('late'); }, ON_ERROR_HOOK_TIMEOUT_MS);
    });
    try {
      const seen = current;
      const outcome = await Promise.race([Promise.resolve().then(() => hooks.onError?.(task, context, seen)), late]);
      if (outcome === 'late') {
        console.error(JSON.stringify({ level: 'WARN', message: `task middleware ${hooks.name ?? '(unnamed)'}: onError took over ${ON_ERROR_HOOK_TIMEOUT_MS} ms; left behind`, taskId: task.id }));
      }
    } catch (replacement) {
      current = replacement;
    } finally {
      clearTimeout(timer);
    }
  }
  return current;
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
  const onOuterAbort = () => { controller.abort(input.signal?.reason); };
  // A signal that fired before the attempt began never dispatches 'abort' again.
  if (input.signal?.aborted) onOuterAbort();
  else input.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const middleware = input.middleware ?? [];
  const context: TaskContext = { taskId: task.id, batchId: input.batchId, attempt, deadline, signal: controller.signal };
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
    // Hooks and handler share the deadline: a slow `before` or `after` times the attempt out too.
    const running = Promise.resolve().then(() => runWrapped(middleware, task, context, handler));
    // A handler that ignores its signal keeps running, but the attempt ends at the deadline.
    running.catch(() => undefined);
    const result = await Promise.race([running, timedOut]);
    return { kind: 'succeeded', result, duration: now() - started };
  } catch (thrown) {
    const duration = now() - started;
    if (timer) clearTimeout(timer);
    const error = middleware.length > 0 ? await runOnError(middleware, task, context, thrown) : thrown;
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
