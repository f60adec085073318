/**
 * Files through presigned S3 URLs: a tasks file up (PUT), a results export
 * down (GET). Both stream, so memory stays flat however big the file, and
 * both retry what S3 documents as transient (503 SlowDown, 500, a cut
 * connection) from the file's start: a presigned single PUT cannot resume.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { rename, rm } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { escapedStringBytes } from '../lambdas/domain/payload-size';
import { FleetTransferError } from './errors';

/** A request body that can be read again from its start, once per attempt. */
export interface ReopenableBody {
  /** Exact length in bytes: S3 refuses a PUT without Content-Length (411 MissingContentLength). */
  readonly bytes: number;
  open(): Readable;
}

/** A file on disk, read in 256 KiB chunks. `bytes` comes from a stat taken before. */
export function fileBody(path: string, bytes: number): ReopenableBody {
  return { bytes, open: () => createReadStream(path, { highWaterMark: 256 * 1024 }) };
}

/** JSON.stringify's result, typed as it is at runtime: undefined for a value JSON cannot hold (undefined, a function). */
const stringify = (value: unknown): string | undefined => JSON.stringify(value);

const jsonLine = (task: unknown): string => `${stringify(task) ?? 'null'}\n`;

/**
 * Tasks as JSON Lines, generated chunk by chunk for each attempt. The length
 * is counted first line by line, so no string of the whole file ever exists
 * (a million tasks of 200 bytes would be a 200 MB string).
 */
export function jsonLinesBody(tasks: readonly unknown[]): ReopenableBody {
  let bytes = 0;
  for (const task of tasks) bytes += Buffer.byteLength(jsonLine(task));
  function* chunks(): Generator<Buffer> {
    let parts: string[] = [];
    let size = 0;
    for (const task of tasks) {
      const line = jsonLine(task);
      parts.push(line);
      size += line.length;
      if (size >= 64 * 1024) {
        yield Buffer.from(parts.join(''));
        parts = [];
        size = 0;
      }
    }
    if (parts.length > 0) yield Buffer.from(parts.join(''));
  }
  return { bytes, open: () => Readable.from(chunks(), { objectMode: false }) };
}

/**
 * Bytes of `{"tasks": [...], "priority"?: n}` as the API measures a body:
 * JSON-escaped, as the Lambda event carries it (lambdas/api.ts). Summed task
 * by task, since escaping is per character, and stopped as soon as the sum
 * passes `limit`, so a million-task batch costs no more than the limit to
 * measure and no whole-body string is built.
 */
export function inlineBodyBytes(tasks: readonly unknown[], priority: number | undefined, limit: number): number {
  let total = escapedStringBytes('{"tasks":[') + escapedStringBytes(`]${priority !== undefined ? `,"priority":${JSON.stringify(priority)}` : ''}}`);
  let first = true;
  for (const task of tasks) {
    total += escapedStringBytes(stringify(task) ?? 'null') + (first ? 0 : 1);
    first = false;
    if (total > limit) return total;
  }
  return total;
}

export interface TransferOptions {
  fetch: typeof fetch;
  /** Attempts after the first, for transient failures only. */
  retries: number;
  /** An attempt that moves no byte for this long is cut and counts as a network error. */
  stallMs: number;
  /** First backoff ceiling in ms; doubled each attempt, with full jitter. */
  backoffMs: number;
  signal?: AbortSignal | undefined;
  /** Bytes moved so far in this attempt (a retry starts again from 0), and the total. */
  onProgress?: ((done: number, total: number) => void) | undefined;
}

/**
 * PUTs `body` to a presigned URL. Resolves with S3's ETag.
 *
 * Sent with node:http(s), not fetch: Node's fetch reads a streamed request
 * body ahead of the socket without bound (a 300 MB file sat whole in memory),
 * while a piped http request waits for the socket to drain.
 */
export async function putObject(url: string, body: ReopenableBody, options: TransferOptions & { expiresAt?: string }): Promise<{ etag: string | undefined }> {
  const label = 'PUT tasks file';
  const expiresAtMs = options.expiresAt ? Date.parse(options.expiresAt) : Number.NaN;
  const expired = () =>
    new FleetTransferError({
      message: `${label}: the presigned URL has expired (at ${options.expiresAt}); start again to get a new URL`,
      code: 'AccessDenied',
      status: 403,
      request: label,
    });
  let attempt = 0;
  return withRetries(options, async () => {
    // A retry of an expired URL cannot succeed. S3 may also close the
    // connection on an early 403, which would otherwise look like a network
    // error. The first attempt always goes: S3's clock decides, not ours.
    if (attempt++ > 0 && Date.now() > expiresAtMs) throw expired();
    const watchdog = new Watchdog(options.stallMs);
    const signal = options.signal ? AbortSignal.any([options.signal, watchdog.signal]) : watchdog.signal;
    const source = body.open();
    let sent = 0;
    let bodyError: Error | undefined;
    const changed = () =>
      new FleetTransferError({ message: `${label}: the file changed while it was being sent (${sent} bytes read, ${body.bytes} expected); submit it again`, code: 'changed', request: label });
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        sent += chunk.length;
        if (sent > body.bytes) { done((bodyError = changed())); return; }
        watchdog.touch();
        options.onProgress?.(sent, body.bytes);
        done(null, chunk);
      },
      flush(done) {
        done(sent === body.bytes ? null : (bodyError = changed()));
      },
    });
    source.once('error', (error) => (bodyError ??= error));
    options.onProgress?.(0, body.bytes);
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    try {
      return await new Promise<{ etag: string | undefined }>((resolve, reject) => {
        // Content-Length only: the URL is presigned, so an Authorization header
        // would be a second auth mechanism, which S3 refuses.
        const req = send(target, { method: 'PUT', headers: { 'content-length': String(body.bytes) }, signal }, (res) => {
          const status = res.statusCode ?? 0;
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            watchdog.touch();
            if (size < 64 * 1024) chunks.push(chunk);
            size += chunk.length;
          });
          // S3 may answer an error before it has read the whole body, then close:
          // its answer, not the broken pipe, is what happened.
          const settle = () => {
            if (status >= 200 && status < 300) resolve({ etag: typeof res.headers.etag === 'string' ? res.headers.etag : undefined });
            else reject(s3Error(status, Buffer.concat(chunks).toString('utf8'), label));
          };
          res.once('end', settle);
          res.once('close', () => {
            if (status >= 200 && status < 300 && !res.complete) reject(new Error('the answer was cut'));
            else settle();
          });
          res.once('error', reject);
        });
        req.once('error', reject);
        pipeline(source, counter, req).catch((error: unknown) => {
          if (bodyError) reject(bodyError);
          else req.destroy(error instanceof Error ? error : new Error(String(error)));
        });
      });
    } catch (error) {
      if (bodyError) throw bodyError;
      if (!(error instanceof FleetTransferError) && Date.now() > expiresAtMs) throw expired();
      throw transferFailure(error, label, watchdog, options);
    } finally {
      watchdog.stop();
      source.destroy();
      counter.destroy();
    }
  });
}

