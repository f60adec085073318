/**
 * The local emulators serve the fleet and nobody else. Each one (dynalite for
 * DynamoDB, s3rver for S3, fauxqs for SQS, Fleet's own Step Functions
 * endpoint) must refuse, and be left unchanged by:
 * - an unsigned request (what a web page's fetch or a stray script sends),
 * - a request signed with this run's key id but a wrong secret,
 * - a request signed with any other key id,
 * - a request carrying an Origin (a page's), even one signed right, and a
 *   CORS preflight; no answer carries Access-Control-Allow-Origin;
 * and each listens on 127.0.0.1 alone. The fleet itself still runs a batch.
 *
 * The refusals are the ones each service gives on AWS:
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html (DynamoDB's JSON errors),
 * https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html (AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch: 403),
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html (MissingAuthenticationToken, InvalidClientTokenId: 403).
 */
import * as net from 'node:net';
import { DynamoDBClient, GetItemCommand, ListTablesCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { HeadObjectCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { DescribeExecutionCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { MiddlewareStack } from '@smithy/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { LOCAL_REGION } from '../../infra/local/template';
import type { BatchStatus } from '../../lambdas/domain/types';
import { api, waitForBatch } from './helpers';

let fleet: LocalFleet;
const clients: { destroy(): void }[] = [];

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1, sweepIntervalMs: 0 });
});
afterAll(async () => {
  for (const client of clients) client.destroy();
  await (fleet as LocalFleet | undefined)?.close();
});

type Credentials = { accessKeyId: string; secretAccessKey: string };
type Service = 'dynamodb' | 's3' | 'sqs' | 'stepFunctions';

function client<T extends { destroy(): void }>(make: () => T): T {
  const made = make();
  clients.push(made);
  return made;
}

/** An SDK client of `service` at the fleet's endpoint, signing with `credentials`; no retries, so a refusal is final. */
function sdk(service: 'dynamodb', credentials: Credentials): DynamoDBClient;
function sdk(service: 's3', credentials: Credentials): S3Client;
function sdk(service: 'sqs', credentials: Credentials): SQSClient;
function sdk(service: 'stepFunctions', credentials: Credentials): SFNClient;
function sdk(service: Service, credentials: Credentials): DynamoDBClient | S3Client | SQSClient | SFNClient {
  const config = { region: LOCAL_REGION, endpoint: fleet.endpoints[service], credentials, maxAttempts: 1 };
  if (service === 'dynamodb') return client(() => new DynamoDBClient(config));
  if (service === 's3') return client(() => new S3Client({ ...config, forcePathStyle: true }));
  if (service === 'sqs') return client(() => new SQSClient(config));
  return client(() => new SFNClient(config));
}

/** Adds an Origin header after the request is signed, as a page's script would have it (if it could sign at all). */
function withOrigin<C extends { middlewareStack: unknown }>(sdkClient: C): C {
  (sdkClient.middlewareStack as MiddlewareStack<object, object>).add(
    (next) => (args) => {
      (args.request as { headers: Record<string, string> }).headers.origin = 'https://evil.example';
      return next(args);
    },
    { step: 'deserialize', name: 'addOrigin' },
  );
  return sdkClient;
}

const wrongSecret = () => ({ accessKeyId: fleet.credentials.accessKeyId, secretAccessKey: 'not-the-secret-of-this-run-000000000000' });
const otherKey = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };

/** The SDK's error for a call: its name and HTTP status. */
async function refusal(call: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  try {
    await call;
  } catch (error) {
    const e = error as Error & { $metadata?: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata?.httpStatusCode };
  }
  throw new Error('the request was served');
}

/** A raw request, as a page or script without the credentials sends it. */
async function raw(service: Service, init: { method?: string; path?: string; headers?: Record<string, string>; body?: string } = {}) {
  const response = await fetch(`${fleet.endpoints[service]}${init.path ?? '/'}`, { method: init.method ?? 'POST', headers: init.headers, body: init.body });
  return { status: response.status, text: await response.text(), allowOrigin: response.headers.get('access-control-allow-origin') };
}

const CONFIG_KEY = { pk: { S: 'FLEET' }, sk: { S: 'CONFIG' } };

