/**
 * PutCoalescer: the local fleet's registry puts, grouped while one is in
 * flight (lambdas/adapters/put-coalescer.ts).
 */
import { describe, expect, it } from 'vitest';
import { PutCoalescer } from '../../lambdas/adapters/put-coalescer';

type Item = { key: string; value: number };

function recorder() {
  const calls: { kind: 'one' | 'many'; items: Item[] }[] = [];
  // Each write waits at a gate until the test releases every open gate.
  let gates: (() => void)[] = [];
  let failNext: Error | undefined;
  const gate = () =>
    new Promise<void>((resolve, reject) => {
      const error = failNext;
      failNext = undefined;
      gates.push(() => {
        if (error) reject(error);
        else resolve();
      });
    });
  const release = () => {
    const open = gates;
    gates = [];
    for (const open1 of open) open1();
  };
  const coalescer = new PutCoalescer<Item>(
    (item) => item.key,
    async (item) => {
      calls.push({ kind: 'one', items: [item] });
      await gate();
    },
    async (items) => {
      calls.push({ kind: 'many', items });
      await gate();
    },
  );
  return { coalescer, calls, release, failNextWrite: (error: Error) => (failNext = error) };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('PutCoalescer', () => {
  it('sends a lone put at once, alone', async () => {
    const { coalescer, calls, release } = recorder();
    const stored = coalescer.put({ key: 'a', value: 1 });
    await flush();
    expect(calls).toEqual([{ kind: 'one', items: [{ key: 'a', value: 1 }] }]);
    release();
    await stored;
  });

  it('groups the puts that arrive while a write is in flight: 25 to a request, the latest of a key winning', async () => {
    const { coalescer, calls, release } = recorder();
    const first = coalescer.put({ key: 'first', value: 0 });
    await flush();
    const waiting = [...Array.from({ length: 30 }, (_, i) => coalescer.put({ key: `k${i}`, value: i })), coalescer.put({ key: 'k3', value: 99 })];
    release();
    await first;
    await flush();
    expect(calls.slice(1).map((call) => call.kind)).toEqual(['many', 'many']);
    const sent = calls.slice(1).flatMap((call) => call.items);
    expect(calls[1]?.items).toHaveLength(25);
    expect(sent).toHaveLength(30);
    expect(sent.find((item) => item.key === 'k3')).toEqual({ key: 'k3', value: 99 });
    release();
    await Promise.all(waiting);
  });

  it('a failed write rejects the callers it carried, and the next group is written', async () => {
    const { coalescer, calls, release, failNextWrite } = recorder();
    const first = coalescer.put({ key: 'a', value: 1 });
    await flush();
    failNextWrite(new Error('throttled'));
    const second = coalescer.put({ key: 'b', value: 2 });
    const third = coalescer.put({ key: 'c', value: 3 });
    release();
    await first;
    await flush();
    release();
    await expect(second).rejects.toThrow('throttled');
    await expect(third).rejects.toThrow('throttled');
    const fourth = coalescer.put({ key: 'd', value: 4 });
    await flush();
    release();
    await fourth;
    expect(calls.map((call) => call.items.map((item) => item.key))).toEqual([['a'], ['b', 'c'], ['d']]);
  });
});
