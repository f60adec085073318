/**
 * Worker middleware (lambdas/domain/task-handler.ts) as runAttempt applies it:
 * hook order, what onError sees, hooks that throw, the shared deadline, and
 * the error-reporting use the seed's executeTaskOnWorker override showed.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runAttempt, type AttemptInput } from '../../lambdas/domain/attempt';
import { TaskPermanentError } from '../../lambdas/domain/errors';
import type { Task } from '../../lambdas/domain/types';
import { taskHandlers, taskMiddleware, type TaskHandler, type TaskMiddleware } from '../../lambdas/tasks';
import { ON_ERROR_HOOK_TIMEOUT_MS } from '../../lambdas/domain/task-handler';

const SETTINGS: AttemptInput['settings'] = { workerTimeout: 5_000, maxRetries: 3, retryFailedTasks: true };

function input(task: Partial<Task> & Pick<Task, 'type'>, middleware: readonly TaskMiddleware[], attempt = 0): AttemptInput {
  return { batchId: 'batch-1', task: { id: 'task-1', data: null, ...task }, settings: SETTINGS, attempt, middleware };
}

/** A middleware that appends `<label>.<hook>` to `log` for each hook it runs. */
function recorder(label: string, log: string[]): TaskMiddleware {
  return {
    name: label,
    before: () => void log.push(`${label}.before`),
    after: () => void log.push(`${label}.after`),
    onError: () => void log.push(`${label}.onError`),
  };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the registry', () => {
  it('is empty by default', () => {
    expect(taskMiddleware).toEqual([]);
  });
});

describe('hook order', () => {
  it('runs before hooks in order, the handler, then after hooks in reverse', async () => {
    const log: string[] = [];
    const handlers: Record<string, TaskHandler> = {
      work: () => {
        log.push('handler');
        return { ok: true };
      },
    };

    const outcome = await runAttempt(handlers, input({ type: 'work' }, [recorder('outer', log), recorder('inner', log)]));

    expect(outcome).toMatchObject({ kind: 'succeeded', result: { ok: true } });
    expect(log).toEqual(['outer.before', 'inner.before', 'handler', 'inner.after', 'outer.after']);
  });

  it('on a handler error runs onError in reverse and no after hook', async () => {
    const log: string[] = [];

    const outcome = await runAttempt(taskHandlers, input({ type: 'fail', data: { message: 'boom' } }, [recorder('outer', log), recorder('inner', log)]));

    expect(outcome).toMatchObject({ kind: 'retry', error: 'boom' });
    expect(log).toEqual(['outer.before', 'inner.before', 'inner.onError', 'outer.onError']);
  });

  it('gives hooks the task and the context the handler gets', async () => {
    let handlerContext: unknown;
    const handlers: Record<string, TaskHandler> = {
      work: (_data, context) => {
        handlerContext = context;
        return null;
      },
    };
    const before = vi.fn();

    await runAttempt(handlers, input({ type: 'work', data: { n: 1 } }, [{ before }], 2));

    expect(before).toHaveBeenCalledTimes(1);
    const [task, context] = before.mock.calls[0] as [Task, unknown];
    expect(task).toMatchObject({ id: 'task-1', type: 'work', data: { n: 1 } });
    expect(context).toBe(handlerContext);
    expect(context).toMatchObject({ taskId: 'task-1', batchId: 'batch-1', attempt: 2 });
  });
});

