/**
 * Worker faults end to end: handlers that throw non-Errors, never settle,
 * return what JSON cannot carry, or ask for impossible memory. Each fault
 * must end as that task's recorded failure with a message saying what went
 * wrong, while the other tasks, the batch and the local fleet's process go on.
 *
 * The `fault.*` task types exist only with FLEET_ENABLE_FAULT_TASKS=1
 * (infra/local/fault-tasks-worker.ts), set here before the fleet loads its handlers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import type { BatchStatus, TaskResult } from '../../lambdas/domain/types';
import { api, readAllResults, waitForBatch } from './helpers';

let fleet: LocalFleet | undefined;
let url = '';
const MAX_RETRIES = 1;

beforeAll(async () => {
  process.env.FLEET_ENABLE_FAULT_TASKS = '1';
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1 });
  url = fleet.url;
  const config = await api(url, 'PATCH', '/config', { maxRetries: MAX_RETRIES, maxConcurrentWorkers: 20 });
  expect(config.status, config.text).toBe(200);
});

afterAll(async () => {
  await fleet?.close();
  delete process.env.FLEET_ENABLE_FAULT_TASKS;
});

interface FaultCase {
  id: string;
  type: string;
  data?: unknown;
  timeout?: number;
  /** What the recorded error must say. */
  error: string | RegExp;
  /** Permanent failures are not retried. */
  attempts: number;
}

const retried = MAX_RETRIES + 1;
const faults: FaultCase[] = [
  { id: 'throw-string', type: 'fault.throw-non-error', data: { kind: 'string' }, error: 'a thrown string', attempts: retried },
  { id: 'throw-number', type: 'fault.throw-non-error', data: { kind: 'number' }, error: 'Non-Error thrown: 42', attempts: retried },
  {
    id: 'throw-object',
    type: 'fault.throw-non-error',
    data: { kind: 'object' },
    error: 'Non-Error thrown: {"code":"E_FAULT","detail":"a thrown plain object"}',
    attempts: retried,
  },
  { id: 'throw-null', type: 'fault.throw-non-error', data: { kind: 'null' }, error: 'Non-Error thrown: null', attempts: retried },
  { id: 'throw-undefined', type: 'fault.throw-non-error', data: { kind: 'undefined' }, error: 'Non-Error thrown: undefined', attempts: retried },
  { id: 'throw-circular', type: 'fault.throw-non-error', data: { kind: 'circular' }, error: 'Non-Error thrown: [object Object]', attempts: retried },
  {
    id: 'throw-unprintable',
    type: 'fault.throw-non-error',
    data: { kind: 'unprintable' },
    error: 'Non-Error thrown: a value that cannot be shown as text',
    attempts: retried,
  },
  { id: 'hang', type: 'fault.hang', timeout: 300, error: 'timed out after 300 ms', attempts: retried },
  {
    id: 'result-circular',
    type: 'fault.unserialisable',
    data: { kind: 'circular' },
    error: /^result is not JSON-serialisable: Converting circular structure to JSON/,
    attempts: 1,
  },
  {
    id: 'result-bigint',
    type: 'fault.unserialisable',
    data: { kind: 'bigint' },
    error: 'result is not JSON-serialisable: Do not know how to serialize a BigInt',
    attempts: 1,
  },
  { id: 'result-toJSON', type: 'fault.unserialisable', data: { kind: 'throwing-toJSON' }, error: 'result is not JSON-serialisable: toJSON refused', attempts: 1 },
  {
    id: 'result-too-deep',
    type: 'fault.unserialisable',
    data: { kind: 'too-deep' },
    error: 'result is not JSON-serialisable: Maximum call stack size exceeded',
    attempts: 1,
  },
  { id: 'result-oversize', type: 'fault.unserialisable', data: { kind: 'oversize' }, error: /^result is \d+ bytes; at most 262144 are kept$/, attempts: 1 },
  { id: 'oom-buffer', type: 'fault.out-of-memory', data: { kind: 'buffer' }, error: 'Array buffer allocation failed', attempts: retried },
  { id: 'oom-array', type: 'fault.out-of-memory', data: { kind: 'array' }, error: 'Invalid array length', attempts: retried },
  { id: 'huge-error', type: 'fault.huge-error', data: { length: 1_000_000 }, error: /^E{4096}… \(995904 more characters\)$/, attempts: retried },
];

const healthy = Array.from({ length: 6 }, (_, i) => ({ id: `healthy-${i}`, type: 'echo', data: { i } }));

async function runBatch(tasks: unknown[]): Promise<{ status: BatchStatus; byId: Map<string, TaskResult> }> {
  const submitted = await api<BatchStatus>(url, 'POST', '/batches', { tasks });
  expect(submitted.status, submitted.text).toBe(202);
  const status = await waitForBatch(url, submitted.body.batchId, 60_000);
  const { results } = await readAllResults(url, submitted.body.batchId);
  return { status, byId: new Map(results.map((r) => [r.taskId, r])) };
}

describe('a batch whose handlers misbehave', () => {
  let outcome: Awaited<ReturnType<typeof runBatch>>;

  beforeAll(async () => {
    outcome = await runBatch([...faults.map(({ error: _e, attempts: _a, ...task }) => task), ...healthy]);
  });

  it('finishes partial, with every task accounted for once', () => {
    expect(outcome.status).toMatchObject({
      status: 'partial',
      totalTasks: faults.length + healthy.length,
      completedTasks: healthy.length,
      failedTasks: faults.length,
      progress: 1,
    });
    expect(outcome.byId.size).toBe(faults.length + healthy.length);
  });

  it.each(faults.map((fault) => [fault.id, fault] as const))('records %s as that task’s failure, with a message saying what went wrong', (id, fault) => {
    const result = outcome.byId.get(id);

    expect(result, `no result for ${id}`).toBeDefined();
    expect(result?.success).toBe(false);
    expect(result?.result).toBeUndefined();
    if (typeof fault.error === 'string') expect(result?.error).toBe(fault.error);
    else expect(result?.error).toMatch(fault.error);
    expect(result?.attempts).toBe(fault.attempts);
  });

  it('runs the healthy tasks beside the faulty ones to success', () => {
    for (const task of healthy) expect(outcome.byId.get(task.id)).toMatchObject({ success: true, result: task.data, attempts: 1 });
  });

  it('leaves no worker registered once the batch has finished', async () => {
    const workers = await api<{ workers: unknown[] }>(url, 'GET', '/workers');

    expect(workers.status).toBe(200);
    expect(workers.body.workers).toEqual([]);
  });

  it('leaves the fleet serving: the next batch runs normally', async () => {
    const next = await runBatch(healthy);

    expect((await api(url, 'GET', '/healthz')).status).toBe(200);
    expect(next.status).toMatchObject({ status: 'completed', completedTasks: healthy.length, failedTasks: 0 });
  });
});
