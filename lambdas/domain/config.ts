import type { FleetManagerConfig, TaskSettings } from './types';

/** The seed's defaults. */
export const DEFAULT_CONFIG: Readonly<FleetManagerConfig> = Object.freeze({
  maxConcurrentWorkers: 10,
  workerTimeout: 300_000,
  retryFailedTasks: true,
  maxRetries: 3,
});

/**
 * Documented bounds. Each one comes from a service limit, so a value outside
 * it could never be honoured on AWS.
 */
export const LIMITS = Object.freeze({
  /** Distributed Map runs at most 10,000 children at once. */
  maxConcurrentWorkers: 10_000,
  /**
   * Lambda stops a function at 15 minutes; one minute stays in reserve so a
   * timed-out attempt can still record its failure.
   */
  workerTimeoutMs: 840_000,
  /** The state machine's Retry `MaxAttempts`: the most retries any batch can ask for. */
  maxRetries: 10,
  /** Task ids and types. */
  taskIdLength: 256,
  taskTypeLength: 64,
  /** A task's JSON, so one child execution's input stays far below 256 KiB. */
  taskBytes: 32 * 1024,
  /** Tasks in one batch, unless the deployment raises it (FLEET_MAX_TASKS_PER_BATCH). */
  tasksPerBatch: 100_000,
  /**
   * Request bodies, measured as the body sits in the API's payload-2.0 event
   * (JSON-escaped, or base64): the whole event must stay under Lambda's 6 MB
   * synchronous payload, with room left for the headers and request context.
   */
  bodyBytes: 5 * 1024 * 1024,
  /** Lambda's synchronous payload quota, for the request and for the response: 6 MB. */
  lambdaPayloadBytes: 6 * 1024 * 1024,
  /**
   * The most a request or response body may take, JSON-escaped, inside the
   * API function's event or result: under the 6 MB quota, with room for the
   * headers, the request context or status, and a page's cursor.
   */
  bodyInPayloadBytes: 6 * 1024 * 1024 - 64 * 1024,
  /** `limit` on paginated reads. */
  pageSize: 1000,
});

/**
 * Retry policy of one task attempt, as the state machine declares it.
 * Exponential backoff with full jitter: delay = random(0, min(max, interval * rate^n)).
 */
export const RETRY_BACKOFF = Object.freeze({
  intervalSeconds: 1,
  backoffRate: 2,
  maxDelaySeconds: 60,
});

/** Seconds Step Functions allows past the worker's own deadline before it gives up on the attempt. */
export const ATTEMPT_TIMEOUT_GRACE_SECONDS = 10;

/**
 * Settings a batch runs with, fixed when it starts: the backstop covers the
 * longest timeout any of its tasks may use.
 */
export function settingsForBatch(
  config: FleetManagerConfig,
  longestTaskTimeoutMs: number,
  childExecutionType: 'EXPRESS' | 'STANDARD' = 'EXPRESS',
): TaskSettings {
  const longestMs = Math.max(config.workerTimeout, longestTaskTimeoutMs);
  return {
    workerTimeout: config.workerTimeout,
    maxRetries: config.maxRetries,
    retryFailedTasks: config.retryFailedTasks,
    attemptTimeoutSeconds: Math.ceil(longestMs / 1000) + ATTEMPT_TIMEOUT_GRACE_SECONDS,
    executionBudgetMs: childExecutionType === 'EXPRESS' ? EXPRESS_BUDGET_MS : null,
  };
}

/**
 * An EXPRESS child ends at 5 minutes, retries and backoff included. Fleet
 * keeps 20 s of it to record the result, so a task is never lost to the limit.
 */
export const EXPRESS_BUDGET_MS = 5 * 60_000 - 20_000;

/** Longest delay the state machine may wait before retry number `attempt + 1`. */
export function maxBackoffMs(attempt: number): number {
  const seconds = Math.min(RETRY_BACKOFF.maxDelaySeconds, RETRY_BACKOFF.intervalSeconds * RETRY_BACKOFF.backoffRate ** attempt);
  return seconds * 1000;
}

/** Whether a failed attempt (0-based) gets another one under these settings. */
export function mayRetry(settings: Pick<TaskSettings, 'maxRetries' | 'retryFailedTasks'>, attempt: number): boolean {
  return settings.retryFailedTasks && attempt < settings.maxRetries;
}