describe('what the hooks can change', () => {
  it('after sees the result but cannot alter what is stored', async () => {
    const seen: unknown[] = [];
    const mutator: TaskMiddleware = {
      after: (_task, _context, result) => {
        seen.push(structuredClone(result));
        (result as { value: number }).value = -1;
        return undefined;
      },
    };

    const outcome = await runAttempt(taskHandlers, input({ type: 'echo', data: { value: 7 } }, [mutator]));

    expect(seen).toEqual([{ value: 7 }]);
    expect(outcome).toMatchObject({ kind: 'succeeded', result: { value: 7 } });
  });

  it('onError sees the handler error; returning leaves it as it was', async () => {
    const errors: unknown[] = [];

    const outcome = await runAttempt(taskHandlers, input({ type: 'fail', data: { message: 'disk full' } }, [{ onError: (_t, _c, error) => void errors.push(error) }]));

    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(Error);
    expect((errors[0] as Error).message).toBe('disk full');
    expect(outcome).toMatchObject({ kind: 'retry', error: 'disk full', errorName: 'Error' });
  });

  it('onError can throw to replace the error, e.g. a TaskPermanentError that stops retries', async () => {
    const seenByOuter: unknown[] = [];
    const outer: TaskMiddleware = { onError: (_t, _c, error) => void seenByOuter.push(error) };
    const inner: TaskMiddleware = {
      onError: (_t, _c, error) => {
        throw new TaskPermanentError(`not worth retrying: ${(error as Error).message}`);
      },
    };

    const outcome = await runAttempt(taskHandlers, input({ type: 'fail', data: { message: 'bad input' } }, [outer, inner]));

    expect(outcome).toMatchObject({ kind: 'failed', errorName: 'TaskPermanentError', error: 'not worth retrying: bad input' });
    expect(seenByOuter[0]).toBeInstanceOf(TaskPermanentError);
  });

  it('an onError that never settles is left behind after its time, and the error stands', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const started = Date.now();

    const outcome = await runAttempt(taskHandlers, input({ type: 'fail', data: { message: 'x' } }, [{ name: 'hung', onError: () => new Promise<never>(() => undefined) }]));

    // The hook never settles: that the attempt returned at all is what shows it was left behind.
    expect(outcome).toMatchObject({ kind: 'retry', error: 'x' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(ON_ERROR_HOOK_TIMEOUT_MS - 50);
    expect(console.error).toHaveBeenCalledWith(expect.stringContaining('task middleware hung: onError took over'));
  });
});

describe('a hook that throws', () => {
  it('before: fails the attempt like a handler error, the handler never runs, onError sees it', async () => {
    const handler = vi.fn(() => 'ran');
    const errors: string[] = [];
    const guard: TaskMiddleware = {
      before: () => {
        throw new Error('quota exceeded');
      },
      onError: (_t, _c, error) => void errors.push((error as Error).message),
    };

    const outcome = await runAttempt({ work: handler }, input({ type: 'work' }, [guard]));

    expect(outcome).toMatchObject({ kind: 'retry', error: 'quota exceeded' });
    expect(handler).not.toHaveBeenCalled();
    expect(errors).toEqual(['quota exceeded']);
  });

  it('before: a TaskPermanentError fails the task at once', async () => {
    const guard: TaskMiddleware = {
      before: () => {
        throw new TaskPermanentError('tenant disabled');
      },
    };

    const outcome = await runAttempt(taskHandlers, input({ type: 'echo' }, [guard]));

    expect(outcome).toMatchObject({ kind: 'failed', errorName: 'TaskPermanentError', error: 'tenant disabled' });
  });

  it('after: fails the attempt although the handler succeeded', async () => {
    const check: TaskMiddleware = {
      after: (_t, _c, result) => {
        if ((result as { value?: number }).value === 0) throw new TaskPermanentError('empty output');
      },
    };

    const outcome = await runAttempt(taskHandlers, input({ type: 'echo', data: { value: 0 } }, [check]));

    expect(outcome).toMatchObject({ kind: 'failed', error: 'empty output' });
  });
});

describe('the deadline', () => {
  it('still ends an attempt whose handler hangs, and onError sees the TaskTimeoutError', async () => {
    const errors: unknown[] = [];
    const handlers: Record<string, TaskHandler> = { hang: () => new Promise<never>(() => undefined) };

    // The handler never settles: the attempt returning at all is the deadline at work.
    const outcome = await runAttempt(handlers, input({ type: 'hang', timeout: 30 }, [{ onError: (_t, _c, error) => void errors.push(error) }]));

    expect(outcome).toMatchObject({ kind: 'retry', errorName: 'TaskTimeoutError', error: 'timed out after 30 ms' });
    expect((errors[0] as Error).name).toBe('TaskTimeoutError');
  });

  it('covers the hooks too: a slow before hook times the attempt out', async () => {
    let handlerRan = false;
    const slow: TaskMiddleware = { before: () => new Promise((resolve) => setTimeout(resolve, 500)) };
    const handlers: Record<string, TaskHandler> = {
      work: () => {
        handlerRan = true;
        return null;
      },
    };

    const outcome = await runAttempt(handlers, input({ type: 'work', timeout: 30 }, [slow]));

    expect(outcome).toMatchObject({ kind: 'retry', errorName: 'TaskTimeoutError' });
    expect(handlerRan).toBe(false);
  });

  it('aborts the signal hooks share with the handler at the deadline', async () => {
    let signal: AbortSignal | undefined;
    const slowAfter: TaskMiddleware = {
      after: (_t, context) => {
        signal = context.signal;
        return new Promise((resolve) => setTimeout(resolve, 500));
      },
    };

    const outcome = await runAttempt(taskHandlers, input({ type: 'echo', data: 1, timeout: 30 }, [slowAfter]));

    expect(outcome).toMatchObject({ kind: 'retry', errorName: 'TaskTimeoutError' });
    expect(signal?.aborted).toBe(true);
  });
});

describe('error reporting, the seed executeTaskOnWorker example as middleware', () => {
  it('posts each failure to a monitoring endpoint and keeps the error', async () => {
    // Arrange: the seed's logError, with the endpoint as a fake fetch.
    const posted: { url: string; body: unknown }[] = [];
    const fakeFetch = async (url: string, init: { method: string; body: string }) => {
      posted.push({ url, body: JSON.parse(init.body) as unknown });
      return { ok: true };
    };
    const reportErrors: TaskMiddleware = {
      name: 'report-errors',
      onError: async (task, context, error) => {
        await fakeFetch('https://api.example.com/errors', {
          method: 'POST',
          body: JSON.stringify({
            taskId: task.id,
            batchId: context.batchId,
            attempt: context.attempt,
            error: error instanceof Error ? error.message : String(error),
          }),
        });
      },
    };

    // Act
    const failed = await runAttempt(taskHandlers, input({ type: 'fail', data: { message: 'source file is not valid JSON' } }, [reportErrors], 1));
    const succeeded = await runAttempt(taskHandlers, input({ type: 'echo', data: 'fine' }, [reportErrors]));

    // Assert
    expect(failed).toMatchObject({ kind: 'retry', error: 'source file is not valid JSON' });
    expect(succeeded.kind).toBe('succeeded');
    expect(posted).toEqual([
      { url: 'https://api.example.com/errors', body: { taskId: 'task-1', batchId: 'batch-1', attempt: 1, error: 'source file is not valid JSON' } },
    ]);
  });
});
