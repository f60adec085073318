/**
 * FleetClient: the FleetManagerAgent's methods, with the seed's names and
 * meanings, over Fleet's HTTP API. Works against local mode and a deployed
 * API alike; only the URL and the auth differ.
 */
import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { LIMITS } from '../lambdas/domain/config';
import type { RetryFailedResult } from '../lambdas/domain/retry-failed';
import type { BatchSummary } from '../lambdas/domain/summary';
import type { TasksFileError } from '../lambdas/domain/tasks-file';
import type { BatchStatus as DomainBatchStatus, FleetManagerConfig, FleetStatistics, Task, TaskResult, WorkerInfo } from '../lambdas/domain/types';
import { createAuthorizer, resolveAuth, type FleetAuth, type RequestAuthorizer } from './auth';
import { codeForStatus, FleetApiError, FleetError, FleetNetworkError, FleetTransferError } from './errors';
import { downloadToFile, fileBody, inlineBodyBytes, jsonLinesBody, putObject, sleep, type ReopenableBody, type TransferOptions } from './transfer';

export type { RetryFailedResult, BatchSummary, FleetManagerConfig, FleetStatistics, Task, TaskResult, TasksFileError, WorkerInfo };

/** Where a batch submitted as a file stands in its validation pass (`BatchStatus.tasksFile`). */
export type TasksFileProgress = NonNullable<BatchStatus['tasksFile']>;

/** A batch's status, counts and times; batches submitted as a file also carry their validation (`tasksFile`, `validationErrors`). */
export type BatchStatus = DomainBatchStatus;

/** An upload slot from `POST /batches/uploads`. */
export interface TasksUpload {
  uploadId: string;
  /** A presigned S3 URL: PUT the JSON Lines file there, with Content-Length. */
  url: string;
  method: 'PUT';
  /** ISO 8601; after it S3 answers 403. */
  expiresAt: string;
  /** The largest file the URL takes. */
  maxBytes: number;
}

/** A results export, ready to download. */
export interface ResultsExport {
  /** A presigned S3 GET URL of the JSON Lines file: one TaskResult a line. */
  url: string;
  /** Results (lines) in the file. */
  results: number;
  /** Size of the file. */
  bytes: number;
  /** ISO 8601; after it the URL stops working (ask again for a fresh one). */
  expiresAt: string;
}

/** What `downloadResults` wrote. */
export interface DownloadedResults {
  path: string;
  results: number;
  bytes: number;
}

/** Where local mode listens unless told otherwise. */
export const DEFAULT_FLEET_URL = 'http://127.0.0.1:3000';

export interface FleetClientOptions {
  /**
   * The API's base URL; a path prefix (an API Gateway stage) is kept.
   * @default process.env.FLEET_URL, else 'http://127.0.0.1:3000' (local mode)
   */
  url?: string;
  /**
   * How requests are authorized.
   * @default a bearer token from FLEET_TOKEN if set; else SigV4 when `url` is an `execute-api` host; else none
   */
  auth?: FleetAuth;
  /**
   * Per-request timeout in ms.
   * @default 30000
   */
  timeoutMs?: number;
  /**
   * Retries of a read (GET) or of a submit (which always carries an
   * Idempotency-Key) that failed to connect, was throttled (429) or met a
   * 502, 503 or 504, with exponential backoff and full jitter. Other writes
   * are never retried: a repeated cancel could act twice.
   * @default 2
   */
  maxRetries?: number;
  /**
   * The fetch to use, e.g. one with a proxy agent. Used for every request
   * but a tasks file's PUT to S3, which goes through node:http(s): Node's
   * fetch reads a streamed request body ahead without bound.
   * @default globalThis.fetch
   */
  fetch?: typeof fetch;
  /** Environment to read FLEET_URL and FLEET_TOKEN from. @default process.env */
  env?: NodeJS.ProcessEnv;
  /**
   * The largest submit body sent inline, in bytes as the API measures it (the
   * JSON-escaped body, as the Lambda event carries it). A larger batch goes
   * through a file upload instead. Lower it to match an API deployed with a
   * lower FLEET_MAX_BODY_BYTES; 0 sends every batch as a file.
   * @default 5 MiB (the API's own limit)
   */
  maxInlineBytes?: number;
  /**
   * Retries of a file transfer (a tasks file PUT, a results export GET) after
   * S3's transient answers (503 SlowDown, 500) or a cut connection, each from
   * the file's start, with exponential backoff and full jitter.
   * @default 5
   */
  transferRetries?: number;
}

