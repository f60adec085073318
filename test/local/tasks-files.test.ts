/**
 * Batches of any size (issue 14), end to end on the local fleet, through
 * HTTP only: an upload (a presigned S3 PUT, checked by the local S3 as S3
 * checks it), a submit naming it, its validation in the file-jobs state
 * machine, the run, and the export. Then every bad input the issue lists:
 * each a clear 4xx, or a `failed` batch with its errors, and never another
 * batch touched.
 *
 * Presigned URLs: https://docs.aws.amazon.com/AmazonS3/latest/userguide/PresignedUrlUploadObject.html
 * If-Match on GetObject (the ETag guard): https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html
 */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { LOCAL_REGION } from '../../infra/local/template';
import { dynamo } from '../../lambdas/adapters/clients';
import { uploadKey } from '../../lambdas/adapters/table-layout';
import type { BatchStatus, TaskResult } from '../../lambdas/domain/types';
import { api, readAllResults, waitForBatch, waitUntil, type ApiErrorBody } from './helpers';

/** The deployer's own bucket, which batches may name as s3://… (FleetProps.tasksFileBuckets). */
const DATA_BUCKET = 'acme-fleet-data';
/** Small, so "more tasks than maxTasksPerBatch" needs a small file. */
const MAX_TASKS = 300;

let fleet: LocalFleet;
let url = '';
let s3: S3Client;

interface Upload {
  uploadId: string;
  url: string;
  method: string;
  expiresAt: string;
  maxBytes: number;
}
interface ExportAnswer {
  status: 'ready' | 'building';
  url?: string;
  results?: number;
  bytes?: number;
  resultsWritten?: number;
}

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1, maxTasksPerBatch: MAX_TASKS, fleetProps: { tasksFileBuckets: [DATA_BUCKET] } });
  url = fleet.url;
  s3 = new S3Client({ region: LOCAL_REGION, endpoint: fleet.endpoints.s3, forcePathStyle: true, credentials: fleet.credentials });
});

afterAll(async () => {
  (s3 as S3Client | undefined)?.destroy();
  await (fleet as LocalFleet | undefined)?.close();
});

const line = (id: string, extra: Record<string, unknown> = {}) => JSON.stringify({ id, type: 'echo', data: { id }, ...extra });
const linesOf = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => line(`${prefix}-${i}`)).join('\n');

async function createUpload(): Promise<Upload> {
  const created = await api<Upload>(url, 'POST', '/batches/uploads');
  expect(created.status, created.text).toBe(201);
  return created.body;
}

async function upload(text: string): Promise<Upload> {
  const target = await createUpload();
  const put = await fetch(target.url, { method: 'PUT', body: text });
  expect(put.status, await put.text()).toBe(200);
  return target;
}