/**
 * GETs a presigned URL into `outPath`: written to `outPath.part` and renamed
 * once complete, so `outPath` never holds half a file. Resolves with the
 * bytes written.
 */
export async function downloadToFile(url: string, outPath: string, options: TransferOptions & { label?: string }): Promise<number> {
  const label = options.label ?? 'GET file';
  const partPath = `${outPath}.part`;
  return withRetries(options, async () => {
    const watchdog = new Watchdog(options.stallMs);
    const signal = options.signal ? AbortSignal.any([options.signal, watchdog.signal]) : watchdog.signal;
    let received = 0;
    let fileError: Error | undefined;
    let done = false;
    try {
      let response: Response;
      try {
        response = await options.fetch(url, { method: 'GET', signal });
      } catch (error) {
        throw transferFailure(error, label, watchdog, options);
      }
      if (!response.ok) throw s3Error(response.status, await response.text().catch(() => ''), label);
      // With a Content-Encoding, fetch decodes and the length no longer matches.
      const length = response.headers.get('content-length');
      const total = length !== null && !response.headers.get('content-encoding') ? Number(length) : undefined;
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, next) {
          received += chunk.length;
          watchdog.touch();
          options.onProgress?.(received, total ?? received);
          next(null, chunk);
        },
      });
      const out = createWriteStream(partPath);
      out.once('error', (error) => (fileError = error));
      const source = response.body ? Readable.fromWeb(response.body) : Readable.from([]);
      options.onProgress?.(0, total ?? 0);
      try {
        await pipeline(source, counter, out);
      } catch (error) {
        if (fileError) throw fileError;
        throw transferFailure(error, label, watchdog, options);
      }
      if (total !== undefined && received !== total) {
        throw new FleetTransferError({ message: `${label}: the connection ended after ${received} of ${total} bytes`, code: 'truncated', request: label });
      }
      await rename(partPath, outPath);
      done = true;
      return received;
    } finally {
      watchdog.stop();
      if (!done) await rm(partPath, { force: true });
    }
  });
}

async function withRetries<T>(options: TransferOptions, attempt: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    options.signal?.throwIfAborted();
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof FleetTransferError) || !error.retryable || n > options.retries || options.signal?.aborted) throw error;
      // Full jitter over an exponential ceiling, capped: S3 asks clients meeting SlowDown to slow down.
      await sleep(Math.random() * Math.min(options.backoffMs * 2 ** (n - 1), 20_000), options.signal);
    }
  }
}

/** The error for an attempt that got no usable answer: the caller's abort, a stall, or the network. */
function transferFailure(error: unknown, label: string, watchdog: Watchdog, options: TransferOptions): unknown {
  if (options.signal?.aborted) return options.signal.reason;
  if (error instanceof FleetTransferError) return error;
  const reason = watchdog.fired
    ? `no byte moved for ${options.stallMs} ms`
    : error instanceof Error && error.cause instanceof Error
      ? error.cause.message
      : error instanceof Error
        ? error.message
        : String(error);
  return new FleetTransferError({ message: `${label}: ${reason}`, code: 'network_error', request: label }, { cause: error });
}

/** S3's XML error (`<Error><Code>SlowDown</Code><Message>...</Message></Error>`) as a FleetTransferError. */
export function s3Error(status: number, text: string, request: string): FleetTransferError {
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? `http_${status}`;
  const s3Message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? (text.trim().slice(0, 200) || `HTTP ${status}`);
  const expired = status === 403 && /expired/i.test(s3Message);
  const message = expired
    ? `${request}: the presigned URL has expired (S3 ${status} ${code}: ${s3Message}); start again to get a new URL`
    : `${request}: S3 answered ${status} ${code}: ${s3Message}`;
  return new FleetTransferError({ message, code, status, request });
}

/** Aborts its signal when `touch` has not been called for `ms`. */
class Watchdog {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  fired = false;

  constructor(ms: number) {
    this.timer = setTimeout(() => {
      this.fired = true;
      this.controller.abort(new Error(`no progress for ${ms} ms`));
    }, ms);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  touch(): void {
    this.timer.refresh();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(signal.reason); return; }
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
