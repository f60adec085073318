/**
 * An in-process stand-in for the issue-14 HTTP contract (file uploads and
 * results exports), for the client's and the CLI's tests until the real
 * routes exist: the Fleet API on `/batches...` and a presigned-URL S3 on
 * `/s3/...`, on one node:http server. It follows the contract and S3 where
 * the client depends on them, and no further:
 * - a PUT needs Content-Length (411 MissingContentLength), refuses an
 *   Authorization header next to the URL's own signature, and answers 403
 *   "Request has expired" after the URL's expiry;
 * - `faults` makes S3 answer 503 SlowDown, cut the connection mid-body, or
 *   end a download early, the transient failures clients must retry;
 * - the API measures a body as lambdas/api.ts does (JSON-escaped) and
 *   answers 413 above `maxBodyBytes`;
 * - a file batch is `pending` with `tasksFile.state: validating` on its first
 *   read, then `completed` (one result per line) or, with a bad line,
 *   `failed` with `validationErrors`;
 * - the export answers 202 `building` `buildingPolls` times, then 200.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { escapedStringBytes } from '../../lambdas/domain/payload-size';
import type { BatchStatus, TaskResult } from '../../client';

export interface Faults {
  /** PUTs (counted from the first) that read the whole body, then answer 503 SlowDown. */
  slowDownPuts: number;
  /** PUTs that have their connection destroyed after about half the body. */
  cutPuts: number;
  /** Export GETs that answer 503 SlowDown. */
  slowDownGets: number;
  /** Export GETs that send half the file, then destroy the connection. */
  truncateGets: number;
  /** Upload and export URLs expire this many ms after they are made. */
  urlLifetimeMs: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

interface FakeBatch {
  status: BatchStatus;
  tasks: { id: string }[];
  reads: number;
  file: boolean;
  /** What the file's validation will decide on the next read. */
  pendingErrors: { line: number; field?: string; message: string }[];
}

export interface FakeFilesApi {
  url: string;
  /** Every request, API and S3 alike, in order. */
  requests: RecordedRequest[];
  /** Bytes each upload holds once PUT. */
  uploads: Map<string, Buffer | undefined>;
  batches: Map<string, FakeBatch>;
  faults: Faults;
  /** The API's body limit, as FLEET_MAX_BODY_BYTES. */
  maxBodyBytes: number;
  /** 202 answers before the export is ready. */
  buildingPolls: number;
  /** Export builds that fail: each poll after one answers 202 with `previousError` and starts another. */
  failedBuilds: number;
  /** Makes the batch answer `processing` (not finished) until set back. */
  holdRunning: Set<string>;
  close(): Promise<void>;
}