const submitFile = (tasksFile: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  api<BatchStatus & ApiErrorBody>(url, 'POST', '/batches', { tasksFile, ...extra }, headers);

async function exportOf(batchId: string): Promise<ExportAnswer> {
  return waitUntil(async () => {
    const answer = await api<ExportAnswer>(url, 'GET', `/batches/${batchId}/results/export`);
    if (answer.status === 202) return undefined;
    expect(answer.status, answer.text).toBe(200);
    return answer.body;
  }, 120_000);
}

describe('the file path', () => {
  it('runs an uploaded file: 202 at once with the file validating, then the batch as any other, with every result exported', async () => {
    // Arrange: out of priority order, so the file is put in run order before it runs.
    const tasks = Array.from({ length: 250 }, (_, i) => ({ id: `f-${i}`, type: 'echo', data: { i }, priority: i % 4 }));
    const target = await upload(tasks.map((task) => JSON.stringify(task)).join('\n'));
    expect(target).toMatchObject({ method: 'PUT', maxBytes: 5 * 1024 ** 3 });
    expect(Date.parse(target.expiresAt)).toBeGreaterThan(Date.now());

    // Act
    const submitted = await submitFile(target.uploadId, { priority: 3 }, { 'idempotency-key': 'file-1' });
    const repeated = await submitFile(target.uploadId, { priority: 3 }, { 'idempotency-key': 'file-1' });
    const final = await waitForBatch(url, submitted.body.batchId);
    const exported = await exportOf(submitted.body.batchId);
    const download = await fetch(exported.url as string);
    const text = await download.text();
    const again = await exportOf(submitted.body.batchId);

    // Assert
    expect(submitted.status, submitted.text).toBe(202);
    expect(submitted.body).toMatchObject({ status: 'pending', totalTasks: 0, tasksFile: { state: 'validating', linesRead: 0 } });
    expect(repeated.status).toBe(200);
    expect(repeated.body.batchId).toBe(submitted.body.batchId);
    expect(final).toMatchObject({ status: 'completed', totalTasks: 250, completedTasks: 250, failedTasks: 0, tasksFile: { state: 'ready', linesRead: 250 } });
    expect(download.status).toBe(200);
    const lines = text.trim().split('\n').map((row) => JSON.parse(row) as TaskResult);
    const { results } = await readAllResults(url, submitted.body.batchId, 1000);
    expect(lines).toHaveLength(250);
    expect(new Set(lines.map((r) => r.taskId)).size).toBe(250);
    expect([...lines].sort((a, b) => a.taskId.localeCompare(b.taskId))).toEqual([...results].sort((a, b) => a.taskId.localeCompare(b.taskId)));
    expect(exported).toMatchObject({ status: 'ready', results: 250, bytes: Buffer.byteLength(text) });
    // Built once: the second answer is the same file.
    expect(again).toMatchObject({ results: 250, bytes: exported.bytes });
  });

  it('the same file uploaded again under the same Idempotency-Key (a retry from another process) names the same batch; another file under it is a 409', async () => {
    const text = linesOf(20, 'again');
    const first = await submitFile((await upload(text)).uploadId, {}, { 'idempotency-key': 'nightly-7' });
    const done = await waitForBatch(url, first.body.batchId);
    // The first upload is gone by now (its batch was prepared): the retry uploads the file anew.
    const retried = await submitFile((await upload(text)).uploadId, {}, { 'idempotency-key': 'nightly-7' });
    const other = await submitFile((await upload(linesOf(21, 'again'))).uploadId, {}, { 'idempotency-key': 'nightly-7' });

    expect(first.status, first.text).toBe(202);
    expect(done).toMatchObject({ status: 'completed', totalTasks: 20 });
    expect(retried.status, retried.text).toBe(200);
    expect(retried.body).toEqual(done);
    expect(other.status).toBe(409);
    expect(other.body.error.message).toContain('different request body');
  });

  it('runs an object of an allowed bucket, named s3://bucket/key, which stays in place', async () => {
    await s3.send(new PutObjectCommand({ Bucket: DATA_BUCKET, Key: 'inbox/nightly.jsonl', Body: linesOf(40, 's3') }));

    const submitted = await submitFile(`s3://${DATA_BUCKET}/inbox/nightly.jsonl`);
    const final = await waitForBatch(url, submitted.body.batchId);

    expect(submitted.status, submitted.text).toBe(202);
    expect(final).toMatchObject({ status: 'completed', totalTasks: 40, completedTasks: 40 });
    const again = await submitFile(`s3://${DATA_BUCKET}/inbox/nightly.jsonl`);
    expect(again.status, again.text).toBe(202);
    expect((await waitForBatch(url, again.body.batchId)).status).toBe('completed');
  });

  it('retry-failed runs a file batch\'s failed tasks again; a delete removes its export', async () => {
    const text = [line('ok-1'), JSON.stringify({ id: 'bad-1', type: 'fail', data: { message: 'nope' } }), line('ok-2')].join('\n');
    const submitted = await submitFile((await upload(text)).uploadId);
    const first = await waitForBatch(url, submitted.body.batchId);
    const exported = await exportOf(first.batchId);

    const retried = await api<{ mode: string; retriedTasks: number }>(url, 'POST', `/batches/${first.batchId}/retry-failed`);
    const second = await waitForBatch(url, first.batchId);
    const rebuilt = await exportOf(first.batchId);
    const rebuiltFile = await fetch(rebuilt.url as string);
    const rebuiltText = await rebuiltFile.text();
    const deleted = await api(url, 'DELETE', `/batches/${first.batchId}`);
    const gone = await fetch(rebuilt.url as string);

    expect(first).toMatchObject({ status: 'partial', totalTasks: 3, completedTasks: 2, failedTasks: 1 });
    expect(exported.results).toBe(3);
    expect(retried.status, retried.text).toBe(202);
    expect(retried.body).toMatchObject({ mode: 'execution', retriedTasks: 1 });
    expect(second).toMatchObject({ status: 'partial', completedTasks: 2, failedTasks: 1 });
    expect(second.completedAt).toBeGreaterThan(first.completedAt as number);
    // Finished again: its export is built again, with the retried task's new attempts.
    expect(rebuiltFile.status, rebuiltText).toBe(200);
    const failed = rebuiltText
      .trim()
      .split('\n')
      .map((row) => JSON.parse(row) as TaskResult)
      .find((r) => r.taskId === 'bad-1');
    expect(failed).toMatchObject({ success: false, error: expect.stringContaining('nope') });
    expect(deleted.status).toBe(200);
    expect(gone.status).toBe(404);
  });

  it('refuses an export before the batch has finished (409), and of an unknown batch (404)', async () => {
    const running = await api<BatchStatus>(url, 'POST', '/batches', { tasks: [{ id: 'slow', type: 'sleep', data: { ms: 2000 } }] });
    const early = await api<ApiErrorBody>(url, 'GET', `/batches/${running.body.batchId}/results/export`);
    const unknown = await api<ApiErrorBody>(url, 'GET', '/batches/no-such-batch/results/export');

    expect(early.status, early.text).toBe(409);
    expect(early.body.error.message).toContain('once it has finished');
    expect(unknown.status).toBe(404);
    await waitForBatch(url, running.body.batchId);
  });
});

describe('bad input: a clear 4xx naming tasksFile', () => {
  it('an unknown upload id', async () => {
    const answer = await submitFile('0b9e7a52-3c1d-4f7e-9a8b-1c2d3e4f5a6b');
    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ code: 'validation_error', field: 'tasksFile' });
    expect(answer.body.error.message).toContain('is unknown');
  });

  it('an upload id that is not one', async () => {
    const answer = await submitFile('../../etc/passwd');
    expect(answer.status).toBe(400);
    expect(answer.body.error.field).toBe('tasksFile');
  });

  it('an upload with no file PUT yet, and an empty one', async () => {
    const nothing = await createUpload();
    const empty = await upload('');

    const noFile = await submitFile(nothing.uploadId);
    const emptyFile = await submitFile(empty.uploadId);

    expect(noFile.status).toBe(400);
    expect(noFile.body.error.message).toContain('has no file yet');
    expect(emptyFile.status).toBe(400);
    expect(emptyFile.body.error.message).toContain('is an empty file');
  });

  it('an expired upload', async () => {
    const target = await upload(linesOf(3, 'late'));
    // Its hour passed: the upload's record says so (the URL's own expiry is the local S3's to refuse).
    const table = fleet.resources.tables[0]?.name as string;
    await dynamo().send(
      new UpdateCommand({ TableName: table, Key: uploadKey(target.uploadId), UpdateExpression: 'SET urlExpiresAt = :past', ExpressionAttributeValues: { ':past': Date.now() - 1000 } }),
    );

    const answer = await submitFile(target.uploadId);

    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ field: 'tasksFile', message: expect.stringContaining('expired') });
  });

  it('an upload already used by another batch (409), while the first batch runs untouched', async () => {
    const target = await upload(linesOf(5, 'once'));
    const first = await submitFile(target.uploadId);
    const second = await submitFile(target.uploadId);

    expect(first.status).toBe(202);
    expect(second.status).toBe(409);
    expect(second.body.error.message).toContain('already used by batch');
    expect(await waitForBatch(url, first.body.batchId)).toMatchObject({ status: 'completed', totalTasks: 5, completedTasks: 5 });
  });

  it('an s3:// object outside the allowed buckets, and one that does not exist', async () => {
    const outside = await submitFile(`s3://${fleet.resources.buckets[0]?.name}/batches/x/tasks.jsonl`);
    const missing = await submitFile(`s3://${DATA_BUCKET}/no/such.jsonl`);

    expect(outside.status).toBe(400);
    expect(outside.body.error).toMatchObject({ field: 'tasksFile', message: expect.stringContaining('which this fleet may not read') });
    expect(missing.status).toBe(400);
    expect(missing.body.error.message).toContain('does not exist');
  });

  it('tasks and tasksFile together', async () => {
    const answer = await api<ApiErrorBody>(url, 'POST', '/batches', { tasks: [{ id: 'a', type: 'echo' }], tasksFile: 's3://x/y' });
    expect(answer.status).toBe(400);
    expect(answer.body.error.field).toBe('tasksFile');
  });
});

