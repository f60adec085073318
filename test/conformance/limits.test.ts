/**
 * Step Functions' execution limits, enforced by the local runner with AWS's
 * own errors at the point AWS raises them (docs/local-mode-limits.md):
 *
 * - 256 KiB per state input or output, task parameters and result
 *   (QUOTAS: "Maximum input or output size for a task, state, or execution:
 *   256 KiB of data as a UTF-8 encoded string"), failing with
 *   States.DataLimitExceeded, "a terminal error that can't be caught by the
 *   States.ALL error type" (ERRORS).
 * - 25,000 events in a Standard execution's history (QUOTAS: "If the execution
 *   history reaches this quota the execution will fail"). The execution fails
 *   with States.Runtime, "The execution reached the maximum number of history
 *   events (25000).", and that failure is itself event 25,000.
 * - An Express execution runs at most 5 minutes (QUOTAS, EXPRESS_VS_STANDARD);
 *   a Distributed Map's Express child then ends TIMED_OUT, which the Map Run
 *   counts as timedOut (MAPRUN_COUNTS).
 *
 * Pages:
 * - QUOTAS: https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html
 * - ERRORS: https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
 * - EXPRESS_VS_STANDARD: https://docs.aws.amazon.com/step-functions/latest/dg/choosing-workflow-type.html
 * - HISTORY_EVENT: https://docs.aws.amazon.com/step-functions/latest/apireference/API_HistoryEvent.html
 * - MAPRUN_COUNTS: https://docs.aws.amazon.com/step-functions/latest/apireference/API_MapRunExecutionCounts.html
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ExecutionHistory, HISTORY_EVENT_LIMIT, type MapRun } from '../../infra/local/asl/interpreter';
import {
  END,
  ERRORS,
  EXPRESS_VS_STANDARD,
  execute,
  FakeInvoker,
  HISTORY_EVENT,
  LAMBDA_INVOKE,
  MAPRUN_COUNTS,
  MemoryObjects,
  QUOTAS,
  script,
  settle,
  taskMachine,
  useFakeClock,
} from './harness';

type Json = Record<string, unknown>;

/** A JSON object of exactly `bytes` bytes of UTF-8: {"s":"xxx…"}. */
const payloadOf = (bytes: number): Json => ({ s: 'x'.repeat(bytes - '{"s":""}'.length) });
const HISTORY_LIMIT_CAUSE = 'The execution reached the maximum number of history events (25000).';

const task = (extra: Json = {}): Json => ({ Type: 'Task', Resource: LAMBDA_INVOKE, Parameters: { FunctionName: 'f', 'Payload.$': '$' }, ...extra });
const hang = () => new Promise<never>(() => undefined);

/** A Distributed Map over the input's `items`, each child running `processor`. */
const distributedMap = (processor: Json, executionType: 'EXPRESS' | 'STANDARD', extra: Json = {}): Json => ({
  StartAt: 'Map',
  States: {
    Map: {
      Type: 'Map',
      End: true,
      Label: 'Tasks',
      ItemsPath: '$.items',
      ItemProcessor: { ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: executionType }, ...processor },
      ...extra,
    },
  },
});

afterEach(() => {
  vi.useRealTimers();
});

