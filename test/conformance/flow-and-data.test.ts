/**
 * Choice, Wait, Pass/Succeed/Fail, the input and output paths, and the
 * context object, asserted from the AWS documentation.
 *
 * Pages:
 * - CHOICE: https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html
 * - WAIT: https://docs.aws.amazon.com/step-functions/latest/dg/state-wait.html
 * - ERRORS: https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
 * - INPUTPATH_PARAMETERS: https://docs.aws.amazon.com/step-functions/latest/dg/input-output-inputpath-params.html
 * - RESULTPATH: https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultpath.html
 * - FILTERING: https://docs.aws.amazon.com/step-functions/latest/dg/concepts-input-output-filtering.html
 * - CONTEXT: https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CHOICE, CONTEXT, delay, execute, FakeInvoker, FILTERING, INPUTPATH_PARAMETERS, LAMBDA_INVOKE, namedError, RESULTPATH, run, script, STATE_MACHINE_ARN, taskMachine, useFakeClock, WAIT } from './harness';

const pass = (result: string) => ({ Type: 'Pass', Result: result, End: true });

/** Fleet's "Capacity granted?" shape, with one rule. */
const choiceOn = (rule: Record<string, unknown>, withDefault = true) => ({
  StartAt: 'Choose',
  States: {
    Choose: { Type: 'Choice', Choices: [{ ...rule, Next: 'Matched' }], ...(withDefault ? { Default: 'Otherwise' } : {}) },
    Matched: pass('matched'),
    Otherwise: pass('default'),
  },
});

beforeEach(useFakeClock);
afterEach(() => {
  vi.useRealTimers();
});

describe(`Choice (${CHOICE})`, () => {
  it('BooleanEquals: true takes the rule\'s Next, false takes Default', async () => {
    const definition = choiceOn({ Variable: '$.admitted', BooleanEquals: true });

    expect(await run(definition, { admitted: true })).toEqual({ status: 'SUCCEEDED', output: 'matched' });
    expect(await run(definition, { admitted: false })).toEqual({ status: 'SUCCEEDED', output: 'default' });
  });

  it('compares only values of the operator\'s type: "Step Functions doesn\'t attempt to match a numeric field to a string value"', async () => {
    expect(await run(choiceOn({ Variable: '$.admitted', BooleanEquals: true }), { admitted: 'true' })).toMatchObject({ output: 'default' });
    expect(await run(choiceOn({ Variable: '$.n', NumericEquals: 1 }), { n: '1' })).toMatchObject({ output: 'default' });
    expect(await run(choiceOn({ Variable: '$.s', StringEquals: '1' }), { s: 1 })).toMatchObject({ output: 'default' });
  });

  it.each([
    [{ StringEquals: 'Buy' }, 'Buy', 'matched'],
    [{ StringEquals: 'Buy' }, 'Sell', 'default'],
    [{ NumericEquals: 5 }, 5, 'matched'],
    [{ NumericGreaterThan: 5 }, 5, 'default'],
    [{ NumericGreaterThan: 5 }, 6, 'matched'],
    [{ NumericGreaterThanEquals: 5 }, 5, 'matched'],
    [{ NumericLessThan: 5 }, 5, 'default'],
    [{ NumericLessThan: 5 }, 4.5, 'matched'],
    [{ NumericLessThanEquals: 5 }, 5, 'matched'],
  ])('%o against %o → %s', async (comparison, value, expected) => {
    expect(await run(choiceOn({ Variable: '$.v', ...comparison }), { v: value })).toEqual({ status: 'SUCCEEDED', output: expected });
  });

  it('examines the rules in order and takes the first that matches', async () => {
    const definition = {
      StartAt: 'Choose',
      States: {
        Choose: {
          Type: 'Choice',
          Choices: [
            { Variable: '$.v', NumericGreaterThan: 10, Next: 'Big' },
            { Variable: '$.v', NumericGreaterThan: 0, Next: 'Positive' },
          ],
          Default: 'Other',
        },
        Big: pass('big'),
        Positive: pass('positive'),
        Other: pass('other'),
      },
    };

    expect(await run(definition, { v: 11 })).toMatchObject({ output: 'big' });
    expect(await run(definition, { v: 3 })).toMatchObject({ output: 'positive' });
  });

  it('no rule matching and no Default fails the execution with States.NoChoiceMatched', async () => {
    const outcome = await run(choiceOn({ Variable: '$.admitted', BooleanEquals: true }, false), { admitted: false });

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'States.NoChoiceMatched' });
  });

  it('"If the state input doesn\'t contain the $.type field, the execution fails" (States.Runtime), unless IsPresent guards it', async () => {
    const missing = await run(choiceOn({ Variable: '$.admitted', BooleanEquals: true }), { other: 1 });
    const present = await run(choiceOn({ Variable: '$.admitted', IsPresent: true }), { admitted: false });
    const absent = await run(choiceOn({ Variable: '$.admitted', IsPresent: true }), { other: 1 });
    const absentFalse = await run(choiceOn({ Variable: '$.admitted', IsPresent: false }), { other: 1 });

    expect(missing).toMatchObject({ status: 'FAILED', error: 'States.Runtime' });
    expect(present).toMatchObject({ output: 'matched' });
    expect(absent).toMatchObject({ output: 'default' });
    expect(absentFalse).toMatchObject({ output: 'matched' });
  });

  it('passes its input on unchanged to the state it chooses', async () => {
    const definition = {
      StartAt: 'Choose',
      States: { Choose: { Type: 'Choice', Choices: [{ Variable: '$.admitted', BooleanEquals: true, Next: 'Done' }] }, Done: { Type: 'Succeed' } },
    };

    expect(await run(definition, { admitted: true, batchId: 'b' })).toEqual({ status: 'SUCCEEDED', output: { admitted: true, batchId: 'b' } });
  });
});

