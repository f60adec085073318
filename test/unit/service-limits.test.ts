/**
 * AWS service limits in local mode: each fails with AWS's own error, at the
 * point AWS fails it.
 *
 * Pages:
 * - LAMBDA_QUOTAS: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
 * - LAMBDA_INVOKE: https://docs.aws.amazon.com/lambda/latest/dg/API_Invoke.html
 * - SFN_LAMBDA_ERRORS: https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html
 * - SFN_QUOTAS: https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html#service-limits-api-action-throttling-general
 * - HTTP_API_QUOTAS: https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html
 * - HTTP_API_LAMBDA: https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-troubleshooting-lambda.html
 */
import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DescribeExecutionCommand, SFNClient, UpdateMapRunCommand } from '@aws-sdk/client-sfn';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiThrottle, SFN_API_QUOTAS } from '../../infra/local/api-throttle';
import { StatesError } from '../../infra/local/asl/interpreter';
import { FaultInjector } from '../../infra/local/faults';
import { API_GATEWAY_LIMITS, serveHttpApi, type ApiInvoker } from '../../infra/local/http-api';
import { LAMBDA_PAYLOAD_BYTES, LocalLambda } from '../../infra/local/lambda-runtime';
import { LocalStepFunctions, serveStepFunctions } from '../../infra/local/step-functions';
import type { LocalFunction } from '../../infra/local/template';
import { waitUntil } from '../local/helpers';

const LAMBDA_QUOTAS = 'https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html';
const LAMBDA_INVOKE = 'https://docs.aws.amazon.com/lambda/latest/dg/API_Invoke.html';
const SFN_LAMBDA_ERRORS = 'https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html';
const SFN_QUOTAS = 'https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html#service-limits-api-action-throttling-general';
const HTTP_API_QUOTAS = 'https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html';
const HTTP_API_LAMBDA = 'https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-troubleshooting-lambda.html';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const arnOf = (handler: string) => `arn:aws:lambda:us-east-1:000000000000:function:limits-${handler}`;
const fn = (handler: string): LocalFunction => ({
  logicalId: `Limits${handler}`,
  arn: arnOf(handler),
  entry: 'test/unit/fixtures/limit-handlers.ts',
  handler,
  timeoutSeconds: 30,
  environment: {},
});
const FUNCTIONS = [fn('echo'), fn('sized'), fn('gated')];
const INVOKE = 'arn:aws:states:::lambda:invoke';

/** The StatesError a promise rejects with (or undefined). */
const statesErrorOf = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => (error instanceof StatesError ? { error: error.error, cause: error.cause_ } : { error: `not a StatesError: ${String(error)}`, cause: '' }),
  );

/** A gate the `gated` handler waits on. */
function openableGate(): () => void {
  let open: () => void = () => undefined;
  (globalThis as { limitGate?: Promise<void> }).limitGate = new Promise<void>((resolve) => {
    open = resolve;
  });
  return open;
}

describe(`Lambda's 6 MB synchronous payloads (${LAMBDA_QUOTAS}, ${LAMBDA_INVOKE})`, () => {
  const lambda = new LocalLambda(FUNCTIONS, REPO_ROOT);

  it('is 6 MB = 6,291,456 bytes', () => {
    expect(LAMBDA_PAYLOAD_BYTES).toBe(6_291_456);
  });

  it('a request of exactly 6 MB of serialized JSON runs; one byte more is refused with Lambda.RequestTooLargeException before the function runs', async () => {
    // {"s":"xxx…"} is the string plus 8 bytes.
    const atLimit = { s: 'x'.repeat(LAMBDA_PAYLOAD_BYTES - 8) };
    expect(Buffer.byteLength(JSON.stringify(atLimit))).toBe(LAMBDA_PAYLOAD_BYTES);
    // echo answers with its event: a 6 MB request and a 6 MB response, both allowed.
    await expect(lambda.invoke(INVOKE, { FunctionName: arnOf('echo'), Payload: atLimit })).resolves.toMatchObject({ StatusCode: 200, Payload: { s: atLimit.s } });
    const refused = await statesErrorOf(lambda.invoke(INVOKE, { FunctionName: arnOf('echo'), Payload: { s: `${atLimit.s}x` } }));
    expect(refused?.error).toBe('Lambda.RequestTooLargeException');
    expect(refused?.cause).toContain(`smaller than ${LAMBDA_PAYLOAD_BYTES} bytes`);
    expect(refused?.cause).toContain('Status Code: 413; Error Code: RequestTooLargeException');
  });

  it('measures the request as Lambda does, escaped: 3.2 MB of quotes is a 6.4 MB request', async () => {
    const quotes = '"'.repeat(3_200_000);
    expect(Buffer.byteLength(quotes)).toBeLessThan(LAMBDA_PAYLOAD_BYTES);
    expect((await statesErrorOf(lambda.invokeFunction(arnOf('echo'), { quotes })))?.error).toBe('Lambda.RequestTooLargeException');
  });

  it('a response over 6 MB fails the invocation with Function.ResponseSizeTooLarge; one at 6 MB is returned', async () => {
    // A string's JSON is its length plus the two quotes.
    await expect(lambda.invokeFunction(arnOf('sized'), { bytes: LAMBDA_PAYLOAD_BYTES - 2 })).resolves.toHaveLength(LAMBDA_PAYLOAD_BYTES - 2);
    const failed = await statesErrorOf(lambda.invoke(INVOKE, { FunctionName: arnOf('sized'), Payload: { bytes: LAMBDA_PAYLOAD_BYTES - 1 } }));
    expect(failed?.error).toBe('Function.ResponseSizeTooLarge');
    expect(JSON.parse(failed?.cause ?? '{}')).toMatchObject({ errorType: 'Function.ResponseSizeTooLarge', errorMessage: expect.stringContaining('exceeded maximum allowed payload size') });
  });
});

