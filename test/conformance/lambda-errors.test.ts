/**
 * Lambda failures as Step Functions reports them, through LocalLambda (the
 * invoker local mode uses) and the interpreter: the error name is the
 * function's errorType (error.name in Node.js), the Cause is the function's
 * error JSON, and a function timeout is a task failure, not States.Timeout.
 *
 * Pages:
 * - LAMBDA_ERRORS: https://docs.aws.amazon.com/lambda/latest/dg/nodejs-exceptions.html
 * - TUTORIAL: https://docs.aws.amazon.com/step-functions/latest/dg/tutorial-handling-error-conditions.html
 * - ERRORS: https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
 * - CONNECT_LAMBDA: https://docs.aws.amazon.com/step-functions/latest/dg/connect-lambda.html
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LocalLambda } from '../../infra/local/lambda-runtime';
import type { LocalFunction } from '../../infra/local/template';
import { CONNECT_LAMBDA, ERRORS, execute, LAMBDA_ERRORS, taskMachine, TUTORIAL } from './harness';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const arnOf = (handler: string) => `arn:aws:lambda:us-east-1:000000000000:function:conformance-${handler}`;
const fn = (handler: string, timeoutSeconds = 3): LocalFunction => ({
  logicalId: `Conformance${handler}`,
  arn: arnOf(handler),
  entry: 'test/conformance/fixtures/lambda-handlers.ts',
  handler,
  timeoutSeconds,
  environment: {},
});
const lambda = new LocalLambda([fn('echo'), fn('flaky'), fn('permanent'), fn('plain'), fn('slow', 1), fn('nothing')], REPO_ROOT);

/** A Task state invoking `handler` through the lambda:invoke integration. */
const invoking = (handler: string, task: Record<string, unknown> = {}, extraStates: Record<string, unknown> = {}, payload: unknown = { 'input.$': '$' }) =>
  taskMachine({ Parameters: { FunctionName: arnOf(handler), Payload: payload }, ...task }, extraStates);

describe(`lambda:invoke through LocalLambda (${CONNECT_LAMBDA})`, () => {
  it('returns {ExecutedVersion, Payload, StatusCode: 200}, the Payload being what the function returned after a JSON round trip', async () => {
    const outcome = await execute(invoking('echo'), { id: 't-1' }, { invoker: lambda });

    expect(outcome).toEqual({
      status: 'SUCCEEDED',
      output: { ExecutedVersion: '$LATEST', StatusCode: 200, Payload: { input: { id: 't-1' }, at: '2025-01-01T00:00:00.000Z' } },
    });
  });

  it('a function returning nothing gives Payload null', async () => {
    expect(await execute(invoking('nothing'), {}, { invoker: lambda })).toMatchObject({ status: 'SUCCEEDED', output: { Payload: null } });
  });

  it('an unknown function fails with Lambda.ResourceNotFoundException', async () => {
    const definition = taskMachine({ Parameters: { FunctionName: arnOf('missing'), Payload: {} } });

    expect(await execute(definition, {}, { invoker: lambda })).toMatchObject({ status: 'FAILED', error: 'Lambda.ResourceNotFoundException' });
  });
});

describe(`Lambda error names (${LAMBDA_ERRORS}, ${TUTORIAL}, ${ERRORS})`, () => {
  it('a thrown error\'s name is the Step Functions error name, and the Cause is the function error JSON {errorType, errorMessage}', async () => {
    const outcome = await execute(invoking('permanent'), {}, { invoker: lambda });

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'TaskFailed' });
    const cause = JSON.parse(outcome.status === 'FAILED' ? outcome.cause : '{}') as Record<string, unknown>;
    expect(cause).toMatchObject({ errorType: 'TaskFailed', errorMessage: 'no retry can fix this' });
  });

  it('a plain Error is reported as "Error" and caught by States.ALL into $.error (Fleet\'s "Run task" → "Record failure")', async () => {
    const definition = invoking('plain', { Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Record failure' }] }, { 'Record failure': { Type: 'Succeed' } });

    const outcome = await execute(definition, { batchId: 'b' }, { invoker: lambda });

    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { batchId: 'b', error: { Error: 'Error' } } });
    const error = (outcome as { output: { error: { Cause: string } } }).output.error;
    expect(JSON.parse(error.Cause)).toMatchObject({ errorType: 'Error', errorMessage: 'something broke' });
  });

  it('a retrier naming the error class retries it, with $$.State.RetryCount as the attempt number (Fleet\'s TaskAttemptFailed)', async () => {
    const definition = invoking(
      'flaky',
      {
        Retry: [{ ErrorEquals: ['TaskAttemptFailed'], IntervalSeconds: 1, BackoffRate: 2, MaxAttempts: 10, MaxDelaySeconds: 60, JitterStrategy: 'FULL' }],
        ResultSelector: { 'taskId.$': '$.Payload.taskId', 'success.$': '$.Payload.success', 'attempt.$': '$.Payload.attempt' },
      },
      {},
      { 'attempt.$': '$$.State.RetryCount', succeedOnAttempt: 2 },
    );

    const outcome = await execute(definition, {}, { invoker: lambda, retryUnitMs: 1 });

    expect(outcome).toEqual({ status: 'SUCCEEDED', output: { taskId: 't-1', success: true, attempt: 2 } });
  });

  it('a catcher naming the error class catches it; ResultPath null keeps the input (Fleet\'s TaskFailed → "Failure recorded")', async () => {
    const definition = invoking(
      'permanent',
      {
        Retry: [{ ErrorEquals: ['TaskAttemptFailed'], MaxAttempts: 10 }],
        Catch: [
          { ErrorEquals: ['TaskFailed'], ResultPath: null, Next: 'Failure recorded' },
          { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Record failure' },
        ],
      },
      { 'Failure recorded': { Type: 'Succeed' }, 'Record failure': { Type: 'Pass', Result: 'wrong catcher', End: true } },
    );

    expect(await execute(definition, { batchId: 'b', task: { id: 't' } }, { invoker: lambda })).toEqual({
      status: 'SUCCEEDED',
      output: { batchId: 'b', task: { id: 't' } },
    });
  });

  it('a function timeout fails the task with Sandbox.Timedout: a task failure (States.TaskFailed), not States.Timeout', async () => {
    const definition = invoking(
      'slow',
      {
        Catch: [
          { ErrorEquals: ['States.Timeout'], Next: 'Timeout' },
          { ErrorEquals: ['States.TaskFailed'], ResultPath: '$.error', Next: 'TaskFailed' },
        ],
      },
      { Timeout: { Type: 'Pass', Result: 'wrong catcher', End: true }, TaskFailed: { Type: 'Succeed' } },
    );

    const outcome = await execute(definition, {}, { invoker: lambda });

    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { error: { Error: 'Sandbox.Timedout' } } });
    const error = (outcome as { output: { error: { Cause: string } } }).output.error;
    expect(JSON.parse(error.Cause)).toMatchObject({ errorMessage: expect.stringContaining('Task timed out after 1.00 seconds') });
  });
});