describe(`Wait (${WAIT})`, () => {
  it('SecondsPath waits the number of seconds it selects from the input, then passes the input on', async () => {
    const definition = { StartAt: 'Wait', States: { Wait: { Type: 'Wait', SecondsPath: '$.pollSeconds', Next: 'Done' }, Done: { Type: 'Succeed' } } };
    const started = Date.now();

    const outcome = await run(definition, { pollSeconds: 7, batchId: 'b' });

    expect(Date.now() - started).toBe(7000);
    expect(outcome).toEqual({ status: 'SUCCEEDED', output: { pollSeconds: 7, batchId: 'b' } });
  });

  it('Wait is real seconds, not scaled by retryUnitMs (Seconds 0 passes straight through)', async () => {
    vi.useRealTimers();
    const definition = { StartAt: 'Wait', States: { Wait: { Type: 'Wait', Seconds: 0, End: true } } };

    expect(await execute(definition, { a: 1 }, { retryUnitMs: 1 })).toEqual({ status: 'SUCCEEDED', output: { a: 1 } });
  });

  it('a SecondsPath that selects nothing fails the execution with States.Runtime', async () => {
    const definition = { StartAt: 'Wait', States: { Wait: { Type: 'Wait', SecondsPath: '$.pollSeconds', End: true } } };

    expect(await run(definition, {})).toMatchObject({ status: 'FAILED', error: 'States.Runtime' });
  });
});

describe('Pass, Succeed and Fail (https://docs.aws.amazon.com/step-functions/latest/dg/state-pass.html, state-succeed.html, state-fail.html)', () => {
  it('Pass places Result at ResultPath; Succeed ends with its input; Fail ends the execution with its Error and Cause', async () => {
    const passThenSucceed = {
      StartAt: 'P',
      States: { P: { Type: 'Pass', Result: { x: 1 }, ResultPath: '$.result', Next: 'S' }, S: { Type: 'Succeed' } },
    };
    const fail = { StartAt: 'F', States: { F: { Type: 'Fail', Error: 'Fleet.Planned', Cause: 'because' } } };

    expect(await run(passThenSucceed, { a: 1 })).toEqual({ status: 'SUCCEEDED', output: { a: 1, result: { x: 1 } } });
    expect(await run(fail, {})).toEqual({ status: 'FAILED', error: 'Fleet.Planned', cause: 'because' });
  });
});

