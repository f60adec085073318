/**
 * The local fleet's storage steps: the emulators (fauxqs for SQS, dynalite
 * for DynamoDB in a supervised child process, s3rver for S3), and the
 * template's tables, buckets and queues made in them.
 *
 * The emulators listen on loopback only and serve nobody but the fleet: every
 * request must be signed with credentials made up at each start
 * (emulator-guard.ts), and none carries CORS headers.
 */
import * as http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { CreateTableCommand, DynamoDBClient, ListTablesCommand, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { buildApp as buildFauxqs } from 'fauxqs';
import S3rver from 's3rver';
import type { ObjectStore } from './asl/interpreter';
import { startDynamoDbProcess, type DynamoDbProcess } from './dynamodb-process';
import { guardServer, type LocalCredentials } from './emulator-guard';
import { LOCAL_ACCOUNT, LOCAL_REGION, type LocalResources } from './template';

/** SQS, started first: a queue's URL (its Ref in the template) names the server's port. */
export interface QueueEmulator {
  endpoint: string;
  /** The URL fauxqs gives the queue `name`. */
  queueUrl: (name: string) => string;
  close(): Promise<void>;
}

/**
 * What this module uses of fauxqs's app (a fastify instance). fauxqs's declarations name fastify's
 * types through a default import used as a namespace, which TypeScript cannot resolve, so the app's
 * own type is an unresolved one.
 */
interface FauxqsApp {
  server: http.Server;
  listen(options: { port: number; host: string }): Promise<string>;
  close(): Promise<void>;
}

/** fauxqs, in this process and on loopback only (its CLI listens on every interface). */
export async function startQueueEmulator(credentials: LocalCredentials): Promise<QueueEmulator> {
  const fauxqs = buildFauxqs({ logger: false }) as FauxqsApp;
  guardServer(fauxqs.server, { service: 'sqs', credentials });
  await fauxqs.listen({ port: 0, host: '127.0.0.1' });
  const port = (fauxqs.server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    // fauxqs's URL format. Requests still go to the endpoint: the SQS client does
    // not follow a QueueUrl's host (clients.ts), so the name need not resolve.
    queueUrl: (name) => `http://sqs.${LOCAL_REGION}.localhost:${port}/${LOCAL_ACCOUNT}/${name}`,
    close: () => fauxqs.close(),
  };
}

/** s3rver's one account (lib/models/account.js), which holds the keys it accepts. */
interface S3rverAccounts {
  DUMMY_ACCOUNT: { createKeyPair(accessKeyId: string, secretAccessKey: string): void; revokeAccessKey(accessKeyId: string): void };
}

/** DynamoDB and S3, running. */
export interface StorageEmulators {
  endpoints: { dynamodb: string; s3: string };
  dynamo: DynamoDbProcess;
  /** A client of the S3 emulator, for the Step Functions runner's ItemReader and ResultWriter. */
  s3: S3Client;
  objects: ObjectStore;
  close(): Promise<void>;
}

/** DynamoDB (dynalite in a process of its own, on the second core) and S3 (s3rver), on disk or in `scratch`. */
export async function startStorageEmulators(options: {
  credentials: LocalCredentials;
  inMemory: boolean;
  dataDir: string;
  /** The in-memory run's throwaway folder (s3rver always writes files). */
  scratch: string | undefined;
  onStorageLost: ((error: Error) => void) | undefined;
}): Promise<StorageEmulators> {
  const { credentials, dataDir } = options;
  const dynamo = await startDynamoDbProcess({
    ...(options.inMemory ? {} : { path: path.join(dataDir, 'dynamodb') }),
    credentials,
    ...(options.onStorageLost ? { onFatal: options.onStorageLost } : {}),
  });
  // s3rver checks signatures against its own account's keys: this run's are added to them.
  const s3rverAccount = (createRequire(import.meta.url)('s3rver/lib/models/account') as S3rverAccounts).DUMMY_ACCOUNT;
  s3rverAccount.createKeyPair(credentials.accessKeyId, credentials.secretAccessKey);
  const s3rver = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: options.scratch ?? path.join(dataDir, 's3') });
  const s3Address = await s3rver.run().catch(async (error: unknown) => {
    // This step's own: the DynamoDB process and the key pair, not left behind when S3 cannot start.
    s3rverAccount.revokeAccessKey(credentials.accessKeyId);
    await dynamo.close();
    throw error;
  });
  // Still before any request can arrive: run() resolves in the tick it starts listening.
  guardServer((s3rver as unknown as { httpServer: http.Server }).httpServer, { service: 's3', credentials });

  const endpoints = { dynamodb: dynamo.endpoint, s3: `http://127.0.0.1:${s3Address.port}` };
  const s3 = new S3Client({ region: LOCAL_REGION, endpoint: endpoints.s3, forcePathStyle: true, credentials });
  const objects: ObjectStore = {
    async getSize(bucket, key) {
      return (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ContentLength ?? 0;
    },
    async getText(bucket, key) {
      const result = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return (await result.Body?.transformToString('utf8')) ?? '';
    },
    async putText(bucket, key, body) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    },
  };
  return {
    endpoints,
    dynamo,
    s3,
    objects,
    async close() {
      s3.destroy();
      await s3rver.close();
      s3rverAccount.revokeAccessKey(credentials.accessKeyId);
    },
  };
}

