/**
 * FleetClient: the FleetManagerAgent's methods, with the seed's names and
 * meanings, over Fleet's HTTP API. Works against local mode and a deployed
 * API alike; only the URL and the auth differ.
 */
import { randomUUID } from 'node:crypto';
import type { RetryFailedResult } from '../lambdas/domain/retry-failed';
import type { BatchSummary } from '../lambdas/domain/summary';
import type { BatchStatus, FleetManagerConfig, FleetStatistics, Task, TaskResult, WorkerInfo } from '../lambdas/domain/types';
import { createAuthorizer, resolveAuth, type FleetAuth, type RequestAuthorizer } from './auth';
import { codeForStatus, FleetApiError, FleetNetworkError } from './errors';

export type { RetryFailedResult, BatchSummary, BatchStatus, FleetManagerConfig, FleetStatistics, Task, TaskResult, WorkerInfo };

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
   * The fetch to use, e.g. one with a proxy agent.
   * @default globalThis.fetch
   */
  fetch?: typeof fetch;
  /** Environment to read FLEET_URL and FLEET_TOKEN from. @default process.env */
  env?: NodeJS.ProcessEnv;
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
  }

  /** Submits a batch and returns its id at once; the batch runs in the background. */
  async submitBatch(tasks: Task<TData>[], options: SubmitOptions = {}): Promise<string> {
    const body = { tasks, ...(options.priority !== undefined ? { priority: options.priority } : {}) };
    // One key for this call and all its retries: the API answers a repeat with
    // the same batch, so a submit whose answer was lost is retried without
    // running the batch twice. A new call gets a new key, hence a new batch.
    const headers = { 'idempotency-key': options.idempotencyKey || randomUUID() };
    const status = await this.request<BatchStatus>('POST', '/batches', { body, headers, signal: options.signal, retry: true });
    return status.batchId;
  }

  /** The batch's status and counts. Throws FleetApiError `not_found` for an unknown batch. */
  getBatchStatus(batchId: string, options: RequestOptions = {}): Promise<BatchStatus> {
    return this.request('GET', `/batches/${id(batchId)}`, options);
  }

  /** Every result recorded so far, following pagination. For large batches prefer `resultPages`. */
  async getBatchResults(batchId: string, options: RequestOptions & { pageSize?: number } = {}): Promise<TaskResult<TResult>[]> {
    const all: TaskResult<TResult>[] = [];
    for await (const page of this.resultPages(batchId, { limit: options.pageSize ?? 1000, signal: options.signal })) {
      all.push(...page.results);
    }
    return all;
  }

  /** One page of results. */
  getResultPage(batchId: string, options: PageOptions = {}): Promise<ResultPage<TResult>> {
    return this.request('GET', `/batches/${id(batchId)}/results${pageQuery(options)}`, options);
  }

  /** The batch's results page by page, for batches too large to hold at once. */
  async *resultPages(batchId: string, options: PageOptions = {}): AsyncGenerator<ResultPage<TResult>, void, undefined> {
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

function pageQuery({ limit, cursor }: PageOptions): string {
  const params = new URLSearchParams();
  if (limit !== undefined) params.set('limit', String(limit));
  if (cursor) params.set('cursor', cursor);
  const query = params.toString();
  return query ? `?${query}` : '';
}

function changed(a: BatchStatus, b: BatchStatus): boolean {
  return a.status !== b.status || a.completedTasks !== b.completedTasks || a.failedTasks !== b.failedTasks || a.startedAt !== b.startedAt;
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

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