describe(`payloads over 256 KiB fail with States.DataLimitExceeded (${QUOTAS})`, () => {
  const pass = { StartAt: 'P', States: { P: { Type: 'Pass', End: true } } };

  it('measures the UTF-8 of the JSON: 262,144 bytes pass, 262,145 fail', async () => {
    expect(JSON.stringify(payloadOf(262_144)).length).toBe(262_144);

    expect(await execute(pass, payloadOf(262_144))).toMatchObject({ status: 'SUCCEEDED' });
    expect(await execute(pass, payloadOf(262_145))).toMatchObject({ status: 'FAILED', error: 'States.DataLimitExceeded' });
  });

  it('counts bytes, not characters: 131,069 "é" are 262,138 bytes of UTF-8 in 131,077 characters of JSON', async () => {
    const input = { s: 'é'.repeat(131_069) };
    expect(JSON.stringify(input).length).toBeLessThan(262_144);

    const outcome = await execute(pass, input);

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'States.DataLimitExceeded' });
    expect(outcome.status === 'FAILED' && outcome.cause).toContain('262146 bytes');
  });

  it('a state output over the quota fails the state, and the cause names it', async () => {
    const definition = {
      StartAt: 'Double',
      States: { Double: { Type: 'Pass', Parameters: { 'a.$': '$.s', 'b.$': '$.s' }, End: true } },
    };

    const outcome = await execute(definition, payloadOf(150_000));

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'States.DataLimitExceeded' });
    expect(outcome.status === 'FAILED' && outcome.cause).toContain('the output of state "Double"');
  });

  it(`a task result over the quota is not retried and not caught, even by States.ALL (${ERRORS})`, async () => {
    const invoker = new FakeInvoker(script(payloadOf(300_000)));
    const definition = taskMachine(
      { Next: 'Done', Retry: [{ ErrorEquals: ['States.ALL'], MaxAttempts: 3 }], Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Caught' }] },
      { Done: END, Caught: END },
    );

    const outcome = await execute(definition, {}, { invoker });

    expect(invoker.calls).toHaveLength(1);
    expect(outcome).toMatchObject({ status: 'FAILED', error: 'States.DataLimitExceeded' });
    expect(outcome.status === 'FAILED' && outcome.cause).toContain('the task result');
  });

  it('the page calls it terminal: local mode lets not even a catcher naming States.DataLimitExceeded catch it (never kinder than AWS)', async () => {
    const invoker = new FakeInvoker(script(payloadOf(300_000)));
    const definition = taskMachine({ Next: 'Done', Catch: [{ ErrorEquals: ['States.DataLimitExceeded'], Next: 'Caught' }] }, { Done: END, Caught: END });

    expect(await execute(definition, {}, { invoker })).toMatchObject({ status: 'FAILED', error: 'States.DataLimitExceeded' });
  });

  it('the task input after Parameters over the quota fails before the function is called', async () => {
    const invoker = new FakeInvoker();
    const definition = taskMachine({ Parameters: { FunctionName: 'f', Payload: { 'a.$': '$.s', 'b.$': '$.s' } }, Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Caught' }] }, { Caught: END });

    const outcome = await execute(definition, payloadOf(150_000), { invoker });

    expect(invoker.calls).toHaveLength(0);
    expect(outcome).toMatchObject({ status: 'FAILED', error: 'States.DataLimitExceeded' });
    expect(outcome.status === 'FAILED' && outcome.cause).toContain('after Parameters');
  });

  it("an inline Map's gathered outputs over the quota fail the Map state, uncaught", async () => {
    const definition = {
      StartAt: 'Map',
      States: {
        Map: {
          Type: 'Map',
          ItemsPath: '$.items',
          ItemProcessor: { StartAt: 'Double', States: { Double: { Type: 'Pass', Parameters: { 'a.$': '$.s', 'b.$': '$.s' }, End: true } } },
          Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Caught' }],
          End: true,
        },
        Caught: END,
      },
    };
    // Each iteration doubles a 70,000-byte item: one output (140,000 bytes) fits, two gathered do not.
    const item = payloadOf(70_000);

    const one = await execute(definition, { items: [item] });
    const two = await execute(definition, { items: [item, item] });

    expect(one).toMatchObject({ status: 'SUCCEEDED' });
    expect(two).toMatchObject({ status: 'FAILED', error: 'States.DataLimitExceeded' });
    expect(two.status === 'FAILED' && two.cause).toContain('the output of state "Map"');
  });

  it("a Distributed Map child is its own execution: its output over the quota fails the child, and the parent's Map Run counts one failure (catchable there)", async () => {
    const invoker = new FakeInvoker((parameters) => ((parameters as { Payload: { big: boolean } }).Payload.big ? payloadOf(300_000) : { ok: true }));
    const definition = {
      StartAt: 'Map',
      States: {
        Map: {
          Type: 'Map',
          Label: 'Tasks',
          ItemsPath: '$.items',
          ItemProcessor: { ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'EXPRESS' }, StartAt: 'T', States: { T: task({ End: true }) } },
          Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Caught' }],
          End: true,
        },
        Caught: END,
      },
    };
    const mapRuns: MapRun[] = [];

    const outcome = await execute(definition, { items: [{ big: false }, { big: true }] }, { invoker, mapRuns });

    expect(mapRuns[0]?.counts).toMatchObject({ succeeded: 1, failed: 1 });
    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { error: { Error: 'States.ExceedToleratedFailureThreshold' } } });
  });
});