export interface SubmitOptions {
  /** Batch-level priority: when batches wait for capacity, higher goes first. @default 0 */
  priority?: number;
  /**
   * Sent as the `Idempotency-Key` header, so a repeated submit with the same
   * key and tasks names the same batch. Give your own to make a submit safe to
   * repeat across processes (a job restarted after a crash).
   * @default a new random UUID per call, reused by that call's own retries
   */
  idempotencyKey?: string;
  signal?: AbortSignal;
  /** Overrides the client's `maxInlineBytes` for this submit. */
  maxInlineBytes?: number;
  /**
   * Called as a tasks file is uploaded (only when the file path is taken),
   * with the bytes sent so far and the file's size. A retried upload starts
   * again from 0.
   */
  onUploadProgress?: (bytesSent: number, totalBytes: number) => void;
}

export interface ExportOptions {
  signal?: AbortSignal;
  /** Time between polls while the export is being built, in ms. @default 1000 */
  intervalMs?: number;
  /** Called after each poll that finds the export still building, with the results written to it so far. */
  onBuilding?: (resultsWritten: number) => void;
}

export interface DownloadOptions extends ExportOptions {
  /** Called as the file arrives, with the bytes written so far and the file's size. A retried download starts again from 0. */
  onProgress?: (bytesReceived: number, totalBytes: number) => void;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface PageOptions extends RequestOptions {
  /** Items per page, 1–1,000. */
  limit?: number;
  /** Where to start: a `nextCursor` from an earlier page. */
  cursor?: string;
}

/** Which results a results read returns. */
export interface ResultFilterOptions {
  /**
   * Only failures or only successes, filtered by the API. A filtered page
   * reads a bounded number of results, so it may hold fewer than `limit`
   * (even none) with a `nextCursor`: keep following it.
   */
  status?: 'failed' | 'succeeded';
  /** Only tasks whose id starts with this. */
  taskIdPrefix?: string;
}

export interface ResultPageOptions extends PageOptions, ResultFilterOptions {}

/** A task's earlier failed result, which retry-failed number `retry` cleared before running it again. */
export interface FailedAttempt<TResult = unknown> extends TaskResult<TResult> {
  retry: number;
}

/** `GET /batches/{id}/tasks/{taskId}`: the task, its result and its history. */
export interface TaskDetail<TData = unknown, TResult = unknown> {
  batchId: string;
  taskId: string;
  /** The task as submitted; null if the batch's tasks file no longer holds it. */
  task: Task<TData> | null;
  /** Its final result; null while it has none. */
  result: TaskResult<TResult> | null;
  /** Failures retry-failed cleared, oldest first. */
  failedAttempts: FailedAttempt<TResult>[];
}

/** `GET /stats/timeline`: tasks finished per minute, oldest minute first. */
export interface Timeline {
  minuteMs: number;
  buckets: { start: number; succeeded: number | null; failed: number | null }[];
}

export interface ResultPage<TResult = unknown> {
  results: TaskResult<TResult>[];
  /** Pass it as `cursor` to read the next page; null on the last page. */
  nextCursor: string | null;
}

export interface BatchPage {
  /** Newest first. */
  batches: BatchStatus[];
  nextCursor: string | null;
}

export interface ScaleResult {
  maxConcurrentWorkers: number;
  /** Running batches whose concurrency changed at once. */
  runningBatchesUpdated: number;
}

export interface WaitOptions {
  /**
   * Called with the first status read and then whenever the status or its
   * counts change, the final status included.
   */
  onProgress?: (status: BatchStatus) => void;
  /** Aborting rejects the wait with the signal's reason; the batch itself runs on (cancel it with cancelBatch). */
  signal?: AbortSignal;
  /** Time between polls in ms. @default 1000 */
  intervalMs?: number;
}

/** States in which a batch can still change; every other state is final. */
const RUNNING_STATES: ReadonlySet<string> = new Set<BatchStatus['status']>(['pending', 'processing']);

/** True once a batch has reached a final state (completed, failed, partial or cancelled). */
export function isFinished(status: Pick<BatchStatus, 'status'>): boolean {
  return !RUNNING_STATES.has(status.status);
}

const RETRYABLE_STATUSES = new Set([429, 502, 503, 504]);

/** Builds of one export tried before exportResults gives up. */
const EXPORT_BUILD_ATTEMPTS = 3;

/**
 * A client for one Fleet. `TData` is the tasks' `data`, `TResult` what their
 * handlers return, as in the seed's `FleetManagerAgent<…, TTaskData, TTaskResult>`.
 *
 * ```ts
 * const fleet = new FleetClient<DataTask, DataResult>(); // FLEET_URL, or local mode
 * const batchId = await fleet.submitBatch(tasks);
 * const status = await fleet.waitForBatch(batchId, { onProgress: (s) => console.log(s.progress) });
 * const results = await fleet.getBatchResults(batchId);
 * ```
 */
export class FleetClient<TData = unknown, TResult = unknown> {
  /** The base URL, without a trailing slash. */
  readonly url: string;
  private readonly base: URL;
  /** The URL's path prefix, e.g. `/prod` for an API Gateway stage; empty for none. */
  private readonly prefix: string;
  private readonly authorize: RequestAuthorizer;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly fetchImpl: typeof fetch;
  private readonly maxInlineBytes: number;
  private readonly transferRetries: number;

