/**
 * HTTP helpers for the local end-to-end tests: they talk to a running local
 * fleet only through its public API, as a client would.
 */
import type { BatchStatus, TaskResult } from '../../lambdas/domain/types';

/** The API's error envelope. */
export interface ApiErrorBody {
  error: { code: string; message: string; field?: string };
}

export interface ApiResponse<T> {
  status: number;
  /** The parsed JSON body; undefined when the body is empty or not JSON. */
  body: T;
  text: string;
  headers: Headers;
}

/**
 * Sends one request. A string or Buffer body is sent as-is (for malformed or
 * oversize bodies); anything else is sent as JSON. `headers` are added
 * (e.g. `authorization`, `idempotency-key`).
 */
export async function api<T = unknown>(baseUrl: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
  const hasBody = body !== undefined;
  const payload = !hasBody ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { ...(hasBody ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(payload !== undefined ? { body: payload } : {}),
  });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: response.status, body: parsed as T, text, headers: response.headers };
}

/** Polls `probe` until it returns something other than undefined, and resolves with it; throws after `timeoutMs`. */
export async function waitUntil<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000, intervalMs = 20): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

const RUNNING = new Set(['pending', 'processing']);

/** Polls GET /batches/{id} until the batch leaves pending/processing; throws after `timeoutMs` (a hang guard, generous for a busy machine). */
export async function waitForBatch(baseUrl: string, batchId: string, timeoutMs = 120_000, intervalMs = 25): Promise<BatchStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: ApiResponse<BatchStatus> | undefined;
  while (Date.now() < deadline) {
    last = await api<BatchStatus>(baseUrl, 'GET', `/batches/${encodeURIComponent(batchId)}`);
    if (last.status !== 200) throw new Error(`GET /batches/${batchId} returned ${last.status}: ${last.text}`);
    if (!RUNNING.has(last.body.status)) return last.body;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`batch ${batchId} did not finish within ${timeoutMs} ms; last status: ${last?.text ?? 'none'}`);
}

/** Reads every result of a batch, following `nextCursor`; also returns each page's size. */
export async function readAllResults(baseUrl: string, batchId: string, limit = 100): Promise<{ results: TaskResult[]; pageSizes: number[] }> {
  const results: TaskResult[] = [];
  const pageSizes: number[] = [];
  let cursor: string | null = null;
  do {
    const query: string = `limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const page: ApiResponse<{ results: TaskResult[]; nextCursor: string | null }> = await api(
      baseUrl,
      'GET',
      `/batches/${encodeURIComponent(batchId)}/results?${query}`,
    );
    if (page.status !== 200) throw new Error(`GET results of ${batchId} returned ${page.status}: ${page.text}`);
    results.push(...page.body.results);
    pageSizes.push(page.body.results.length);
    cursor = page.body.nextCursor;
    // A cursor that never ends would hang the test; no batch here has this many pages.
    if (pageSizes.length > 10_000) throw new Error('results pagination did not end');
  } while (cursor);
  return { results, pageSizes };
}

/** Reads the whole GET /batches list, following `nextCursor`; also returns each page's size. */
export async function listAllBatches(baseUrl: string, limit = 50): Promise<{ batches: BatchStatus[]; pageSizes: number[] }> {
  const batches: BatchStatus[] = [];
  const pageSizes: number[] = [];
  let cursor: string | null = null;
  do {
    const query: string = `limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const page: ApiResponse<{ batches: BatchStatus[]; nextCursor: string | null }> = await api(baseUrl, 'GET', `/batches?${query}`);
    if (page.status !== 200) throw new Error(`GET /batches returned ${page.status}: ${page.text}`);
    batches.push(...page.body.batches);
    pageSizes.push(page.body.batches.length);
    cursor = page.body.nextCursor;
    if (pageSizes.length > 10_000) throw new Error('batch list pagination did not end');
  } while (cursor);
  return { batches, pageSizes };
}

export { peakConcurrency } from '../e2e/overlap';
