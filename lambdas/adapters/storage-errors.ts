/**
 * Which storage errors are the store's passing trouble, not the data's: the
 * worker turns those into StorageUnavailable, which the state machine retries
 * without spending one of the task's attempts. Anything else (a
 * ValidationException for an item DynamoDB refuses, say) stays the task's own
 * failure, as before.
 *
 * The names are those the AWS SDK's own retry strategy treats as throttling
 * or transient (it has already retried them by the time they reach here):
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
 */
import { BatchGetIncomplete } from './batch-get';
import { BatchWriteIncomplete } from './batch-write';

const UNAVAILABLE_NAMES = new Set([
  // Throttling (DynamoDB's, and the SDK's generic names)
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'Throttling',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'LimitExceededException',
  // The service's own failures
  'InternalServerError',
  'InternalFailure',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  // No answer in time
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'AbortError',
]);

/** Node's socket and DNS errors: the endpoint could not be reached. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

interface SdkLikeError {
  name?: unknown;
  code?: unknown;
  cause?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  $retryable?: unknown;
}

/** True when `error` says the store could not be reached or would not answer now. */
export function isStorageUnavailable(error: unknown, depth = 0): boolean {
  if (!error || typeof error !== 'object' || depth > 3) return false;
  const e = error as SdkLikeError;
  if (error instanceof BatchWriteIncomplete) {
    // Left unprocessed after every resend: throttling. Stopped by an error: that error decides.
    return e.cause === undefined ? true : isStorageUnavailable(e.cause, depth + 1);
  }
  // Keys left unprocessed after every resend: throttling.
  if (error instanceof BatchGetIncomplete) return true;
  if (typeof e.name === 'string' && UNAVAILABLE_NAMES.has(e.name)) return true;
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
  if (e.$retryable !== undefined) return true;
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number' && (status === 429 || status >= 500)) return true;
  // Network failures often arrive wrapped (fetch's TypeError, the SDK's own wrappers).
  return e.cause !== undefined && isStorageUnavailable(e.cause, depth + 1);
}
