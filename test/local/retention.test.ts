/**
 * Summary, DELETE /batches/{id} and retention, end to end through HTTP on the
 * local fleet, checking the table and bucket underneath directly.
 *
 * One fleet for the file, with a 2-day retention (so expiry times are
 * checkable) and a sweeper every 200 ms (so a sweep is quick to observe).
 */
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand, PutCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { sweepExpired } from '../../infra/local/ttl-sweeper';
import { nearestRank } from '../../lambdas/domain/summary';
import type { BatchStatus, TaskResult } from '../../lambdas/domain/types';
import { api, listAllBatches, readAllResults, waitForBatch, type ApiErrorBody } from './helpers';
import { holdWorkers } from './hold-workers';
import type { BatchSummary } from '../../lambdas/domain/summary';

const RETENTION_DAYS = 2;
const SWEEP_INTERVAL_MS = 200;

let fleet: LocalFleet;
let url = '';
let table = '';
let bucket = '';
let ddb: DynamoDBDocumentClient;
let s3: S3Client;

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1, retentionDays: RETENTION_DAYS, sweepIntervalMs: SWEEP_INTERVAL_MS });
  url = fleet.url;
  table = fleet.resources.tables[0]!.name;
  // By name: the template has other buckets too (the access logs').
  bucket = fleet.resources.buckets.find((b) => b.logicalId.startsWith('FleetTasksBucket'))!.name;
  // The fleet put its endpoints and local credentials in process.env, as the handlers read them.
  const credentials = { accessKeyId: process.env.AWS_ACCESS_KEY_ID!, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY! };
  ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1', endpoint: process.env.AWS_ENDPOINT_URL_DYNAMODB, credentials }));
  s3 = new S3Client({ region: 'us-east-1', endpoint: process.env.AWS_ENDPOINT_URL_S3, forcePathStyle: true, credentials });
});

afterAll(async () => {
  (ddb as DynamoDBDocumentClient | undefined)?.destroy();
  (s3 as S3Client | undefined)?.destroy();
  await (fleet as LocalFleet | undefined)?.close();
});

interface SubmittedTask {
  id: string;
  type: string;
  data?: unknown;
}

async function submit(tasks: SubmittedTask[]): Promise<string> {
  const response = await api<BatchStatus>(url, 'POST', '/batches', { tasks });
  expect(response.status, response.text).toBe(202);
  return response.body.batchId;
}

async function runBatch(tasks: SubmittedTask[]): Promise<string> {
  const batchId = await submit(tasks);
  await waitForBatch(url, batchId);
  return batchId;
}

const echoTasks = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `e${i}`, type: 'echo', data: i }));

/** Every stored item of a batch: its record, counters and results (keys and expiresAt). */
async function itemsOf(batchId: string): Promise<{ pk: string; sk: string; expiresAt?: number }[]> {
  const items: { pk: string; sk: string; expiresAt?: number }[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await ddb.send(
      new ScanCommand({
        TableName: table,
        FilterExpression: 'pk = :meta OR begins_with(pk, :shards)',
        ExpressionAttributeValues: { ':meta': `BATCH#${batchId}`, ':shards': `BATCH#${batchId}#S` },
        ProjectionExpression: 'pk, sk, expiresAt',
        ExclusiveStartKey: start,
      }),
    );
    items.push(...((page.Items ?? []) as { pk: string; sk: string; expiresAt?: number }[]));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

async function tasksFileExists(batchId: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `batches/${batchId}/tasks.jsonl` }));
    return true;
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw error;
  }
}

async function expectGone(batchId: string): Promise<void> {
  for (const path of [`/batches/${batchId}`, `/batches/${batchId}/results`, `/batches/${batchId}/summary`]) {
    const response = await api<ApiErrorBody>(url, 'GET', path);
    expect(response.status, `GET ${path}: ${response.text}`).toBe(404);
    expect(response.body.error.code).toBe('not_found');
  }
  const { batches } = await listAllBatches(url);
  expect(batches.map((b) => b.batchId)).not.toContain(batchId);
}