function tableInput(name: string, properties: Record<string, unknown>): CreateTableCommandInput {
  const p = properties as {
    KeySchema: CreateTableCommandInput['KeySchema'];
    AttributeDefinitions: CreateTableCommandInput['AttributeDefinitions'];
    GlobalSecondaryIndexes?: { IndexName: string; KeySchema: unknown; Projection: unknown }[];
  };
  return {
    TableName: name,
    KeySchema: p.KeySchema,
    AttributeDefinitions: p.AttributeDefinitions,
    BillingMode: 'PAY_PER_REQUEST',
    ...(p.GlobalSecondaryIndexes
      ? {
          GlobalSecondaryIndexes: p.GlobalSecondaryIndexes.map((gsi) => ({
            IndexName: gsi.IndexName,
            KeySchema: gsi.KeySchema as never,
            Projection: gsi.Projection as never,
          })),
        }
      : {}),
  };
}

/**
 * The template's queue properties as CreateQueue attributes. Encryption at
 * rest has no local meaning; any other property is refused, never ignored.
 */
function localQueueAttributes(name: string, properties: Record<string, unknown>): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const [key, value] of Object.entries(properties)) {
    if (key === 'SqsManagedSseEnabled' || key === 'KmsMasterKeyId') continue;
    if (['MessageRetentionPeriod', 'VisibilityTimeout', 'DelaySeconds', 'ReceiveMessageWaitTimeSeconds', 'MaximumMessageSize'].includes(key)) {
      attributes[key] = String(value);
      continue;
    }
    throw new Error(`local mode does not implement the queue property ${key} (queue ${name})`);
  }
  return attributes;
}

/**
 * The template's tables, buckets and queues, made in the emulators where they
 * are missing, and the deployer's own buckets that batches may name as
 * s3://bucket/key (FleetProps.tasksFileBuckets): on AWS those exist already;
 * here they are made, empty.
 */
export async function createTemplateStorage(
  resources: LocalResources,
  emulators: { storage: StorageEmulators; queues: QueueEmulator; credentials: LocalCredentials; tasksFileBuckets: readonly string[] },
): Promise<void> {
  const { storage, credentials } = emulators;
  const ddb = new DynamoDBClient({ region: LOCAL_REGION, endpoint: storage.endpoints.dynamodb, credentials });
  const existing = new Set((await ddb.send(new ListTablesCommand({}))).TableNames ?? []);
  for (const table of resources.tables) {
    if (!existing.has(table.name)) await ddb.send(new CreateTableCommand(tableInput(table.name, table.properties)));
  }
  ddb.destroy();
  for (const name of [...resources.buckets.map((bucket) => bucket.name), ...emulators.tasksFileBuckets]) {
    try {
      await storage.s3.send(new HeadBucketCommand({ Bucket: name }));
    } catch {
      await storage.s3.send(new CreateBucketCommand({ Bucket: name }));
    }
  }
  const sqs = new SQSClient({ region: LOCAL_REGION, endpoint: emulators.queues.endpoint, credentials });
  for (const queue of resources.queues) {
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: queue.name, Attributes: localQueueAttributes(queue.name, queue.properties) }));
    if (QueueUrl !== queue.url) throw new Error(`fauxqs made queue ${queue.name} at ${QueueUrl}, but the handlers were given ${queue.url}`);
  }
  sqs.destroy();
}