describe('local DynamoDB (dynalite)', () => {
  const updateMaxRetries = (value: number) =>
    new UpdateItemCommand({
      TableName: fleet.resources.tables[0]?.name,
      Key: CONFIG_KEY,
      UpdateExpression: 'SET maxRetries = :v',
      ExpressionAttributeValues: { ':v': { N: String(value) } },
    });

  it('refuses an unsigned UpdateItem from a page (Origin, text/plain) and an unsigned Scan, with no CORS header, and changes nothing', async () => {
    const before = await api<{ maxRetries: number }>(fleet.url, 'GET', '/config');
    const table = fleet.resources.tables[0]?.name ?? '';
    const fromPage = await raw('dynamodb', {
      headers: { origin: 'https://evil.example', 'content-type': 'text/plain', 'x-amz-target': 'DynamoDB_20120810.UpdateItem' },
      body: JSON.stringify({ TableName: table, Key: CONFIG_KEY, UpdateExpression: 'SET maxRetries = :v', ExpressionAttributeValues: { ':v': { N: '9' } } }),
    });
    expect(fromPage.status).toBe(403);
    expect(JSON.parse(fromPage.text)).toMatchObject({ __type: 'com.amazon.coral.service#AccessDeniedException' });
    expect(fromPage.allowOrigin).toBeNull();

    const scan = await raw('dynamodb', {
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.Scan' },
      body: JSON.stringify({ TableName: table }),
    });
    expect(scan.status).toBe(400);
    expect(JSON.parse(scan.text)).toMatchObject({ __type: 'com.amazon.coral.service#MissingAuthenticationTokenException' });
    expect(scan.text).not.toContain('FLEET');

    const preflight = await raw('dynamodb', {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-amz-target' },
    });
    expect(preflight.status).toBe(403);
    expect(preflight.allowOrigin).toBeNull();

    expect((await api<{ maxRetries: number }>(fleet.url, 'GET', '/config')).body.maxRetries).toBe(before.body.maxRetries);
  });

  it('refuses a wrong secret, another key id, and a right signature with an Origin; the item is unchanged', async () => {
    const before = await sdk('dynamodb', fleet.credentials).send(new GetItemCommand({ TableName: fleet.resources.tables[0]?.name, Key: CONFIG_KEY, ConsistentRead: true }));
    expect(await refusal(sdk('dynamodb', wrongSecret()).send(updateMaxRetries(9)))).toEqual({ name: 'InvalidSignatureException', status: 400 });
    expect(await refusal(sdk('dynamodb', otherKey).send(updateMaxRetries(9)))).toEqual({ name: 'UnrecognizedClientException', status: 400 });
    expect(await refusal(withOrigin(sdk('dynamodb', fleet.credentials)).send(updateMaxRetries(9)))).toEqual({ name: 'AccessDeniedException', status: 403 });
    const after = await sdk('dynamodb', fleet.credentials).send(new GetItemCommand({ TableName: fleet.resources.tables[0]?.name, Key: CONFIG_KEY, ConsistentRead: true }));
    expect(after.Item).toEqual(before.Item);
    // The right credentials, without an Origin, are served.
    expect((await sdk('dynamodb', fleet.credentials).send(new ListTablesCommand({}))).TableNames).toContain(fleet.resources.tables[0]?.name);
  });
});

describe('local S3 (s3rver)', () => {
  it('refuses to list buckets or write an object without the signature, with no CORS header, and nothing is written', async () => {
    const list = await raw('s3', { method: 'GET' });
    expect(list.status).toBe(403);
    expect(list.text).toContain('<Code>AccessDenied</Code>');
    expect(list.text).not.toContain('<Bucket>');
    const bucket = fleet.resources.buckets[0]?.name ?? '';
    const put = await raw('s3', { method: 'PUT', path: `/${bucket}/planted.jsonl`, headers: { origin: 'https://evil.example' }, body: '{"id":"x"}' });
    expect(put.status).toBe(403);
    expect(put.allowOrigin).toBeNull();
    expect(await refusal(sdk('s3', fleet.credentials).send(new HeadObjectCommand({ Bucket: bucket, Key: 'planted.jsonl' })))).toEqual({ name: 'NotFound', status: 404 });
  });

  it('refuses a wrong secret, another key id, and a right signature with an Origin', async () => {
    expect(await refusal(sdk('s3', wrongSecret()).send(new ListBucketsCommand({})))).toEqual({ name: 'SignatureDoesNotMatch', status: 403 });
    expect(await refusal(sdk('s3', otherKey).send(new ListBucketsCommand({})))).toEqual({ name: 'InvalidAccessKeyId', status: 403 });
    expect(await refusal(withOrigin(sdk('s3', fleet.credentials)).send(new ListBucketsCommand({})))).toEqual({ name: 'AccessDenied', status: 403 });
    const { Buckets } = await sdk('s3', fleet.credentials).send(new ListBucketsCommand({}));
    expect(Buckets?.map((b) => b.Name)).toEqual(expect.arrayContaining(fleet.resources.buckets.map((b) => b.name)));
  });
});

