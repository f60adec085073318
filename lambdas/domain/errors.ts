/**
 * Named errors. Their `name`s are a contract: Step Functions' Retry and Catch
 * match on them (Lambda reports `error.name` as the error type), and the API
 * maps them to HTTP status codes in one place (`lambdas/api.ts`).
 */
import { stringifyJson } from './payload-size';

/** Base for errors the API turns into a 4xx with a stable code. */
export abstract class FleetClientError extends Error {
  abstract readonly status: number;
  abstract readonly code: string;
}

/** Bad input. `field` names what was wrong, e.g. `tasks[3].id`. */
export class ValidationError extends FleetClientError {
  override readonly name = 'ValidationError';
  readonly status = 400;
  readonly code = 'validation_error';
  constructor(
    readonly field: string,
    /** What is wrong, without the field: e.g. `must not be empty`. */
    readonly problem: string,
  ) {
    super(field ? `${field}: ${problem}` : problem);
  }
}

export class NotFoundError extends FleetClientError {
  override readonly name = 'NotFoundError';
  readonly status = 404;
  readonly code = 'not_found';
}

export class ConflictError extends FleetClientError {
  override readonly name = 'ConflictError';
  readonly status = 409;
  readonly code = 'conflict';
}

export class PayloadTooLargeError extends FleetClientError {
  override readonly name = 'PayloadTooLargeError';
  readonly status = 413;
  readonly code = 'payload_too_large';
}

export class MethodNotAllowedError extends FleetClientError {
  override readonly name = 'MethodNotAllowedError';
  readonly status = 405;
  readonly code = 'method_not_allowed';
}

/**
 * Thrown by a task handler (or by Fleet on its behalf) for a failure worth
 * another attempt. Any plain Error from a handler is treated the same way.
 */
export class TaskRetryableError extends Error {
  override readonly name = 'TaskRetryableError';
}

/** Thrown by a task handler for a failure no retry can fix. */
export class TaskPermanentError extends Error {
  override readonly name: string = 'TaskPermanentError';
}

/** The attempt ran past its deadline (`workerTimeout` or the task's own timeout). */
export class TaskTimeoutError extends Error {
  override readonly name = 'TaskTimeoutError';
}

/** No handler is registered for the task's type: permanent. */
export class UnknownTaskTypeError extends TaskPermanentError {
  override readonly name = 'UnknownTaskTypeError';
}

/**
 * What the worker throws to Step Functions. The state machine retries
 * `TaskAttemptFailed` with backoff; `TaskFailed` means the failure is final
 * and already recorded, so the child ends without touching the Map Run.
 */
export const WORKER_ERROR = {
  attemptFailed: 'TaskAttemptFailed',
  failed: 'TaskFailed',
  storageUnavailable: 'Fleet.StorageUnavailable',
} as const;

export class TaskAttemptFailed extends Error {
  override readonly name = WORKER_ERROR.attemptFailed;
}

export class TaskFailed extends Error {
  override readonly name = WORKER_ERROR.failed;
}

/**
 * The worker could not record an attempt's outcome (DynamoDB unreachable,
 * throttled past the SDK's own retries, an internal error): the fleet's
 * fault, never the task's. The state machine retries the call with backoff
 * without spending one of the task's attempts; the task then runs again.
 */
export class StorageUnavailable extends Error {
  override readonly name = WORKER_ERROR.storageUnavailable;
}

/**
 * Longest error message kept, in characters. A task's failure is stored in
 * one DynamoDB item (at most 400 KB), so a handler that throws a megabyte of
 * text must not make its own failure unrecordable.
 */
export const MAX_ERROR_MESSAGE_LENGTH = 4096;

function truncateMessage(message: string): string {
  if (message.length <= MAX_ERROR_MESSAGE_LENGTH) return message;
  return `${message.slice(0, MAX_ERROR_MESSAGE_LENGTH)}… (${message.length - MAX_ERROR_MESSAGE_LENGTH} more characters)`;
}

/**
 * A readable message for anything thrown, including non-Error values, at
 * most MAX_ERROR_MESSAGE_LENGTH characters. Never throws: a handler's
 * strangest throw still becomes its task's recorded failure.
 */
export function describeError(error: unknown): string {
  try {
    if (error instanceof Error) {
      // A throw may have set message to anything (a number, an object): String() makes it text.
      const text: unknown = error.message || error.name || 'Error';
      return truncateMessage(String(text));
    }
    if (typeof error === 'string') return truncateMessage(error);
    const json = stringifyJson(error);
    if (json !== undefined) return truncateMessage(`Non-Error thrown: ${json}`);
  } catch {
    // circular, BigInt, a throwing toJSON or getter: fall back to String()
  }
  try {
    return truncateMessage(`Non-Error thrown: ${String(error)}`);
  } catch {
    // e.g. an object without a prototype: no toString, no valueOf
    return 'Non-Error thrown: a value that cannot be shown as text';
  }
}
