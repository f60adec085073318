/**
 * A second opinion where one exists: aws-local-stepfunctions (an independent
 * ASL interpreter) runs the same small definitions, shaped like Fleet's "Run
 * task" child (Task + Retry + Catch, ResultSelector, ResultPath), with the same
 * scripted task results, and both must end with the same output or error.
 * It is only trusted where it is faithful: no $$ context values, no Map.
 *
 * Semantics asserted elsewhere from
 * https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { FakeInvoker, LAMBDA_INVOKE, execute, namedError, type Outcome } from './harness';

type Step = unknown;
type StateMachineClass = new (
  definition: unknown,
  options?: { validationOptions?: { checkPaths?: boolean; checkArn?: boolean } },
) => {
  run: (
    input: unknown,
    options?: { overrides?: { taskResourceLocalHandlers?: Record<string, (input: unknown) => unknown>; retryIntervalOverrides?: Record<string, number> } },
  ) => { result: Promise<unknown> };
};

let StateMachine: StateMachineClass;

beforeAll(async () => {
  // aws-local-stepfunctions 3 calls Promise.withResolvers, which Node 20 lacks.
  const promise = Promise as unknown as { withResolvers?: () => unknown };
  promise.withResolvers ??= () => {
    let resolve: unknown;
    let reject: unknown;
    const p = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise: p, resolve, reject };
  };
  ({ StateMachine } = (await import('aws-local-stepfunctions')) as unknown as { StateMachine: StateMachineClass });
});

/** One scripted task: each call takes the next step (an Error is thrown); the last repeats. */
const scripted = (steps: Step[]) => {
  let index = 0;
  return (input: unknown): unknown => {
    const step = steps[Math.min(index++, steps.length - 1)];
    if (step instanceof Error) throw step;
    return typeof step === 'function' ? (step as (input: unknown) => unknown)(input) : step;
  };
};

async function theirs(definition: object, input: unknown, steps: Step[]): Promise<Outcome> {
  // A JSON copy: its validator (asl-validator) writes QueryLanguage into every state it checks.
  const copy = JSON.parse(JSON.stringify(definition)) as unknown;
  const machine = new StateMachine(copy, { validationOptions: { checkArn: true, checkPaths: true } });
  try {
    const output = await machine.run(input, {
      overrides: { taskResourceLocalHandlers: { 'Run task': scripted(steps) }, retryIntervalOverrides: { 'Run task': 0 } },
    }).result;
    return { status: 'SUCCEEDED', output };
  } catch (error) {
    const cause = (error as { cause?: { name: string; message: string } }).cause;
    return { status: 'FAILED', error: cause?.name ?? 'unknown', cause: cause?.message ?? String(error) };
  }
}

const ours = (definition: object, input: unknown, steps: Step[]) => {
  const handler = scripted(steps);
  return execute(definition, input, { invoker: new FakeInvoker((parameters) => handler(parameters)), retryUnitMs: 0 });
};

/** Fleet's child, minus the $$ values aws-local-stepfunctions lacks. */
const child = {
  StartAt: 'Run task',
  States: {
    'Run task': {
      Type: 'Task',
      Resource: LAMBDA_INVOKE,
      Parameters: { FunctionName: 'worker', Payload: { 'batchId.$': '$.batchId', 'task.$': '$.task' } },
      ResultSelector: { 'taskId.$': '$.Payload.taskId', 'success.$': '$.Payload.success' },
      Retry: [
        { ErrorEquals: ['TaskAttemptFailed'], IntervalSeconds: 1, MaxAttempts: 3, BackoffRate: 2, MaxDelaySeconds: 60, JitterStrategy: 'FULL' },
        { ErrorEquals: ['Lambda.ServiceException', 'Lambda.TooManyRequestsException'], IntervalSeconds: 1, MaxAttempts: 2, BackoffRate: 2 },
      ],
      Catch: [
        { ErrorEquals: ['TaskFailed'], ResultPath: null, Next: 'Failure recorded' },
        { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Record failure' },
      ],
      End: true,
    },
    'Failure recorded': { Type: 'Succeed' },
    'Record failure': { Type: 'Pass', Parameters: { 'recorded.$': '$.error', 'taskId.$': '$.task.id' }, End: true },
  },
};

const ok = { Payload: { taskId: 't-1', success: true, extra: 'dropped' }, StatusCode: 200 };
const input = { batchId: 'b-1', task: { id: 't-1', type: 'echo' } };

const SCENARIOS: [string, Step[]][] = [
  ['succeeds at once', [ok]],
  ['succeeds after two retried TaskAttemptFailed', [namedError('TaskAttemptFailed'), namedError('TaskAttemptFailed'), ok]],
  ['exhausts the TaskAttemptFailed retrier, then is caught by States.ALL', [namedError('TaskAttemptFailed', 'still failing')]],
  ['fails for good with TaskFailed: caught, input kept', [namedError('TaskFailed', 'permanent')]],
  ['fails with an unlisted error: caught into $.error', [namedError('TypeError', 'x is undefined')]],
  ['retries Lambda.TooManyRequestsException on its own retrier, then succeeds', [namedError('Lambda.TooManyRequestsException'), ok]],
  ['mixes the two retriers, each with its own count', [namedError('Lambda.ServiceException'), namedError('TaskAttemptFailed'), namedError('Lambda.ServiceException'), ok]],
];

describe('the local runner and aws-local-stepfunctions agree on Task + Retry + Catch', () => {
  it.each(SCENARIOS)('%s', async (_what, steps) => {
    const [mine, other] = await Promise.all([ours(child, input, steps), theirs(child, input, steps)]);

    expect(mine).toEqual(other);
  });

  it('agree on the error when nothing catches it', async () => {
    const { Catch: _catch, ...runTask } = child.States['Run task'];
    const uncaught = { StartAt: 'Run task', States: { 'Run task': runTask } };
    const steps = [namedError('TaskAttemptFailed', 'gave up')];

    const [mine, other] = await Promise.all([ours(uncaught, input, steps), theirs(uncaught, input, steps)]);

    expect(mine).toEqual({ status: 'FAILED', error: 'TaskAttemptFailed', cause: 'gave up' });
    expect(other).toEqual(mine);
  });
});