describe('local SQS (fauxqs)', () => {
  it('refuses an unsigned CreateQueue and its S3 listing, with no CORS header, and no queue appears', async () => {
    const create = await raw('sqs', {
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.CreateQueue', origin: 'https://evil.example' },
      body: JSON.stringify({ QueueName: 'planted' }),
    });
    expect(create.status).toBe(403);
    expect(create.allowOrigin).toBeNull();
    const unsigned = await raw('sqs', { headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.CreateQueue' }, body: JSON.stringify({ QueueName: 'planted' }) });
    expect(unsigned.status).toBe(403);
    expect(JSON.parse(unsigned.text)).toMatchObject({ __type: 'MissingAuthenticationToken' });
    const buckets = await raw('sqs', { method: 'GET' });
    expect(buckets.status).toBe(403);
    const { QueueUrls } = await sdk('sqs', fleet.credentials).send(new ListQueuesCommand({}));
    expect(QueueUrls?.length).toBe(fleet.resources.queues.length);
    expect(QueueUrls?.some((url) => url.endsWith('/planted'))).toBe(false);
  });

  it('refuses a wrong secret, another key id, and a right signature with an Origin', async () => {
    expect(await refusal(sdk('sqs', wrongSecret()).send(new ListQueuesCommand({})))).toEqual({ name: 'SignatureDoesNotMatch', status: 403 });
    expect(await refusal(sdk('sqs', otherKey).send(new ListQueuesCommand({})))).toEqual({ name: 'InvalidClientTokenId', status: 403 });
    expect(await refusal(withOrigin(sdk('sqs', fleet.credentials)).send(new ListQueuesCommand({})))).toEqual({ name: 'AccessDenied', status: 403 });
  });
});

describe("local Step Functions (Fleet's own endpoint)", () => {
  const start = () => new StartExecutionCommand({ stateMachineArn: fleet.resources.stateMachine.arn, name: 'planted', input: '{}' });

  it('refuses an unsigned StartExecution, wrong secrets, other keys and Origins; no execution starts', async () => {
    const unsigned = await raw('stepFunctions', {
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AWSStepFunctions.StartExecution' },
      body: JSON.stringify({ stateMachineArn: fleet.resources.stateMachine.arn, name: 'planted', input: '{}' }),
    });
    expect(unsigned.status).toBe(400);
    expect(JSON.parse(unsigned.text)).toMatchObject({ __type: 'com.amazon.coral.service#MissingAuthenticationTokenException' });
    expect(await refusal(sdk('stepFunctions', wrongSecret()).send(start()))).toEqual({ name: 'InvalidSignatureException', status: 400 });
    expect(await refusal(sdk('stepFunctions', otherKey).send(start()))).toEqual({ name: 'UnrecognizedClientException', status: 400 });
    expect(await refusal(withOrigin(sdk('stepFunctions', fleet.credentials)).send(start()))).toEqual({ name: 'AccessDeniedException', status: 403 });
    const executionArn = fleet.resources.stateMachine.arn.replace(':stateMachine:', ':execution:') + ':planted';
    expect((await refusal(sdk('stepFunctions', fleet.credentials).send(new DescribeExecutionCommand({ executionArn })))).name).toBe('ExecutionDoesNotExist');
  });
});

describe('binding and the fleet itself', () => {
  /** Whether a TCP connection to host:port is accepted. */
  const accepts = (host: string, port: number) =>
    new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port, timeout: 2_000 });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => { resolve(false); });
      socket.once('timeout', () => {
        socket.destroy();
        resolve(false);
      });
    });

  it.each(['dynamodb', 's3', 'sqs', 'stepFunctions'] as const)('%s listens on 127.0.0.1 only', async (service) => {
    const endpoint = new URL(fleet.endpoints[service]);
    expect(endpoint.hostname).toBe('127.0.0.1');
    expect(await accepts('127.0.0.1', Number(endpoint.port))).toBe(true);
    // Another loopback address of this machine: a server bound to every interface would accept it.
    expect(await accepts('127.0.0.2', Number(endpoint.port))).toBe(false);
  });

  it('runs a batch: the handlers sign with this run’s credentials', async () => {
    const tasks = Array.from({ length: 30 }, (_, i) => ({ id: `t${i}`, type: 'echo', data: { i } }));
    const submitted = await api<BatchStatus>(fleet.url, 'POST', '/batches', { tasks });
    expect(submitted.status).toBe(202);
    expect(await waitForBatch(fleet.url, submitted.body.batchId, 60_000)).toMatchObject({ status: 'completed', completedTasks: 30, failedTasks: 0 });
    expect(fleet.credentials.accessKeyId).not.toBe('S3RVER');
  });
});
