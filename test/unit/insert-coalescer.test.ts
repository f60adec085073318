import { describe, expect, it } from 'vitest';
import { INSERT_GROUP_MAX, InsertCoalescer, sharedInsertCoalescer, type InsertTarget } from '../../lambdas/adapters/insert-coalescer';

type Item = { key: string; value: number };

interface Call {
  kind: 'insertOne' | 'existing' | 'putAll';
  keys: string[];
  release: (value?: unknown) => void;
  fail: (error: Error) => void;
}

/** A table whose requests complete only when the test releases them; `stored` is what it holds. */
function gatedTable(initial: Item[] = [], { grouping = true, unprocessable = new Set<string>() } = {}) {
  const stored = new Map(initial.map((item) => [item.key, item]));
  const calls: Call[] = [];
  const call = <T>(kind: Call['kind'], items: readonly Item[], complete: () => T) =>
    new Promise<T>((resolve, reject) => {
      calls.push({ kind, keys: items.map((item) => item.key), release: () => { resolve(complete()); }, fail: reject });
    });
  const target: InsertTarget<Item> = {
    insertOne: (item) =>
      call('insertOne', [item], () => {
        if (stored.has(item.key)) return false;
        stored.set(item.key, item);
        return true;
      }),
    existing: (items) => call('existing', items, () => new Set(items.filter((item) => stored.has(item.key)).map((item) => item.key))),
    putAll: (items) =>
      call('putAll', items, () => {
        const left = items.filter((item) => unprocessable.has(item.key));
        for (const item of items) if (!unprocessable.has(item.key)) stored.set(item.key, item);
        return left;
      }),
  };
  return { coalescer: new InsertCoalescer<Item>((item) => item.key, target, grouping), calls, stored };
}

const settled = async (promise: Promise<unknown>) => {
  let state = 'pending';
  promise.then(
    (value) => (state = `resolved ${String(value)}`),
    (error: unknown) => (state = `rejected ${(error as Error).message}`),
  );
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  return state;
};
const flush = () => settled(Promise.resolve());
const item = (key: string, value = 1): Item => ({ key, value });

/** 'dup' twice and 'other', queued behind a lone write; that write is done, and their group's read is pending. */
async function queuedDuplicate() {
  const { coalescer, calls, stored } = gatedTable();
  void coalescer.insert(item('first'));
  const original = coalescer.insert(item('dup', 1));
  const duplicate = coalescer.insert(item('dup', 2));
  const other = coalescer.insert(item('other'));
  calls[0]!.release();
  await flush();
  return { calls, stored, original, duplicate, other };
}

/** After its original failed, the second insert of 'dup' is decided again: alone, as a conditional put, and stored. */
async function expectDecidedAgain(calls: Call[], stored: Map<string, Item>, second: Promise<boolean>) {
  await flush();
  expect(calls.at(-1)).toMatchObject({ kind: 'insertOne', keys: ['dup'] });
  calls.at(-1)!.release();
  expect(await second).toBe(true);
  expect(stored.get('dup')).toEqual(item('dup', 2));
}

