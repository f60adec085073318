/**
 * Retry, Catch, error names and task timeouts, asserted from the AWS
 * documentation. Delays run under a fake clock with retryUnitMs = 1000, so
 * every gap below is in AWS's own seconds, exactly.
 *
 * Pages:
 * - ERRORS: https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
 * - RESULTPATH: https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultpath.html
 * - TASK: https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { delay, END, ERRORS, execute, FakeInvoker, namedError, RESULTPATH, run, script, TASK, taskMachine, useFakeClock } from './harness';

/** Runs under the fake clock, with delays in AWS seconds. */

/** A call that never answers: only a timeout ends it. */
const hang = () => new Promise<never>(() => undefined);

beforeEach(useFakeClock);
afterEach(() => {
  vi.useRealTimers();
});

describe(`Retry (${ERRORS})`, () => {
  it('waits IntervalSeconds × BackoffRate^n: the page example (3, MaxAttempts 3, 2) retries after 3 s, 6 s and 12 s, then the error stands', async () => {
    const invoker = new FakeInvoker(script(namedError('Flaky')));
    const definition = taskMachine({ Retry: [{ ErrorEquals: ['Flaky'], IntervalSeconds: 3, MaxAttempts: 3, BackoffRate: 2 }] });

    const outcome = await run(definition, {}, { invoker });

    expect(invoker.calls).toHaveLength(4);
    expect(invoker.gaps()).toEqual([3000, 6000, 12000]);
    expect(outcome).toMatchObject({ status: 'FAILED', error: 'Flaky' });
  });

  it('defaults to IntervalSeconds 1, BackoffRate 2.0 and MaxAttempts 3', async () => {
    const invoker = new FakeInvoker(script(namedError('Flaky')));

    await run(taskMachine({ Retry: [{ ErrorEquals: ['Flaky'] }] }), {}, { invoker });

    expect(invoker.gaps()).toEqual([1000, 2000, 4000]);
  });

  it('BackoffRate 1.5: "makes 2 retry attempts after waiting for 3 and 4.5 seconds", then succeeds when the task does', async () => {
    const invoker = new FakeInvoker(script(namedError('States.TaskFailed'), namedError('Flaky'), { ok: true }));
    const definition = taskMachine({ Retry: [{ ErrorEquals: ['States.ALL'], IntervalSeconds: 3, MaxAttempts: 2, BackoffRate: 1.5 }] });

    const outcome = await run(definition, {}, { invoker });

    expect(invoker.gaps()).toEqual([3000, 4500]);
    expect(outcome).toEqual({ status: 'SUCCEEDED', output: { ok: true } });
  });

  it('MaxDelaySeconds caps each interval: 1, 2, 4, then 5, 5 with MaxDelaySeconds 5', async () => {
    const invoker = new FakeInvoker(script(namedError('Flaky')));
    const definition = taskMachine({ Retry: [{ ErrorEquals: ['Flaky'], IntervalSeconds: 1, BackoffRate: 2, MaxAttempts: 5, MaxDelaySeconds: 5 }] });

    await run(definition, {}, { invoker });

    expect(invoker.gaps()).toEqual([1000, 2000, 4000, 5000, 5000]);
  });

  it('JitterStrategy FULL: each delay is drawn from [0, the computed (capped) delay]; NONE is the plain backoff', async () => {
    // With an injected random, the draw is random() × delay: 0.5 × 2, 0.25 × 4, 0.75 × min(8, 6).
    const draws = [0.5, 0.25, 0.75];
    const random = vi.fn(() => draws.shift() ?? 0);
    const full = new FakeInvoker(script(namedError('Flaky')));
    const retrier = { ErrorEquals: ['Flaky'], IntervalSeconds: 2, BackoffRate: 2, MaxAttempts: 3, MaxDelaySeconds: 6 };

    await run(taskMachine({ Retry: [{ ...retrier, JitterStrategy: 'FULL' }] }), {}, { invoker: full, random });
    const none = new FakeInvoker(script(namedError('Flaky')));
    const unused = vi.fn(() => 0);
    await run(taskMachine({ Retry: [{ ...retrier, JitterStrategy: 'NONE' }] }), {}, { invoker: none, random: unused });

    expect(full.gaps()).toEqual([1000, 1000, 4500]);
    expect(random).toHaveBeenCalledTimes(3);
    expect(none.gaps()).toEqual([2000, 4000, 6000]);
    expect(unused).not.toHaveBeenCalled();
  });

  it('MaxAttempts 0: "the error or errors are never retried" (the page example retries every error except States.Timeout)', async () => {
    const retry = [{ ErrorEquals: ['States.Timeout'], MaxAttempts: 0 }, { ErrorEquals: ['States.ALL'] }];
    const timingOut = new FakeInvoker(hang);
    const failing = new FakeInvoker(script(namedError('Flaky'), { ok: true }));

    const timedOut = await run(taskMachine({ TimeoutSeconds: 1, Retry: retry }), {}, { invoker: timingOut });
    const recovered = await run(taskMachine({ TimeoutSeconds: 1, Retry: retry }), {}, { invoker: failing });

    expect(timingOut.calls).toHaveLength(1);
    expect(timedOut).toMatchObject({ status: 'FAILED', error: 'States.Timeout' });
    expect(failing.calls).toHaveLength(2);
    expect(recovered).toEqual({ status: 'SUCCEEDED', output: { ok: true } });
  });

  it('scans retriers in order and applies the first match only: an exhausted retrier does not fall through to a later States.ALL', async () => {
    const retry = [
      { ErrorEquals: ['Flaky'], IntervalSeconds: 1, MaxAttempts: 1 },
      { ErrorEquals: ['States.ALL'], IntervalSeconds: 7, MaxAttempts: 5 },
    ];
    const flaky = new FakeInvoker(script(namedError('Flaky')));
    const other = new FakeInvoker(script(namedError('Other'), { ok: true }));

    const first = await run(taskMachine({ Retry: retry }), {}, { invoker: flaky });
    const second = await run(taskMachine({ Retry: retry }), {}, { invoker: other });

    expect(flaky.gaps()).toEqual([1000]);
    expect(first).toMatchObject({ status: 'FAILED', error: 'Flaky' });
    expect(other.gaps()).toEqual([7000]);
    expect(second).toMatchObject({ status: 'SUCCEEDED' });
  });

  // Guards a fixed deviation (infra/local/asl/interpreter.ts, runWithRetries: one
  // MaxAttempts count per retrier). The page's "Complex retry scenarios":
  // "A retrier's parameters apply across all visits to the retrier in the
  // context of a single-state execution" ... errors ErrorA, ErrorB, ErrorC,
  // ErrorB, ErrorB: "The fourth error matches the first retrier and causes a
  // wait of 4 seconds. The fifth error also matches the first retrier.
  // However, it has already reached its limit of two retries (MaxAttempts)
  // for that particular error (ErrorB), so it fails and execution is
  // redirected to the Z state via the Catch field." (The local runner once
  // refused the fourth error, counting MaxAttempts per retrier.)
  it('follows the page\'s complex retry scenario: waits 1, 2, 5 and 4 s, then the fifth error is caught', async () => {
    const invoker = new FakeInvoker(script(namedError('ErrorA'), namedError('ErrorB'), namedError('ErrorC'), namedError('ErrorB'), namedError('ErrorB')));
    const definition = taskMachine(
      {
        Next: 'Y',
        Retry: [
          { ErrorEquals: ['ErrorA', 'ErrorB'], IntervalSeconds: 1, BackoffRate: 2.0, MaxAttempts: 2 },
          { ErrorEquals: ['ErrorC'], IntervalSeconds: 5 },
        ],
        Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Z' }],
      },
      { Y: END, Z: { Type: 'Pass', Result: 'Z', End: true } },
    );

    const outcome = await run(definition, {}, { invoker });

    expect(invoker.gaps()).toEqual([1000, 2000, 5000, 4000]);
    expect(outcome).toEqual({ status: 'SUCCEEDED', output: 'Z' });
  });

  it('$$.State.RetryCount is 0 on the first attempt and counts the retries after it', async () => {
    const invoker = new FakeInvoker(script(namedError('Flaky'), namedError('Flaky'), { ok: true }));
    const definition = taskMachine({
      Parameters: { 'attempt.$': '$$.State.RetryCount' },
      Retry: [{ ErrorEquals: ['Flaky'], MaxAttempts: 5 }],
    });

    await run(definition, {}, { invoker });

    expect(invoker.calls.map((c) => c.parameters)).toEqual([{ attempt: 0 }, { attempt: 1 }, { attempt: 2 }]);
  });

  it('retryUnitMs scales only the retry delay: 1 s of backoff takes 5 real ms with retryUnitMs 5', async () => {
    vi.useRealTimers();
    const invoker = new FakeInvoker(script(namedError('Flaky'), namedError('Flaky'), 'done'));

    const outcome = await execute(taskMachine({ Retry: [{ ErrorEquals: ['Flaky'] }] }), {}, { invoker, retryUnitMs: 5 });

    expect(outcome).toEqual({ status: 'SUCCEEDED', output: 'done' });
    const [first, second] = invoker.gaps();
    expect(first).toBeGreaterThanOrEqual(4); // 1 s × 5 ms (timers may fire a ms early)
    expect(second).toBeGreaterThanOrEqual(9); // 2 s × 5 ms
    expect(first).toBeLessThan(500);
  });
});

