/**
 * The client's errors. Each has a stable `name`, so callers can tell an API
 * refusal (a 4xx with the API's code) from a fleet that could not be reached
 * or failed on its side, and act on each differently.
 */

/** The codes the Fleet API sends, plus those the client derives for answers without Fleet's error envelope. */
export type FleetErrorCode =
  | 'validation_error'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'method_not_allowed'
  | 'unauthorized'
  | 'forbidden'
  | 'too_many_requests'
  | 'internal_error'
  | 'server_error'
  // Any other code a newer API may send, without losing autocompletion of the known ones.
  | (string & {});

/** Base of every error the client throws. */
export class FleetError extends Error {
  override readonly name: string = 'FleetError';
}

/**
 * The API answered with an error status. `code`, `message` and `field` come
 * from the API's `{"error": {code, message, field?}}` body; for answers
 * without that body (API Gateway's own 403 for a bad signature, a proxy's
 * 502) the code is derived from the status.
 */
export class FleetApiError extends FleetError {
  override readonly name = 'FleetApiError';
  /** HTTP status, e.g. 404. */
  readonly status: number;
  /** The API's error code, e.g. `not_found` or `validation_error`. */
  readonly code: FleetErrorCode;
  /** The input field at fault, e.g. `tasks[3].id`; only on validation errors. */
  readonly field: string | undefined;
  /** The request that failed, e.g. `GET /batches/abc`. */
  readonly request: string;

  constructor(init: { status: number; code: FleetErrorCode; message: string; field?: string; request: string }) {
    super(init.message);
    this.status = init.status;
    this.code = init.code;
    this.field = init.field;
    this.request = init.request;
  }

  /** True for 5xx answers and throttling: the same request may succeed later. */
  get retryable(): boolean {
    return this.status >= 500 || this.status === 429;
  }
}

/** The fleet could not be reached, did not answer in time, or answered something that is not the Fleet API. */
export class FleetNetworkError extends FleetError {
  override readonly name = 'FleetNetworkError';
  readonly request: string;

  constructor(message: string, request: string, options?: { cause?: unknown }) {
    super(message, options);
    this.request = request;
  }
}

/** The code the client reports for an error answer that lacks Fleet's error envelope. */
export function codeForStatus(status: number): FleetErrorCode {
  switch (status) {
    case 400:
      return 'validation_error';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 405:
      return 'method_not_allowed';
    case 409:
      return 'conflict';
    case 413:
      return 'payload_too_large';
    case 429:
      return 'too_many_requests';
    default:
      return status >= 500 ? 'server_error' : `http_${status}`;
  }
}

/** Narrows `error` to a FleetApiError, optionally with a given code. */
export function isFleetApiError(error: unknown, code?: FleetErrorCode): error is FleetApiError {
  return error instanceof FleetApiError && (code === undefined || error.code === code);
}

/**
 * Moving a file to or from S3 through a presigned URL failed: an upload
 * URL that expired, an S3 refusal, or transient errors (SlowDown, 500, a cut
 * connection) that outlasted the retries. `code` is S3's own error code
 * (`AccessDenied`, `SlowDown`, ...) when S3 sent one.
 */
export class FleetTransferError extends FleetError {
  override readonly name = 'FleetTransferError';
  /** HTTP status of S3's answer; undefined when there was no answer (a network error). */
  readonly status: number | undefined;
  /** S3's error code, e.g. `AccessDenied`, `SlowDown`, `MissingContentLength`; or `network_error`, `expired`, `too_large`, `truncated`. */
  readonly code: string;
  /** What was being moved, e.g. `PUT tasks file` or `GET results export`. */
  readonly request: string;

  constructor(init: { message: string; code: string; status?: number; request: string }, options?: { cause?: unknown }) {
    super(init.message, options);
    this.status = init.status;
    this.code = init.code;
    this.request = init.request;
  }

  /** True when the same transfer may succeed if tried again (S3 throttling, a 5xx, a cut connection). */
  get retryable(): boolean {
    if (this.status === undefined) return this.code === 'network_error' || this.code === 'truncated';
    return this.status >= 500 || this.status === 429 || this.code === 'RequestTimeout';
  }

  /** True when S3 refused a presigned URL because it expired: a new one is needed. */
  get expired(): boolean {
    return this.status === 403 && /expired/i.test(this.message);
  }
}