describe(`Lambda's account concurrency (${LAMBDA_QUOTAS}, ${SFN_LAMBDA_ERRORS})`, () => {
  it('defaults to 1,000 concurrent executions', async () => {
    const lambda = new LocalLambda(FUNCTIONS, REPO_ROOT);
    const open = openableGate();
    const running = Array.from({ length: 1000 }, () => lambda.invokeFunction(arnOf('gated'), {}));
    await waitUntil(() => (lambda.concurrentInvocations === 1000 ? true : undefined), 30_000);
    expect((await statesErrorOf(lambda.invokeFunction(arnOf('echo'), {})))?.error).toBe('Lambda.TooManyRequestsException');
    open();
    await Promise.all(running);
  });

  it('beyond the limit, across all functions, an invoke fails with Lambda.TooManyRequestsException and the function does not run; freed, it runs again', async () => {
    const lambda = new LocalLambda(FUNCTIONS, REPO_ROOT, { concurrencyLimit: 2 });
    const open = openableGate();
    const first = lambda.invokeFunction(arnOf('gated'), {});
    const second = lambda.invoke(INVOKE, { FunctionName: arnOf('gated'), Payload: {} });
    await waitUntil(() => (lambda.concurrentInvocations === 2 ? true : undefined), 10_000);

    const throttled = await statesErrorOf(lambda.invoke(INVOKE, { FunctionName: arnOf('echo'), Payload: {} }));
    expect(throttled?.error).toBe('Lambda.TooManyRequestsException');
    expect(throttled?.cause).toContain('ConcurrentInvocationLimitExceeded');
    expect(throttled?.cause).toMatch(/\(Service: AWSLambda; Status Code: 429; Error Code: TooManyRequestsException; Request ID: [0-9a-f-]{36}; Proxy: null\)$/);
    expect(lambda.concurrentInvocations).toBe(2);

    open();
    await Promise.all([first, second]);
    expect(lambda.concurrentInvocations).toBe(0);
    await expect(lambda.invoke(INVOKE, { FunctionName: arnOf('echo'), Payload: { again: true } })).resolves.toMatchObject({ Payload: { again: true } });
  });

  it('refuses a limit that is not a positive whole number', () => {
    expect(() => new LocalLambda(FUNCTIONS, REPO_ROOT, { concurrencyLimit: 0 })).toThrow(/positive whole number/);
  });
});

describe(`Lambda's transient errors, injected (${SFN_LAMBDA_ERRORS})`, () => {
  it('Step Functions\' invokes fail with Lambda.ServiceException or Lambda.TooManyRequestsException at the given rate, and the function does not run', async () => {
    const faults = new FaultInjector({ rates: { lambda: 1 }, seed: 3 });
    const lambda = new LocalLambda(FUNCTIONS, REPO_ROOT, { faults });
    const seen = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const open = openableGate();
      seen.add((await statesErrorOf(lambda.invoke(INVOKE, { FunctionName: arnOf('gated'), Payload: {} })))?.error ?? 'ran');
      open();
    }
    expect([...seen].sort()).toEqual(['Lambda.ServiceException', 'Lambda.TooManyRequestsException']);
    expect(faults.injected.lambda).toBe(40);
  });
});

