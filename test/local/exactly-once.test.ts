/**
 * Exactly one final result per task: a child execution delivered again (EXPRESS
 * children run at least once) re-invokes the worker for a task that already
 * has its result. The duplicate must neither overwrite it nor count twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { DEFAULT_CONFIG, settingsForBatch } from '../../lambdas/domain/config';
import { api, readAllResults, waitForBatch } from './helpers';

let fleet: LocalFleet;

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1 });
});
afterAll(async () => {
  await fleet?.close();
});

describe('duplicate deliveries', () => {
  it('keep the first final result and never double-count, whatever the duplicate returns', async () => {
    const tasks = [
      { id: 'ok', type: 'echo', data: { first: true } },
      { id: 'bad', type: 'fail', data: { message: 'first failure' } },
      { id: 'other', type: 'echo', data: 1 },
    ];
    const batchId = (await api<{ batchId: string }>(fleet.url, 'POST', '/batches', { tasks })).body.batchId;
    const finished = await waitForBatch(fleet.url, batchId, 60_000);
    expect(finished).toMatchObject({ status: 'partial', completedTasks: 2, failedTasks: 1 });
    const before = await readAllResults(fleet.url, batchId, 100);
    const statsBefore = (await api(fleet.url, 'GET', '/stats')).body;

    const worker = fleet.resources.functions.find((fn) => fn.entry === 'lambdas/worker.ts');
    expect(worker).toBeDefined();
    const settings = settingsForBatch(DEFAULT_CONFIG, 0);
    // The succeeded task delivered again, now failing; the failed one delivered again, now succeeding.
    await expect(
      fleet.lambda.invokeFunction(worker!.arn, { batchId, task: { id: 'ok', type: 'fail', data: { message: 'late duplicate' } }, settings: { ...settings, maxRetries: 0 }, attempt: 0 }),
    ).rejects.toMatchObject({ error: 'TaskFailed' });
    await fleet.lambda.invokeFunction(worker!.arn, { batchId, task: { id: 'bad', type: 'echo', data: { second: true } }, settings, attempt: 0 });
    // And the Catch path's recorder, delivered for a task that already has its result.
    await fleet.lambda.invokeFunction(worker!.arn, {
      action: 'recordFailure',
      batchId,
      task: { id: 'other', type: 'echo', data: 1 },
      error: { Error: 'States.Timeout', Cause: 'duplicate' },
    });

    const after = await readAllResults(fleet.url, batchId, 100);
    const byId = (results: typeof after.results) => Object.fromEntries(results.map((r) => [r.taskId, r]));
    expect(byId(after.results)).toEqual(byId(before.results));
    expect(after.results).toHaveLength(3);
    expect((await api(fleet.url, 'GET', `/batches/${batchId}`)).body).toMatchObject({ completedTasks: 2, failedTasks: 1, progress: 1 });
    const stats = (await api(fleet.url, 'GET', '/stats')).body as Record<string, number>;
    const prior = statsBefore as Record<string, number>;
    expect(stats.completedTasks).toBe(prior.completedTasks);
    expect(stats.failedTasks).toBe(prior.failedTasks);
  });
});
