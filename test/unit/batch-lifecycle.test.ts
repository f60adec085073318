/**
 * BatchLifecycle (lambdas/domain/batch-lifecycle.ts), called directly with
 * in-memory ports: Start batch's admission and polling settings, Finish
 * batch's lost-task accounting, status rules and the order of its writes.
 */
import { describe, expect, it } from 'vitest';
import { BatchLifecycle, finalOutcome } from '../../lambdas/domain/batch-lifecycle';
import { DEFAULT_CONFIG, settingsForBatch } from '../../lambdas/domain/config';
import { emptyCapacity } from '../../lambdas/domain/capacity';
import type { BatchState } from '../../lambdas/domain/types';
import { batchRecord } from './handler-fixtures';
import { lifecycleDeps } from './run-leg-fakes';

const ARN = 'arn:aws:states:us-east-1:111122223333:stateMachine:Fleet';
const NOW = 1_700_000_000_000;
const expiresAt = Math.floor(NOW / 1000 + 7 * 86_400);

describe('finalOutcome: the status rules', () => {
  it.each<[string, number, { completedTasks: number; failedTasks: number }, BatchState, number]>([
    ['every task succeeded', 3, { completedTasks: 3, failedTasks: 0 }, 'completed', 0],
    ['some failed', 3, { completedTasks: 2, failedTasks: 1 }, 'partial', 0],
    ['none succeeded', 3, { completedTasks: 0, failedTasks: 3 }, 'failed', 0],
    ['a task ended without a result: it counts as failed', 3, { completedTasks: 2, failedTasks: 0 }, 'partial', 1],
    ['every task lost', 2, { completedTasks: 0, failedTasks: 0 }, 'failed', 2],
  ])('%s', (_what, total, recorded, status, lost) => {
    const outcome = finalOutcome(total, recorded, undefined);
    expect(outcome.status).toBe(status);
    expect(outcome.lost).toBe(lost);
    expect(outcome.counts).toEqual({ completedTasks: recorded.completedTasks, failedTasks: recorded.failedTasks + lost });
    expect(outcome.error).toBe(lost > 0 ? `${lost} task(s) ended without a recorded result and count as failed` : undefined);
  });

  it('a failed Map fails the batch with its own error, and counts no task as lost', () => {
    const outcome = finalOutcome(3, { completedTasks: 1, failedTasks: 0 }, { Error: 'States.ExceedToleratedFailureThreshold', Cause: 'x'.repeat(3000) });
    expect(outcome.status).toBe('failed');
    expect(outcome.lost).toBe(0);
    expect(outcome.counts).toEqual({ completedTasks: 1, failedTasks: 0 });
    expect(outcome.error).toBe(`States.ExceedToleratedFailureThreshold: ${'x'.repeat(3000)}`.slice(0, 2000));
  });
});

