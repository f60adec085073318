/**
 * The Parallel state, as Fleet's child uses it (a single branch around the
 * worker's Lambda call), asserted from the AWS documentation, and the fields
 * the local runner does not implement refused by name.
 *
 * Pages:
 * - PARALLEL: https://docs.aws.amazon.com/step-functions/latest/dg/state-parallel.html
 * - CONTEXT: https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html
 * - ERRORS: https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadDefinition } from '../../infra/local/asl/definition';
import { delay, ERRORS, FakeInvoker, LAMBDA_INVOKE, namedError, run, script, useFakeClock } from './harness';

const PARALLEL = 'https://docs.aws.amazon.com/step-functions/latest/dg/state-parallel.html';

type Json = Record<string, unknown>;

const task = (parameters: Json = { 'input.$': '$' }, extra: Json = {}) => ({ Type: 'Task', Resource: LAMBDA_INVOKE, Parameters: parameters, End: true, ...extra });

/** A Parallel named P with `branches` (each one Task named T<i>), then Done. */
const parallel = (fields: Json = {}, branches: Json[] = [task()]) => ({
  StartAt: 'P',
  States: {
    P: {
      Type: 'Parallel',
      Branches: branches.map((state, i) => ({ StartAt: `T${i}`, States: { [`T${i}`]: state } })),
      Next: 'Done',
      ...fields,
    },
    Done: { Type: 'Succeed' },
    Caught: { Type: 'Succeed' },
  },
});

beforeEach(useFakeClock);
afterEach(() => {
  vi.useRealTimers();
});