const xmlError = (code: string, message: string) => `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;

export async function startFakeFilesApi(options: { maxBodyBytes?: number; buildingPolls?: number; faults?: Partial<Faults> } = {}): Promise<FakeFilesApi> {
  const requests: RecordedRequest[] = [];
  const uploads = new Map<string, Buffer | undefined>();
  const uploadExpiry = new Map<string, number>();
  const usedUploads = new Set<string>();
  const batches = new Map<string, FakeBatch>();
  const idempotency = new Map<string, { batchId: string; body: string }>();
  const exportPolls = new Map<string, number>();
  const exports = new Map<string, Buffer>();
  const holdRunning = new Set<string>();
  let puts = 0;
  let gets = 0;
  const faults: Faults = { slowDownPuts: 0, cutPuts: 0, slowDownGets: 0, truncateGets: 0, urlLifetimeMs: 60_000, ...options.faults };

  const api: FakeFilesApi = {
    url: '',
    requests,
    uploads,
    batches,
    faults,
    maxBodyBytes: options.maxBodyBytes ?? 5 * 1024 * 1024,
    buildingPolls: options.buildingPolls ?? 2,
    failedBuilds: 0,
    holdRunning,
    close: () => new Promise((resolve) => server.close(() => { resolve(); })),
  };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': typeof body === 'string' ? 'application/xml' : 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };
  const apiError = (res: ServerResponse, status: number, code: string, message: string, field?: string) => { send(res, status, { error: { code, message, ...(field ? { field } : {}) } }); };

  const readBody = (req: IncomingMessage) =>
    new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => { resolve(Buffer.concat(chunks)); });
      req.on('error', reject);
    });

  function createBatch(tasks: { id: string }[], file: boolean, errors: FakeBatch['pendingErrors']): BatchStatus {
    const batchId = randomUUID();
    const status: BatchStatus = {
      batchId,
      status: 'pending',
      totalTasks: file ? 0 : tasks.length,
      completedTasks: 0,
      failedTasks: 0,
      progress: 0,
      createdAt: Date.now(),
      startedAt: null,
      completedAt: null,
      ...(file ? { tasksFile: { state: 'validating' as const, linesRead: 0 } } : {}),
    };
    batches.set(batchId, { status, tasks, reads: 0, file, pendingErrors: errors });
    return status;
  }

  /** Each read moves a batch one step: a file is validated on the first, every batch completes on the next. */
  function advance(batch: FakeBatch): void {
    batch.reads++;
    const status = batch.status;
    if (status.status !== 'pending' && status.status !== 'processing') return;
    if (batch.file && status.tasksFile?.state === 'validating') {
      if (batch.reads < 2) return;
      const lines = batch.tasks.length + batch.pendingErrors.length;
      if (batch.pendingErrors.length > 0) {
        Object.assign(status, {
          status: 'failed',
          completedAt: Date.now(),
          tasksFile: { state: 'invalid', linesRead: lines },
          error: `tasksFile: ${batch.pendingErrors.length} invalid line(s); the first: line ${batch.pendingErrors[0]?.line}`,
          validationErrors: batch.pendingErrors.slice(0, 100),
          validationErrorsTruncated: batch.pendingErrors.length > 100,
        });
        return;
      }
      Object.assign(status, { status: 'processing', startedAt: Date.now(), totalTasks: batch.tasks.length, tasksFile: { state: 'ready', linesRead: lines } });
      return;
    }
    if (holdRunning.has(status.batchId)) {
      Object.assign(status, { status: 'processing', startedAt: status.startedAt ?? Date.now() });
      return;
    }
    Object.assign(status, {
      status: 'completed',
      startedAt: status.startedAt ?? Date.now(),
      completedAt: Date.now(),
      completedTasks: batch.tasks.length,
      progress: 1,
    });
  }

  /** Validates JSON Lines as the contract's streaming pass would: one task object a line, ids unique. */
  function validateLines(bytes: Buffer): { tasks: { id: string }[]; errors: FakeBatch['pendingErrors'] } {
    const tasks: { id: string }[] = [];
    const errors: FakeBatch['pendingErrors'] = [];
    const seen = new Set<string>();
    bytes
      .toString('utf8')
      .split('\n')
      .forEach((text, index) => {
        const line = index + 1;
        if (text.trim() === '') return;
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          errors.push({ line, message: 'is not valid JSON' });
          return;
        }
        const task = value as { id?: unknown; type?: unknown };
        if (typeof task.id !== 'string' || task.id === '') errors.push({ line, field: 'id', message: 'must be a non-empty string' });
        else if (seen.has(task.id)) errors.push({ line, field: 'id', message: `duplicate task id "${task.id}"` });
        else if (typeof task.type !== 'string') errors.push({ line, field: 'type', message: 'is required' });
        else {
          seen.add(task.id);
          tasks.push({ id: task.id });
        }
      });
    return { tasks, errors };
  }

  function exportFile(batch: FakeBatch): Buffer {
    const lines = batch.tasks.map((task, index) => {
      const result: TaskResult = { taskId: task.id, success: true, result: { n: index, text: 'é"\\' }, duration: 1, timestamp: 1, attempts: 1, workerId: 'w1' };
      return `${JSON.stringify(result)}\n`;
    });
    return Buffer.from(lines.join(''));
  }

  async function handleS3(req: IncomingMessage, res: ServerResponse, url: URL, recorded: RecordedRequest): Promise<void> {
    const expires = Number(url.searchParams.get('X-Amz-Expires-At'));
    const [, , kind, key] = url.pathname.split('/');
    if (req.headers.authorization) {
      await readBody(req);
      send(res, 400, xmlError('InvalidArgument', 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified')); return;
    }
    if (req.method === 'PUT' && kind === 'uploads' && key && uploads.has(key)) {
      if (req.headers['content-length'] === undefined) {
        req.resume();
        send(res, 411, xmlError('MissingContentLength', 'You must provide the Content-Length HTTP header.'), { connection: 'close' }); return;
      }
      if (Date.now() > expires) {
        await readBody(req);
        send(res, 403, xmlError('AccessDenied', 'Request has expired')); return;
      }
      puts++;
      if (puts <= faults.cutPuts) {
        const half = Number(req.headers['content-length']) / 2;
        let got = 0;
        req.on('data', (chunk: Buffer) => {
          got += chunk.length;
          if (got >= half) req.socket.destroy();
        });
        return;
      }
      const body = await readBody(req);
      recorded.body = body;
      if (puts <= faults.cutPuts + faults.slowDownPuts) { send(res, 503, xmlError('SlowDown', 'Please reduce your request rate.')); return; }
      uploads.set(key, body);
      send(res, 200, '', { etag: `"${body.length}"` }); return;
    }
    if (req.method === 'GET' && kind === 'exports' && key && exports.has(key)) {
      if (Date.now() > expires) { send(res, 403, xmlError('AccessDenied', 'Request has expired')); return; }
      gets++;
      const file = exports.get(key) as Buffer;
      if (gets <= faults.slowDownGets) { send(res, 503, xmlError('SlowDown', 'Please reduce your request rate.')); return; }
      if (gets <= faults.slowDownGets + faults.truncateGets) {
        res.writeHead(200, { 'content-length': file.length });
        res.write(file.subarray(0, Math.floor(file.length / 2)), () => res.destroy());
        return;
      }
      res.writeHead(200, { 'content-length': file.length, 'content-type': 'application/x-ndjson' });
      res.end(file);
      return;
    }
    await readBody(req);
    send(res, 404, xmlError('NoSuchKey', 'The specified key does not exist.'));
  }

  async function handleApi(req: IncomingMessage, res: ServerResponse, url: URL, recorded: RecordedRequest): Promise<void> {
    const body = await readBody(req);
    recorded.body = body;
    const path = url.pathname;
    const presign = (kind: string, key: string) => {
      const expiresAt = Date.now() + faults.urlLifetimeMs;
      return { url: `${api.url}/s3/${kind}/${key}?X-Amz-Expires-At=${expiresAt}&X-Amz-Signature=fake`, expiresAt: new Date(expiresAt).toISOString() };
    };

    if (req.method === 'POST' && path === '/batches/uploads') {
      const uploadId = randomUUID();
      const { url: presigned, expiresAt } = presign('uploads', uploadId);
      uploads.set(uploadId, undefined);
      uploadExpiry.set(uploadId, Date.parse(expiresAt));
      send(res, 201, { uploadId, url: presigned, method: 'PUT', expiresAt, maxBytes: 5368709120 }); return;
    }
    if (req.method === 'POST' && path === '/batches') {
      const raw = body.toString('utf8');
      if (escapedStringBytes(raw) > api.maxBodyBytes) { apiError(res, 413, 'payload_too_large', `body is larger than ${api.maxBodyBytes} bytes`); return; }
      const parsed = JSON.parse(raw) as { tasks?: { id: string }[]; tasksFile?: string };
      const key = req.headers['idempotency-key'];
      if (typeof key === 'string') {
        const held = idempotency.get(key);
        if (held && held.body !== raw) { apiError(res, 409, 'conflict', 'Idempotency-Key: this key was already used with a different request body'); return; }
        if (held) { send(res, 202, batches.get(held.batchId)?.status); return; }
      }
      let status: BatchStatus;
      if (parsed.tasks !== undefined && parsed.tasksFile !== undefined) { apiError(res, 400, 'validation_error', 'tasksFile: give tasks or tasksFile, not both', 'tasksFile'); return; }
      if (parsed.tasksFile !== undefined) {
        const bytes = uploads.get(parsed.tasksFile);
        if (!uploads.has(parsed.tasksFile)) { apiError(res, 400, 'validation_error', 'tasksFile: unknown upload id', 'tasksFile'); return; }
        if (bytes === undefined) { apiError(res, 400, 'validation_error', 'tasksFile: nothing was uploaded yet', 'tasksFile'); return; }
        if (bytes.length === 0) { apiError(res, 400, 'validation_error', 'tasksFile: the upload is empty', 'tasksFile'); return; }
        if (usedUploads.has(parsed.tasksFile)) { apiError(res, 409, 'conflict', 'tasksFile: the upload was already used by another batch'); return; }
        usedUploads.add(parsed.tasksFile);
        const { tasks, errors } = validateLines(bytes);
        status = createBatch(tasks, true, errors);
      } else {
        if (!Array.isArray(parsed.tasks) || parsed.tasks.length === 0) { apiError(res, 400, 'validation_error', 'tasks: must be a non-empty array', 'tasks'); return; }
        status = createBatch(parsed.tasks, false, []);
      }
      if (typeof key === 'string') idempotency.set(key, { batchId: status.batchId, body: raw });
      send(res, 202, status); return;
    }
    const exportMatch = /^\/batches\/([^/]+)\/results\/export$/.exec(path);
    if (req.method === 'GET' && exportMatch) {
      const batchId = decodeURIComponent(exportMatch[1] ?? '');
      const batch = batches.get(batchId);
      if (!batch) { apiError(res, 404, 'not_found', `batch ${batchId} not found`); return; }
      if (batch.status.status === 'pending' || batch.status.status === 'processing') {
        apiError(res, 409, 'conflict', `batch ${batchId} is ${batch.status.status}; page /results while it runs`); return;
      }
      if (api.failedBuilds > 0) {
        api.failedBuilds--;
        send(res, 202, { status: 'building', resultsWritten: 0, previousError: 'InternalError: We encountered an internal error. Please try again.' }); return;
      }
      const polls = (exportPolls.get(batchId) ?? 0) + 1;
      exportPolls.set(batchId, polls);
      if (polls <= api.buildingPolls) { send(res, 202, { status: 'building', resultsWritten: Math.floor((batch.tasks.length * polls) / (api.buildingPolls + 1)) }); return; }
      const file = exports.get(batchId) ?? exportFile(batch);
      exports.set(batchId, file);
      const { url: presigned, expiresAt } = presign('exports', batchId);
      send(res, 200, { status: 'ready', url: presigned, expiresAt, results: batch.tasks.length, bytes: file.length }); return;
    }
    const statusMatch = /^\/batches\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && statusMatch) {
      const batch = batches.get(decodeURIComponent(statusMatch[1] ?? ''));
      if (!batch) { apiError(res, 404, 'not_found', 'batch not found'); return; }
      advance(batch);
      send(res, 200, batch.status); return;
    }
    apiError(res, 404, 'not_found', `no route ${req.method} ${path}`);
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const recorded: RecordedRequest = { method: req.method ?? '', path: url.pathname, headers: req.headers, body: Buffer.alloc(0) };
    requests.push(recorded);
    const handler = url.pathname.startsWith('/s3/') ? handleS3 : handleApi;
    handler(req, res, url, recorded).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, { error: { code: 'internal_error', message: String(error) } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return api;
}
