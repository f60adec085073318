/**
 * FleetClient's file paths (issue 14): the inline-or-upload choice, the
 * streamed PUT of a tasks file with its retries, and the results export and
 * its streamed download. Run against test/unit/fake-files-api.ts, an
 * in-process stand-in that follows the issue-14 contract and S3's answers.
 *
 * S3 behaviours relied on, from the AWS documentation:
 * - a PUT needs Content-Length, else 411 MissingContentLength:
 *   https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html
 * - 503 SlowDown and 500 InternalError are transient and should be retried with backoff:
 *   https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
 *   https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html
 * - a presigned URL used after it expires is refused with 403 AccessDenied ("Request has expired"):
 *   https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html
 */
import { request } from 'node:http';
import { mkdtemp, readFile as readFileForTest, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { FleetApiError, FleetClient, FleetTransferError, type Task } from '../../client';
import { inlineBodyBytes } from '../../client/transfer';
import { escapedStringBytes } from '../../lambdas/domain/payload-size';
import { startFakeFilesApi, type FakeFilesApi } from './fake-files-api';

// Spies on every whole-file read the client could make: the big-file path must stream.
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return { ...actual, default: actual, readFile: vi.fn(actual.readFile) };
});
vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  return { ...actual, default: actual, readFileSync: vi.fn(actual.readFileSync), readFile: vi.fn(actual.readFile) };
});
const fsPromises = await import('node:fs/promises');
const fs = await import('node:fs');

let api: FakeFilesApi;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-client-files-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await (api as FakeFilesApi | undefined)?.close();
  vi.clearAllMocks();
});

const tasksOf = (count: number, pad = 0): Task[] =>
  Array.from({ length: count }, (_, i) => ({ id: `t${i}`, type: 'sleep', data: { ms: 0, value: i, note: `"quoted" é ${'x'.repeat(pad)}` } }));
const jsonLines = (tasks: unknown[]) => tasks.map((task) => `${JSON.stringify(task)}\n`).join('');
const client = (options: ConstructorParameters<typeof FleetClient>[0] = {}) => new FleetClient({ url: api.url, env: {}, ...options });
const routes = () => api.requests.map((r) => `${r.method} ${r.path.replace(/[0-9a-f-]{36}/g, ':id')}`);

describe('inline or file: measured as the API measures a body', () => {
  it('inlineBodyBytes equals the escaped size of the JSON body for any tasks and priority', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ id: fc.string(), type: fc.string(), data: fc.jsonValue() }), { maxLength: 20 }), fc.option(fc.integer(), { nil: undefined }), (tasks, priority) => {
        const body = JSON.stringify({ tasks, ...(priority !== undefined ? { priority } : {}) });
        expect(inlineBodyBytes(tasks, priority, Number.MAX_SAFE_INTEGER)).toBe(escapedStringBytes(body));
      }),
    );
    // Quotes, backslashes, control characters and non-ASCII all grow under escaping.
    const tricky = [{ id: 'a"b\\c', type: 'x\u0001y', data: 'é€😀\n\t' }];
    expect(inlineBodyBytes(tricky, 3, Number.MAX_SAFE_INTEGER)).toBe(escapedStringBytes(JSON.stringify({ tasks: tricky, priority: 3 })));
  });

  it('sends a body of exactly maxInlineBytes inline, and one byte more as a file', async () => {
    api = await startFakeFilesApi();
    const tasks = tasksOf(50);
    const exact = escapedStringBytes(JSON.stringify({ tasks, priority: 2 }));
    api.maxBodyBytes = exact; // the API accepts it: the limit is inclusive

    await client({ maxInlineBytes: exact }).submitBatch(tasks, { priority: 2 });
    expect(routes()).toEqual(['POST /batches']);
    expect(JSON.parse(api.requests[0]?.body.toString() ?? '')).toEqual({ tasks, priority: 2 });

    api.requests.length = 0;
    const batchId = await client({ maxInlineBytes: exact - 1 }).submitBatch(tasks, { priority: 2 });
    expect(routes()).toEqual(['POST /batches/uploads', 'PUT /s3/uploads/:id', 'POST /batches']);
    const submit = JSON.parse(api.requests[2]?.body.toString() ?? '') as { tasksFile: string; priority: number };
    expect(submit).toEqual({ tasksFile: expect.stringMatching(/^[0-9a-f-]{36}$/), priority: 2 });
    expect(api.uploads.get(submit.tasksFile)?.toString()).toBe(jsonLines(tasks));
    expect(api.batches.get(batchId)?.file).toBe(true);
  });

  it('the per-submit maxInlineBytes wins over the client option; 0 sends even one task as a file', async () => {
    api = await startFakeFilesApi();
    await client().submitBatch(tasksOf(1), { maxInlineBytes: 0 });
    expect(routes()).toEqual(['POST /batches/uploads', 'PUT /s3/uploads/:id', 'POST /batches']);
  });

  it('falls back to the file path when the API answers 413 (deployed with a lower body limit), under the same Idempotency-Key', async () => {
    api = await startFakeFilesApi();
    api.maxBodyBytes = 1000;
    const tasks = tasksOf(40);

    const batchId = await client().submitBatch(tasks, { idempotencyKey: 'nightly-1' });

    expect(routes()).toEqual(['POST /batches', 'POST /batches/uploads', 'PUT /s3/uploads/:id', 'POST /batches']);
    expect(api.requests[0]?.headers['idempotency-key']).toBe('nightly-1');
    expect(api.requests[3]?.headers['idempotency-key']).toBe('nightly-1');
    expect(api.batches.get(batchId)?.tasks).toHaveLength(40);
  });

  it('an empty batch stays inline, so the API names the field as before', async () => {
    api = await startFakeFilesApi();
    const error = await client().submitBatch([]).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'FleetApiError', status: 400, field: 'tasks' });
    expect(routes()).toEqual(['POST /batches']);
  });
});

