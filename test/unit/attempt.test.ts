import { describe, expect, it, vi } from 'vitest';
import { runAttempt, type AttemptInput } from '../../lambdas/domain/attempt';
import { TaskPermanentError } from '../../lambdas/domain/errors';
import type { Task } from '../../lambdas/domain/types';
import { taskHandlers, type TaskContext, type TaskHandler } from '../../lambdas/tasks';

type Settings = AttemptInput['settings'];

const RETRYING: Settings = { workerTimeout: 5_000, maxRetries: 3, retryFailedTasks: true };

function input(task: Partial<Task> & Pick<Task, 'type'>, attempt = 0, settings: Settings = RETRYING): AttemptInput {
  return { batchId: 'batch-1', task: { id: 'task-1', data: null, ...task }, settings, attempt };
}

describe('runAttempt with the shipped task handlers', () => {
  it('echo succeeds with its data', async () => {
    // Arrange
    const data = { hello: 'world', n: [1, 2, 3] };

    // Act
    const outcome = await runAttempt(taskHandlers, input({ type: 'echo', data }));

    // Assert
    expect(outcome.kind).toBe('succeeded');
    expect(outcome).toMatchObject({ kind: 'succeeded', result: { hello: 'world', n: [1, 2, 3] } });
    expect(outcome.duration).toBeGreaterThanOrEqual(0);
  });

  it('stores what JSON makes of a result (Dates become strings, undefined becomes null)', async () => {
    const when = new Date('2024-01-02T03:04:05.000Z');

    const withDate = await runAttempt(taskHandlers, input({ type: 'echo', data: { when, gone: undefined } }));
    const empty = await runAttempt(taskHandlers, input({ type: 'echo', data: undefined }));

    expect(withDate).toMatchObject({ kind: 'succeeded', result: { when: '2024-01-02T03:04:05.000Z' } });
    expect(withDate.kind === 'succeeded' && Object.keys(withDate.result as object)).toEqual(['when']);
    expect(empty).toMatchObject({ kind: 'succeeded', result: null });
  });

  it('sleep with failTimes asks for a retry while attempt < failTimes, then succeeds with {sleptMs, value}', async () => {
    // Arrange
    const data = { ms: 0, failTimes: 2, value: 'done' };

    // Act
    const first = await runAttempt(taskHandlers, input({ type: 'sleep', data }, 0));
    const second = await runAttempt(taskHandlers, input({ type: 'sleep', data }, 1));
    const third = await runAttempt(taskHandlers, input({ type: 'sleep', data }, 2));

    // Assert
    expect(first).toMatchObject({ kind: 'retry', errorName: 'TaskRetryableError', error: 'sleep: planned failure on attempt 1 of 2' });
    expect(second).toMatchObject({ kind: 'retry', errorName: 'TaskRetryableError', error: 'sleep: planned failure on attempt 2 of 2' });
    expect(third).toEqual({ kind: 'succeeded', result: { sleptMs: 0, value: 'done' }, duration: expect.any(Number) });
  });

  it('sleep reports roughly how long it slept and defaults value to null', async () => {
    // Fake timers: the clock the handler reads moves only when the test moves it, so the
    // bounds below hold on a machine of any load (with a real clock the upper one was a time budget).
    vi.useFakeTimers();
    let outcome: Awaited<ReturnType<typeof runAttempt>>;
    try {
      const attempt = runAttempt(taskHandlers, input({ type: 'sleep', data: { ms: 30 } }));
      await vi.advanceTimersByTimeAsync(30);
      outcome = await attempt;
    } finally {
      vi.useRealTimers();
    }

    expect(outcome.kind).toBe('succeeded');
    const result = outcome.kind === 'succeeded' ? (outcome.result as { sleptMs: number; value: unknown }) : undefined;
    expect(result?.value).toBeNull();
    expect(result?.sleptMs).toBeGreaterThanOrEqual(25);
    expect(result?.sleptMs).toBeLessThan(2_000);
  });

  it('sleep fails for good once its planned failures outlast the retries', async () => {
    // Arrange: 5 planned failures, only 2 retries.
    const settings: Settings = { workerTimeout: 5_000, maxRetries: 2, retryFailedTasks: true };
    const data = { ms: 0, failTimes: 5 };

    // Act
    const beforeLast = await runAttempt(taskHandlers, input({ type: 'sleep', data }, 1, settings));
    const last = await runAttempt(taskHandlers, input({ type: 'sleep', data }, 2, settings));

    // Assert
    expect(beforeLast.kind).toBe('retry');
    expect(last).toMatchObject({ kind: 'failed', errorName: 'TaskRetryableError', error: 'sleep: planned failure on attempt 3 of 5' });
  });

  it('sleep with invalid data fails permanently, even with retries left', async () => {
    const outcome = await runAttempt(taskHandlers, input({ type: 'sleep', data: { ms: -1 } }, 0));

    expect(outcome).toMatchObject({ kind: 'failed', errorName: 'TaskPermanentError' });
    expect(outcome.kind !== 'succeeded' && outcome.error).toContain('data.ms must be a non-negative number');
  });

  it('fail asks for a retry, then fails on the last attempt with its message preserved', async () => {
    // Arrange
    const data = { message: 'disk on fire' };

    // Act
    const early = await runAttempt(taskHandlers, input({ type: 'fail', data }, 0));
    const last = await runAttempt(taskHandlers, input({ type: 'fail', data }, RETRYING.maxRetries));

    // Assert
    expect(early).toMatchObject({ kind: 'retry', error: 'disk on fire', errorName: 'Error' });
    expect(last).toMatchObject({ kind: 'failed', error: 'disk on fire', errorName: 'Error' });
  });

  it('fail without a message uses its default one', async () => {
    const outcome = await runAttempt(taskHandlers, input({ type: 'fail', data: null }, RETRYING.maxRetries));

    expect(outcome).toMatchObject({ kind: 'failed', error: 'fail: task failed as asked' });
  });

  it('fails at once when retryFailedTasks is false', async () => {
    const settings: Settings = { workerTimeout: 5_000, maxRetries: 3, retryFailedTasks: false };

    const outcome = await runAttempt(taskHandlers, input({ type: 'fail', data: { message: 'nope' } }, 0, settings));

    expect(outcome).toMatchObject({ kind: 'failed', error: 'nope' });
  });

  it('fails an unknown type permanently even with retries left, naming the type', async () => {
    const outcome = await runAttempt(taskHandlers, input({ type: 'transcode' }, 0));

    expect(outcome.kind).toBe('failed');
    expect(outcome).toMatchObject({ errorName: 'UnknownTaskTypeError' });
    expect(outcome.kind !== 'succeeded' && outcome.error).toContain('"transcode"');
    expect(outcome.kind !== 'succeeded' && outcome.error).toContain('echo, fail, process, resize, sleep');
  });

  it.each(['constructor', 'toString', 'hasOwnProperty'])('does not resolve the inherited property %s as a handler', async (type) => {
    const outcome = await runAttempt(taskHandlers, input({ type }, 0));

    expect(outcome).toMatchObject({ kind: 'failed', errorName: 'UnknownTaskTypeError' });
  });
});