describe(`Parallel (${PARALLEL})`, () => {
  it('passes its input to each branch and outputs the branches\' outputs as an array, in branch order', async () => {
    const invoker = new FakeInvoker(async (parameters) => {
      const { ms, tag } = parameters as { ms: number; tag: string };
      await delay(ms);
      return tag;
    });
    const outcome = await run(
      parallel({}, [task({ ms: 300, tag: 'first' }), task({ ms: 100, tag: 'second' })]),
      { x: 1 },
      { invoker },
    );
    expect(outcome).toEqual({ status: 'SUCCEEDED', output: ['first', 'second'] });
    // The branches ran at the same time.
    expect(invoker.peak).toBe(2);
  });

  it('builds the branches\' input with Parameters, which may read the Context object ($$.State.RetryCount is the Parallel\'s) (CONTEXT)', async () => {
    const invoker = new FakeInvoker(script(namedError('Again'), namedError('Again'), 'ok'));
    const definition = parallel({
      Parameters: { 'id.$': '$.id', 'attempt.$': '$$.State.RetryCount', 'state.$': '$$.State.Name' },
      Retry: [{ ErrorEquals: ['Again'], IntervalSeconds: 1, MaxAttempts: 5 }],
    });
    const outcome = await run(definition, { id: 'a', other: true }, { invoker });
    expect(outcome.status).toBe('SUCCEEDED');
    expect(invoker.calls.map((call) => call.parameters)).toEqual([
      { input: { id: 'a', attempt: 0, state: 'P' } },
      { input: { id: 'a', attempt: 1, state: 'P' } },
      { input: { id: 'a', attempt: 2, state: 'P' } },
    ]);
  });

  it('applies ResultSelector to the array and ResultPath into its input', async () => {
    const invoker = new FakeInvoker(script({ taskId: 't', success: true }));
    const definition = parallel({ ResultSelector: { 'id.$': '$[0].taskId' }, ResultPath: '$.result' });
    const outcome = await run(definition, { keep: 1 }, { invoker });
    expect(outcome).toEqual({ status: 'SUCCEEDED', output: { keep: 1, result: { id: 't' } } });
  });

  it('fails with the failing branch\'s own error name and cause, and stops the other branches', async () => {
    let stopped = false;
    const invoker = new FakeInvoker(async (parameters, call) => {
      if ((parameters as { fail?: boolean }).fail) throw namedError('Broken', 'branch broke');
      call.signal.addEventListener('abort', () => (stopped = true));
      await delay(60_000);
      return 'late';
    });
    const outcome = await run(parallel({}, [task({ fail: true }), task({ slow: true })]), {}, { invoker });
    expect(outcome).toEqual({ status: 'FAILED', error: 'Broken', cause: 'branch broke' });
    expect(stopped).toBe(true);
  });

  it(`retries as a whole: a retry runs the branch again from its start, and the branch's own retries do not add to the Parallel's RetryCount (${ERRORS})`, async () => {
    // Each run of the branch: one throttle (retried inside), then the task's own failure (retried by the Parallel).
    const invoker = new FakeInvoker(script(namedError('Throttled'), namedError('TaskFailedOnce'), namedError('Throttled'), namedError('Throttled'), 'done'));
    const definition = parallel(
      {
        Parameters: { 'attempt.$': '$$.State.RetryCount' },
        Retry: [{ ErrorEquals: ['TaskFailedOnce'], IntervalSeconds: 1, MaxAttempts: 3 }],
      },
      [task({ 'attempt.$': '$.attempt', 'inner.$': '$$.State.RetryCount' }, { Retry: [{ ErrorEquals: ['Throttled'], IntervalSeconds: 1, MaxAttempts: 6 }] })],
    );
    const outcome = await run(definition, {}, { invoker });
    expect(outcome).toEqual({ status: 'SUCCEEDED', output: ['done'] });
    expect(invoker.calls.map((call) => call.parameters)).toEqual([
      { attempt: 0, inner: 0 },
      { attempt: 0, inner: 1 },
      // The Parallel's retry: a new run of the branch, whose Task counts its own retries afresh.
      { attempt: 1, inner: 0 },
      { attempt: 1, inner: 1 },
      { attempt: 1, inner: 2 },
    ]);
  });

  it('catches a branch\'s error by its name, with {Error, Cause} at the catcher\'s ResultPath', async () => {
    const invoker = new FakeInvoker(script(namedError('Broken', 'no')));
    const definition = parallel({ Catch: [{ ErrorEquals: ['Broken'], ResultPath: '$.error', Next: 'Caught' }] });
    const outcome = await run(definition, { id: 1 }, { invoker });
    expect(outcome).toEqual({ status: 'SUCCEEDED', output: { id: 1, error: { Error: 'Broken', Cause: 'no' } } });
  });

  it('fails a branch that reaches a Fail state, with that Fail state\'s Error', async () => {
    const definition = parallel({}, [{ Type: 'Fail', Error: 'Fleet.StorageUnavailable', Cause: 'gone' }]);
    const outcome = await run(definition, {});
    expect(outcome).toEqual({ status: 'FAILED', error: 'Fleet.StorageUnavailable', cause: 'gone' });
  });
});

describe('Parallel: what the local runner refuses, by name', () => {
  const load = (definition: object) => () => loadDefinition(JSON.stringify(definition));

  it.each(['Arguments', 'Output', 'Assign', 'QueryLanguage', 'ItemProcessor'])('refuses the field %s', (field) => {
    expect(load(parallel({ [field]: {} }))).toThrow(`$.States["P"]: field "${field}" is not implemented by Fleet's local runner`);
  });

  it('needs a non-empty Branches array', () => {
    expect(load(parallel({ Branches: [] }))).toThrow('$.States["P"].Branches must be a non-empty array');
    expect(load({ StartAt: 'P', States: { P: { Type: 'Parallel', End: true } } })).toThrow('$.States["P"].Branches must be a non-empty array');
  });

  it('refuses a branch state that names a state outside its branch', () => {
    const definition = parallel({}, [task({}, { End: undefined, Next: 'Done' })]);
    expect(load(definition)).toThrow('$.States["P"].Branches[0].States["T0"].Next names no state: "Done"');
  });

  it('refuses an unknown field in a branch, naming where it is', () => {
    const definition = parallel({}, [task({}, { Credentials: {} })]);
    expect(load(definition)).toThrow('$.States["P"].Branches[0].States["T0"]: field "Credentials" is not implemented');
  });
});