describe('BatchLifecycle.finish', () => {
  it('adds the batch to the fleet stats before its status says finished, then releases its capacity', async () => {
    const { deps, store, metrics, log } = lifecycleDeps();
    store.record = batchRecord('b1', 'processing', 4);
    store.counts = { completedTasks: 3, failedTasks: 0 };

    await expect(new BatchLifecycle(deps).finish({ batchId: 'b1' }, ARN)).resolves.toEqual({ batchId: 'b1', status: 'partial' });

    const counts = { completedTasks: 3, failedTasks: 1 };
    expect(store.calls).toEqual([
      'getBatch b1',
      'countResults b1',
      `addFinishedBatch b1 ${JSON.stringify(counts)}`,
      `finish b1 ${JSON.stringify({ status: 'partial', ...counts, completedAt: NOW, expiresAt, error: '1 task(s) ended without a recorded result and count as failed' })}`,
      `release ${ARN} b1`,
    ]);
    expect(metrics.emitted).toEqual(['BatchesFinished=partial']);
    expect(log.lines).toEqual([{ level: 'info', message: 'batch finished', attributes: { status: 'partial', ...counts } }]);
  });

  it('a batch counted before (a retry-failed run) has its counts replaced instead', async () => {
    const { deps, store } = lifecycleDeps();
    store.record = batchRecord('b1', 'processing', 2);
    store.counts = { completedTasks: 2, failedTasks: 0 };
    store.added = false;

    await new BatchLifecycle(deps).finish({ batchId: 'b1' }, ARN);

    expect(store.calls.slice(2, 5).map((call) => call.split(' ')[0])).toEqual(['addFinishedBatch', 'recountRetriedBatch', 'finish']);
  });

  it('stats that cannot be written are logged and never keep the batch from finishing', async () => {
    const { deps, store, log } = lifecycleDeps();
    store.record = batchRecord('b1', 'processing', 1);
    store.counts = { completedTasks: 1, failedTasks: 0 };
    store.statsFail = new Error('throttled');

    await expect(new BatchLifecycle(deps).finish({ batchId: 'b1' }, ARN)).resolves.toEqual({ batchId: 'b1', status: 'completed' });

    expect(log.lines[0]).toEqual({ level: 'error', message: 'fleet stats: finished batch not added', attributes: { batchId: 'b1', error: 'Error: throttled' } });
    expect(store.calls.map((call) => call.split(' ')[0])).toContain('finish');
  });

  it('a finish that finds the batch finished (a retry, or a cancel first) counts and logs nothing, and still releases', async () => {
    const { deps, store, metrics, log } = lifecycleDeps();
    store.record = batchRecord('b1', 'cancelled', 1);
    store.applies = false;

    await new BatchLifecycle(deps).finish({ batchId: 'b1' }, ARN);

    expect(metrics.emitted).toEqual([]);
    expect(log.lines).toEqual([]);
    expect(store.calls.at(-1)).toBe(`release ${ARN} b1`);
  });

  it('a batch that does not exist is an error, and nothing is written', async () => {
    const { deps, store } = lifecycleDeps();

    await expect(new BatchLifecycle(deps).finish({ batchId: 'gone' }, ARN)).rejects.toThrow('batch gone does not exist');
    expect(store.calls).toEqual(['getBatch gone']);
  });
});

describe('BatchLifecycle.start', () => {
  const input = { batchId: 'b1', tasksBucket: 'fleet-tasks', tasksKey: 'batches/b1/tasks.jsonl', maxConcurrency: 3 };

  it('marks the batch processing and runs it with its share now, not the one admission passed in', async () => {
    const started: string[] = [];
    const { deps, store } = lifecycleDeps({
      capacity: { load: async () => ({ state: { ...emptyCapacity(), running: { b1: { slots: 7 } as never } }, version: 1 }) },
    });
    store.record = batchRecord('b1', 'pending');
    deps.repository.getConfig = async () => DEFAULT_CONFIG;
    deps.repository.markStarted = async (batchId, at) => {
      started.push(`${batchId} ${at}`);
      return { ...batchRecord('b1', 'processing'), longestTaskTimeoutMs: 90_000 };
    };

    await expect(new BatchLifecycle(deps).start(input)).resolves.toEqual({
      batchId: 'b1',
      tasksBucket: 'fleet-tasks',
      tasksKey: 'batches/b1/tasks.jsonl',
      admitted: true,
      maxConcurrency: 7,
      settings: settingsForBatch(DEFAULT_CONFIG, 90_000, 'EXPRESS'),
    });
    expect(started).toEqual([`b1 ${NOW}`]);
  });

  it('without a share (no longer running) it keeps the one passed in; a retried Start finds it processing already', async () => {
    const { deps, store } = lifecycleDeps({ capacity: { load: async () => ({ state: emptyCapacity(), version: 1 }) }, childExecutionType: 'STANDARD' });
    store.record = batchRecord('b1', 'processing');
    deps.repository.getConfig = async () => DEFAULT_CONFIG;
    deps.repository.markStarted = async () => undefined;

    const started = await new BatchLifecycle(deps).start(input);

    expect(started.maxConcurrency).toBe(3);
    expect(started.settings).toEqual(settingsForBatch(DEFAULT_CONFIG, 0, 'STANDARD'));
  });

  it.each<BatchState>(['cancelled', 'completed', 'failed'])('a %s batch is not started and runs nothing', async (status) => {
    const { deps, store } = lifecycleDeps();
    store.record = batchRecord('b1', status);

    await expect(new BatchLifecycle(deps).start(input)).resolves.toEqual({ ...input, maxConcurrency: 0, admitted: false, settings: null });
    expect(store.calls).toEqual(['getBatch b1']);
  });
});
