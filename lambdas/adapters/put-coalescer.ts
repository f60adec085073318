/**
 * Groups unconditional puts sent at the same time into BatchWriteItem
 * requests. A put with none in flight is sent at once, alone; puts that
 * arrive while a write is in flight wait for it, then go together (25 to a
 * request, the latest put of a key winning, as it would one after another).
 * Each caller's promise settles when the write carrying its item does.
 *
 * Only for unconditional puts (BatchWriteItem takes no condition), and only
 * where grouping pays: the local fleet, which runs every invocation in one
 * process. On AWS a Lambda environment runs one attempt at a time, so
 * nothing would be grouped anyway.
 */
import { BATCH_WRITE_MAX } from './batch-write';

interface Waiting<Item> {
  item: Item;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class PutCoalescer<Item> {
  private waiting: Waiting<Item>[] = [];
  private writing = false;

  constructor(
    private readonly keyOf: (item: Item) => string,
    private readonly putOne: (item: Item) => Promise<void>,
    /** At most BATCH_WRITE_MAX items. */
    private readonly putMany: (items: Item[]) => Promise<void>,
  ) {}

  put(item: Item): Promise<void> {
    const stored = new Promise<void>((resolve, reject) => this.waiting.push({ item, resolve, reject }));
    if (!this.writing) void this.drain();
    return stored;
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.waiting.length > 0) {
        const group = this.waiting.splice(0);
        const latest = [...new Map(group.map((entry) => [this.keyOf(entry.item), entry.item])).values()];
        try {
          if (latest.length === 1) await this.putOne(latest[0] as Item);
          else {
            const chunks: Item[][] = [];
            for (let i = 0; i < latest.length; i += BATCH_WRITE_MAX) chunks.push(latest.slice(i, i + BATCH_WRITE_MAX));
            await Promise.all(chunks.map((chunk) => this.putMany(chunk)));
          }
          for (const entry of group) entry.resolve();
        } catch (error) {
          for (const entry of group) entry.reject(error);
        }
      }
    } finally {
      this.writing = false;
    }
  }
}
