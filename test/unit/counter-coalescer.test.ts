import { describe, expect, it } from 'vitest';
import { CounterCoalescer, type CounterWrite } from '../../lambdas/adapters/counter-coalescer';

type Key = { pk: string; sk: string };

/** A store whose writes complete only when the test releases them. */
function gatedStore() {
  const writes: { key: Key; merged: CounterWrite; release: () => void; fail: (error: Error) => void }[] = [];
  const coalescer = new CounterCoalescer<Key>(
    (key) => `${key.pk}\n${key.sk}`,
    (key, merged) =>
      new Promise<void>((resolve, reject) => {
        writes.push({ key, merged: structuredClone(merged), release: resolve, fail: reject });
      }),
  );
  return { coalescer, writes };
}

const settled = async (promise: Promise<unknown>) => {
  let state = 'pending';
  promise.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return state;
};

const a: Key = { pk: 'BATCH#b#S01', sk: 'COUNT#1' };
const b: Key = { pk: 'BATCH#b#S02', sk: 'COUNT#2' };

describe('CounterCoalescer', () => {
  it('writes a lone increment at once, and resolves only when it is stored', async () => {
    const { coalescer, writes } = gatedStore();

    const stored = coalescer.add(a, 'completed', 1, 100);

    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatchObject({ key: a, merged: { deltas: { completed: 1 }, expiresAt: 100 } });
    expect(await settled(stored)).toBe('pending');
    writes[0]!.release();
    expect(await settled(stored)).toBe('resolved');
  });

  it('merges increments that arrive during a write into one next write, summing per field and keeping the latest expiry', async () => {
    const { coalescer, writes } = gatedStore();
    const first = coalescer.add(a, 'completed', 1, 100);

    const waiting = [coalescer.add(a, 'completed', 1, 300), coalescer.add(a, 'failed', 1, 200), coalescer.add(a, 'completed', 1, 150)];

    expect(writes).toHaveLength(1);
    writes[0]!.release();
    await first;
    expect(writes).toHaveLength(2);
    expect(writes[1]).toMatchObject({ key: a, merged: { deltas: { completed: 2, failed: 1 }, expiresAt: 300 } });
    for (const promise of waiting) expect(await settled(promise)).toBe('pending');
    writes[1]!.release();
    await Promise.all(waiting);
  });

  it('never merges different items', async () => {
    const { coalescer, writes } = gatedStore();

    const stored = [coalescer.add(a, 'completed', 1, 1), coalescer.add(b, 'completed', 1, 1)];

    expect(writes.map((write) => write.key)).toEqual([a, b]);
    for (const write of writes) write.release();
    await Promise.all(stored);
  });

  it('rejects every caller a failed write carried, keeps none of their increments, and goes on with later ones', async () => {
    const { coalescer, writes } = gatedStore();
    const first = coalescer.add(a, 'completed', 1, 1);
    const merged = [coalescer.add(a, 'completed', 1, 1), coalescer.add(a, 'completed', 1, 1)];
    writes[0]!.release();
    await first;

    writes[1]!.fail(new Error('throttled'));

    for (const promise of merged) await expect(promise).rejects.toThrow('throttled');
    const later = coalescer.add(a, 'completed', 1, 1);
    expect(writes).toHaveLength(3);
    expect(writes[2]!.merged.deltas).toEqual({ completed: 1 });
    writes[2]!.release();
    await later;
  });
});
