/**
 * Exactly one final result per task: a child execution delivered again (EXPRESS
 * children run at least once) re-invokes the worker for a task that already
 * has its result. The duplicate must neither overwrite it nor count twice.
 */
import diagnostics from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { localWriteGrouping } from '../../infra/local/write-grouping';
import { DynamoBatchRepository } from '../../lambdas/adapters/batch-repository';
import { installedWriteGrouping } from '../../lambdas/adapters/write-grouping';
import { dynamo } from '../../lambdas/adapters/clients';
import { DEFAULT_CONFIG, settingsForBatch } from '../../lambdas/domain/config';
import type { TaskResult } from '../../lambdas/domain/types';
import { batchRecord } from '../unit/handler-fixtures';
import { api, readAllResults, waitForBatch } from './helpers';

let fleet: LocalFleet;

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1 });
});
afterAll(async () => {
  await (fleet as LocalFleet | undefined)?.close();
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

describe('results recorded at once (the local fleet writes them in groups)', () => {
  /** DynamoDB operations sent while `run` runs, by name. */
  async function operationsDuring(run: () => Promise<void>): Promise<Record<string, number>> {
    const seen: Record<string, number> = {};
    const onRequest = (message: unknown) => {
      const target = String((message as { request: ClientRequest }).request.getHeader('x-amz-target') ?? '');
      if (target.startsWith('DynamoDB_')) seen[target.split('.')[1] as string] = (seen[target.split('.')[1] as string] ?? 0) + 1;
    };
    diagnostics.subscribe('http.client.request.start', onRequest);
    try {
      await run();
    } finally {
      diagnostics.unsubscribe('http.client.request.start', onRequest);
    }
    return seen;
  }

  it('store each task once, the first result winning, and count each once, duplicates and earlier results included', async () => {
    // As the workers build theirs: the local fleet installs grouped writes, and the
    // same table gives the same coalescer, so this is the same writer.
    expect(installedWriteGrouping()).toBe(localWriteGrouping);
    const repository = new DynamoBatchRepository(dynamo(), process.env.TABLE_NAME ?? '', { grouping: installedWriteGrouping() });
    const batchId = `grouped-${Date.now()}`;
    await repository.createBatch({ ...batchRecord(batchId, 'processing', 210), createdAt: Date.now() });
    const result = (taskId: string, success: boolean): TaskResult => ({
      taskId,
      success,
      ...(success ? { result: { taskId } } : { error: 'duplicate' }),
      duration: 1,
      timestamp: Date.now(),
      attempts: 1,
      workerId: 'test',
    });
    const expiresAt = Math.floor(Date.now() / 1000) + 3600;
    // Ten results recorded before, one by one.
    for (let i = 0; i < 10; i++) expect(await repository.recordResult(batchId, result(`p${i}`, true), expiresAt)).toBe(true);

    let outcomes: { taskId: string; first: boolean; recorded: boolean }[] = [];
    const operations = await operationsDuring(async () => {
      // 200 new tasks at once; 50 of them delivered twice in the same burst (now failing), and the 10 earlier ones again.
      const attempts = [
        ...Array.from({ length: 200 }, (_, i) => ({ taskId: `t${i}`, first: true })),
        ...Array.from({ length: 50 }, (_, i) => ({ taskId: `t${i * 4}`, first: false })),
        ...Array.from({ length: 10 }, (_, i) => ({ taskId: `p${i}`, first: false })),
      ].sort(() => Math.random() - 0.5);
      outcomes = await Promise.all(
        attempts.map(async ({ taskId, first }) => ({ taskId, first, recorded: await repository.recordResult(batchId, result(taskId, first), expiresAt) })),
      );
    });

    const recorded = outcomes.filter((o) => o.recorded);
    expect(recorded).toHaveLength(200);
    expect(new Set(recorded.map((o) => o.taskId)).size).toBe(200);
    expect(recorded.every((o) => o.taskId.startsWith('t'))).toBe(true);
    // The group path really ran: far fewer requests than results.
    expect(operations.BatchWriteItem).toBeGreaterThan(0);
    expect((operations.PutItem ?? 0) + (operations.BatchWriteItem ?? 0)).toBeLessThan(100);

    const status = await repository.getStatus(batchId);
    expect(status).toMatchObject({ completedTasks: 200 + 10 - outcomes.filter((o) => o.recorded && !o.first).length, failedTasks: outcomes.filter((o) => o.recorded && !o.first).length });
    const stored = new Map<string, TaskResult>();
    for (let cursor: string | undefined; ; ) {
      const page = await repository.listResults(batchId, 100, cursor);
      for (const r of page.items) stored.set(r.taskId, r);
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    expect(stored.size).toBe(210);
    // Whichever delivery was recorded, the stored result is that one's.
    for (const o of recorded) expect(stored.get(o.taskId)?.success).toBe(o.first);
    for (let i = 0; i < 10; i++) expect(stored.get(`p${i}`)?.success).toBe(true);
  });
});

describe('a result DynamoDB refuses, among results recorded together', () => {
  it('fails only its own task: the others of its write are stored one by one', async () => {
    // t150 echoes a number DynamoDB cannot hold, so its result cannot be stored.
    const tasks = Array.from({ length: 300 }, (_, i) => ({ id: `t${i}`, type: 'echo', data: i === 150 ? { big: 1e20 } : { i } }));
    const batchId = (await api<{ batchId: string }>(fleet.url, 'POST', '/batches', { tasks })).body.batchId;

    const finished = await waitForBatch(fleet.url, batchId, 60_000);

    expect(finished).toMatchObject({ status: 'partial', completedTasks: 299, failedTasks: 1 });
    const { results } = await readAllResults(fleet.url, batchId, 1000);
    const failed = results.filter((r) => !r.success);
    expect(failed.map((r) => r.taskId)).toEqual(['t150']);
    expect(failed[0]?.error).toContain('MAX_SAFE_INTEGER');
    expect(results).toHaveLength(300);
  });
});
