/**
 * GET /healthz tells the truth about the fleet's storage: 200 {"ok":true}
 * only when the table answers; 503 naming DynamoDB when it fails or hangs,
 * without the storage's error text reaching the client. The handler's
 * module-scope clients are mocked.
 */
import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { DynamoStorageHealth } from '../../lambdas/adapters/storage-health';
import { captureOutput, useHandlerEnvironment } from './handler-fixtures';

let handler: (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;
let ddb: ReturnType<typeof mockClient>;

const healthz = (): APIGatewayProxyEventV2 =>
  ({
    version: '2.0',
    routeKey: '$default',
    rawPath: '/healthz',
    rawQueryString: '',
    headers: {},
    requestContext: { http: { method: 'GET', path: '/healthz', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: '' }, requestId: 'r', routeKey: '$default', stage: '$default', time: '', timeEpoch: 0, accountId: '1', apiId: 'a', domainName: 'd', domainPrefix: 'd' },
    isBase64Encoded: false,
  });

beforeAll(async () => {
  useHandlerEnvironment({
    TASKS_BUCKET: 'fleet-tasks',
    STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:123456789012:stateMachine:Fleet',
    FILE_JOBS_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:123456789012:stateMachine:FleetFileJobs',
  });
  const clients = await import('../../lambdas/adapters/clients');
  ddb = mockClient(clients.dynamo());
  mockClient(clients.sfn());
  mockClient(clients.s3());
  ({ handler } = await import('../../lambdas/api'));
});

afterEach(() => {
  ddb.reset();
  vi.restoreAllMocks();
});

describe('GET /healthz', () => {
  it('answers 200 {"ok":true} when the table answers, after reading one small item', async () => {
    ddb.on(GetCommand).resolves({});
    const response = await handler(healthz());
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body ?? '')).toEqual({ ok: true });
    expect(ddb.commandCalls(GetCommand)[0]?.args[0].input).toMatchObject({ TableName: 'fleet', Key: { pk: 'FLEET', sk: 'CONFIG' }, ProjectionExpression: 'pk' });
  });

  it('answers 503 naming DynamoDB when the table cannot be reached; the reason goes to the log, not the client', async () => {
    const output = captureOutput();
    ddb.on(GetCommand).rejects(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4567'), { code: 'ECONNREFUSED' }));
    const response = await handler(healthz());
    expect(response.statusCode).toBe(503);
    const body = JSON.parse(response.body ?? '') as { ok: boolean; unavailable: string[]; error: { code: string; message: string } };
    expect(body).toMatchObject({ ok: false, unavailable: ['dynamodb'], error: { code: 'dependency_unavailable' } });
    expect(response.body).not.toContain('ECONNREFUSED');
    expect(output.join('\n')).toContain('ECONNREFUSED');
  });

  it('reports a table that hangs as unreachable: the check is bounded in time, not left waiting', async () => {
    // A client that answers only when its request is aborted, as a request to a frozen server does.
    let aborted = false;
    const hanging = {
      send: (_command: unknown, options: { abortSignal: AbortSignal }) =>
        new Promise((_, reject) => {
          options.abortSignal.addEventListener('abort', () => {
            aborted = true;
            reject(Object.assign(new Error('Request aborted'), { name: 'AbortError' }));
          });
        }),
    };
    const health = await new DynamoStorageHealth(hanging as unknown as DynamoDBDocumentClient, 'fleet', 20).check();
    expect(aborted).toBe(true);
    expect(health).toEqual({ reachable: false, reason: 'AbortError: Request aborted' });
  });
});
