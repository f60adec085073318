import { describe, expect, it } from 'vitest';
import { AGING_MS, effectivePriority, emptyCapacity, enqueue, rebalance, release, type CapacityState } from '../../lambdas/domain/capacity';

const NOW = 1_000_000;
const sumSlots = (state: CapacityState) => Object.values(state.running).reduce((sum, b) => sum + b.slots, 0);

describe('rebalance', () => {
  it('admits the first batch with as many slots as it has tasks, up to the cap', () => {
    const queued = enqueue(emptyCapacity(), 'a', { priority: 0, createdAt: 1, demand: 100 }, NOW);
    const { state, admitted, changed } = rebalance(queued, 10, {}, NOW);
    expect(admitted).toEqual(['a']);
    expect(state.running.a?.slots).toBe(10);
    expect(changed).toEqual({ a: 10 });
  });

  it('keeps a batch waiting while the cap is taken, and never exceeds the cap', () => {
    let state = rebalance(enqueue(emptyCapacity(), 'a', { priority: 0, createdAt: 1, demand: 100 }, NOW), 10, {}, NOW).state;
    state = enqueue(state, 'b', { priority: 0, createdAt: 2, demand: 100 }, NOW);
    const result = rebalance(state, 10, { a: 90 }, NOW);
    expect(result.admitted).toEqual([]);
    expect(Object.keys(result.state.waiting)).toEqual(['b']);
    expect(sumSlots(result.state)).toBe(10);
  });

  it('hands slots a batch no longer needs to the next batch', () => {
    let state = rebalance(enqueue(emptyCapacity(), 'a', { priority: 0, createdAt: 1, demand: 100 }, NOW), 10, {}, NOW).state;
    state = enqueue(state, 'b', { priority: 0, createdAt: 2, demand: 100 }, NOW);
    const result = rebalance(state, 10, { a: 3 }, NOW);
    expect(result.state.running.a?.slots).toBe(3);
    expect(result.state.running.b?.slots).toBe(7);
    expect(result.admitted).toEqual(['b']);
    expect(result.changed).toEqual({ a: 3, b: 7 });
  });

  it('admits by priority, then by age, whatever the order they queued in', () => {
    let state = rebalance(enqueue(emptyCapacity(), 'busy', { priority: 0, createdAt: 1, demand: 10 }, NOW), 2, {}, NOW).state;
    state = enqueue(state, 'low', { priority: 0, createdAt: 2, demand: 5 }, NOW);
    state = enqueue(state, 'high', { priority: 5, createdAt: 3, demand: 5 }, NOW);
    state = enqueue(state, 'low-later', { priority: 0, createdAt: 4, demand: 5 }, NOW);
    const freed = rebalance(release(state, 'busy'), 2, {}, NOW);
    expect(freed.admitted).toEqual(['high']);
    const next = rebalance(release(freed.state, 'high'), 2, {}, NOW);
    expect(next.admitted).toEqual(['low']);
  });

  it('ages waiting batches so none waits forever behind newer higher-priority ones', () => {
    const old = { priority: 0, createdAt: 1, demand: 1, since: NOW };
    expect(effectivePriority(old, NOW + 5 * AGING_MS)).toBe(5);
    let state: CapacityState = { running: {}, waiting: { old } };
    state = enqueue(state, 'fresh', { priority: 3, createdAt: 2, demand: 1 }, NOW + 5 * AGING_MS);
    const result = rebalance(state, 1, {}, NOW + 5 * AGING_MS);
    expect(result.admitted).toEqual(['old']);
  });

  it('lowers the slots of the lowest-priority batches first when the cap drops', () => {
    const state: CapacityState = {
      running: { low: { slots: 5, priority: 0, createdAt: 1 }, high: { slots: 5, priority: 9, createdAt: 2 } },
      waiting: {},
    };
    const result = rebalance(state, 6, { low: 50, high: 50 }, NOW);
    expect(result.state.running).toMatchObject({ low: { slots: 1 }, high: { slots: 5 } });
    expect(result.changed).toEqual({ low: 1 });
  });

  it('lends free slots to running batches that can use them when nobody waits', () => {
    const state: CapacityState = {
      running: { a: { slots: 2, priority: 0, createdAt: 1 }, b: { slots: 2, priority: 1, createdAt: 2 } },
      waiting: {},
    };
    const result = rebalance(state, 10, { a: 100, b: 3 }, NOW);
    expect(result.state.running.b?.slots).toBe(3);
    expect(result.state.running.a?.slots).toBe(7);
    expect(sumSlots(result.state)).toBe(10);
  });

  it('enqueue and release leave unknown or known batches alone as appropriate', () => {
    const state = enqueue(emptyCapacity(), 'a', { priority: 0, createdAt: 1, demand: 1 }, NOW);
    expect(enqueue(state, 'a', { priority: 9, createdAt: 1, demand: 1 }, NOW)).toBe(state);
    expect(release(state, 'nope')).toBe(state);
    expect(release(state, 'a').waiting).toEqual({});
  });
});