describe('runAttempt deadlines', () => {
  it('times out at task.timeout, says so, and aborts the handler signal', async () => {
    // Arrange: wrap the real sleep to see the signal it is given, and whether it slept its 2 s out.
    let seen: AbortSignal | undefined;
    let sleptOut = false;
    const handlers: Record<string, TaskHandler> = {
      sleep: (data, context) => {
        seen = context.signal;
        const sleeping = Promise.resolve(taskHandlers.sleep!(data, context));
        sleeping.then(() => (sleptOut = true), () => undefined);
        return sleeping;
      },
    };

    // Act
    const outcome = await runAttempt(handlers, input({ type: 'sleep', data: { ms: 2_000 }, timeout: 20 }, 0));

    // Assert
    expect(outcome.kind).toBe('retry');
    expect(outcome).toMatchObject({ errorName: 'TaskTimeoutError' });
    expect(outcome.kind !== 'succeeded' && outcome.error).toContain('timed out');
    expect(outcome.kind !== 'succeeded' && outcome.error).toContain('20 ms');
    expect(seen?.aborted).toBe(true);
    // It ended at the deadline, not when the handler's sleep would have.
    expect(sleptOut).toBe(false);
  });

  it('times out at workerTimeout when the task sets none, and fails on the last attempt', async () => {
    const settings: Settings = { workerTimeout: 25, maxRetries: 1, retryFailedTasks: true };

    const outcome = await runAttempt(taskHandlers, input({ type: 'sleep', data: { ms: 2_000 } }, 1, settings));

    expect(outcome).toMatchObject({ kind: 'failed', errorName: 'TaskTimeoutError', error: 'timed out after 25 ms' });
  });

  it('ends the attempt at the deadline even if the handler ignores its signal', async () => {
    // Arrange: a handler that never settles.
    const handlers: Record<string, TaskHandler> = { hang: () => new Promise<never>(() => undefined) };

    // Act
    const outcome = await runAttempt(handlers, input({ type: 'hang', timeout: 20 }, 0));

    // Assert
    expect(outcome).toMatchObject({ kind: 'retry', errorName: 'TaskTimeoutError' });
  });

  it('passes task id, batch id, attempt and deadline to the handler', async () => {
    // Arrange
    let context: TaskContext | undefined;
    const handlers: Record<string, TaskHandler> = {
      spy: (_data, ctx) => {
        context = ctx;
        return 'ok';
      },
    };
    const now = () => 1_000_000;

    // Act
    await runAttempt(handlers, input({ type: 'spy', timeout: 700 }, 2), now);

    // Assert
    expect(context).toMatchObject({ taskId: 'task-1', batchId: 'batch-1', attempt: 2, deadline: 1_000_700 });
    expect(context?.signal.aborted).toBe(false);
  });

  it('measures duration with the given clock', async () => {
    const times = [5_000, 5_250];
    const now = () => times.shift() ?? 9_999;

    const outcome = await runAttempt(taskHandlers, input({ type: 'echo', data: 1 }), now);

    expect(outcome.duration).toBe(250);
  });

  it('forwards an outer abort (e.g. a cancelled batch) to the handler signal', async () => {
    // Arrange
    const outer = new AbortController();
    let seen: AbortSignal | undefined;
    const handlers: Record<string, TaskHandler> = {
      wait: (_data, ctx) => {
        seen = ctx.signal;
        return new Promise((_, reject) => { ctx.signal.addEventListener('abort', () => { reject(new Error('stopped')); }, { once: true }); });
      },
    };
    const attempt = runAttempt(handlers, { ...input({ type: 'wait', timeout: 5_000 }, 0), signal: outer.signal });

    // Act
    await Promise.resolve();
    await new Promise((resolve) => setTimeout(resolve, 5));
    outer.abort(new Error('cancelled'));
    const outcome = await attempt;

    // Assert
    expect(seen?.aborted).toBe(true);
    expect(outcome).toMatchObject({ error: 'stopped' });
  });
});

