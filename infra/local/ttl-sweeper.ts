/**
 * DynamoDB Time to Live for local mode. dynalite has no TTL, so the local
 * fleet runs this sweeper on a timer: it scans each table whose template
 * enables TTL and deletes the items whose TTL attribute is a number at or
 * before now (epoch seconds), as DynamoDB's TTL does on AWS.
 *
 * AWS deletes expired items within days, not at once; Fleet's reads already
 * skip expired items, so neither the sweeper's interval nor AWS's delay ever
 * shows expired data.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { deleteKeys } from '../../lambdas/adapters/batch-maintenance';

export interface TtlTable {
  name: string;
  /** The TTL attribute, e.g. `expiresAt`. */
  ttlAttribute: string;
  /** The key schema's attribute names (partition key, then sort key if any). */
  keyAttributes: readonly string[];
}

export interface SweepResult {
  scanned: number;
  deleted: number;
}

/**
 * Deletes every item of `table` whose `ttlAttribute` is a number ≤ `nowSeconds`.
 * Items without the attribute, or with a non-number one, are kept, as on AWS.
 * Reads one scan page at a time and deletes it with BatchWriteItem in groups
 * of 25, resending UnprocessedItems.
 */
export async function sweepExpired(
  client: DynamoDBDocumentClient,
  table: string,
  nowSeconds: number,
  options: { ttlAttribute?: string; keyAttributes?: readonly string[] } = {},
): Promise<SweepResult> {
  const ttlAttribute = options.ttlAttribute ?? 'expiresAt';
  const keyAttributes = options.keyAttributes ?? ['pk', 'sk'];
  const names: Record<string, string> = { '#ttl': ttlAttribute };
  keyAttributes.forEach((attribute, i) => (names[`#k${i}`] = attribute));
  let scanned = 0;
  let deleted = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: table,
        // A comparison with a non-number attribute is false, so such items stay.
        FilterExpression: '#ttl <= :now',
        ProjectionExpression: keyAttributes.map((_, i) => `#k${i}`).join(', '),
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: { ':now': nowSeconds },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    scanned += page.ScannedCount ?? 0;
    const keys = (page.Items ?? []).map((item) => Object.fromEntries(keyAttributes.map((attribute) => [attribute, item[attribute]])));
    deleted += await deleteKeys(client, table, keys);
    start = page.LastEvaluatedKey;
  } while (start);
  return { scanned, deleted };
}

/** The tables of a synthesized template that have TTL enabled, with their TTL attribute and key names. */
export function ttlTablesOf(tables: readonly { name: string; properties: Record<string, unknown> }[]): TtlTable[] {
  return tables.flatMap(({ name, properties }) => {
    const ttl = properties.TimeToLiveSpecification as { AttributeName?: string; Enabled?: boolean } | undefined;
    if (!ttl?.Enabled || !ttl.AttributeName) return [];
    const keySchema = (properties.KeySchema ?? []) as { AttributeName: string; KeyType: string }[];
    const keyAttributes = ['HASH', 'RANGE'].flatMap((type) => keySchema.filter((k) => k.KeyType === type).map((k) => k.AttributeName));
    return [{ name, ttlAttribute: ttl.AttributeName, keyAttributes }];
  });
}

export interface TtlSweeperOptions {
  /** The local DynamoDB endpoint, region and credentials. */
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  tables: readonly TtlTable[];
  /** Time between sweeps; 0 disables the timer. */
  intervalMs: number;
  /** Epoch ms. @default Date.now */
  now?: () => number;
}

export interface TtlSweeper {
  /** Runs one sweep of every table now (or joins the one running). */
  sweep(): Promise<SweepResult>;
  /** Stops the timer and waits for a running sweep to end. */
  stop(): Promise<void>;
}

export function startTtlSweeper(options: TtlSweeperOptions): TtlSweeper {
  if (!Number.isInteger(options.intervalMs) || options.intervalMs < 0) {
    throw new Error(`sweepIntervalMs must be an integer of at least 0 (0 disables the sweeper), got ${options.intervalMs}`);
  }
  const now = options.now ?? Date.now;
  const client = DynamoDBDocumentClient.from(
    new DynamoDBClient({ region: options.region, endpoint: options.endpoint, credentials: options.credentials }),
  );
  let running: Promise<SweepResult> | undefined;
  let stopped = false;

  const sweep = (): Promise<SweepResult> => {
    if (stopped) return Promise.resolve({ scanned: 0, deleted: 0 });
    running ??= (async () => {
      const total: SweepResult = { scanned: 0, deleted: 0 };
      const nowSeconds = Math.floor(now() / 1000);
      for (const table of options.tables) {
        const result = await sweepExpired(client, table.name, nowSeconds, table);
        total.scanned += result.scanned;
        total.deleted += result.deleted;
      }
      return total;
    })().finally(() => {
      running = undefined;
    });
    return running;
  };

  const timer =
    options.intervalMs > 0
      ? setInterval(() => {
          // One sweep at a time; a failed sweep is reported, and the next one tries again.
          sweep().catch((error: unknown) => {
            if (!stopped) console.error(`local TTL sweeper: ${error instanceof Error ? error.message : String(error)}`);
          });
        }, options.intervalMs)
      : undefined;
  // The sweeper alone never keeps the process alive.
  timer?.unref();

  return {
    sweep,
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      await running?.catch(() => undefined);
      client.destroy();
    },
  };
}