/** Polls until `probe` holds; the timeout only stops a hang. */
async function waitUntil(probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('GET /batches/{id}/summary', () => {
  it('summarizes a batch with known sleep durations: exact counts, nearest-rank percentiles', async () => {
    // Arrange: 20 sleeps of 10, 20, ..., 200 ms and 2 tasks that fail at once
    const sleeps = Array.from({ length: 20 }, (_, i) => ({ id: `s${i + 1}`, type: 'sleep', data: { ms: 10 * (i + 1) } }));
    const fails = [1, 2].map((i) => ({ id: `f${i}`, type: 'fail', data: { message: 'planned' } }));
    const batchId = await runBatch([...sleeps, ...fails]);

    // Act
    const response = await api<BatchSummary>(url, 'GET', `/batches/${batchId}/summary`);

    // Assert: counts exactly
    expect(response.status, response.text).toBe(200);
    const summary = response.body;
    expect(summary).toMatchObject({ batchId, totalResults: 22, successCount: 20, failureCount: 2 });
    // Exactly what nearest-rank gives over the durations the results report
    const { results } = await readAllResults(url, batchId, 1000);
    const durations = results.map((r: TaskResult) => r.duration).sort((a, b) => a - b);
    expect(summary.averageDuration).toBeCloseTo(durations.reduce((sum, d) => sum + d, 0) / durations.length, 6);
    expect(summary.p50Duration).toBe(nearestRank(durations, 50));
    expect(summary.p95Duration).toBe(nearestRank(durations, 95));
    // And they cover the planned sleeps: rank 11 of 22 is the 9th sleep (90 ms), rank 21 the 19th (190 ms).
    // (How far above them a busy machine puts them is a figure of `npm run bench`, not a check.)
    expect(summary.p50Duration).toBeGreaterThanOrEqual(88);
    expect(summary.p95Duration).toBeGreaterThanOrEqual(188);
    expect(summary.averageDuration).toBeGreaterThanOrEqual(2100 / 22 - 2);
    // Each sleep's own result covers its own sleep.
    for (const result of results.filter((r) => r.taskId.startsWith('s'))) expect(result.duration).toBeGreaterThanOrEqual(10 * Number(result.taskId.slice(1)) - 2);
  });

  it('answers 404 for an unknown batch and 400 for a malformed id', async () => {
    const unknown = await api<ApiErrorBody>(url, 'GET', '/batches/no-such-batch/summary');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');

    const malformed = await api<ApiErrorBody>(url, 'GET', '/batches/bad%20id/summary');
    expect(malformed.status).toBe(400);
  });
});

describe('DELETE /batches/{id}', () => {
  it('removes a finished batch at once: record, counters, results and tasks file; other batches untouched', async () => {
    // Arrange
    const doomed = await runBatch(echoTasks(40));
    const kept = await runBatch(echoTasks(3));
    const keptItemsBefore = await itemsOf(kept);
    expect((await itemsOf(doomed)).length).toBeGreaterThan(40);
    expect(await tasksFileExists(doomed)).toBe(true);

    // Act
    const response = await api(url, 'DELETE', `/batches/${doomed}`);

    // Assert
    expect(response.status, response.text).toBe(200);
    expect(response.body).toEqual({ deleted: true });
    await expectGone(doomed);
    expect(await itemsOf(doomed)).toEqual([]);
    expect(await tasksFileExists(doomed)).toBe(false);
    // The other batch is whole.
    expect((await api<BatchStatus>(url, 'GET', `/batches/${kept}`)).body).toMatchObject({ status: 'completed', completedTasks: 3 });
    expect((await readAllResults(url, kept)).results).toHaveLength(3);
    expect(await itemsOf(kept)).toEqual(expect.arrayContaining(keptItemsBefore));
    expect((await itemsOf(kept)).length).toBe(keptItemsBefore.length);
    expect(await tasksFileExists(kept)).toBe(true);
    expect((await listAllBatches(url)).batches.map((b) => b.batchId)).toContain(kept);
    // Deleting again finds nothing.
    const again = await api<ApiErrorBody>(url, 'DELETE', `/batches/${doomed}`);
    expect(again.status).toBe(404);
  });

  it('answers 404 for an unknown batch and 400 for a malformed id', async () => {
    const unknown = await api<ApiErrorBody>(url, 'DELETE', '/batches/no-such-batch');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');

    expect((await api(url, 'DELETE', '/batches/bad%20id')).status).toBe(400);
  });

  it('refuses a running batch with 409 and deletes nothing; the batch finishes whole and keeps the retention it was given', async () => {
    // Arrange: a batch that runs for a while
    expect((await api(url, 'PATCH', '/config', { maxConcurrentWorkers: 2 })).status).toBe(200);
    // The first task runs; the others' workers are held until the checks below are done: the batch is
    // still running when the DELETE comes, by construction (10 rounds of 250 ms only made that likely).
    const workersHeld = holdWorkers(fleet, 1);
    let batchId: string;
    let response: Awaited<ReturnType<typeof api<ApiErrorBody>>>;
    let running: Record<string, unknown> | undefined;
    let fileKept: boolean;
    try {
      batchId = await submit(Array.from({ length: 20 }, (_, i) => ({ id: `t${i}`, type: 'sleep', data: { ms: 10 } })));
      await waitUntil(async () => (await api<BatchStatus>(url, 'GET', `/batches/${batchId}`)).body.completedTasks >= 1);

      // Act
      response = await api<ApiErrorBody>(url, 'DELETE', `/batches/${batchId}`);
      ({ Item: running } = await ddb.send(new GetCommand({ TableName: table, Key: { pk: `BATCH#${batchId}`, sk: 'META' } })));
      fileKept = await tasksFileExists(batchId);
    } finally {
      workersHeld.release();
    }

    // Assert: refused, with the way out in the message
    expect(response.status, response.text).toBe(409);
    expect(response.body.error.code).toBe('conflict');
    expect(response.body.error.message).toContain('cancel it first');
    // Nothing was deleted: the record (without an expiry while it runs), the tasks file, and every result to come.
    expect(running?.status).toBe('processing');
    expect(running?.expiresAt).toBeUndefined();
    expect(fileKept).toBe(true);
    const final = await waitForBatch(url, batchId);
    expect(final).toMatchObject({ status: 'completed', completedTasks: 20 });
    expect((await readAllResults(url, batchId)).results).toHaveLength(20);

    // The retentionDays option reached the handlers: the finished record and its results expire 2 days after they were written.
    const items = await itemsOf(batchId);
    const meta = items.find((item) => item.sk === 'META');
    expect(meta?.expiresAt).toBe(Math.floor(final.completedAt! / 1000 + RETENTION_DAYS * 86_400));
    const { results } = await readAllResults(url, batchId);
    for (const result of results) {
      const item = items.find((i) => i.sk === `RESULT#${result.taskId}`);
      expect(item?.expiresAt).toBe(Math.floor(result.timestamp / 1000 + RETENTION_DAYS * 86_400));
      // A result never outlives its batch's record.
      expect(item!.expiresAt!).toBeLessThanOrEqual(meta!.expiresAt!);
    }
    expect((await api(url, 'PATCH', '/config', { maxConcurrentWorkers: 10 })).status).toBe(200);
  });

  it('deletes a batch once it has been cancelled', async () => {
    // Arrange
    expect((await api(url, 'PATCH', '/config', { maxConcurrentWorkers: 1 })).status).toBe(200);
    // One at a time, 300 ms each: far from finished when it is cancelled (the cancel ends the wait).
    const batchId = await submit(Array.from({ length: 30 }, (_, i) => ({ id: `t${i}`, type: 'sleep', data: { ms: 300 } })));
    await waitUntil(async () => (await api<BatchStatus>(url, 'GET', `/batches/${batchId}`)).body.completedTasks >= 1);
    expect((await api(url, 'DELETE', `/batches/${batchId}`)).status).toBe(409);
    expect((await api(url, 'POST', `/batches/${batchId}/cancel`)).body).toEqual({ cancelled: true });
    // The task running when cancel returned still ends and records its result: as on AWS, a stopped
    // execution's EXPRESS children run on (infra/local/asl/interpreter.ts). Wait for the Map Run to stop
    // and for that last invocation to end.
    await waitUntil(async () => fleet.stepFunctions.list().find((e) => e.name === batchId)?.mapRuns.every((m) => m.stopDate !== undefined) ?? false);
    await waitUntil(async () => fleet.lambda.concurrentInvocations === 0);

    // Act
    const response = await api(url, 'DELETE', `/batches/${batchId}`);

    // Assert
    expect(response.status, response.text).toBe(200);
    await expectGone(batchId);
    expect(await itemsOf(batchId)).toEqual([]);
    expect(await tasksFileExists(batchId)).toBe(false);
    expect((await api(url, 'PATCH', '/config', { maxConcurrentWorkers: 10 })).status).toBe(200);
  });
});

describe('retention: the local TTL sweeper', () => {
  it('deletes a batch whose items have expired, on its timer, and leaves unexpired batches alone', async () => {
    // Arrange: two finished batches; then every item of one is made to expire 10 s ago.
    const expired = await runBatch(echoTasks(30));
    const fresh = await runBatch(echoTasks(5));
    const freshItems = await itemsOf(fresh);
    const past = Math.floor(Date.now() / 1000) - 10;
    const expiredItems = await itemsOf(expired);
    expect(expiredItems.length).toBeGreaterThan(30);
    for (const { pk, sk } of expiredItems) {
      await ddb.send(new UpdateCommand({ TableName: table, Key: { pk, sk }, UpdateExpression: 'SET expiresAt = :past', ExpressionAttributeValues: { ':past': past } }));
    }

    // Act: reads hide it at once, swept or not; the sweeper's timer deletes it within a few intervals.
    await expectGone(expired);
    await waitUntil(async () => (await itemsOf(expired)).length === 0, 20 * SWEEP_INTERVAL_MS);

    // Assert
    await expectGone(expired);
    expect(await itemsOf(fresh)).toEqual(expect.arrayContaining(freshItems));
    expect((await itemsOf(fresh)).length).toBe(freshItems.length);
    for (const item of freshItems) expect(item.expiresAt).toBeGreaterThan(Date.now() / 1000 + RETENTION_DAYS * 86_400 - 600);
    expect((await api<BatchStatus>(url, 'GET', `/batches/${fresh}`)).body.status).toBe('completed');
    expect((await readAllResults(url, fresh)).results).toHaveLength(5);
    expect((await api<BatchSummary>(url, 'GET', `/batches/${fresh}/summary`)).body).toMatchObject({ totalResults: 5, successCount: 5 });
    expect((await listAllBatches(url)).batches.map((b) => b.batchId)).toContain(fresh);
  });

  it('sweepExpired deletes exactly the items whose expiresAt is a number at or before now', async () => {
    // Arrange: a scratch table the fleet's own sweeper does not touch
    const scratch = 'ttl-sweeper-scratch';
    await ddb.send(
      new CreateTableCommand({
        TableName: scratch,
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    // dynalite answers CreateTable while the table is still CREATING.
    await waitUntil(async () => (await ddb.send(new DescribeTableCommand({ TableName: scratch }))).Table?.TableStatus === 'ACTIVE');
    const now = 1_800_000_000;
    const put = (pk: string, expiresAt?: unknown) =>
      ddb.send(new PutCommand({ TableName: scratch, Item: { pk, sk: 'X', ...(expiresAt === undefined ? {} : { expiresAt }) } }));
    // 60 expired (more than two BatchWrite groups), one of them exactly now
    for (let i = 0; i < 59; i++) await put(`old-${i}`, now - 1 - i);
    await put('now', now);
    // kept: in the future, a non-number TTL, no TTL
    for (let i = 0; i < 5; i++) await put(`future-${i}`, now + 1 + i);
    await put('string-ttl', String(now - 100));
    await put('no-ttl');

    // Act
    const result = await sweepExpired(ddb, scratch, now);

    // Assert
    expect(result.deleted).toBe(60);
    expect(result.scanned).toBe(67);
    const left = (await ddb.send(new ScanCommand({ TableName: scratch }))).Items ?? [];
    expect(left.map((item) => item.pk).sort()).toEqual(['future-0', 'future-1', 'future-2', 'future-3', 'future-4', 'no-ttl', 'string-ttl']);
    // A second sweep finds nothing more.
    expect((await sweepExpired(ddb, scratch, now)).deleted).toBe(0);
  });
});
