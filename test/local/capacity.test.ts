/**
 * maxConcurrentWorkers is fleet-wide: several batches share it, batches
 * beyond it wait pending, and higher-priority batches get capacity first.
 * Concurrency is measured from the recorded attempts' time spans.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { api, readAllResults, waitForBatch, peakConcurrency } from './helpers';

let fleet: LocalFleet;

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1 });
});
afterAll(async () => {
  await (fleet as LocalFleet | undefined)?.close();
});

interface Span {
  start: number;
  end: number;
}


async function spansOf(batchId: string): Promise<Span[]> {
  const { results } = await readAllResults(fleet.url, batchId, 1000);
  return results.map((r) => ({ start: r.timestamp - r.duration, end: r.timestamp }));
}

const sleepTasks = (prefix: string, n: number, ms: number) => Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, type: 'sleep', data: { ms } }));

describe('the fleet-wide cap', () => {
  it('holds across 3 overlapping batches, keeping batches beyond it pending', async () => {
    expect((await api(fleet.url, 'PATCH', '/config', { maxConcurrentWorkers: 4 })).status).toBe(200);
    const ids: string[] = [];
    for (const name of ['a', 'b', 'c']) {
      const { status, body: json } = await api<{ batchId: string }>(fleet.url, 'POST', '/batches', { tasks: sleepTasks(name, 16, 200) });
      expect(status).toBe(202);
      ids.push(json.batchId);
    }
    // While the first batch holds all 4 slots, the last one waits.
    let sawWaiting = false;
    for (let i = 0; i < 200 && !sawWaiting; i++) {
      const [first, last] = await Promise.all([
        api<{ status: string }>(fleet.url, 'GET', `/batches/${ids[0]}`),
        api<{ status: string }>(fleet.url, 'GET', `/batches/${ids[2]}`),
      ]);
      sawWaiting = first.body.status === 'processing' && last.body.status === 'pending';
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(sawWaiting).toBe(true);

    for (const id of ids) expect((await waitForBatch(fleet.url, id, 60_000)).status).toBe('completed');
    const spans = (await Promise.all(ids.map(spansOf))).flat();
    expect(spans).toHaveLength(48);
    const peak = peakConcurrency(spans);
    console.log(`peak concurrent tasks across 3 batches under a cap of 4: ${peak}`);
    expect(peak).toBeLessThanOrEqual(4);
    expect(peak).toBeGreaterThanOrEqual(2);
  });

  it('gives capacity to the higher-priority batch first, whatever the submission order', async () => {
    await api(fleet.url, 'PATCH', '/config', { maxConcurrentWorkers: 2 });
    const submit = async (body: unknown) => (await api<{ batchId: string }>(fleet.url, 'POST', '/batches', body)).body.batchId;
    const blocker = await submit({ tasks: sleepTasks('x', 8, 400) });
    // The blocker holds both slots before the other two arrive.
    for (let i = 0; i < 500; i++) {
      if ((await api<{ status: string }>(fleet.url, 'GET', `/batches/${blocker}`)).body.status === 'processing') break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const low = await submit({ tasks: sleepTasks('l', 2, 10), priority: 0 });
    const high = await submit({ tasks: sleepTasks('h', 2, 10), priority: 5 });
    for (const id of [blocker, low, high]) expect((await waitForBatch(fleet.url, id, 60_000)).status).toBe('completed');

    const lowStatus = (await api<{ startedAt: number }>(fleet.url, 'GET', `/batches/${low}`)).body;
    const highStatus = (await api<{ startedAt: number }>(fleet.url, 'GET', `/batches/${high}`)).body;
    expect(highStatus.startedAt).toBeLessThan(lowStatus.startedAt);
    const firstLow = Math.min(...(await spansOf(low)).map((s) => s.start));
    const firstHigh = Math.min(...(await spansOf(high)).map((s) => s.start));
    expect(firstHigh).toBeLessThan(firstLow);
  });
});
