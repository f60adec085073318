/**
 * cancelBatch and scaleWorkers, end to end through HTTP against the local fleet:
 * both must reach a batch that is already running.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { waitUntil } from './helpers';

let fleet: LocalFleet;

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1 });
});
afterAll(async () => {
  await (fleet as LocalFleet | undefined)?.close();
});

/** The fields these tests read from the API's JSON bodies; the assertions check each one. */
interface Body {
  batchId: string;
  status: string;
  completedTasks: number;
  failedTasks: number;
  completedAt: number | null;
  results: Result[];
  nextCursor: string | null;
  error: { code: string };
  maxConcurrentWorkers: number;
  runningBatchesUpdated: number;
  batches: { batchId: string; status: string; completedTasks: number; progress: number }[];
}

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: Body }> {
  const response = await fetch(`${fleet.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Body };
}

interface Result {
  taskId: string;
  success: boolean;
  duration: number;
  timestamp: number;
}

async function allResults(batchId: string): Promise<Result[]> {
  const results: Result[] = [];
  let cursor: string | null = null;
  do {
    const page = await call('GET', `/batches/${batchId}/results?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
    results.push(...page.json.results);
    cursor = page.json.nextCursor;
  } while (cursor);
  return results;
}

/** Most attempts overlapping at any instant, counting only attempts that started in [from, to). */
function peakOverlap(results: Result[], from = -Infinity, to = Infinity): number {
  const spans = results.map((r) => [r.timestamp - r.duration, r.timestamp] as const).filter(([start]) => start >= from && start < to);
  let peak = 0;
  for (const [start] of spans) {
    const overlapping = spans.filter(([s, end]) => s <= start && end > start).length;
    peak = Math.max(peak, overlapping);
  }
  return peak;
}

const sleepTasks = (n: number, ms: number) => Array.from({ length: n }, (_, i) => ({ id: `t${i}`, type: 'sleep', data: { ms } }));

describe('cancelBatch: POST /batches/{id}/cancel', () => {
  it('stops a running batch: no task starts after cancel returns, and it ends cancelled with its results so far', async () => {
    await call('PATCH', '/config', { maxConcurrentWorkers: 4 });
    const submitted = await call('POST', '/batches', { tasks: sleepTasks(200, 50) });
    const batchId: string = submitted.json.batchId;
    await waitUntil(async () => {
      const { json } = await call('GET', `/batches/${batchId}`);
      return json.completedTasks >= 8 ? json : undefined;
    });

    const cancel = await call('POST', `/batches/${batchId}/cancel`);
    const cancelReturnedAt = Date.now();
    expect(cancel).toEqual({ status: 200, json: { cancelled: true } });

    // The tasks running at the cancel still end and are recorded: as on AWS, a stopped execution's
    // EXPRESS children run on. Wait for the Map Run to stop and for their invocations to end.
    await waitUntil(() => (fleet.stepFunctions.list().find((e) => e.name === batchId)?.mapRuns.every((m) => m.stopDate !== undefined) ? true : undefined));
    await waitUntil(() => (fleet.lambda.concurrentInvocations === 0 ? true : undefined));
    const status = (await call('GET', `/batches/${batchId}`)).json;
    expect(status.status).toBe('cancelled');
    expect(status.completedTasks).toBeGreaterThanOrEqual(8);
    expect(status.completedTasks).toBeLessThan(200);
    expect(status.completedAt).toBeGreaterThan(0);
    const results = await allResults(batchId);
    expect(results.length).toBe(status.completedTasks + status.failedTasks);
    for (const result of results) expect(result.timestamp - result.duration).toBeLessThanOrEqual(cancelReturnedAt);
    // Nothing more runs afterwards.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await allResults(batchId)).length).toBe(results.length);
  });

  it('returns false for an unknown batch and for one already finished', async () => {
    expect((await call('POST', '/batches/no-such-batch/cancel')).json).toEqual({ cancelled: false });
    const { json } = await call('POST', '/batches', { tasks: [{ id: 'a', type: 'echo', data: 1 }] });
    await waitUntil(async () => ((await call('GET', `/batches/${json.batchId}`)).json.status === 'completed' ? true : undefined));
    expect((await call('POST', `/batches/${json.batchId}/cancel`)).json).toEqual({ cancelled: false });
    expect((await call('GET', `/batches/${json.batchId}`)).json.status).toBe('completed');
  });
});

describe('scaleWorkers: POST /workers/scale', () => {
  it('rejects counts that are not integers from 1 to 10,000', async () => {
    for (const body of [{ count: 0 }, { count: -1 }, { count: 1.5 }, { count: '5' }, { count: 10_001 }, {}, []]) {
      const { status, json } = await call('POST', '/workers/scale', body);
      expect(status).toBe(400);
      expect(json.error.code).toBe('validation_error');
    }
  });

  it('changes the concurrency of a batch already running, up and down', async () => {
    await call('PATCH', '/config', { maxConcurrentWorkers: 2 });
    const { json } = await call('POST', '/batches', { tasks: sleepTasks(120, 40) });
    const batchId: string = json.batchId;
    await waitUntil(async () => ((await call('GET', `/batches/${batchId}`)).json.completedTasks >= 6 ? true : undefined));

    // Windows are cut at the moment each request is sent: the Map Run may change before its answer arrives.
    const scaleUpSentAt = Date.now();
    const up = await call('POST', '/workers/scale', { count: 12 });
    expect(up.status).toBe(200);
    expect(up.json).toEqual({ maxConcurrentWorkers: 12, runningBatchesUpdated: 1 });
    await waitUntil(async () => ((await call('GET', `/batches/${batchId}`)).json.completedTasks >= 70 ? true : undefined));

    const scaleDownSentAt = Date.now();
    const down = await call('POST', '/workers/scale', { count: 3 });
    const scaledDownAt = Date.now();
    expect(down.json.runningBatchesUpdated).toBe(1);
    await waitUntil(async () => ((await call('GET', `/batches/${batchId}`)).json.status === 'completed' ? true : undefined));

    const results = await allResults(batchId);
    expect(results).toHaveLength(120);
    expect(peakOverlap(results, -Infinity, scaleUpSentAt)).toBeLessThanOrEqual(2);
    const peakWhileUp = peakOverlap(results, scaleUpSentAt, scaleDownSentAt);
    expect(peakWhileUp).toBeGreaterThan(2);
    expect(peakWhileUp).toBeLessThanOrEqual(12);
    // Tasks started after the limit dropped never run more than 3 at once among themselves.
    expect(peakOverlap(results, scaledDownAt)).toBeLessThanOrEqual(3);
    expect((await call('GET', '/config')).json.maxConcurrentWorkers).toBe(3);
  });
});

describe('listBatches: GET /batches', () => {
  it('shows a running batch with its live counts, not zeros', async () => {
    await call('PATCH', '/config', { maxConcurrentWorkers: 2 });
    const { json } = await call('POST', '/batches', { tasks: sleepTasks(40, 30) });
    const batchId: string = json.batchId;
    const listed = await waitUntil(async () => {
      const page = (await call('GET', '/batches?limit=50')).json as { batches: { batchId: string; status: string; completedTasks: number; progress: number }[] };
      const mine = page.batches.find((b) => b.batchId === batchId);
      return mine && mine.status === 'processing' && mine.completedTasks >= 4 ? mine : undefined;
    });
    expect(listed.progress).toBeGreaterThan(0);
    expect(listed.progress).toBeLessThan(1);
    await call('POST', `/batches/${batchId}/cancel`);
  });
});