describe(`Step Functions API throttling (${SFN_QUOTAS})`, () => {
  it('uses the documented buckets of US East (N. Virginia), US West (Oregon) and Europe (Ireland)', () => {
    expect(SFN_API_QUOTAS).toMatchObject({
      StartExecution: { bucketSize: 1300, refillPerSecond: 300 },
      DescribeExecution: { bucketSize: 300, refillPerSecond: 15 },
      StopExecution: { bucketSize: 1000, refillPerSecond: 200 },
      DescribeMapRun: { bucketSize: 200, refillPerSecond: 1 },
      UpdateMapRun: { bucketSize: 100, refillPerSecond: 1 },
    });
  });

  it.each(['StartExecution', 'DescribeExecution', 'StopExecution', 'DescribeMapRun', 'UpdateMapRun'])(
    '%s: a full bucket admits its size at once, then nothing until it refills at its rate',
    (action) => {
      let now = 0;
      const throttle = new ApiThrottle(SFN_API_QUOTAS, () => now);
      const quota = SFN_API_QUOTAS[action]!;
      let admitted = 0;
      while (throttle.admit(action)) admitted++;
      expect(admitted).toBe(quota.bucketSize);
      now += 1000;
      let refilled = 0;
      while (throttle.admit(action)) refilled++;
      expect(refilled).toBe(quota.refillPerSecond);
    },
  );

  const servers: { close: () => Promise<void> }[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  const endpoint = async (options: Parameters<typeof serveStepFunctions>[1]) => {
    const lambda = new LocalLambda(FUNCTIONS, REPO_ROOT);
    const service = new LocalStepFunctions({ invoker: lambda, objects: { getSize: async () => 0, getText: async () => '', putText: async () => undefined } });
    const served = await serveStepFunctions(service, options);
    servers.push(served);
    return new SFNClient({ region: 'us-east-1', endpoint: served.url, credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 1 });
  };

  it('the call over the bucket gets ThrottlingException through the real SFN client; the calls before it are served', async () => {
    let now = 0;
    const client = await endpoint({ throttle: new ApiThrottle(SFN_API_QUOTAS, () => now) });
    const names: string[] = [];
    for (let i = 0; i < 101; i++) {
      names.push(await client.send(new UpdateMapRunCommand({ mapRunArn: `arn:aws:states:us-east-1:000000000000:mapRun:x/y:${i}`, maxConcurrency: 1 })).then(() => 'ok', (e: unknown) => (e as Error).name));
    }
    // Served (no such Map Run) until the bucket of 100 is empty.
    expect(names.slice(0, 100).every((n) => n === 'ResourceNotFound')).toBe(true);
    expect(names[100]).toBe('ThrottlingException');
    now += 1000;
    await expect(client.send(new UpdateMapRunCommand({ mapRunArn: 'arn:aws:states:us-east-1:000000000000:mapRun:x/y:z', maxConcurrency: 1 }))).rejects.toMatchObject({
      name: 'ResourceNotFound',
    });
    client.destroy();
  });

  it('injected faults (FLEET_FAULTS sfn=…) are ThrottlingException too', async () => {
    const client = await endpoint({ faults: new FaultInjector({ rates: { sfn: 1 }, seed: 9 }) });
    await expect(client.send(new DescribeExecutionCommand({ executionArn: 'arn:aws:states:us-east-1:000000000000:execution:m:e' }))).rejects.toMatchObject({
      name: 'ThrottlingException',
      $metadata: { httpStatusCode: 400 },
    });
    client.destroy();
  });
});

describe(`API Gateway HTTP API (${HTTP_API_QUOTAS}, ${HTTP_API_LAMBDA})`, () => {
  const servers: http.Server[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => { resolve(); }))));
  });

  const serve = async (invoke: ApiInvoker, integrationTimeoutMs?: number) => {
    const server = serveHttpApi({ invoke, ...(integrationTimeoutMs ? { integrationTimeoutMs } : {}) });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  const ok: ApiInvoker = async (event) => ({ statusCode: 200, body: String(event.body?.length ?? 0) });

  it('has a 10 MB payload quota and a 30 s integration timeout', () => {
    expect(API_GATEWAY_LIMITS).toEqual({ payloadBytes: 10 * 1024 * 1024, integrationTimeoutMs: 30_000 });
  });

  it('a body over 10 MB gets 413 {"message":"Request Entity Too Large"} from API Gateway; the function is not invoked', async () => {
    let invoked = 0;
    const url = await serve(async (event) => {
      invoked++;
      return ok(event);
    });
    const response = await fetch(`${url}/batches`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(API_GATEWAY_LIMITS.payloadBytes + 1) });
    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({ message: 'Request Entity Too Large' });
    expect(invoked).toBe(0);
  });

  it('an integration still running after the timeout gets 503 {"message":"Service Unavailable"}', async () => {
    let release: () => void = () => undefined;
    const blocked = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = false;
    const url = await serve(async (event) => {
      started = true;
      await blocked;
      return ok(event);
    }, 50);
    const response = await fetch(`${url}/healthz`);
    expect(started).toBe(true);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ message: 'Service Unavailable' });
    release();
  });

  it('an event over Lambda\'s 6 MB (a 5.2 MB body of quotes, escaped into the event) fails the invoke: API Gateway answers 500 {"message":"Internal Server Error"}', async () => {
    const lambda = new LocalLambda(FUNCTIONS, REPO_ROOT);
    const url = await serve((event: APIGatewayProxyEventV2) => lambda.invokeFunction(arnOf('echo'), event) as Promise<APIGatewayProxyStructuredResultV2>);
    const body = JSON.stringify({ tasks: [{ id: 'a', type: 'echo', data: '"'.repeat(2_600_000) }] });
    expect(Buffer.byteLength(body)).toBeLessThan(LAMBDA_PAYLOAD_BYTES);
    const response = await fetch(`${url}/batches`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ message: 'Internal Server Error' });
  });
});
