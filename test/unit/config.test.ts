import { describe, expect, it } from 'vitest';
import { ATTEMPT_TIMEOUT_GRACE_SECONDS, DEFAULT_CONFIG, EXPRESS_BACKSTOP_MAX_SECONDS, EXPRESS_RECORD_RESERVE_SECONDS, mayRetry, settingsForBatch } from '../../lambdas/domain/config';
import type { FleetManagerConfig } from '../../lambdas/domain/types';

const config = (overrides: Partial<FleetManagerConfig> = {}): FleetManagerConfig => ({ ...DEFAULT_CONFIG, ...overrides });

describe('DEFAULT_CONFIG', () => {
  it("equals the seed's defaults", () => {
    expect(DEFAULT_CONFIG).toEqual({
      maxConcurrentWorkers: 10,
      workerTimeout: 300_000,
      retryFailedTasks: true,
      maxRetries: 3,
      // Fleet's addition: GET /workers lists every running attempt, as the seed's design promises.
      workerListing: 'every-attempt',
    });
  });

  it('cannot be changed by accident', () => {
    expect(Object.isFrozen(DEFAULT_CONFIG)).toBe(true);
  });
});

describe('settingsForBatch', () => {
  it('copies the retry and timeout settings from the config', () => {
    const settings = settingsForBatch(config({ workerTimeout: 45_000, maxRetries: 7, retryFailedTasks: false }), 0);

    expect(settings.workerTimeout).toBe(45_000);
    expect(settings.maxRetries).toBe(7);
    expect(settings.retryFailedTasks).toBe(false);
  });

  it('bases the backstop on workerTimeout when no task sets a longer timeout', () => {
    // Arrange: 300,000 ms = 300 s.
    const cfg = config({ workerTimeout: 300_000 });

    // Act
    const settings = settingsForBatch(cfg, 0, 'STANDARD');

    // Assert
    expect(settings.attemptTimeoutSeconds).toBe(300 + ATTEMPT_TIMEOUT_GRACE_SECONDS);
  });

  it('bases the backstop on the longest task timeout when it exceeds workerTimeout', () => {
    const settings = settingsForBatch(config({ workerTimeout: 60_000 }), 600_000, 'STANDARD');

    expect(settings.attemptTimeoutSeconds).toBe(600 + ATTEMPT_TIMEOUT_GRACE_SECONDS);
  });

  it('ignores a task timeout shorter than workerTimeout', () => {
    const settings = settingsForBatch(config({ workerTimeout: 120_000 }), 5_000);

    expect(settings.attemptTimeoutSeconds).toBe(120 + ATTEMPT_TIMEOUT_GRACE_SECONDS);
  });

  it('rounds milliseconds up to whole seconds', () => {
    expect(settingsForBatch(config({ workerTimeout: 1_500 }), 0).attemptTimeoutSeconds).toBe(2 + ATTEMPT_TIMEOUT_GRACE_SECONDS);
    expect(settingsForBatch(config({ workerTimeout: 1 }), 0).attemptTimeoutSeconds).toBe(1 + ATTEMPT_TIMEOUT_GRACE_SECONDS);
    expect(settingsForBatch(config({ workerTimeout: 1_000 }), 600_001, 'STANDARD').attemptTimeoutSeconds).toBe(601 + ATTEMPT_TIMEOUT_GRACE_SECONDS);
  });

  it('leaves a real grace period past the worker deadline', () => {
    expect(ATTEMPT_TIMEOUT_GRACE_SECONDS).toBeGreaterThan(0);
    expect(settingsForBatch(config({ workerTimeout: 10_000 }), 0).attemptTimeoutSeconds).toBeGreaterThan(10);
  });
});

/**
 * An EXPRESS child ends at 5 minutes, retries and all
 * (https://docs.aws.amazon.com/step-functions/latest/dg/choosing-workflow-type.html,
 * https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html): the attempt's own
 * deadline, its backstop and the recording of an attempt the backstop ended must fit in it.
 */
describe('settingsForBatch with EXPRESS children (the 5-minute budget)', () => {
  const RECORD_RESERVE_SECONDS = 20;
  const cases: [string, Partial<FleetManagerConfig>, number][] = [
    ['the defaults (workerTimeout 300 s)', {}, 0],
    ['a 280 s workerTimeout', { workerTimeout: 280_000 }, 0],
    ['a task timeout of 14 minutes', { workerTimeout: 1_000 }, 840_000],
    ['a 60 s workerTimeout', { workerTimeout: 60_000 }, 0],
  ];

  it.each(cases)('%s: worker deadline + grace ≤ backstop, and backstop + recording ≤ 300 s', (_what, overrides, longest) => {
    const settings = settingsForBatch(config(overrides), longest, 'EXPRESS');
    const budgetMs = settings.executionBudgetMs;
    expect(budgetMs).not.toBeNull();
    // The worker ends an attempt at its timeout or at child start + budget, whichever is first:
    // the backstop fires only after that, with a grace.
    const longestDeadlineMs = Math.min(Math.max(settings.workerTimeout, longest), budgetMs ?? Infinity);
    expect(longestDeadlineMs + ATTEMPT_TIMEOUT_GRACE_SECONDS * 1000).toBeLessThanOrEqual(settings.attemptTimeoutSeconds * 1000);
    // A first attempt cut by its backstop still leaves Record failure its time before the 5 minutes.
    expect(settings.attemptTimeoutSeconds + RECORD_RESERVE_SECONDS).toBeLessThanOrEqual(300);
    expect(EXPRESS_BACKSTOP_MAX_SECONDS + EXPRESS_RECORD_RESERVE_SECONDS).toBe(300);
  });

  it('keeps a short timeout\'s backstop as it is: deadline + grace', () => {
    expect(settingsForBatch(config({ workerTimeout: 60_000 }), 0, 'EXPRESS').attemptTimeoutSeconds).toBe(60 + ATTEMPT_TIMEOUT_GRACE_SECONDS);
  });

  it('leaves STANDARD children unbounded by it', () => {
    const settings = settingsForBatch(config(), 840_000, 'STANDARD');
    expect(settings.attemptTimeoutSeconds).toBe(840 + ATTEMPT_TIMEOUT_GRACE_SECONDS);
    expect(settings.executionBudgetMs).toBeNull();
  });
});

describe('mayRetry', () => {
  it('allows a retry while the attempt is below maxRetries', () => {
    const settings = { retryFailedTasks: true, maxRetries: 3 };

    expect(mayRetry(settings, 0)).toBe(true);
    expect(mayRetry(settings, 1)).toBe(true);
    expect(mayRetry(settings, 2)).toBe(true);
  });

  it('refuses once maxRetries retries have been made', () => {
    const settings = { retryFailedTasks: true, maxRetries: 3 };

    expect(mayRetry(settings, 3)).toBe(false);
    expect(mayRetry(settings, 4)).toBe(false);
  });

  it('never retries when retryFailedTasks is false', () => {
    const settings = { retryFailedTasks: false, maxRetries: 3 };

    expect(mayRetry(settings, 0)).toBe(false);
  });

  it('never retries when maxRetries is 0', () => {
    expect(mayRetry({ retryFailedTasks: true, maxRetries: 0 }, 0)).toBe(false);
  });
});
