/**
 * Issue 7, item 4: lambdas/api.ts's handler fed a real API Gateway HTTP API
 * payload format 2.0 event (test/fixtures/apigw-v2-get-batch.json, the shape
 * documented at https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html,
 * with the IAM authorizer's context), with its module-scope AWS clients mocked.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BatchGetCommand, GetCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { COUNTER_SHARDS } from '../../lambdas/domain/batch';

const fixture = JSON.parse(
  readFileSync(path.join(import.meta.dirname, '../fixtures/apigw-v2-get-batch.json'), 'utf8'),
) as APIGatewayProxyEventV2;

const TABLE = 'FleetTable';
let handler: (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;
let ddb: ReturnType<typeof mockClient>;

beforeAll(async () => {
  // The variables the API's zod schema requires at cold start, as the stack sets them.
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.TABLE_NAME = TABLE;
  process.env.TASKS_BUCKET = 'fleet-tasks';
  process.env.STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:123456789012:stateMachine:Fleet';
  process.env.FILE_JOBS_STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:123456789012:stateMachine:FleetFileJobs';
  // The clients are built once, in clients.ts: mock those very instances before the handler module builds its adapters.
  const clients = await import('../../lambdas/adapters/clients');
  ddb = mockClient(clients.dynamo());
  mockClient(clients.sfn());
  mockClient(clients.s3());
  ({ handler } = await import('../../lambdas/api'));
});

afterEach(() => {
  ddb.reset();
});

describe('API handler on a payload format 2.0 event', () => {
  it('GET /batches/{id}: reads the record consistently, sums the shard counters, answers 200 JSON', async () => {
    // Arrange
    ddb.on(GetCommand).resolves({
      Item: { pk: 'BATCH#batch_01-a', sk: 'META', batchId: 'batch_01-a', status: 'processing', totalTasks: 10, createdAt: 1, startedAt: 2, tasksKey: 'batches/batch_01-a/tasks.jsonl', counterShards: 128 },
    });
    // The 128 counters come in two reads of at most 100 keys; two counters hold counts.
    ddb
      .on(BatchGetCommand)
      .resolvesOnce({ Responses: { [TABLE]: [{ completed: 3 }] } })
      .resolvesOnce({ Responses: { [TABLE]: [{ completed: 2, failed: 1 }] } });

    // Act
    const response = await handler(fixture);

    // Assert
    expect(response.statusCode).toBe(200);
    expect(response.headers?.['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(response.body ?? '')).toMatchObject({ batchId: 'batch_01-a', status: 'processing', completedTasks: 5, failedTasks: 1, totalTasks: 10 });
    const get = ddb.commandCalls(GetCommand)[0]?.args[0].input as { TableName?: string; Key?: unknown; ConsistentRead?: boolean };
    expect(get).toMatchObject({ TableName: TABLE, Key: { pk: 'BATCH#batch_01-a', sk: 'META' }, ConsistentRead: true });
    const keysRead = ddb
      .commandCalls(BatchGetCommand)
      .map((call) => (call.args[0].input as { RequestItems?: Record<string, { Keys: unknown[]; ConsistentRead?: boolean }> }).RequestItems?.[TABLE]);
    expect(keysRead.map((read) => read?.Keys.length)).toEqual([100, COUNTER_SHARDS - 100]);
    expect(keysRead.every((read) => read?.ConsistentRead === true)).toBe(true);
    expect(new Set(keysRead.flatMap((read) => read?.Keys.map((key) => JSON.stringify(key)))).size).toBe(COUNTER_SHARDS);
  });

  it('GET /batches/{id} of an unknown batch: 404 with a JSON error, no stack', async () => {
    ddb.on(GetCommand).resolves({});
    const response = await handler(fixture);
    expect(response.statusCode).toBe(404);
    const body = JSON.parse(response.body ?? '') as { error: { code: string; message: string } };
    expect(body.error.code).toBeTypeOf('string');
    expect(response.body).not.toMatch(/\bat .*\.ts:\d+/);
  });

  it('a DynamoDB failure answers 500 without leaking its message', async () => {
    ddb.on(GetCommand).rejects(new Error('secret internal detail'));
    // Powertools Logger writes its JSON lines to stderr (ERROR), not through the global console.
    const logged = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const response = await handler(fixture);
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toContain('secret internal detail');
    // The log keeps what the client does not see.
    expect(String(logged.mock.calls[0]?.[0])).toContain('secret internal detail');
    logged.mockRestore();
  });
});
