/**
 * `npx tsx bench/sdk-request-cost.ts`: the CPU one DynamoDB request costs the
 * AWS SDK itself on this machine, with no socket and no DynamoDB: a
 * `requestHandler` answers every request at once. It prints BatchWriteItem of
 * 1 and 25 items through the plain client, the document client (as Fleet's
 * adapters call it), and the plain client with `cacheMiddleware` (which the
 * document client refuses).
 */
import { BatchWriteItemCommand, DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { Readable } from 'node:stream';

const WARM_UP = 1_000;
const REQUESTS = 2_000;
/** Each figure is the lowest of this many measurements, taken in turn across the clients. */
const REPEATS = 3;

/** Answers every request with an empty BatchWriteItem success; HttpResponse is checked by shape. */
const answerAtOnce = {
  metadata: { handlerProtocol: 'http/1.1' },
  updateHttpClientConfig: () => undefined,
  httpHandlerConfigs: () => ({}),
  destroy: () => undefined,
  handle: () =>
    Promise.resolve({ response: { statusCode: 200, headers: { 'content-type': 'application/x-amz-json-1.0' }, body: Readable.from([Buffer.from('{"UnprocessedItems":{}}')]) } }),
} as unknown as NonNullable<DynamoDBClientConfig['requestHandler']>;

const clientConfig = (cacheMiddleware: boolean) => ({
  region: 'us-east-1',
  credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
  endpoint: 'http://127.0.0.1:1',
  cacheMiddleware,
  requestHandler: answerAtOnce,
});

/** A result item the size Fleet writes for a 0 ms task. */
const resultItem = (i: number) => ({
  pk: `BATCH#0f8fad5b-d9cb-469f-a165-70867728950e#R${String(i % 128)}`,
  sk: `RESULT#t${String(i)}`,
  taskId: `t${String(i)}`,
  success: true,
  result: { ok: true, ms: 0 },
  duration: 0,
  timestamp: 1_800_000_000_000,
  attempts: 1,
  workerId: `env-abc-t${String(i)}-0`,
  expiresAt: 1_800_000_000,
});

type Send = (items: ReturnType<typeof resultItem>[]) => Promise<unknown>;

async function sendRequests(send: Send, itemsPerRequest: number, requests: number): Promise<void> {
  for (let r = 0; r < requests; r++) await send(Array.from({ length: itemsPerRequest }, (_, i) => resultItem(r * itemsPerRequest + i)));
}

async function cpuPerRequest(send: Send, itemsPerRequest: number): Promise<number> {
  const before = process.cpuUsage();
  await sendRequests(send, itemsPerRequest, REQUESTS);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / REQUESTS;
}

const plain = new DynamoDBClient(clientConfig(false));
const cached = new DynamoDBClient(clientConfig(true));
const documents = DynamoDBDocumentClient.from(new DynamoDBClient(clientConfig(false)));
const viaClient = (client: DynamoDBClient) => (items: ReturnType<typeof resultItem>[]) =>
  client.send(new BatchWriteItemCommand({ RequestItems: { T: items.map((item) => ({ PutRequest: { Item: marshall(item) } })) } }));
const viaDocuments = (items: ReturnType<typeof resultItem>[]) => documents.send(new BatchWriteCommand({ RequestItems: { T: items.map((Item) => ({ PutRequest: { Item } })) } }));

const clients: [string, Send][] = [
  ['DynamoDBClient', viaClient(plain)],
  ['DynamoDBDocumentClient (as Fleet calls it)', viaDocuments],
  ['DynamoDBClient with cacheMiddleware', viaClient(cached)],
];
// Every path warmed up (and optimized by V8) before any is measured.
for (const [, send] of clients) for (const size of [1, 25]) await sendRequests(send, size, WARM_UP);
const lowest = new Map<string, number>();
for (let repeat = 0; repeat < REPEATS; repeat++) {
  for (const [name, send] of clients) {
    for (const size of [1, 25]) {
      const key = `${name}|${String(size)}`;
      lowest.set(key, Math.min(lowest.get(key) ?? Infinity, await cpuPerRequest(send, size)));
    }
  }
}
console.log(`BatchWriteItem, CPU µs per request (lowest of ${String(REPEATS)} × ${REQUESTS.toLocaleString('en-US')} requests), Node ${process.version}`);
console.log('| client | 1 item | 25 items | per further item |');
console.log('|---|---:|---:|---:|');
for (const [name] of clients) {
  const one = lowest.get(`${name}|1`) ?? 0;
  const many = lowest.get(`${name}|25`) ?? 0;
  console.log(`| ${name} | ${one.toFixed(0)} | ${many.toFixed(0)} | ${((many - one) / 24).toFixed(1)} |`);
}
try {
  DynamoDBDocumentClient.from(cached);
} catch (error) {
  console.log(`DynamoDBDocumentClient with cacheMiddleware: ${(error as Error).message}`);
}
