/**
 * Merges concurrent increments of the same counters into one write.
 *
 * An increment whose key (e.g. a batch id) has no write in flight is written
 * at once, so a caller alone (a Lambda execution environment runs one task
 * at a time) pays no delay. Increments that arrive while a write of their
 * key is in flight wait for it, then go together in the next write: one ADD
 * of their sum. Every caller's promise settles when the write that carries its
 * increment does, so a resolved `add` means the increment is stored, as if
 * each caller had written alone. A failed write rejects every caller it
 * carried, and none of their increments is kept for a later write.
 */
export interface CounterWrite {
  /** Sum of the increments, per counter field. */
  deltas: Record<string, number>;
  /** The latest expiry any increment asked for. */
  expiresAt: number;
}

interface Pending<Key> extends CounterWrite {
  key: Key;
  waiters: { resolve: () => void; reject: (error: unknown) => void }[];
}

export class CounterCoalescer<Key> {
  private readonly pending = new Map<string, Pending<Key>>();
  private readonly writing = new Set<string>();

  /**
   * @param identify names an item: keys with the same name are one item
   * @param write stores one merged increment of an item
   */
  constructor(
    private readonly identify: (key: Key) => string,
    private readonly write: (key: Key, merged: CounterWrite) => Promise<void>,
  ) {}

  /** Adds `amount` to `field` of the item `key`; resolves once stored. */
  add(key: Key, field: string, amount: number, expiresAt: number): Promise<void> {
    const id = this.identify(key);
    let next = this.pending.get(id);
    if (!next) {
      next = { key, deltas: {}, expiresAt, waiters: [] };
      this.pending.set(id, next);
    }
    next.deltas[field] = (next.deltas[field] ?? 0) + amount;
    next.expiresAt = Math.max(next.expiresAt, expiresAt);
    const stored = new Promise<void>((resolve, reject) => next.waiters.push({ resolve, reject }));
    if (!this.writing.has(id)) void this.drain(id);
    return stored;
  }

  private async drain(id: string): Promise<void> {
    this.writing.add(id);
    try {
      for (let next = this.pending.get(id); next; next = this.pending.get(id)) {
        this.pending.delete(id);
        try {
          await this.write(next.key, { deltas: next.deltas, expiresAt: next.expiresAt });
          for (const waiter of next.waiters) waiter.resolve();
        } catch (error) {
          for (const waiter of next.waiters) waiter.reject(error);
        }
      }
    } finally {
      this.writing.delete(id);
    }
  }
}
