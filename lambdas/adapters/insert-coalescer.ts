/**
 * Writes items "only if absent" (a conditional PutItem with
 * attribute_not_exists), grouping those that arrive together when the process
 * is the only writer of those items.
 *
 * An insert that finds no write in flight is written at once, alone, as one
 * conditional PutItem. Inserts that arrive while a write is in flight (the
 * local fleet runs many invocations in one process) wait for it, then go
 * together, up to 100: one strongly consistent BatchGetItem finds which keys
 * already exist, and BatchWriteItem puts the others, 25 per request. That is
 * one request per ~25 results instead of one each, which is what lets a
 * local DynamoDB keep up with thousands of tasks a second.
 *
 * BatchWriteItem has no conditions, so the "only if absent" of a group rests
 * on this: between its read and its write no one else writes those keys.
 * - Within the process the coalescer guarantees it: a key is in at most one
 *   write at a time, and a second insert of the key waits for the first, then
 *   reports false (as a failed condition would), or, if the first failed,
 *   decides again once that write has ended.
 * - Outside the process nothing guarantees it. Grouping is therefore only for
 *   a process that is the only writer: the local fleet, whose DynamoDB
 *   belongs to it alone, installs it (infra/local/write-grouping.ts). On AWS,
 *   where any number of environments write, nothing is installed and every
 *   insert is a conditional PutItem; no deployed bundle contains this module.
 * `sharedInsertCoalescer` gives every repository of the process the same
 * coalescer for a table, so all of the local fleet's functions are one writer.
 *
 * A BatchWriteItem that fails (a refused item, or throttling that never ends)
 * fails no one at once: each item it did not store is tried again alone, as
 * a conditional PutItem, so one bad item fails only its own insert.
 */
import { BATCH_WRITE_MAX } from './batch-write';

/** BatchGetItem reads at most 100 keys. */
export const INSERT_GROUP_MAX = 100;

export interface InsertTarget<Item> {
  /** Puts one item unless its key exists: false when it existed. */
  insertOne(item: Item): Promise<boolean>;
  /** The ids of the items whose keys exist now (a strongly consistent read). */
  existing(items: readonly Item[]): Promise<Set<string>>;
  /**
   * Puts these items (at most BATCH_WRITE_MAX), unconditionally. Resolves to
   * the items it could not store (none when it stored all); throwing means
   * none of them is known to be stored.
   */
  putAll(items: readonly Item[]): Promise<readonly Item[]>;
}

interface Entry<Item> {
  id: string;
  item: Item;
  /** Settles once this insert is decided and stored. */
  done: Promise<boolean>;
  resolve: (inserted: boolean) => void;
  reject: (error: unknown) => void;
  /** Resolves once the write that carried this insert has ended and released its key. */
  ended: Promise<void>;
  end: () => void;
}

export class InsertCoalescer<Item> {
  private readonly queued = new Map<string, Entry<Item>>();
  private readonly inFlight = new Map<string, Entry<Item>>();
  /**
   * One group is written at a time: while it is, the next one fills. Two at
   * once measured no faster (scenario d), and split the same results into
   * smaller groups.
   */
  private writing = false;

  /**
   * @param identify an item's key as one string: items with the same key are one item
   * @param grouping whether inserts may go together (only when this process is the items' only writer)
   */
  constructor(
    private readonly identify: (item: Item) => string,
    private readonly target: InsertTarget<Item>,
    private readonly grouping: boolean,
  ) {}

  /** Stores `item` unless an item with its key exists; resolves to whether it did. */
  insert(item: Item): Promise<boolean> {
    if (!this.grouping) return this.target.insertOne(item);
    const id = this.identify(item);
    // The same key again: the earlier insert decides, and this one is the duplicate.
    // If the earlier one failed, whether the key exists is unknown: decide again once its write has ended.
    const earlier = this.queued.get(id) ?? this.inFlight.get(id);
    if (earlier) return earlier.done.then(() => false, () => earlier.ended.then(() => this.insert(item)));
    const entry = { id, item } as Entry<Item>;
    entry.done = new Promise<boolean>((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
    entry.ended = new Promise<void>((resolve) => (entry.end = resolve));
    this.queued.set(id, entry);
    this.pump();
    return entry.done;
  }

  /** Starts writing the queued inserts (up to INSERT_GROUP_MAX) unless a write is in flight. */
  private pump(): void {
    if (this.writing || this.queued.size === 0) return;
    const group: Entry<Item>[] = [];
    for (const entry of this.queued.values()) {
      if (group.length === INSERT_GROUP_MAX) break;
      group.push(entry);
    }
    for (const entry of group) {
      this.queued.delete(entry.id);
      this.inFlight.set(entry.id, entry);
    }
    this.writing = true;
    const ended = () => {
      for (const entry of group) {
        this.inFlight.delete(entry.id);
        entry.end();
      }
      this.writing = false;
      this.pump();
    };
    this.write(group).then(ended, (error: unknown) => {
      // Settling twice is a no-op: this only reaches entries the write left unsettled.
      for (const entry of group) entry.reject(error);
      ended();
    });
  }

  /** Settles the group's entries; one it leaves unsettled is rejected by pump(). */
  private async write(group: Entry<Item>[]): Promise<void> {
    if (group.length === 1) return this.writeEach(group);
    let existing: Set<string>;
    try {
      existing = await this.target.existing(group.map((entry) => entry.item));
    } catch (error) {
      for (const entry of group) entry.reject(error);
      return;
    }
    const fresh: Entry<Item>[] = [];
    for (const entry of group) {
      if (existing.has(entry.id)) entry.resolve(false);
      else fresh.push(entry);
    }
    const chunks: Entry<Item>[][] = [];
    for (let i = 0; i < fresh.length; i += BATCH_WRITE_MAX) chunks.push(fresh.slice(i, i + BATCH_WRITE_MAX));
    await Promise.all(
      chunks.map(async (chunk) => {
        let unstored: Set<string>;
        try {
          unstored = new Set((await this.target.putAll(chunk.map((entry) => entry.item))).map(this.identify));
        } catch {
          unstored = new Set(chunk.map((entry) => entry.id));
        }
        for (const entry of chunk) if (!unstored.has(entry.id)) entry.resolve(true);
        // Still reserved here, so a conditional put of each is safe; one already
        // stored after all reports false (an undercount the recount repairs).
        await this.writeEach(chunk.filter((entry) => unstored.has(entry.id)));
      }),
    );
  }

  /** Conditional puts, one per entry, each settling its own entry. */
  private async writeEach(entries: Entry<Item>[]): Promise<void> {
    await Promise.all(
      entries.map((entry) => {
        let put: Promise<boolean>;
        try {
          put = this.target.insertOne(entry.item);
        } catch (error) {
          put = Promise.reject(error);
        }
        return put.then(entry.resolve, entry.reject);
      }),
    );
  }
}

const SHARED = Symbol.for('fleet.insertCoalescers');
type Registry = Map<string, unknown>;

/**
 * The one coalescer of the process for `name` (say, an endpoint and a table):
 * every repository shares it, even from another copy of this module, so one
 * process is one writer.
 */
export function sharedInsertCoalescer<Item>(name: string, create: () => InsertCoalescer<Item>): InsertCoalescer<Item> {
  const registry = ((globalThis as { [SHARED]?: Registry })[SHARED] ??= new Map());
  let coalescer = registry.get(name) as InsertCoalescer<Item> | undefined;
  if (!coalescer) {
    coalescer = create();
    registry.set(name, coalescer);
  }
  return coalescer;
}
