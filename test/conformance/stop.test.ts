/**
 * Stopping an execution whose Distributed Map is running: the Map Run stops
 * launching children and the execution ends at once. STANDARD children are
 * aborted with it; EXPRESS children are not, since StopExecution does not
 * apply to EXPRESS executions: a child waiting to retry still retries.
 *
 * Pages:
 * - STOP: https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html
 * - MAPRUN: https://docs.aws.amazon.com/step-functions/latest/dg/concepts-examine-map-run.html
 * - DISTRIBUTED: https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadDefinition } from '../../infra/local/asl/definition';
import { Interpreter, StatesError } from '../../infra/local/asl/interpreter';
import { FakeInvoker, LAMBDA_INVOKE, MemoryObjects, namedError, script, STATE_MACHINE_ARN, useFakeClock } from './harness';

const STOP = 'https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html';

const definition = (executionType: 'EXPRESS' | 'STANDARD') =>
  loadDefinition(
    JSON.stringify({
      StartAt: 'Run tasks',
      States: {
        'Run tasks': {
          Type: 'Map',
          ItemsPath: '$.items',
          ItemProcessor: {
            ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: executionType },
            StartAt: 'Run task',
            States: {
              'Run task': {
                Type: 'Task',
                Resource: LAMBDA_INVOKE,
                Parameters: { 'item.$': '$' },
                Retry: [{ ErrorEquals: ['Flaky'], IntervalSeconds: 10, MaxAttempts: 3, JitterStrategy: 'NONE' }],
                End: true,
              },
            },
          },
          End: true,
        },
      },
    }),
  );

/** Starts the execution and stops it 1 s in, while its one child waits 10 s to retry. */
async function stopDuringBackoff(executionType: 'EXPRESS' | 'STANDARD') {
  const invoker = new FakeInvoker(script(namedError('Flaky'), { ok: true }));
  const interpreter = new Interpreter({ invoker, objects: new MemoryObjects(), retryUnitMs: 1000 });
  const parent = new AbortController();
  const fleetStopping = new AbortController();
  const outcome = interpreter
    .run(definition(executionType), { items: [1] }, {
      executionArn: `${STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:batch`,
      executionName: 'batch',
      stateMachineArn: STATE_MACHINE_ARN,
      startTime: new Date().toISOString(),
      input: {},
      signal: parent.signal,
      detachedSignal: fleetStopping.signal,
    })
    .then(
      () => 'SUCCEEDED',
      (error: unknown) => (error as StatesError).error,
    );
  await vi.advanceTimersByTimeAsync(1000);
  expect(invoker.calls).toHaveLength(1);
  parent.abort(new StatesError('States.Aborted', 'the execution was stopped'));
  await vi.advanceTimersByTimeAsync(0);
  const ended = await Promise.race([outcome, Promise.resolve('still running')]);
  await vi.advanceTimersByTimeAsync(20_000);
  return { invoker, ended, fleetStopping };
}

beforeEach(useFakeClock);
afterEach(() => {
  vi.useRealTimers();
});

describe(`StopExecution on a parent with a Distributed Map (${STOP})`, () => {
  it('ends the parent at once and leaves an EXPRESS child waiting to retry running: it retries', async () => {
    const { invoker, ended } = await stopDuringBackoff('EXPRESS');
    expect(ended).toBe('States.Aborted');
    expect(invoker.calls).toHaveLength(2);
    expect(invoker.calls[1]?.at).toBe(Date.parse('2025-01-01T00:00:10.000Z'));
  });

  it('aborts a STANDARD child with its parent: it never retries', async () => {
    const { invoker, ended } = await stopDuringBackoff('STANDARD');
    expect(ended).toBe('States.Aborted');
    expect(invoker.calls).toHaveLength(1);
  });
});