describe('bad input: a failed batch, with errors naming line and field, before any task runs', () => {
  async function failedBatchOf(text: string): Promise<BatchStatus> {
    const target = await upload(text);
    const submitted = await submitFile(target.uploadId);
    expect(submitted.status, submitted.text).toBe(202);
    const final = await waitForBatch(url, submitted.body.batchId);
    expect(final).toMatchObject({ status: 'failed', totalTasks: 0, completedTasks: 0, failedTasks: 0, tasksFile: { state: 'invalid' } });
    // Nothing ran: no result exists.
    expect((await readAllResults(url, final.batchId)).results).toEqual([]);
    return final;
  }

  it('a file that is not JSON Lines (a JSON array; text)', async () => {
    const array = await failedBatchOf(JSON.stringify([{ id: 'a', type: 'echo' }, { id: 'b', type: 'echo' }]));
    const prose = await failedBatchOf('id,type\na,echo\n');

    expect(array.validationErrors).toEqual([{ line: 1, message: expect.stringContaining('is an array, not a task object') }]);
    expect(array.error).toContain('no task ran');
    expect(prose.validationErrors?.map((e) => e.line)).toEqual([1, 2]);
    expect(prose.validationErrors?.[0]?.message).toContain('is not valid JSON');
  });

  it('a line over the task size limit', async () => {
    const final = await failedBatchOf(`${line('ok')}\n${line('big', { data: 'x'.repeat(40_000) })}\n${line('ok2')}`);
    expect(final.validationErrors).toEqual([{ line: 2, message: expect.stringContaining('a task may be at most 32768 bytes') }]);
  });

  it('duplicate task ids, each named with the line it repeats', async () => {
    const final = await failedBatchOf([line('a'), line('b'), line('a'), line('c'), line('b')].join('\n'));
    expect(final.validationErrors).toEqual([
      { line: 3, field: 'id', message: 'duplicates the id "a" of line 1' },
      { line: 5, field: 'id', message: 'duplicates the id "b" of line 2' },
    ]);
  });

  it(`more tasks than maxTasksPerBatch (${MAX_TASKS} here)`, async () => {
    const final = await failedBatchOf(linesOf(MAX_TASKS + 1, 'many'));
    expect(final.validationErrors).toEqual([{ line: MAX_TASKS + 1, message: expect.stringContaining(`at most ${MAX_TASKS} tasks`) }]);
  });

  it('at most 100 errors kept, the rest counted', async () => {
    const final = await failedBatchOf(Array.from({ length: 250 }, (_, i) => `{"id":"e${i}","type":"9bad"}`).join('\n'));
    expect(final.validationErrors).toHaveLength(100);
    expect(final.validationErrors?.[0]).toEqual({ line: 1, field: 'type', message: expect.stringContaining('must start with a letter') });
    expect(final.validationErrorsTruncated).toBe(true);
  });

  it('a file changed after its batch was submitted (its ETag): the new content never runs', async () => {
    const target = await upload(linesOf(3, 'original'));
    // The validation waits until the file has been replaced through the same (still valid) URL.
    let replaced: Promise<void> | undefined;
    fleet.lambda.invokeFault = (_fn, payload) => {
      const event = payload as { action?: string };
      if (event.action !== 'prepare' || replaced) return undefined;
      replaced = fetch(target.url, { method: 'PUT', body: linesOf(3, 'tampered') }).then((put) => { expect(put.status).toBe(200); });
      return replaced;
    };
    try {
      const submitted = await submitFile(target.uploadId);
      const final = await waitForBatch(url, submitted.body.batchId);
      expect(final).toMatchObject({ status: 'failed', totalTasks: 0, tasksFile: { state: 'invalid' } });
      expect(final.error).toContain('changed after the batch was submitted');
      expect((await readAllResults(url, final.batchId)).results).toEqual([]);
    } finally {
      fleet.lambda.invokeFault = undefined;
    }
  });
});