  constructor(options: FleetClientOptions = {}) {
    const env = options.env ?? process.env;
    const raw = options.url ?? (env.FLEET_URL || DEFAULT_FLEET_URL);
    let base: URL;
    try {
      base = new URL(raw);
    } catch {
      throw new TypeError(`Fleet URL "${raw}" is not a valid URL; expected e.g. ${DEFAULT_FLEET_URL}`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError(`Fleet URL "${raw}" must be http or https`);
    base.pathname = base.pathname.replace(/\/+$/, '');
    base.search = '';
    base.hash = '';
    this.base = base;
    this.prefix = base.pathname === '/' ? '' : base.pathname;
    this.url = base.href.replace(/\/+$/, '');
    this.authorize = createAuthorizer(resolveAuth(base, options.auth, env));
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxRetries = options.maxRetries ?? 2;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.maxInlineBytes = options.maxInlineBytes ?? LIMITS.bodyBytes;
    this.transferRetries = options.transferRetries ?? 5;
  }

  /**
   * Submits a batch and returns its id at once; the batch runs in the background.
   *
   * A batch whose body fits `maxInlineBytes` goes inline, in one request.
   * A larger one goes as a file: an upload slot, the tasks PUT to S3 as JSON
   * Lines (generated as a stream), then `POST /batches {tasksFile}`; the API
   * then validates the file in the background (see `BatchStatus.tasksFile`).
   */
  async submitBatch(tasks: Task<TData>[], options: SubmitOptions = {}): Promise<string> {
    // One key for this call and all its retries: the API answers a repeat with
    // the same batch, so a submit whose answer was lost is retried without
    // running the batch twice. A new call gets a new key, hence a new batch.
    const key = options.idempotencyKey || randomUUID();
    const limit = options.maxInlineBytes ?? this.maxInlineBytes;
    // Not an array: sent as is, so the API names the field at fault.
    if (!Array.isArray(tasks) || inlineBodyBytes(tasks, options.priority, limit) <= limit) {
      const body = { tasks, ...(options.priority !== undefined ? { priority: options.priority } : {}) };
      try {
        const status = await this.request<BatchStatus>('POST', '/batches', { body, headers: { 'idempotency-key': key }, signal: options.signal, retry: true });
        return status.batchId;
      } catch (error) {
        // An API deployed with a lower body limit than ours: the file path has none.
        if (!(error instanceof FleetApiError && error.status === 413 && Array.isArray(tasks) && tasks.length > 0)) throw error;
      }
    }
    return this.submitThroughUpload(jsonLinesBody(tasks), options, key);
  }

  /**
   * Submits a JSON Lines file of tasks (one task object a line, as in
   * `tasks[]`) from disk, always as a file: streamed to S3 from disk (memory
   * stays flat however big it is) and validated by the API in the
   * background. A bad line ends the batch `failed` with `validationErrors`
   * naming its line; watch it with `waitForBatch`. For tasks in memory, use
   * `submitBatch`, which sends small batches inline.
   */
  async submitTasksFile(path: string, options: SubmitOptions = {}): Promise<string> {
    const info = await stat(path);
    if (!info.isFile()) throw new TypeError(`${path} is not a file`);
    return this.submitThroughUpload(fileBody(path, info.size), options, options.idempotencyKey || randomUUID());
  }

  /** Opens an upload slot: a presigned S3 URL to PUT a JSON Lines tasks file to, for `submitUploadedTasks`. */
  createUpload(options: RequestOptions = {}): Promise<TasksUpload> {
    // Retried like a read: a repeat only leaves an unused slot, which expires.
    return this.request('POST', '/batches/uploads', { body: {}, signal: options.signal, retry: true });
  }

  /**
   * Submits a batch whose tasks are already in S3: an `uploadId` from
   * `createUpload` whose file was PUT, or an `s3://bucket/key` in a bucket the
   * deployment allows. Idempotency-Key as for `submitBatch`.
   */
  async submitUploadedTasks(tasksFile: string, options: SubmitOptions = {}): Promise<string> {
    const body = { tasksFile, ...(options.priority !== undefined ? { priority: options.priority } : {}) };
    const headers = { 'idempotency-key': options.idempotencyKey || randomUUID() };
    const status = await this.request<BatchStatus>('POST', '/batches', { body, headers, signal: options.signal, retry: true });
    return status.batchId;
  }

  private async submitThroughUpload(file: ReopenableBody, options: SubmitOptions, idempotencyKey: string): Promise<string> {
    const upload = await this.createUpload({ ...(options.signal ? { signal: options.signal } : {}) });
    if (file.bytes > upload.maxBytes) {
      throw new FleetTransferError({
        message: `PUT tasks file: the file is ${file.bytes} bytes; an upload takes at most ${upload.maxBytes}`,
        code: 'too_large',
        request: 'PUT tasks file',
      });
    }
    await putObject(upload.url, file, { ...this.transferOptions(options.signal, options.onUploadProgress), expiresAt: upload.expiresAt });
    return this.submitUploadedTasks(upload.uploadId, { ...options, idempotencyKey });
  }

  /**
   * Every result of a finished batch as one JSON Lines file in S3: asks for
   * the export, polls while it is built, and resolves with its presigned
   * URL. Throws FleetApiError `conflict` while the batch runs (page
   * `/results` then), `not_found` for an unknown batch, and a FleetError
   * once the build has failed 3 times (the API starts it again on each poll
   * after a failure, naming the failure in `previousError`).
   */
  async exportResults(batchId: string, options: ExportOptions = {}): Promise<ResultsExport> {
    const { signal } = options;
    const path = `/batches/${id(batchId)}/results/export`;
    let failedBuilds = 0;
    for (;;) {
      signal?.throwIfAborted();
      const answer = await this.request<ExportAnswer>('GET', path, { signal });
      if (answer.status === 'ready') {
        if (typeof answer.url !== 'string') throw new FleetNetworkError(`GET ${path}: a ready export without a url; is it a Fleet API?`, `GET ${path}`);
        return { url: answer.url, results: answer.results ?? 0, bytes: answer.bytes ?? 0, expiresAt: answer.expiresAt ?? '' };
      }
      if (answer.previousError !== undefined && ++failedBuilds >= EXPORT_BUILD_ATTEMPTS) {
        throw new FleetError(`GET ${path}: the results export failed to build ${failedBuilds} times; the last: ${answer.previousError}`);
      }
      options.onBuilding?.(answer.resultsWritten ?? 0);
      await sleep(options.intervalMs ?? 1000, signal);
    }
  }

  /**
   * Exports a finished batch's results (as `exportResults`) and streams the
   * file to `outPath`; it never sits in memory. Transient S3 errors are
   * retried from the start, and an expired URL is renewed once.
   * `outPath` appears only once the whole file has arrived.
   */
  async downloadResults(batchId: string, outPath: string, options: DownloadOptions = {}): Promise<DownloadedResults> {
    let exported = await this.exportResults(batchId, options);
    for (let renewed = false; ; renewed = true) {
      try {
        const bytes = await downloadToFile(exported.url, outPath, { ...this.transferOptions(options.signal, options.onProgress), label: 'GET results export' });
        return { path: outPath, results: exported.results, bytes };
      } catch (error) {
        if (renewed || !(error instanceof FleetTransferError && error.expired)) throw error;
        exported = await this.exportResults(batchId, options);
      }
    }
  }

  private transferOptions(signal: AbortSignal | undefined, onProgress: ((done: number, total: number) => void) | undefined): TransferOptions {
    // A transfer may rightly take minutes: the timeout bounds a stall, not the whole.
    return { fetch: this.fetchImpl, retries: this.transferRetries, stallMs: this.timeoutMs, backoffMs: 200, signal, onProgress };
  }

  /** The batch's status and counts. Throws FleetApiError `not_found` for an unknown batch. */
  getBatchStatus(batchId: string, options: RequestOptions = {}): Promise<BatchStatus> {
    return this.request('GET', `/batches/${id(batchId)}`, options);
  }

  /** Every result recorded so far (or those `status`/`taskIdPrefix` keep), following pagination. For large batches prefer `resultPages`. */
  async getBatchResults(batchId: string, options: RequestOptions & ResultFilterOptions & { pageSize?: number } = {}): Promise<TaskResult<TResult>[]> {
    const all: TaskResult<TResult>[] = [];
    const { pageSize, ...rest } = options;
    for await (const page of this.resultPages(batchId, { ...rest, limit: pageSize ?? 1000 })) {
      all.push(...page.results);
    }
    return all;
  }

  /** One page of results. A filtered page may hold fewer than `limit` and still have a `nextCursor`. */
  getResultPage(batchId: string, options: ResultPageOptions = {}): Promise<ResultPage<TResult>> {
    return this.request('GET', `/batches/${id(batchId)}/results${pageQuery(options, { status: options.status, taskIdPrefix: options.taskIdPrefix })}`, options);
  }

  /**
   * One task of a batch by its id: as submitted, its result, and the failures
   * retry-failed cleared. Throws FleetApiError `not_found` for an unknown
   * batch or task.
   */
  getTask(batchId: string, taskId: string, options: RequestOptions = {}): Promise<TaskDetail<TData, TResult>> {
    if (typeof taskId !== 'string' || taskId === '') throw new TypeError('taskId must be a non-empty string');
    return this.request('GET', `/batches/${id(batchId)}/tasks/${encodeURIComponent(taskId)}`, options);
  }

  /** Tasks that succeeded and failed per minute over the last `minutes` minutes (1-60, default 60). */
  getTimeline(options: RequestOptions & { minutes?: number } = {}): Promise<Timeline> {
    return this.request('GET', `/stats/timeline${options.minutes !== undefined ? `?minutes=${options.minutes}` : ''}`, options);
  }

  /** The batch's results page by page, for batches too large to hold at once. */
  async *resultPages(batchId: string, options: ResultPageOptions = {}): AsyncGenerator<ResultPage<TResult>, void, undefined> {
    let cursor = options.cursor;
    for (;;) {
      const page = await this.getResultPage(batchId, { ...options, cursor });
      yield page;
      if (!page.nextCursor) return;
      cursor = page.nextCursor;
    }
  }

  /**
   * Cancels a pending or processing batch: no task starts after this returns.
   * @returns true if cancelled, false if the batch is unknown or already finished
   */
  async cancelBatch(batchId: string, options: RequestOptions = {}): Promise<boolean> {
    const answer = await this.request<{ cancelled: boolean }>('POST', `/batches/${id(batchId)}/cancel`, options);
    return answer.cancelled;
  }

  /** Sets the fleet-wide cap on tasks running at once (1–10,000); running batches follow at once. */
  scaleWorkers(count: number, options: RequestOptions = {}): Promise<ScaleResult> {
    return this.request('POST', '/workers/scale', { ...options, body: { count } });
  }

  /** Fleet-wide totals and the workers running now. */
  getStats(options: RequestOptions = {}): Promise<FleetStatistics> {
    return this.request('GET', '/stats', options);
  }

  /** The workers running an attempt now, oldest first. */
  async getActiveWorkers(options: RequestOptions = {}): Promise<WorkerInfo[]> {
    const answer = await this.request<{ workers: WorkerInfo[] }>('GET', '/workers', options);
    return answer.workers;
  }

  /** Changes only the fields given; returns the whole config as it now is. */
  updateConfig(config: Partial<FleetManagerConfig>, options: RequestOptions = {}): Promise<FleetManagerConfig> {
    return this.request('PATCH', '/config', { ...options, body: config });
  }

  getConfig(options: RequestOptions = {}): Promise<FleetManagerConfig> {
    return this.request('GET', '/config', options);
  }

  /** The Coordinator's `getSummary()` for one batch: counts and duration statistics over its results so far. */
  getBatchSummary(batchId: string, options: RequestOptions = {}): Promise<BatchSummary> {
    return this.request('GET', `/batches/${id(batchId)}/summary`, options);
  }

  /**
   * Runs a finished batch's failed tasks again (and any that never got a
   * result); tasks that succeeded keep their results. `mode` is `none` when
   * there is nothing to retry. Throws FleetApiError `not_found`, or
   * `conflict` while the batch runs or once it is cancelled.
   */
  retryFailed(batchId: string, options: RequestOptions = {}): Promise<RetryFailedResult> {
    return this.request('POST', `/batches/${id(batchId)}/retry-failed`, options);
  }

  /** Removes a finished batch now. Throws FleetApiError `not_found`, or `conflict` while the batch runs. */
  async deleteBatch(batchId: string, options: RequestOptions = {}): Promise<void> {
    await this.request('DELETE', `/batches/${id(batchId)}`, options);
  }

  /** One page of recent batches, newest first. */
  listBatches(options: PageOptions = {}): Promise<BatchPage> {
    return this.request('GET', `/batches${pageQuery(options)}`, options);
  }

  /**
   * Polls until the batch reaches a final state and resolves with that status,
   * whatever it is (check `status.status`). Replaces the seed's polling loop.
   */
  async waitForBatch(batchId: string, options: WaitOptions = {}): Promise<BatchStatus> {
    const { onProgress, signal } = options;
    const intervalMs = options.intervalMs ?? 1000;
    let last: BatchStatus | undefined;
    for (;;) {
      signal?.throwIfAborted();
      const status = await this.getBatchStatus(batchId, { signal });
      if (!last || changed(last, status)) onProgress?.(status);
      last = status;
      if (isFinished(status)) return status;
      await sleep(intervalMs, signal);
    }
  }

  /**
   * Sends one request and returns its parsed JSON body, or throws a
   * FleetApiError (the API refused) or a FleetNetworkError (no usable answer).
   */
  private async request<T>(
    method: string,
    path: string,
    options: { body?: unknown; headers?: Record<string, string> | undefined; signal?: AbortSignal | undefined; retry?: boolean } = {},
  ): Promise<T> {
    const label = `${method} ${path}`;
    const attempts = (options.retry ?? method === 'GET') ? this.maxRetries + 1 : 1;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.send<T>(method, path, label, options);
      } catch (error) {
        const transient = error instanceof FleetNetworkError || (error instanceof FleetApiError && RETRYABLE_STATUSES.has(error.status));
        if (!transient || attempt >= attempts || options.signal?.aborted) throw error;
        // Full jitter over an exponential ceiling: 200 ms, 400 ms, ...
        await sleep(Math.random() * 200 * 2 ** (attempt - 1), options.signal);
      }
    }
  }