describe(`Catch and the error output (${ERRORS}, ${RESULTPATH})`, () => {
  it('uses the retriers first, then the matching catcher: 1 + MaxAttempts calls before the transition', async () => {
    const invoker = new FakeInvoker(script(namedError('Flaky')));
    const definition = taskMachine(
      { Retry: [{ ErrorEquals: ['Flaky'], MaxAttempts: 2 }], Catch: [{ ErrorEquals: ['Flaky'], Next: 'Fallback' }] },
      { Fallback: END },
    );

    const outcome = await run(definition, { id: 1 }, { invoker });

    expect(invoker.calls).toHaveLength(3);
    expect(outcome.status).toBe('SUCCEEDED');
  });

  it('the error output is {Error, Cause}; without ResultPath it replaces the whole input ("defaults to $")', async () => {
    const invoker = new FakeInvoker(script(namedError('CustomError', 'This is a custom error!')));
    const definition = taskMachine({ Catch: [{ ErrorEquals: ['CustomError'], Next: 'Fallback' }] }, { Fallback: END });

    const outcome = await run(definition, { keep: 'me' }, { invoker });

    expect(outcome).toEqual({ status: 'SUCCEEDED', output: { Error: 'CustomError', Cause: 'This is a custom error!' } });
  });

  it('Catch ResultPath $.error adds the error output to the raw state input (not the InputPath-filtered one)', async () => {
    const invoker = new FakeInvoker(script(namedError('Boom', 'why')));
    const definition = taskMachine(
      { InputPath: '$.task', Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Fallback' }] },
      { Fallback: END },
    );

    const outcome = await run(definition, { batchId: 'b-1', task: { id: 't-1' }, error: 'replaced' }, { invoker });

    expect(invoker.calls[0]?.parameters).toEqual({ id: 't-1' });
    expect(outcome).toEqual({ status: 'SUCCEEDED', output: { batchId: 'b-1', task: { id: 't-1' }, error: { Error: 'Boom', Cause: 'why' } } });
  });

  it('Catch ResultPath null discards the error output and passes the original input on', async () => {
    const invoker = new FakeInvoker(script(namedError('TaskFailed')));
    const definition = taskMachine({ Catch: [{ ErrorEquals: ['TaskFailed'], ResultPath: null, Next: 'Failure recorded' }] }, { 'Failure recorded': END });

    const outcome = await run(definition, { batchId: 'b-1', task: { id: 't-1' } }, { invoker });

    expect(outcome).toEqual({ status: 'SUCCEEDED', output: { batchId: 'b-1', task: { id: 't-1' } } });
  });

  it('scans catchers in order (the error-handling tutorial: CustomError, then States.TaskFailed, then States.ALL)', async () => {
    const definition = taskMachine(
      {
        Catch: [
          { ErrorEquals: ['CustomError'], Next: 'CustomErrorFallback' },
          { ErrorEquals: ['States.TaskFailed'], Next: 'ReservedTypeFallback' },
          { ErrorEquals: ['States.ALL'], Next: 'CatchAllFallback' },
        ],
      },
      {
        CustomErrorFallback: { Type: 'Pass', Result: 'custom', End: true },
        ReservedTypeFallback: { Type: 'Pass', Result: 'reserved', End: true },
        CatchAllFallback: { Type: 'Pass', Result: 'all', End: true },
      },
    );

    const custom = await run(definition, {}, { invoker: new FakeInvoker(script(namedError('CustomError'))) });
    const other = await run(definition, {}, { invoker: new FakeInvoker(script(namedError('SomethingElse'))) });

    expect(custom).toEqual({ status: 'SUCCEEDED', output: 'custom' });
    expect(other).toEqual({ status: 'SUCCEEDED', output: 'reserved' });
  });

  it('States.TaskFailed "matches any known error name except for States.Timeout"; States.ALL matches States.Timeout', async () => {
    const invoker = new FakeInvoker(hang);
    const definition = taskMachine(
      {
        TimeoutSeconds: 1,
        Retry: [{ ErrorEquals: ['States.TaskFailed'], MaxAttempts: 3 }],
        Catch: [
          { ErrorEquals: ['States.TaskFailed'], Next: 'TaskFailed' },
          { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Any' },
        ],
      },
      { TaskFailed: { Type: 'Pass', Result: 'TaskFailed', End: true }, Any: END },
    );

    const outcome = await run(definition, { id: 1 }, { invoker });

    expect(invoker.calls).toHaveLength(1);
    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { id: 1, error: { Error: 'States.Timeout' } } });
  });

  it('States.Runtime is not retried and "a retry or catch on States.ALL won\'t catch" it (a path missing from the data)', async () => {
    const everything = { Retry: [{ ErrorEquals: ['States.ALL'] }], Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Fallback' }] };
    const invoker = new FakeInvoker(script({ Payload: { taskId: 't-1' } }));

    const badInputPath = await run(taskMachine({ ...everything, InputPath: '$.missing' }, { Fallback: END }), { id: 1 }, { invoker: new FakeInvoker() });
    const badParameters = await run(taskMachine({ ...everything, Parameters: { 'x.$': '$.missing' } }, { Fallback: END }), { id: 1 }, { invoker: new FakeInvoker() });
    const badSelector = await run(taskMachine({ ...everything, ResultSelector: { 'success.$': '$.Payload.success' } }, { Fallback: END }), {}, { invoker });
    const badOutputPath = await run(taskMachine({ ...everything, OutputPath: '$.Payload.nope' }, { Fallback: END }), {}, { invoker: new FakeInvoker(script({ Payload: {} })) });

    for (const outcome of [badInputPath, badParameters, badSelector, badOutputPath]) {
      expect(outcome).toMatchObject({ status: 'FAILED', error: 'States.Runtime' });
    }
    expect(invoker.calls).toHaveLength(1);
  });
});

describe(`TimeoutSeconds and TimeoutSecondsPath (${TASK})`, () => {
  it('"If the task runs longer than the specified seconds, this state fails with a States.Timeout error name", at that second', async () => {
    const slow = new FakeInvoker(async () => {
      await delay(5000);
      return 'late';
    });
    const quick = new FakeInvoker(async () => {
      await delay(1500);
      return 'on time';
    });
    const started = Date.now();

    const timedOut = await run(taskMachine({ TimeoutSeconds: 2 }), {}, { invoker: slow });
    const elapsed = Date.now() - started;
    const finished = await run(taskMachine({ TimeoutSeconds: 2 }), {}, { invoker: quick });

    expect(timedOut).toMatchObject({ status: 'FAILED', error: 'States.Timeout' });
    expect(elapsed).toBe(2000);
    expect(finished).toEqual({ status: 'SUCCEEDED', output: 'on time' });
  });

  it('TimeoutSecondsPath takes the timeout from the state input (Fleet: $.settings.attemptTimeoutSeconds)', async () => {
    const definition = taskMachine({ TimeoutSecondsPath: '$.settings.attemptTimeoutSeconds' });
    const input = { settings: { attemptTimeoutSeconds: 3 } };
    const slow = new FakeInvoker(async () => {
      await delay(10_000);
      return 'late';
    });
    const started = Date.now();

    const timedOut = await run(definition, input, { invoker: slow });
    const elapsed = Date.now() - started;
    const finished = await run(definition, input, {
      invoker: new FakeInvoker(async () => {
        await delay(2500);
        return 'on time';
      }),
    });

    expect(timedOut).toMatchObject({ status: 'FAILED', error: 'States.Timeout' });
    expect(elapsed).toBe(3000);
    expect(finished).toEqual({ status: 'SUCCEEDED', output: 'on time' });
  });

  it('a timeout is retried by a retrier naming States.Timeout ("Handling a Timeout Using Retry"), each attempt with a fresh timeout', async () => {
    const invoker = new FakeInvoker(hang);
    const definition = taskMachine({ TimeoutSeconds: 2, Retry: [{ ErrorEquals: ['States.Timeout'], IntervalSeconds: 1, MaxAttempts: 2, BackoffRate: 2.0 }] });

    const outcome = await run(definition, {}, { invoker });

    // attempt (2 s) + 1 s, attempt (2 s) + 2 s, attempt (2 s)
    expect(invoker.gaps()).toEqual([3000, 4000]);
    expect(outcome).toMatchObject({ status: 'FAILED', error: 'States.Timeout' });
  });
});