describe('the upload', () => {
  it('PUTs the tasks as JSON Lines with an exact Content-Length and no Authorization header, then submits with the key', async () => {
    api = await startFakeFilesApi();
    const tasks = tasksOf(300, 30);
    const progress: [number, number][] = [];

    await client({ maxInlineBytes: 1024, auth: { type: 'bearer', token: 'secret' } }).submitBatch(tasks, {
      idempotencyKey: 'k-1',
      onUploadProgress: (sent, total) => progress.push([sent, total]),
    });

    const [create, put, submit] = api.requests;
    const expected = Buffer.from(jsonLines(tasks));
    expect(put?.body.equals(expected)).toBe(true);
    expect(put?.headers['content-length']).toBe(String(expected.length));
    expect(put?.headers['transfer-encoding']).toBeUndefined();
    // The bearer token goes to the API only, never to S3 (a second auth mechanism S3 refuses).
    expect(create?.headers.authorization).toBe('Bearer secret');
    expect(put?.headers.authorization).toBeUndefined();
    expect(submit?.headers).toMatchObject({ authorization: 'Bearer secret', 'idempotency-key': 'k-1' });
    // Progress: from 0, never past the size, up to the size.
    expect(progress[0]).toEqual([0, expected.length]);
    expect(progress.at(-1)).toEqual([expected.length, expected.length]);
    expect(progress.every(([sent, total]) => total === expected.length && sent <= total)).toBe(true);
  });

  it('the fake S3 is strict: a PUT without Content-Length gets 411 MissingContentLength', async () => {
    api = await startFakeFilesApi();
    const upload = await client().createUpload();
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(upload.url, { method: 'PUT' }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }); });
      });
      req.on('error', reject);
      req.write('{"id":"a","type":"echo"}\n'); // chunked: no Content-Length
      req.end();
    });
    expect(answer.status).toBe(411);
    expect(answer.body).toContain('<Code>MissingContentLength</Code>');
    expect(api.uploads.get(upload.uploadId)).toBeUndefined();
  });

  it('retries a 503 SlowDown and a cut connection, sending the whole file again from its start each time', async () => {
    api = await startFakeFilesApi({ faults: { slowDownPuts: 1, cutPuts: 1 } });
    const file = path.join(dir, 'retry.jsonl');
    const content = jsonLines(tasksOf(2000));
    await writeFile(file, content);
    const starts: number[] = [];

    const batchId = await client({ transferRetries: 3 }).submitTasksFile(file, {
      onUploadProgress: (sent) => {
        if (sent === 0) starts.push(sent);
      },
    });

    const puts = api.requests.filter((r) => r.method === 'PUT');
    expect(puts).toHaveLength(3);
    // The cut attempt (first) sent part of it; the 503 attempt and the successful one the whole file.
    expect(puts[1]?.body.toString()).toBe(content);
    expect(puts[2]?.body.toString()).toBe(content);
    expect(starts).toHaveLength(3);
    expect(api.batches.get(batchId)?.tasks).toHaveLength(2000);
  });

  it('gives up after transferRetries with S3 error code, and never submits', async () => {
    api = await startFakeFilesApi({ faults: { slowDownPuts: 10 } });
    const error = await client({ transferRetries: 2 })
      .submitBatch(tasksOf(3), { maxInlineBytes: 0 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FleetTransferError);
    expect(error).toMatchObject({ code: 'SlowDown', status: 503, retryable: true, request: 'PUT tasks file' });
    expect(routes().filter((r) => r.startsWith('PUT'))).toHaveLength(3);
    expect(routes().filter((r) => r === 'POST /batches')).toHaveLength(0);
  });

  it('an expired upload URL is a clear, unretried error', async () => {
    api = await startFakeFilesApi({ faults: { urlLifetimeMs: -1000 } });
    const error = await client({ transferRetries: 5 })
      .submitBatch(tasksOf(3), { maxInlineBytes: 0 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FleetTransferError);
    expect(error).toMatchObject({ status: 403, code: 'AccessDenied', expired: true, retryable: false });
    expect((error as Error).message).toMatch(/presigned URL has expired.*Request has expired/);
    expect(routes()).toEqual(['POST /batches/uploads', 'PUT /s3/uploads/:id']);
  });
});