  private async send<T>(
    method: string,
    path: string,
    label: string,
    options: { body?: unknown; headers?: Record<string, string> | undefined; signal?: AbortSignal | undefined },
  ): Promise<T> {
    const url = new URL(this.base.href);
    const [pathname, search] = path.split('?', 2) as [string, string | undefined];
    url.pathname = `${this.prefix}${pathname}`;
    url.search = search ? `?${search}` : '';
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const signed = await this.authorize({ method, url, headers, ...(body !== undefined ? { body } : {}) });

    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    let response: Response;
    let text: string;
    try {
      response = await this.fetchImpl(url, { method, headers: signed, body, signal });
      text = await response.text();
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (timeout.aborted) throw new FleetNetworkError(`${label}: no answer from ${this.url} within ${this.timeoutMs} ms`, label, { cause: error });
      const reason = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
      throw new FleetNetworkError(`${label}: cannot reach ${this.url} (${reason})`, label, { cause: error });
    }

    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!response.ok) throw apiError(response.status, parsed, text, label);
    if (parsed === undefined) {
      throw new FleetNetworkError(`${label}: ${this.url} answered ${response.status} without a JSON body; is it a Fleet API?`, label);
    }
    return parsed as T;
  }
}

const id = (batchId: string): string => {
  if (typeof batchId !== 'string' || batchId === '') throw new TypeError('batchId must be a non-empty string');
  return encodeURIComponent(batchId);
};

