/**
 * Writes items "only if absent" (a conditional PutItem with
 * attribute_not_exists), grouping those that arrive together.
 *
 * An insert that finds no write in flight is written at once, alone, as one
 * conditional PutItem: a Lambda execution environment runs one invocation at
 * a time, so on AWS every insert takes this path, with no delay and no change.
 *
 * Inserts that arrive while a write is in flight (the local fleet runs many
 * invocations in one process) wait for it, then go together, up to 100:
 * one strongly consistent BatchGetItem finds which keys already exist, and
 * BatchWriteItem puts the others, 25 per request. That is one request per
 * ~25 results instead of one each, which is what lets a local DynamoDB keep
 * up with thousands of tasks a second.
 *
 * BatchWriteItem has no conditions, so the "only if absent" of a group rests
 * on this: between its read and its write no one else writes those keys.
 * Within the process, the coalescer guarantees it: a key is in at most one
 * write at a time, and a second insert of a key waits for the first (and then
 * reports false, as a failed condition would). Outside the process no one
 * writes them either, because a process only groups inserts while it runs
 * several invocations at once, which a Lambda environment never does; the
 * coalescer is shared by every repository on the same client and table
 * (`sharedInsertCoalescer`), so the worker functions of one local fleet are
 * one writer.
 */

import { BATCH_WRITE_MAX } from './batch-write';

/** BatchGetItem reads at most 100 keys. */
export const INSERT_GROUP_MAX = 100;

export interface InsertTarget<Item> {
  /** Puts one item unless its key exists: false when it existed. */
  insertOne(item: Item): Promise<boolean>;
  /** The ids of the items whose keys exist now (a strongly consistent read). */
  existing(items: readonly Item[]): Promise<Set<string>>;
  /** Puts these items (at most BATCH_WRITE_MAX), unconditionally. */
  putAll(items: readonly Item[]): Promise<void>;
}

interface Entry<Item> {
  id: string;
  item: Item;
  /** Settles once this insert is decided and stored. */
  done: Promise<boolean>;
  resolve: (inserted: boolean) => void;
  reject: (error: unknown) => void;
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
   */
  constructor(
    private readonly identify: (item: Item) => string,
    private readonly target: InsertTarget<Item>,
  ) {}

  /** Stores `item` unless an item with its key exists; resolves to whether it did. */
  insert(item: Item): Promise<boolean> {
    const id = this.identify(item);
    // The same key twice: the earlier insert decides, and this one is the duplicate.
    const queued = this.queued.get(id);
    if (queued) return queued.done.then(() => false);
    const flying = this.inFlight.get(id);
    // If that write failed, whether the key exists is unknown: decide again.
    if (flying) return flying.done.then(() => false, () => this.insert(item));
    let resolve!: (inserted: boolean) => void;
    let reject!: (error: unknown) => void;
    const done = new Promise<boolean>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.queued.set(id, { id, item, done, resolve, reject });
    this.pump();
    return done;
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
      for (const entry of group) this.inFlight.delete(entry.id);
      this.writing = false;
      this.pump();
    };
    this.write(group).then(ended, (error: unknown) => {
      for (const entry of group) entry.reject(error);
      ended();
    });
  }

  /** Settles the group's entries; one it leaves unsettled is rejected by pump(). */
  private async write(group: Entry<Item>[]): Promise<void> {
    if (group.length === 1) {
      const [entry] = group as [Entry<Item>];
      await this.target.insertOne(entry.item).then(entry.resolve, entry.reject);
      return;
    }
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
      chunks.map((chunk) =>
        this.target.putAll(chunk.map((entry) => entry.item)).then(
          () => chunk.forEach((entry) => entry.resolve(true)),
          (error: unknown) => chunk.forEach((entry) => entry.reject(error)),
        ),
      ),
    );
  }
}

const shared = new WeakMap<object, Map<string, unknown>>();

/**
 * The one coalescer of `client` for `name` (say, a table): every repository
 * built on the same client shares it, so one process is one writer.
 */
export function sharedInsertCoalescer<Item>(client: object, name: string, create: () => InsertCoalescer<Item>): InsertCoalescer<Item> {
  let byName = shared.get(client);
  if (!byName) shared.set(client, (byName = new Map()));
  let coalescer = byName.get(name) as InsertCoalescer<Item> | undefined;
  if (!coalescer) {
    coalescer = create();
    byName.set(name, coalescer);
  }
  return coalescer;
}
