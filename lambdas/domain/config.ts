import type { FleetManagerConfig, TaskSettings } from './types';

/** The seed's defaults. */
export const DEFAULT_CONFIG: Readonly<FleetManagerConfig> = Object.freeze({
  maxConcurrentWorkers: 10,
  workerTimeout: 300_000,
  retryFailedTasks: true,
  maxRetries: 3,
  workerListing: 'every-attempt',
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

/**
 * Retry policy when the worker cannot record an outcome (StorageUnavailable).
 * Generous: storage outages outlast a task's own backoff. None of these
 * retries is one of the task's attempts. Worst case, the waits add up to
 * 2+4+8+16+32+60×(maxAttempts−5) seconds, about 15 minutes.
 */
export const STORAGE_RETRY = Object.freeze({
  intervalSeconds: 2,
  backoffRate: 2,
  maxDelaySeconds: 60,
  maxAttempts: 18,
});

/**
 * An EXPRESS child execution ends at 5 minutes, whatever it is doing
 * (https://docs.aws.amazon.com/step-functions/latest/dg/choosing-workflow-type.html).
 * Fleet splits them so that every task still ends recorded:
 *
 *   child start ──── attempts (the worker's own deadlines) ──── 270 s ─ grace ─ 280 s ─ Record failure ─ 300 s
 *
 * - The worker ends every attempt by child start + EXPRESS_BUDGET_MS (270 s),
 *   and retries only when the retry's own deadline still fits before it.
 * - The backstop (the Task's TimeoutSecondsPath) is at most
 *   EXPRESS_BACKSTOP_MAX_SECONDS (280 s), so an attempt the worker cannot end
 *   itself (a handler blocking its event loop, a crashed runtime) is cut at
 *   the latest 280 s after it began; for the first attempt, by 280 s into the child.
 * - EXPRESS_RECORD_RESERVE_SECONDS (20 s) are left for Record failure to
 *   record it as failed and send it to the dead-letter queue.
 *
 * The rule: worker deadline + grace ≤ backstop, and backstop + record reserve
 * ≤ 300 s. A longer timeout (workerTimeout, tasks[i].timeout) is not refused
 * but clamped by it, and its timeout message names the 5-minute limit.
 *
 * What it cannot cover: a retry that blocks its event loop starts after the
 * child's start, so its backstop can fall past the 5 minutes; such a child is
 * ended by Step Functions, tolerated by the Map, and counted failed by Finish
 * batch, but has no result item and no dead-letter message. STANDARD children
 * have no such limit.
 */
export const EXPRESS_LIMIT_SECONDS = 300;
export const EXPRESS_RECORD_RESERVE_SECONDS = 20;
export const EXPRESS_BACKSTOP_MAX_SECONDS = EXPRESS_LIMIT_SECONDS - EXPRESS_RECORD_RESERVE_SECONDS;

/** Seconds Step Functions allows past the worker's own deadline before it gives up on the attempt. */
export const ATTEMPT_TIMEOUT_GRACE_SECONDS = 10;

/** How long into an EXPRESS child the worker may run attempts: the backstop's grace before its cap. */
export const EXPRESS_BUDGET_MS = (EXPRESS_BACKSTOP_MAX_SECONDS - ATTEMPT_TIMEOUT_GRACE_SECONDS) * 1000;

/**
 * Settings a batch runs with, fixed when it starts: the backstop covers the
 * longest timeout any of its tasks may use, within an EXPRESS child's 5
 * minutes (see EXPRESS_BUDGET_MS above).
 */
export function settingsForBatch(
  config: FleetManagerConfig,
  longestTaskTimeoutMs: number,
  childExecutionType: 'EXPRESS' | 'STANDARD' = 'EXPRESS',
  counterShards?: number,
): TaskSettings {
  const longestMs = Math.max(config.workerTimeout, longestTaskTimeoutMs);
  const backstopSeconds = Math.ceil(longestMs / 1000) + ATTEMPT_TIMEOUT_GRACE_SECONDS;
  const express = childExecutionType === 'EXPRESS';
  return {
    workerTimeout: config.workerTimeout,
    maxRetries: config.maxRetries,
    retryFailedTasks: config.retryFailedTasks,
    attemptTimeoutSeconds: express ? Math.min(backstopSeconds, EXPRESS_BACKSTOP_MAX_SECONDS) : backstopSeconds,
    executionBudgetMs: express ? EXPRESS_BUDGET_MS : null,
    workerListing: config.workerListing,
    ...(counterShards !== undefined ? { counterShards } : {}),
  };
}

/** Longest delay the state machine may wait before retry number `attempt + 1`. */
export function maxBackoffMs(attempt: number): number {
  const seconds = Math.min(RETRY_BACKOFF.maxDelaySeconds, RETRY_BACKOFF.intervalSeconds * RETRY_BACKOFF.backoffRate ** attempt);
  return seconds * 1000;
}

/** Whether a failed attempt (0-based) gets another one under these settings. */
export function mayRetry(settings: Pick<TaskSettings, 'maxRetries' | 'retryFailedTasks'>, attempt: number): boolean {
  return settings.retryFailedTasks && attempt < settings.maxRetries;
}