describe('runAttempt with odd handlers', () => {
  it('turns a thrown string into its own text', async () => {
    const handlers: Record<string, TaskHandler> = {
      odd: () => {
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- what a handler that throws a non-Error gets
        throw 'plain string failure';
      },
    };

    const outcome = await runAttempt(handlers, input({ type: 'odd' }, 0));

    expect(outcome).toMatchObject({ kind: 'retry', error: 'plain string failure', errorName: 'NonErrorThrown' });
  });

  it('turns a thrown object into readable JSON', async () => {
    const handlers: Record<string, TaskHandler> = {
      odd: () => {
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- what a handler that throws a non-Error gets
        throw { code: 42, reason: 'quota' };
      },
    };

    const outcome = await runAttempt(handlers, input({ type: 'odd' }, RETRYING.maxRetries));

    expect(outcome).toMatchObject({ kind: 'failed', errorName: 'NonErrorThrown' });
    expect(outcome.kind !== 'succeeded' && outcome.error).toBe('Non-Error thrown: {"code":42,"reason":"quota"}');
    expect(outcome.kind !== 'succeeded' && outcome.error).not.toContain('[object Object]');
  });

  it('describes a rejected promise with a non-Error value that JSON cannot encode', async () => {
    const circular: Record<string, unknown> = { name: 'loop' };
    circular.self = circular;
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- what a handler that rejects with a non-Error gets
    const handlers: Record<string, TaskHandler> = { odd: () => Promise.reject(circular) };

    const outcome = await runAttempt(handlers, input({ type: 'odd' }, 0));

    expect(outcome.kind).toBe('retry');
    expect(outcome.kind !== 'succeeded' && outcome.error).toMatch(/^Non-Error thrown: /);
  });

  it('uses the error name when an Error has no message', async () => {
    const handlers: Record<string, TaskHandler> = {
      odd: () => {
        throw new RangeError();
      },
    };

    const outcome = await runAttempt(handlers, input({ type: 'odd' }, 0));

    expect(outcome).toMatchObject({ kind: 'retry', error: 'RangeError', errorName: 'RangeError' });
  });

  it('honours a TaskPermanentError from a custom handler even with retries left', async () => {
    const handlers: Record<string, TaskHandler> = {
      strict: () => {
        throw new TaskPermanentError('bad input file');
      },
    };

    const outcome = await runAttempt(handlers, input({ type: 'strict' }, 0));

    expect(outcome).toMatchObject({ kind: 'failed', error: 'bad input file', errorName: 'TaskPermanentError' });
  });

  it('fails permanently on a BigInt result', async () => {
    const handlers: Record<string, TaskHandler> = { big: () => ({ total: 10n }) };

    const outcome = await runAttempt(handlers, input({ type: 'big' }, 0));

    expect(outcome).toMatchObject({ kind: 'failed', errorName: 'TaskPermanentError' });
    expect(outcome.kind !== 'succeeded' && outcome.error).toContain('not JSON-serialisable');
  });

  it('fails permanently on a circular result', async () => {
    const handlers: Record<string, TaskHandler> = {
      loop: () => {
        const result: Record<string, unknown> = {};
        result.me = result;
        return result;
      },
    };

    const outcome = await runAttempt(handlers, input({ type: 'loop' }, 0));

    expect(outcome).toMatchObject({ kind: 'failed', errorName: 'TaskPermanentError' });
    expect(outcome.kind !== 'succeeded' && outcome.error).toContain('not JSON-serialisable');
  });

  it('fails permanently on a result larger than 256 KiB', async () => {
    const handlers: Record<string, TaskHandler> = { huge: () => 'x'.repeat(300 * 1024) };

    const outcome = await runAttempt(handlers, input({ type: 'huge' }, 0));

    expect(outcome).toMatchObject({ kind: 'failed', errorName: 'TaskPermanentError' });
    expect(outcome.kind !== 'succeeded' && outcome.error).toContain('at most 262144 are kept');
  });
});