describe(`a Standard execution fails when its history reaches 25,000 events (${QUOTAS})`, () => {
  it('a Choice looping on itself: 1 + 2 × 12,499 events, then the 25,000th is the failure, States.Runtime', async () => {
    const definition = {
      StartAt: 'Spin',
      States: { Spin: { Type: 'Choice', Choices: [{ Variable: '$.spin', BooleanEquals: true, Next: 'Spin' }], Default: 'Done' }, Done: END },
    };
    const history = new ExecutionHistory(HISTORY_EVENT_LIMIT);

    const outcome = await execute(definition, { spin: true }, { history });

    expect(outcome).toEqual({ status: 'FAILED', error: 'States.Runtime', cause: HISTORY_LIMIT_CAUSE });
    expect(history.events).toBe(24_999);
    expect(Object.fromEntries(history.byType)).toEqual({ ExecutionStarted: 1, ChoiceStateEntered: 12_499, ChoiceStateExited: 12_499 });
  });

  it('a Wait → Task → Choice polling loop: 9 events a round, so the 2,778th poll is the last, and a Catch does not save it', async () => {
    useFakeClock();
    const invoker = new FakeInvoker(script({ done: false }));
    const definition = {
      StartAt: 'Pause',
      States: {
        Pause: { Type: 'Wait', Seconds: 5, Next: 'Poll' },
        Poll: task({ Next: 'Done?', ResultSelector: { 'done.$': '$.done' }, Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Caught' }] }),
        'Done?': { Type: 'Choice', Choices: [{ Variable: '$.done', BooleanEquals: true, Next: 'Finished' }], Default: 'Pause' },
        Finished: END,
        Caught: END,
      },
    };
    const history = new ExecutionHistory(HISTORY_EVENT_LIMIT);
    const started = Date.now();

    const outcome = await settle(execute(definition, {}, { invoker, history }));

    // 1 + 9 × 2,777 = 24,994; then WaitStateEntered, WaitStateExited, TaskStateEntered,
    // TaskScheduled, TaskStarted are 24,995 to 24,999, and TaskSucceeded would be 25,000.
    expect(outcome).toEqual({ status: 'FAILED', error: 'States.Runtime', cause: HISTORY_LIMIT_CAUSE });
    expect(invoker.calls).toHaveLength(2_778);
    expect(history.events).toBe(24_999);
    expect(Date.now() - started).toBe(2_778 * 5_000);
  });

  it('an Express execution keeps no history and has no such limit: the same 13,000-round loop a Standard one cannot finish', async () => {
    const count = (parameters: unknown) => ({ n: ((parameters as { Payload: { n?: number } }).Payload.n ?? 0) + 1 });
    const definition = {
      StartAt: 'Count',
      States: {
        Count: task({ Next: 'More?', ResultSelector: { 'n.$': '$.n' } }),
        'More?': { Type: 'Choice', Choices: [{ Variable: '$.n', NumericLessThan: 13_000, Next: 'Count' }], Default: 'Done' },
        Done: END,
      },
    };

    const express = await execute(definition, { n: 0 }, { invoker: new FakeInvoker(count), history: new ExecutionHistory(undefined) });
    const standard = await execute(definition, { n: 0 }, { invoker: new FakeInvoker(count) });

    expect(express).toEqual({ status: 'SUCCEEDED', output: { n: 13_000 } });
    expect(standard).toMatchObject({ status: 'FAILED', error: 'States.Runtime', cause: HISTORY_LIMIT_CAUSE });
  });

  it("Distributed Map children are separate executions: STANDARD children of 14,001 events each do not add up in the parent's history", async () => {
    const count = (parameters: unknown) => ({ n: ((parameters as { Payload: { n?: number } }).Payload.n ?? 0) + 1 });
    // 1 + 7 × 2,000 rounds = 14,001 events per child: two would be over 25,000 together.
    const processor = {
      StartAt: 'Count',
      States: {
        Count: task({ Next: 'More?', ResultSelector: { 'n.$': '$.n' } }),
        'More?': { Type: 'Choice', Choices: [{ Variable: '$.n', NumericLessThan: 2_000, Next: 'Count' }], Default: 'Done' },
        Done: END,
      },
    };
    const history = new ExecutionHistory(HISTORY_EVENT_LIMIT);

    const outcome = await execute(distributedMap(processor, 'STANDARD'), { items: [{ n: 0 }, { n: 0 }] }, { invoker: new FakeInvoker(count), history });

    expect(outcome).toEqual({ status: 'SUCCEEDED', output: [{ n: 2_000 }, { n: 2_000 }] });
    expect(Object.fromEntries(history.byType)).toEqual({ ExecutionStarted: 1, MapStateEntered: 1, MapRunStarted: 1, MapRunSucceeded: 1, MapStateExited: 1 });
  });

  it('a STANDARD child reaching its own 25,000 events fails alone, as a failed child of the Map Run', async () => {
    const processor = {
      StartAt: 'Spin',
      States: { Spin: { Type: 'Choice', Choices: [{ Variable: '$.spin', BooleanEquals: true, Next: 'Spin' }], Default: 'Done' }, Done: END },
    };
    const mapRuns: MapRun[] = [];

    const outcome = await execute(distributedMap(processor, 'STANDARD', { ToleratedFailurePercentage: 50 }), { items: [{ spin: true }, { spin: false }] }, { mapRuns });

    expect(mapRuns[0]?.counts).toMatchObject({ succeeded: 1, failed: 1 });
    expect(outcome).toMatchObject({ status: 'SUCCEEDED' });
  });

  it(`counts each state's events as docs/local-mode-limits.md lists them (${HISTORY_EVENT})`, async () => {
    const invoker = new FakeInvoker(script(new Error('flaky'), { ok: true }));
    const definition = {
      StartAt: 'Pass',
      States: {
        Pass: { Type: 'Pass', Next: 'Task' },
        Task: task({ Next: 'Wait', ResultPath: '$.task', Retry: [{ ErrorEquals: ['States.ALL'], IntervalSeconds: 1 }] }),
        Wait: { Type: 'Wait', Seconds: 0, Next: 'Choice' },
        Choice: { Type: 'Choice', Choices: [{ Variable: '$.task.ok', BooleanEquals: true, Next: 'Map' }], Default: 'Map' },
        Map: { Type: 'Map', ItemsPath: '$.items', ItemSelector: { 'v.$': '$$.Map.Item.Value' }, ItemProcessor: { StartAt: 'Echo', States: { Echo: { Type: 'Pass', End: true } } }, Next: 'Done' },
        Done: END,
      },
    };
    const history = new ExecutionHistory(HISTORY_EVENT_LIMIT);

    const outcome = await execute(definition, { items: [1, 2] }, { invoker, history });

    expect(outcome).toMatchObject({ status: 'SUCCEEDED' });
    expect(Object.fromEntries(history.byType)).toEqual({
      ExecutionStarted: 1,
      PassStateEntered: 3, // Pass, then each iteration's Echo
      PassStateExited: 3,
      TaskStateEntered: 1,
      TaskScheduled: 2, // a retry schedules, starts and ends the task again
      TaskStarted: 2,
      TaskFailed: 1,
      TaskSucceeded: 1,
      TaskStateExited: 1,
      WaitStateEntered: 1,
      WaitStateExited: 1,
      ChoiceStateEntered: 1,
      ChoiceStateExited: 1,
      MapStateEntered: 1,
      MapStateStarted: 1,
      MapIterationStarted: 2,
      MapIterationSucceeded: 2,
      MapStateSucceeded: 1,
      MapStateExited: 1,
      SucceedStateEntered: 1,
      SucceedStateExited: 1,
    });
  });
});

describe(`an Express child ends TIMED_OUT after 5 minutes (${QUOTAS}, ${EXPRESS_VS_STANDARD})`, () => {
  /** A child whose task never answers, and which would catch any state error. */
  const stuck = {
    StartAt: 'Work',
    States: { Work: task({ Next: 'Done', Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Caught' }] }), Done: END, Caught: END },
  };

  it(`at 300 s exactly; the child cannot catch it, and the Map Run counts it timedOut, not failed (${MAPRUN_COUNTS})`, async () => {
    useFakeClock();
    const invoker = new FakeInvoker(hang);
    const mapRuns: MapRun[] = [];
    const started = Date.now();

    const outcome = await settle(execute(distributedMap(stuck, 'EXPRESS'), { items: [{}] }, { invoker, mapRuns }));

    expect(Date.now() - started).toBe(300_000);
    expect(mapRuns[0]?.counts).toMatchObject({ succeeded: 0, failed: 0, timedOut: 1, running: 0 });
    expect(outcome).toMatchObject({ status: 'FAILED', error: 'States.ExceedToleratedFailureThreshold' });
    expect(outcome.status === 'FAILED' && outcome.cause).toContain('States.Timeout');
  });

  it('a timed-out child counts toward ToleratedFailurePercentage: 1 of 2 within 50%, 2 of 3 beyond it', async () => {
    useFakeClock();
    const invoker = new FakeInvoker((parameters) => ((parameters as { Payload: { stuck: boolean } }).Payload.stuck ? hang() : { ok: true }));
    const within: MapRun[] = [];
    const beyond: MapRun[] = [];
    const definition = distributedMap(stuck, 'EXPRESS', { ToleratedFailurePercentage: 50 });

    const one = await settle(execute(definition, { items: [{ stuck: true }, { stuck: false }] }, { invoker, mapRuns: within }));
    const two = await settle(execute(definition, { items: [{ stuck: true }, { stuck: true }, { stuck: false }] }, { invoker, mapRuns: beyond }));

    expect(one).toMatchObject({ status: 'SUCCEEDED' });
    expect(within[0]?.counts).toMatchObject({ succeeded: 1, timedOut: 1 });
    expect(two).toMatchObject({ status: 'FAILED', error: 'States.ExceedToleratedFailureThreshold' });
    expect(beyond[0]?.counts.timedOut).toBe(2);
  });

  it('a STANDARD child has no 5-minute bound: its own 600 s task timeout fires, and it catches that state error', async () => {
    useFakeClock();
    const invoker = new FakeInvoker(hang);
    const processor = {
      StartAt: 'Work',
      States: { Work: task({ TimeoutSeconds: 600, Next: 'Done', Catch: [{ ErrorEquals: ['States.Timeout'], ResultPath: '$.error', Next: 'Caught' }] }), Done: END, Caught: END },
    };
    const mapRuns: MapRun[] = [];
    const started = Date.now();

    const outcome = await settle(execute(distributedMap(processor, 'STANDARD'), { items: [{}] }, { invoker, mapRuns }));

    expect(Date.now() - started).toBe(600_000);
    expect(mapRuns[0]?.counts).toMatchObject({ succeeded: 1, timedOut: 0 });
    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: [{ error: { Error: 'States.Timeout' } }] });
  });

  it('expressMaxDurationMs scales the bound for tests (here 50 ms of real time), and a ResultWriter NONE record says TIMED_OUT', async () => {
    const invoker = new FakeInvoker(hang);
    const objects = new MemoryObjects();
    const mapRuns: MapRun[] = [];
    const definition = distributedMap(stuck, 'EXPRESS', {
      ToleratedFailurePercentage: 100,
      ResultWriter: { Resource: 'arn:aws:states:::s3:putObject', Parameters: { Bucket: 'b', Prefix: 'out' } },
    });

    const outcome = await execute(definition, { items: [{}] }, { invoker, objects, mapRuns, expressMaxDurationMs: 50 });

    expect(outcome.status).toBe('SUCCEEDED');
    expect(mapRuns[0]?.counts.timedOut).toBe(1);
    const failed = [...objects.objects.entries()].find(([key]) => key.endsWith('FAILED_0.json'));
    expect(JSON.parse(failed?.[1] ?? '[]')).toMatchObject([{ Status: 'TIMED_OUT', Error: 'States.Timeout' }]);
  });
});