function pageQuery({ limit, cursor }: PageOptions, extra: Record<string, string | undefined> = {}): string {
  const params = new URLSearchParams();
  if (limit !== undefined) params.set('limit', String(limit));
  if (cursor) params.set('cursor', cursor);
  for (const [name, value] of Object.entries(extra)) if (value !== undefined) params.set(name, value);
  const query = params.toString();
  return query ? `?${query}` : '';
}

function changed(a: BatchStatus, b: BatchStatus): boolean {
  return (
    a.status !== b.status ||
    a.totalTasks !== b.totalTasks ||
    a.completedTasks !== b.completedTasks ||
    a.failedTasks !== b.failedTasks ||
    a.startedAt !== b.startedAt ||
    a.tasksFile?.state !== b.tasksFile?.state ||
    a.tasksFile?.linesRead !== b.tasksFile?.linesRead
  );
}

/** `GET /batches/{id}/results/export`: 202 while building, 200 once ready. */
interface ExportAnswer {
  status: 'building' | 'ready';
  resultsWritten?: number;
  /** Set on the answer that starts a build again after one failed. */
  previousError?: string;
  url?: string;
  results?: number;
  bytes?: number;
  expiresAt?: string;
}

/** Builds the error for a non-2xx answer from the API's envelope, or from the status when there is none. */
function apiError(status: number, body: unknown, text: string, request: string): FleetApiError {
  const envelope = (body as { error?: { code?: unknown; message?: unknown; field?: unknown } } | undefined)?.error;
  if (envelope && typeof envelope.code === 'string') {
    return new FleetApiError({
      status,
      code: envelope.code,
      message: typeof envelope.message === 'string' ? envelope.message : envelope.code,
      ...(typeof envelope.field === 'string' ? { field: envelope.field } : {}),
      request,
    });
  }
  // API Gateway's own answers (a bad signature, throttling) are {"message": "..."}.
  const gatewayMessage = (body as { message?: unknown } | undefined)?.message;
  const message = typeof gatewayMessage === 'string' ? gatewayMessage : text.trim().slice(0, 200) || `HTTP ${status}`;
  return new FleetApiError({ status, code: codeForStatus(status), message, request });
}