describe('submitTasksFile', () => {
  it('streams a file bigger than the inline limit from disk: the PUT body is the file, and nothing reads it whole', async () => {
    api = await startFakeFilesApi();
    const file = path.join(dir, 'big.jsonl');
    const content = jsonLines(tasksOf(20_000, 40)); // about 2.2 MB, above the 1 MB limit given
    await writeFile(file, content);
    const size = (await stat(file)).size;
    vi.clearAllMocks();
    let last = 0;

    const batchId = await client({ maxInlineBytes: 1024 * 1024 }).submitTasksFile(file, { priority: 4, onUploadProgress: (sent) => (last = sent) });

    const put = api.requests.find((r) => r.method === 'PUT');
    expect(put?.headers['content-length']).toBe(String(size));
    expect(put?.body.equals(Buffer.from(content))).toBe(true);
    expect(last).toBe(size);
    expect(fsPromises.readFile).not.toHaveBeenCalled();
    expect(fs.readFileSync).not.toHaveBeenCalled();
    expect(fs.readFile).not.toHaveBeenCalled();
    expect(JSON.parse(api.requests.at(-1)?.body.toString() ?? '')).toMatchObject({ priority: 4 });
    expect(api.batches.get(batchId)?.tasks).toHaveLength(20_000);
  });

  it('rejects a path that is not a file, and an unknown path, before any request', async () => {
    api = await startFakeFilesApi();
    await expect(client().submitTasksFile(dir)).rejects.toThrow(/is not a file/);
    await expect(client().submitTasksFile(path.join(dir, 'missing.jsonl'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(api.requests).toHaveLength(0);
  });

  it('waitForBatch reports the validation pass, and a bad file ends failed with its bad lines', async () => {
    api = await startFakeFilesApi();
    const file = path.join(dir, 'bad.jsonl');
    await writeFile(file, '{"id":"a","type":"echo"}\n{"id":"a","type":"echo"}\nnot json\n');
    const seen: string[] = [];

    const fleet = client();
    const batchId = await fleet.submitTasksFile(file);
    const final = await fleet.waitForBatch(batchId, { intervalMs: 1, onProgress: (s) => seen.push(`${s.status}/${s.tasksFile?.state}`) });

    expect(seen).toEqual(['pending/validating', 'failed/invalid']);
    expect(final.validationErrors).toEqual([
      { line: 2, field: 'id', message: 'duplicate task id "a"' },
      { line: 3, message: 'is not valid JSON' },
    ]);
    expect(final.validationErrorsTruncated).toBe(false);
  });
});

describe('results export', () => {
  async function finishedBatch(count: number): Promise<string> {
    const fleet = client();
    const batchId = await fleet.submitBatch(tasksOf(count));
    await fleet.waitForBatch(batchId, { intervalMs: 1 });
    api.requests.length = 0;
    return batchId;
  }

  it('exportResults polls 202 building until 200 ready', async () => {
    api = await startFakeFilesApi({ buildingPolls: 2 });
    const batchId = await finishedBatch(30);
    const building: number[] = [];

    const exported = await client().exportResults(batchId, { intervalMs: 1, onBuilding: (n) => building.push(n) });

    expect(routes()).toEqual(Array(3).fill('GET /batches/:id/results/export'));
    expect(building).toEqual([10, 20]);
    expect(exported).toMatchObject({ results: 30, url: expect.stringContaining('/s3/exports/'), expiresAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    expect(exported.bytes).toBeGreaterThan(0);
  });

  it('exportResults waits through a failed build the API starts again, and gives up after 3', async () => {
    api = await startFakeFilesApi({ buildingPolls: 0 });
    const batchId = await finishedBatch(3);
    api.failedBuilds = 2;
    await expect(client().exportResults(batchId, { intervalMs: 1 })).resolves.toMatchObject({ results: 3 });

    api.failedBuilds = 3;
    api.requests.length = 0;
    const error = await client().exportResults(batchId, { intervalMs: 1 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'FleetError', message: expect.stringMatching(/failed to build 3 times; the last: InternalError/) });
    expect(api.requests).toHaveLength(3);
  });

  it('exportResults: conflict while the batch runs, not_found for an unknown batch', async () => {
    api = await startFakeFilesApi();
    const fleet = client();
    const batchId = await fleet.submitBatch(tasksOf(2));
    api.holdRunning.add(batchId);
    await fleet.getBatchStatus(batchId);
    await expect(fleet.exportResults(batchId)).rejects.toMatchObject({ name: 'FleetApiError', code: 'conflict', status: 409 });
    const unknown = await fleet.exportResults('nope').catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(FleetApiError);
    expect(unknown).toMatchObject({ code: 'not_found' });
  });

  it('downloadResults streams the file to disk, retrying a 503 and a cut download from the start', async () => {
    api = await startFakeFilesApi({ buildingPolls: 1, faults: { slowDownGets: 1, truncateGets: 1 } });
    const batchId = await finishedBatch(5000);
    const out = path.join(dir, 'results.jsonl');
    let last: [number, number] = [0, 0];

    const written = await client({ transferRetries: 3 }).downloadResults(batchId, out, { intervalMs: 1, onProgress: (n, total) => (last = [n, total]) });

    const text = await readFileForTest(out, 'utf8');
    const lines = text.trimEnd().split('\n').map((line) => JSON.parse(line) as { taskId: string });
    expect(lines.map((r) => r.taskId)).toEqual(tasksOf(5000).map((t) => t.id));
    expect(written).toEqual({ path: out, results: 5000, bytes: Buffer.byteLength(text) });
    expect(last).toEqual([written.bytes, written.bytes]);
    expect(routes().filter((r) => r.startsWith('GET /s3/'))).toHaveLength(3);
    await expect(stat(`${out}.part`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('renews an expired download URL once; a second expiry is an error and leaves no file behind', async () => {
    api = await startFakeFilesApi({ buildingPolls: 0, faults: { urlLifetimeMs: -1000 } });
    const batchId = await finishedBatch(3);
    const out = path.join(dir, 'expired.jsonl');

    const error = await client().downloadResults(batchId, out).catch((e: unknown) => e);

    expect(error).toMatchObject({ name: 'FleetTransferError', status: 403, expired: true });
    expect(routes()).toEqual(['GET /batches/:id/results/export', 'GET /s3/exports/:id', 'GET /batches/:id/results/export', 'GET /s3/exports/:id']);
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(`${out}.part`)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
