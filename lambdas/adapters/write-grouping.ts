/**
 * Grouped writes: what a process that is its table's only writer (the local
 * fleet, which runs every invocation in one process against a DynamoDB of its
 * own) plugs into the adapters, so that writes made at the same time go
 * together. The coalescers that do it (counter-coalescer.ts,
 * insert-coalescer.ts, put-coalescer.ts) are local-only code: only
 * infra/local/write-grouping.ts imports them and installs them here, so no
 * deployed Lambda bundle contains them (test/infra/local-code-out-of-bundles.test.ts).
 *
 * On AWS nothing is installed: each result is one conditional PutItem, each
 * count one UpdateItem, each registry entry one PutItem. A Lambda environment
 * runs one invocation at a time, so there would be nothing to group anyway,
 * and many environments write the same table, which grouping must not allow.
 */
import type { CounterWrite } from './counter-coalescer';
import type { InsertTarget } from './insert-coalescer';

export type { CounterWrite, InsertTarget };

export interface WriteGrouping {
  /**
   * Inserts "only if absent" into `tableName`: one writer for the whole
   * process per table, so that a group's read and write see no other writer.
   */
  results<Item>(tableName: string, identify: (item: Item) => string, target: InsertTarget<Item>): { insert(item: Item): Promise<boolean> };
  /** Adds to counters, increments of one key in flight together merged into one write. */
  counters<Key>(identify: (key: Key) => string, write: (key: Key, merged: CounterWrite) => Promise<void>): {
    add(key: Key, field: string, amount: number, expiresAt: number): Promise<void>;
  };
  /** Unconditional puts made at the same time, together (`putMany` takes at most 25). */
  puts<Item>(keyOf: (item: Item) => string, putOne: (item: Item) => Promise<void>, putMany: (items: Item[]) => Promise<void>): { put(item: Item): Promise<void> };
}

/** Process-wide, so a handler module loaded from another copy of Fleet's code (e.g. its built package) sees it too. */
const INSTALLED = Symbol.for('fleet.writeGrouping');

/** Installs grouped writes for the adapters the composition root builds from now on. Local mode only. */
export function installWriteGrouping(grouping: WriteGrouping | undefined): void {
  (globalThis as { [INSTALLED]?: WriteGrouping })[INSTALLED] = grouping;
}

/** The grouped writes installed in this process, if any (never on AWS). */
export function installedWriteGrouping(): WriteGrouping | undefined {
  return (globalThis as { [INSTALLED]?: WriteGrouping })[INSTALLED];
}