describe(`Input and output processing (${FILTERING})`, () => {
  it(`InputPath → Parameters → task → ResultSelector → ResultPath → OutputPath, in that order (${INPUTPATH_PARAMETERS}, ${RESULTPATH})`, async () => {
    const invoker = new FakeInvoker(script({ ExecutedVersion: '$LATEST', Payload: { sum: 40, noise: true }, StatusCode: 200 }));
    const state = {
      InputPath: '$.data',
      Parameters: { 'a.$': '$.val1', 'b.$': '$.val2', constant: 'x', nested: { 'c.$': '$.val1' } },
      ResultSelector: { 'sum.$': '$.Payload.sum', 'status.$': '$.StatusCode' },
      ResultPath: '$.result',
    };
    const input = { comment: 'example', data: { val1: 23, val2: 17 } };

    const whole = await run(taskMachine(state), input, { invoker });
    const selected = await run(taskMachine({ ...state, OutputPath: '$.result' }), input, { invoker });

    expect(invoker.calls[0]?.parameters).toEqual({ a: 23, b: 17, constant: 'x', nested: { c: 23 } });
    expect(whole).toEqual({ status: 'SUCCEEDED', output: { comment: 'example', data: { val1: 23, val2: 17 }, result: { sum: 40, status: 200 } } });
    expect(selected).toEqual({ status: 'SUCCEEDED', output: { sum: 40, status: 200 } });
  });

  it('Parameters "state.$": "$" passes the whole effective input (Fleet\'s lifecycle payload)', async () => {
    const invoker = new FakeInvoker(script({ Payload: { next: true } }));
    const definition = taskMachine({ Parameters: { FunctionName: 'f', Payload: { 'state.$': '$' } }, OutputPath: '$.Payload' });

    const outcome = await run(definition, { batchId: 'b', admitted: false }, { invoker });

    expect(invoker.calls[0]?.parameters).toEqual({ FunctionName: 'f', Payload: { state: { batchId: 'b', admitted: false } } });
    expect(outcome).toEqual({ status: 'SUCCEEDED', output: { next: true } });
  });

  it(`ResultPath: "$" (the default) replaces the input; null keeps the input; a path adds or overwrites a field, building intermediate objects (${RESULTPATH})`, async () => {
    const result = 'Hello, Step Functions!';
    const input = { comment: 'This is a test', details: 'Default example', who: 'Step Functions' };
    const with_ = (resultPath: unknown) => run(taskMachine(resultPath === undefined ? {} : { ResultPath: resultPath }), input, { invoker: new FakeInvoker(script(result)) });

    expect(await with_(undefined)).toEqual({ status: 'SUCCEEDED', output: result });
    expect(await with_('$')).toEqual({ status: 'SUCCEEDED', output: result });
    expect(await with_(null)).toEqual({ status: 'SUCCEEDED', output: input });
    expect(await with_('$.taskresult')).toEqual({ status: 'SUCCEEDED', output: { ...input, taskresult: result } });
    expect(await with_('$.who')).toEqual({ status: 'SUCCEEDED', output: { ...input, who: result } });
    expect(await with_('$.a.b.c')).toEqual({ status: 'SUCCEEDED', output: { ...input, a: { b: { c: result } } } });
  });

  it('InputPath null makes the effective input {}; OutputPath null makes the output {}', async () => {
    const invoker = new FakeInvoker(script('result'));

    const outcome = await run(taskMachine({ InputPath: null, OutputPath: null }), { a: 1 }, { invoker });

    expect(invoker.calls[0]?.parameters).toEqual({});
    expect(outcome).toEqual({ status: 'SUCCEEDED', output: {} });
  });
});

describe(`The context object (${CONTEXT})`, () => {
  it('$$.Execution.Id, $$.Execution.Name, $$.Execution.StartTime and $$.StateMachine.Id describe this execution', async () => {
    const invoker = new FakeInvoker((parameters) => parameters);
    const definition = taskMachine({
      Parameters: {
        'executionId.$': '$$.Execution.Id',
        'executionName.$': '$$.Execution.Name',
        'startTime.$': '$$.Execution.StartTime',
        'stateMachineArn.$': '$$.StateMachine.Id',
        'input.$': '$$.Execution.Input',
      },
    });

    const outcome = await run(definition, { batchId: 'b' }, { invoker, executionName: 'batch-123', startTime: '2025-01-01T00:00:00.000Z' });

    expect(outcome).toEqual({
      status: 'SUCCEEDED',
      output: {
        executionId: `${STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:batch-123`,
        executionName: 'batch-123',
        startTime: '2025-01-01T00:00:00.000Z',
        stateMachineArn: STATE_MACHINE_ARN,
        input: { batchId: 'b' },
      },
    });
  });

  it('$$.Execution.StartTime is the execution\'s start (ISO 8601), the same in every state and retry however late it runs', async () => {
    const startTime = new Date().toISOString();
    const invoker = new FakeInvoker(async (parameters, _call, index) => {
      await delay(1000);
      if (index === 0) throw namedError('Flaky');
      return parameters;
    });
    const definition = {
      StartAt: 'First',
      States: {
        First: { Type: 'Task', Resource: LAMBDA_INVOKE, Parameters: { 't.$': '$$.Execution.StartTime' }, Retry: [{ ErrorEquals: ['Flaky'] }], ResultPath: '$.first', Next: 'Second' },
        Second: { Type: 'Task', Resource: LAMBDA_INVOKE, Parameters: { 't.$': '$$.Execution.StartTime' }, ResultPath: '$.second', End: true },
      },
    };

    const outcome = await run(definition, {}, { invoker, startTime });

    expect(invoker.calls.map((c) => c.parameters)).toEqual([{ t: startTime }, { t: startTime }, { t: startTime }]);
    expect(invoker.calls.at(-1)?.at).toBe(Date.parse(startTime) + 3000); // 1 s call + 1 s retry delay + 1 s call
    expect(startTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(outcome.status).toBe('SUCCEEDED');
  });
});