describe('InsertCoalescer', () => {
  it('writes a lone insert at once as one conditional put, and resolves only when it is stored', async () => {
    const { coalescer, calls, stored } = gatedTable();

    const inserted = coalescer.insert(item('a'));

    expect(calls.map((c) => c.kind)).toEqual(['insertOne']);
    expect(await settled(inserted)).toBe('pending');
    calls[0]!.release();
    expect(await settled(inserted)).toBe('resolved true');
    expect(stored.get('a')).toEqual(item('a'));
  });

  it('groups the inserts that arrive during a write: one existence read, puts of 25 at most, and false for keys that exist', async () => {
    const { coalescer, calls, stored } = gatedTable([item('k3', 0)]);
    const first = coalescer.insert(item('first'));
    const waiting = Array.from({ length: 30 }, (_, i) => coalescer.insert(item(`k${i}`)));
    expect(calls).toHaveLength(1);

    calls[0]!.release();
    await flush();
    expect(calls.map((c) => c.kind)).toEqual(['insertOne', 'existing']);
    expect(calls[1]!.keys).toHaveLength(30);
    calls[1]!.release();
    await flush();
    // k3 exists: 29 puts, in chunks of 25 and 4, sent together.
    expect(calls.slice(2).map((c) => [c.kind, c.keys.length])).toEqual([
      ['putAll', 25],
      ['putAll', 4],
    ]);
    expect(await settled(waiting[0]!)).toBe('pending');
    for (const c of calls.slice(2)) c.release();

    expect(await settled(first)).toBe('resolved true');
    const outcomes = await Promise.all(waiting);
    expect(outcomes.filter((inserted) => !inserted)).toHaveLength(1);
    expect(outcomes[3]).toBe(false);
    expect(stored.get('k3')).toEqual(item('k3', 0));
    expect(stored.size).toBe(31);
  });

  it(`groups at most ${INSERT_GROUP_MAX} inserts; the rest go in the next group`, async () => {
    const { coalescer, calls } = gatedTable();
    void coalescer.insert(item('first'));
    const rest = Array.from({ length: INSERT_GROUP_MAX + 5 }, (_, i) => coalescer.insert(item(`k${i}`)));
    calls[0]!.release();
    await flush();
    expect(calls[1]).toMatchObject({ kind: 'existing' });
    expect(calls[1]!.keys).toHaveLength(INSERT_GROUP_MAX);
    calls[1]!.release();
    await flush();
    for (const c of calls.slice(2)) c.release();
    await flush();
    const next = calls.find((c, i) => i > 1 && c.kind !== 'putAll');
    expect(next).toMatchObject({ kind: 'existing', keys: ['k100', 'k101', 'k102', 'k103', 'k104'] });
    next!.release();
    await flush();
    for (const c of calls.filter((c) => c.kind === 'putAll')) c.release();
    expect((await Promise.all(rest)).every(Boolean)).toBe(true);
  });

  it('the same key twice while queued: written once, and the second insert reports false', async () => {
    const { calls, stored, original, duplicate, other } = await queuedDuplicate();
    expect(calls[1]!.keys).toEqual(['dup', 'other']);
    calls[1]!.release();
    await flush();
    calls[2]!.release();

    expect(await original).toBe(true);
    expect(await duplicate).toBe(false);
    expect(await other).toBe(true);
    expect(stored.get('dup')).toEqual(item('dup', 1));
  });

  it('the same key while its write is in flight: waits for it, then reports false', async () => {
    const { coalescer, calls, stored } = gatedTable();
    const original = coalescer.insert(item('dup', 1));
    const duplicate = coalescer.insert(item('dup', 2));

    expect(await settled(duplicate)).toBe('pending');
    calls[0]!.release();

    expect(await original).toBe(true);
    expect(await duplicate).toBe(false);
    expect(calls).toHaveLength(1);
    expect(stored.get('dup')).toEqual(item('dup', 1));
  });

  it('the same key after its in-flight write failed: decides again, and stores it', async () => {
    const { coalescer, calls, stored } = gatedTable();
    const original = coalescer.insert(item('dup', 1));
    const retry = coalescer.insert(item('dup', 2));

    calls[0]!.fail(new Error('ProvisionedThroughputExceededException'));
    await expect(original).rejects.toThrow('ProvisionedThroughputExceededException');

    await expectDecidedAgain(calls, stored, retry);
  });

  it('a failed existence read rejects its whole group, stores nothing, and later inserts still go through', async () => {
    const { coalescer, calls, stored } = gatedTable();
    void coalescer.insert(item('first'));
    const group = [coalescer.insert(item('a')), coalescer.insert(item('b'))];
    calls[0]!.release();
    await flush();

    calls[1]!.fail(new Error('read failed'));

    for (const inserted of group) await expect(inserted).rejects.toThrow('read failed');
    expect(stored.has('a')).toBe(false);
    const later = coalescer.insert(item('c'));
    await flush();
    calls.at(-1)!.release();
    expect(await later).toBe(true);
  });

  it('a failed put fails no one at once: each of its items is tried alone, so a bad item fails only its own insert', async () => {
    const { coalescer, calls, stored } = gatedTable();
    void coalescer.insert(item('first'));
    const group = Array.from({ length: 30 }, (_, i) => coalescer.insert(item(`k${i}`)));
    calls[0]!.release();
    await flush();
    calls[1]!.release();
    await flush();

    calls[2]!.fail(new Error('ValidationException: Item size has exceeded the maximum allowed size'));
    calls[3]!.release();
    await flush();
    // The 25 of the failed chunk, one conditional put each; k7 is the bad one.
    const alone = calls.slice(4);
    expect(alone.map((c) => [c.kind, c.keys[0]])).toEqual(Array.from({ length: 25 }, (_, i) => ['insertOne', `k${i}`]));
    for (const c of alone) {
      if (c.keys[0] === 'k7') c.fail(new Error('ValidationException: Item size has exceeded the maximum allowed size'));
      else c.release();
    }

    const outcomes = await Promise.allSettled(group);
    expect(outcomes.map((o) => o.status)).toEqual(Array.from({ length: 30 }, (_, i) => (i === 7 ? 'rejected' : 'fulfilled')));
    expect(stored.size).toBe(30);
  });

  it('items a put left unprocessed are tried alone; the ones it stored resolve at once', async () => {
    const { coalescer, calls, stored } = gatedTable([], { unprocessable: new Set(['k1']) });
    void coalescer.insert(item('first'));
    const group = ['k0', 'k1', 'k2'].map((key) => coalescer.insert(item(key)));
    calls[0]!.release();
    await flush();
    calls[1]!.release();
    await flush();
    calls[2]!.release();
    await flush();

    expect(await settled(group[0]!)).toBe('resolved true');
    expect(calls[3]).toMatchObject({ kind: 'insertOne', keys: ['k1'] });
    calls[3]!.release();
    expect(await Promise.all(group)).toEqual([true, true, true]);
    expect([...stored.keys()].sort()).toEqual(['first', 'k0', 'k1', 'k2']);
  });

  it('a duplicate of a key whose chunk failed, while another chunk is still being written, waits for the write to end, then decides again', async () => {
    const { coalescer, calls, stored } = gatedTable();
    void coalescer.insert(item('first'));
    const group = Promise.allSettled(Array.from({ length: 30 }, (_, i) => coalescer.insert(item(`k${i}`, 1))));
    calls[0]!.release();
    await flush();
    calls[1]!.release();
    await flush();
    const [chunkA, chunkB] = [calls[2]!, calls[3]!];

    chunkA.fail(new Error('throttled'));
    await flush();
    const failedAlone = calls.slice(4);
    for (const c of failedAlone) c.fail(new Error('throttled'));
    const duplicate = coalescer.insert(item('k0', 2));
    await flush();
    // Chunk B still pending: the duplicate must neither spin nor write yet.
    expect(await settled(duplicate)).toBe('pending');
    expect(calls).toHaveLength(4 + failedAlone.length);
    chunkB.release();
    await flush();
    calls.at(-1)!.release();

    expect(await duplicate).toBe(true);
    expect(stored.get('k0')).toEqual(item('k0', 2));
    expect((await group).filter((o) => o.status === 'rejected')).toHaveLength(25);
  });

  it('a queued duplicate whose original fails decides again instead of failing with it', async () => {
    const { calls, stored, original, duplicate, other } = await queuedDuplicate();

    calls[1]!.fail(new Error('read failed'));
    await expect(original).rejects.toThrow('read failed');
    await expect(other).rejects.toThrow('read failed');

    await expectDecidedAgain(calls, stored, duplicate);
  });

  it('with grouping off (any process that is not the only writer), every insert is its own conditional put', async () => {
    const { coalescer, calls } = gatedTable([], { grouping: false });

    const inserts = ['a', 'b', 'a'].map((key) => coalescer.insert(item(key)));

    expect(calls.map((c) => [c.kind, c.keys])).toEqual([
      ['insertOne', ['a']],
      ['insertOne', ['b']],
      ['insertOne', ['a']],
    ]);
    for (const c of calls) c.release();
    expect(await Promise.all(inserts)).toEqual([true, true, false]);
  });

  it('a target that throws at once still settles its group and does not block later inserts', async () => {
    const target: InsertTarget<Item> = {
      insertOne: () => {
        throw new Error('thrown, not rejected');
      },
      existing: () => Promise.resolve(new Set()),
      putAll: () => Promise.resolve([]),
    };
    const coalescer = new InsertCoalescer<Item>((i) => i.key, target, true);

    await expect(coalescer.insert(item('a'))).rejects.toThrow('thrown, not rejected');
    await expect(coalescer.insert(item('b'))).rejects.toThrow('thrown, not rejected');
  });
});

describe('sharedInsertCoalescer', () => {
  it('is one coalescer per name in the process, so repositories of one table are one writer', () => {
    const make = () => gatedTable().coalescer;
    const name = `FleetTable-${Math.random()}`;

    const first = sharedInsertCoalescer(name, make);

    expect(sharedInsertCoalescer(name, make)).toBe(first);
    expect(sharedInsertCoalescer(`${name}-other`, make)).not.toBe(first);
  });
});
