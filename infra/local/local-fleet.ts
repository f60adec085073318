/**
 * The local fleet: the synthesized stack on one machine.
 *
 * - DynamoDB: dynalite, on disk under the data folder (or in memory), with
 *   the tables the template defines, in a supervised child process
 *   (dynamodb-process.ts): restarted with its data if it dies.
 * - S3: s3rver, on disk, with the template's buckets (the tasks' JSONL files).
 * - Step Functions: the template's definition, run by the local interpreter
 *   behind the service's own JSON protocol.
 * - Lambda: the same handler modules CDK deploys, run in this process.
 * - API Gateway: a local HTTP server producing payload format 2.0 events.
 *
 * The emulators listen on loopback only and serve nobody but the fleet: every
 * request must be signed with credentials made up at each start
 * (emulator-guard.ts), and none carries CORS headers.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { App, Stack } from 'aws-cdk-lib';
import { CreateTableCommand, DynamoDBClient, ListTablesCommand, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { FleetProps } from '../fleet';
import { FLEET_ROOT } from '../package-root';
import { buildApp as buildFauxqs } from 'fauxqs';
import S3rver from 's3rver';
import type { ObjectStore } from './asl/interpreter';
import { dashboardRoute } from './dashboard';
import { startDynamoDbProcess } from './dynamodb-process';
import { guardServer, newLocalCredentials, type LocalCredentials } from './emulator-guard';
import { startFaultProxy, type FaultProxy } from './fault-proxy';
import { faultInjectorFrom, type FaultInjector, type FaultProfile } from './faults';
import { API_GATEWAY_LIMITS, serveHttpApi, type LocalRoute } from './http-api';
import { startSchedules } from './schedules';
import { LocalLambda } from './lambda-runtime';
import { groupLocalWrites } from './write-grouping';
import { ExecutionJournal } from './journal';
import { LocalStepFunctions, serveStepFunctions } from './step-functions';
import { startTtlSweeper, ttlTablesOf } from './ttl-sweeper';
import { LOCAL_ACCOUNT, LOCAL_REGION, resolveTemplate, synthesizeTemplate, type LocalResources } from './template';

/** Fleet's package root: this repository, or the installed package. */
export const REPO_ROOT = FLEET_ROOT;

export interface LocalFleetOptions {
  /**
   * The Fleet construct's props the local stack is synthesized with, e.g.
   * per-type `workers` (infra/fleet-config.ts holds what `cdk deploy` uses).
   * @default {} (the stack as FleetStack builds it without props)
   */
  fleetProps?: FleetProps;
  /**
   * Builds your own stack, holding one Fleet, in the app it is given (instead
   * of a stack of Fleet alone with `fleetProps`): the stack `cdk deploy`
   * deploys is the one that runs. Resources other than Fleet's are not run.
   * @default - a stack holding only `new Fleet(stack, 'Fleet', fleetProps)`
   */
  stack?: (app: App) => Stack;
  /**
   * Your project's folder: relative worker entries (FleetProps.workers) and
   * the data folder are resolved from it.
   * @default fleetProps.projectRoot, else process.cwd()
   */
  projectRoot?: string;
  /** @default 3000 (0 picks a free port) */
  port?: number;
  /** Only loopback unless a token guards the API. @default '127.0.0.1' */
  host?: string;
  /** Bearer token required on every request when set. */
  token?: string;
  /**
   * Host names (as in the `Host` header, without the port) served besides
   * localhost, 127.0.0.1 and [::1], e.g. a name in /etc/hosts or the
   * machine's name behind a token. Any other `Host` is refused, so a web page
   * cannot reach the fleet by rebinding its own name to 127.0.0.1. A
   * non-loopback `host` set with a token is allowed too.
   * @default the FLEET_ALLOWED_HOSTS environment variable (comma separated), else none
   */
  allowedHosts?: readonly string[];
  /** Where DynamoDB and S3 data persist. @default '.fleet-data' */
  dataDir?: string;
  /** Keep nothing on disk. @default false */
  inMemory?: boolean;
  /** Milliseconds per second of Step Functions retry delay. @default 1000 (as on AWS) */
  retryUnitMs?: number;
  /** How long an Express child execution may run before it ends TIMED_OUT, for tests. @default 300000 (AWS's 5 minutes) */
  expressMaxDurationMs?: number;
  /** Most tasks in one batch. @default 100000 */
  maxTasksPerBatch?: number;
  /**
   * Largest request body the API function accepts, measured as the body sits
   * in its payload-2.0 event (JSON-escaped, or base64). @default 5 MiB
   */
  maxBodyBytes?: number;
  /**
   * API Gateway's integration timeout: past it the client gets 503
   * {"message":"Service Unavailable"}. Shorter only for tests. @default 30000 (as on AWS)
   */
  apiIntegrationTimeoutMs?: number;
  /**
   * Lifts API Gateway's 10 MB payload and 30 s timeout and Lambda's 6 MB
   * payloads, so `maxBodyBytes` alone bounds a request. Only for the
   * benchmark's million-task batch, a request AWS cannot take at all: never
   * set it to make a test pass. @default false
   */
  liftApiLimits?: boolean;
  /**
   * Concurrent Lambda invocations across all local functions; one more fails
   * with Lambda.TooManyRequestsException, as Lambda's account concurrency does.
   * @default the FLEET_LAMBDA_CONCURRENCY environment variable, else 1000 (Lambda's default quota)
   */
  lambdaConcurrencyLimit?: number;
  /**
   * Transient AWS faults to inject, e.g. "lambda=0.02,dynamodb=0.01,s3=0.01,sfn=0.02,seed=42"
   * (see infra/local/faults.ts and docs/local-mode-faults.md).
   * @default the FLEET_FAULTS environment variable, else none
   */
  faults?: string | FaultProfile;
  /** Extra HTTP routes served before the API. */
  routes?: LocalRoute[];
  /** Serve the dashboard page at `/` (its files are public; its API calls need the token). @default true */
  dashboard?: boolean;
  /**
   * Days finished batches and their results are kept; overrides the template's
   * FLEET_RETENTION_DAYS for every handler. Fractions are allowed (tests).
   * @default the FLEET_RETENTION_DAYS environment variable, else the template's (7)
   */
  retentionDays?: number;
  /**
   * Milliseconds between sweeps of expired items (dynalite has no TTL); 0 disables the sweeper.
   * Each sweep scans every table whole, so it is rare by default: AWS's TTL
   * takes up to days, and reads skip expired items anyway.
   * @default the FLEET_SWEEP_INTERVAL_MS environment variable, else 600000 (10 minutes)
   */
  sweepIntervalMs?: number;
  /**
   * Milliseconds between runs of the template's schedules (the autoscaler's,
   * with FleetProps.autoscaling); 0 disables them.
   * @default the FLEET_AUTOSCALE_INTERVAL_MS environment variable, else each schedule's own rate (1 minute)
   */
  autoscaleIntervalMs?: number;
  /**
   * Called once when the local DynamoDB cannot be kept running: in memory as
   * soon as its process dies (its data died with it), on disk when restarts
   * keep failing. The fleet can store nothing from then on.
   * @default logs why and exits the process with code 1, so a supervisor starts it again
   */
  onStorageLost?: (error: Error) => void;
}

export interface LocalFleet {
  url: string;
  resources: LocalResources;
  stepFunctions: LocalStepFunctions;
  /** Executions the journal had left running, resumed at start (crash recovery; 0 in memory). */
  resumedExecutions: number;
  /** The local service endpoints (AWS_ENDPOINT_URL_*); with FLEET_FAULTS, the handlers reach DynamoDB and S3 through fault proxies in front of these. */
  endpoints: { dynamodb: string; s3: string; sqs: string; stepFunctions: string };
  lambda: LocalLambda;
  /** The local DynamoDB's process (it runs beside this one; a restart changes it). */
  readonly dynamoDbPid: number;
  /**
   * The credentials the emulators accept, made up for this run: the handlers
   * sign with them (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), and so must
   * anything else that talks to `endpoints`.
   */
  credentials: LocalCredentials;
  /** The transient-fault injector (FLEET_FAULTS / `faults`), when one is active: `injected` counts its faults. */
  faults: FaultInjector | undefined;
  /** Resolves when no batch execution is running. */
  idle(): Promise<void>;
  /**
   * Stops the fleet. On disk, running executions are suspended, not stopped:
   * no new task starts, tasks already running get up to `drainMs` to finish,
   * and the executions resume on the next start. In memory they are stopped.
   */
  close(options?: { drainMs?: number }): Promise<{ drained: boolean }>;
}

/** s3rver's one account (lib/models/account.js), which holds the keys it accepts. */
interface S3rverAccounts {
  DUMMY_ACCOUNT: { createKeyPair(accessKeyId: string, secretAccessKey: string): void; revokeAccessKey(accessKeyId: string): void };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * The names the API answers to besides loopback's: those configured, and the
 * address it listens on when that is not loopback (only allowed with a token).
 * A malformed name fails the start, naming it.
 */
function allowedHostsOf(configured: readonly string[], host: string): string[] {
  const names = configured.map((name) => name.trim()).filter((name) => name !== '');
  for (const name of names) {
    if (!/^(\[?[0-9a-f:.]+\]?|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)$/i.test(name)) {
      throw new Error(`allowedHosts / FLEET_ALLOWED_HOSTS: "${name}" is not a host name (give names without scheme, port or path)`);
    }
  }
  return LOOPBACK.has(host) ? names : [...names, host];
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
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

export async function startLocalFleet(options: LocalFleetOptions = {}): Promise<LocalFleet> {
  const host = options.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host) && !options.token) {
    throw new Error(`refusing to listen on ${host} without a token: set FLEET_TOKEN, or bind 127.0.0.1`);
  }
  const allowedHosts = allowedHostsOf(options.allowedHosts ?? (process.env.FLEET_ALLOWED_HOSTS ?? '').split(','), host);
  // Lambda runs Node.js 22; the SDK's notice about Node.js 20 is noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const inMemory = options.inMemory ?? false;
  const projectRoot = path.resolve(options.projectRoot ?? options.fleetProps?.projectRoot ?? process.cwd());
  const dataDir = path.resolve(projectRoot, options.dataDir ?? '.fleet-data');
  const scratch = inMemory ? mkdtempSync(path.join(tmpdir(), 'fleet-')) : undefined;
  if (!inMemory) mkdirSync(dataDir, { recursive: true });

  // SQS: fauxqs, in this process and on loopback only (its CLI listens on every
  // interface). First, since a queue's URL (its Ref) names the server's port.
  const credentials = newLocalCredentials();
  const fauxqs = buildFauxqs({ logger: false });
  guardServer(fauxqs.server, { service: 'sqs', credentials });
  await fauxqs.listen({ port: 0, host: '127.0.0.1' });
  const sqsPort = (fauxqs.server.address() as AddressInfo).port;
  const sqsEndpoint = `http://127.0.0.1:${sqsPort}`;
  // fauxqs's URL format. Requests still go to sqsEndpoint: the SQS client does
  // not follow a QueueUrl's host (clients.ts), so the name need not resolve.
  const queueUrl = (name: string) => `http://sqs.${LOCAL_REGION}.localhost:${sqsPort}/${LOCAL_ACCOUNT}/${name}`;
  const resources = resolveTemplate(synthesizeTemplate({ ...options.fleetProps, projectRoot }, options.stack), { queueUrl });

  // DynamoDB: dynalite in a process of its own, on the second core.
  const dynamo = await startDynamoDbProcess({
    ...(inMemory ? {} : { path: path.join(dataDir, 'dynamodb') }),
    credentials,
    ...(options.onStorageLost ? { onFatal: options.onStorageLost } : {}),
  });
  // S3. s3rver checks signatures against its own account's keys: this run's are added to them.
  const s3rverAccount = (createRequire(import.meta.url)('s3rver/lib/models/account') as S3rverAccounts).DUMMY_ACCOUNT;
  s3rverAccount.createKeyPair(credentials.accessKeyId, credentials.secretAccessKey);
  const s3rver = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: scratch ?? path.join(dataDir, 's3') });
  const s3Address = (await s3rver.run()) as AddressInfo;
  // Still before any request can arrive: run() resolves in the tick it starts listening.
  guardServer((s3rver as unknown as { httpServer: http.Server }).httpServer, { service: 's3', credentials });

  const endpoints = {
    dynamodb: dynamo.endpoint,
    s3: `http://127.0.0.1:${s3Address.port}`,
  };
  const ddb = new DynamoDBClient({ region: LOCAL_REGION, endpoint: endpoints.dynamodb, credentials });
  const existing = new Set((await ddb.send(new ListTablesCommand({}))).TableNames ?? []);
  for (const table of resources.tables) {
    if (!existing.has(table.name)) await ddb.send(new CreateTableCommand(tableInput(table.name, table.properties)));
  }
  ddb.destroy();
  const s3 = new S3Client({ region: LOCAL_REGION, endpoint: endpoints.s3, forcePathStyle: true, credentials });
  // The template's buckets, and the deployer's own that batches may name as s3://bucket/key
  // (FleetProps.tasksFileBuckets): on AWS those exist already; here they are made, empty.
  for (const name of [...resources.buckets.map((bucket) => bucket.name), ...(options.fleetProps?.tasksFileBuckets ?? [])]) {
    try {
      await s3.send(new HeadBucketCommand({ Bucket: name }));
    } catch {
      await s3.send(new CreateBucketCommand({ Bucket: name }));
    }
  }
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

  const sqs = new SQSClient({ region: LOCAL_REGION, endpoint: sqsEndpoint, credentials });
  for (const queue of resources.queues) {
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: queue.name, Attributes: localQueueAttributes(queue.name, queue.properties) }));
    if (QueueUrl !== queue.url) throw new Error(`fauxqs made queue ${queue.name} at ${QueueUrl}, but the handlers were given ${queue.url}`);
  }
  sqs.destroy();

  // Transient faults: the handlers reach DynamoDB and S3 through proxies that inject them on the wire.
  const faults = faultInjectorFrom(options.faults);
  const proxies: FaultProxy[] = [];
  const handlerEndpoints = { ...endpoints };
  for (const service of ['dynamodb', 's3'] as const) {
    if (!faults || !((faults.profile.rates[service] ?? 0) > 0)) continue;
    const proxy = await startFaultProxy({ target: endpoints[service], service, injector: faults });
    proxies.push(proxy);
    handlerEndpoints[service] = proxy.endpoint;
  }
  const concurrencyLimit = options.lambdaConcurrencyLimit ?? (process.env.FLEET_LAMBDA_CONCURRENCY ? Number(process.env.FLEET_LAMBDA_CONCURRENCY) : undefined);
  const lambda = new LocalLambda(resources.functions, { fleet: FLEET_ROOT, project: projectRoot }, {
    concurrencyLimit,
    faults,
    ...(options.liftApiLimits ? { payloadBytes: Number.POSITIVE_INFINITY } : {}),
  });
  // Executions are journaled on disk, so they resume after a crash or a restart.
  const journal = inMemory ? undefined : ExecutionJournal.open(path.join(dataDir, 'executions.jsonl'));
  const stepFunctions = new LocalStepFunctions({
    invoker: lambda,
    objects,
    retryUnitMs: options.retryUnitMs ?? 1000,
    ...(options.expressMaxDurationMs !== undefined ? { expressMaxDurationMs: options.expressMaxDurationMs } : {}),
    journal,
  });
  for (const machine of resources.stateMachines) stepFunctions.createStateMachine(machine.arn, machine.definition);
  const sfnEndpoint = await serveStepFunctions(stepFunctions, { credentials, faults });

  // The handlers read their configuration from the environment, as on Lambda.
  const environment: Record<string, string> = {
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: handlerEndpoints.dynamodb,
    AWS_ENDPOINT_URL_S3: handlerEndpoints.s3,
    AWS_ENDPOINT_URL_SQS: sqsEndpoint,
    AWS_ENDPOINT_URL_SFN: sfnEndpoint.url,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  for (const fn of resources.functions) {
    for (const [name, value] of Object.entries(fn.environment)) {
      if (environment[name] !== undefined && environment[name] !== value) {
        throw new Error(`local mode runs all functions in one process, but ${name} differs between them`);
      }
      environment[name] = value;
    }
  }
  if (options.maxTasksPerBatch) environment.FLEET_MAX_TASKS_PER_BATCH = String(options.maxTasksPerBatch);
  // The API function checks the body's size too (as API Gateway and the handler do on AWS).
  if (options.maxBodyBytes) environment.FLEET_MAX_BODY_BYTES = String(options.maxBodyBytes);
  // Read before process.env takes the template's value below.
  const retentionDays = options.retentionDays ?? (process.env.FLEET_RETENTION_DAYS ? Number(process.env.FLEET_RETENTION_DAYS) : undefined);
  if (retentionDays !== undefined) {
    if (!(retentionDays > 0)) throw new Error(`retentionDays must be a positive number of days, got ${retentionDays}`);
    environment.FLEET_RETENTION_DAYS = String(retentionDays);
  }
  // Powertools, quiet and cheap locally: no EMF metric lines on stdout, no
  // X-Ray (nothing to send to), warnings and errors only, never a line per
  // task. FLEET_LOG_LEVEL=DEBUG shows every attempt.
  Object.assign(environment, {
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_TRACE_ENABLED: 'false',
    POWERTOOLS_LOG_LEVEL: process.env.FLEET_LOG_LEVEL ?? 'WARN',
  });
  // Every invocation runs in this process, and this DynamoDB is the fleet's
  // alone: writes made at the same time can go together (./write-grouping.ts).
  // On AWS each is its own request.
  groupLocalWrites();
  // Every function shares one SDK client per service here, where on AWS each
  // Lambda environment has its own and sends one request at a time: the
  // SDK's 50 sockets would queue the fleet's concurrent requests.
  environment.FLEET_SDK_MAX_SOCKETS = '512';
  Object.assign(process.env, environment);
  // The handlers can run now: resume what the journal left running.
  const resumedExecutions = stepFunctions.recover();

  const apiFunction = resources.functions.find((fn) => fn.root !== 'project' && /^(dist\/)?lambdas\/api\.[jt]s$/.test(fn.entry));
  if (!apiFunction) throw new Error('the template has no API function');
  // API Gateway's own limits (10 MB, 30 s) hold in front; the API function applies Fleet's body limit.
  const server = serveHttpApi({
    invoke: (event: APIGatewayProxyEventV2) => lambda.invokeFunction(apiFunction.arn, event) as Promise<APIGatewayProxyStructuredResultV2>,
    ...(options.apiIntegrationTimeoutMs !== undefined ? { integrationTimeoutMs: options.apiIntegrationTimeoutMs } : {}),
    ...(options.liftApiLimits ? { maxBodyBytes: Math.max(options.maxBodyBytes ?? 0, API_GATEWAY_LIMITS.payloadBytes), integrationTimeoutMs: 2 ** 31 - 1 } : {}),
    routes: options.routes,
    publicRoutes: options.dashboard === false ? [] : [dashboardRoute()],
    token: options.token,
    allowedHosts,
  });
  server.keepAliveTimeout = 65_000;
  const port = await listen(server, options.port ?? 3000, host);
  // dynalite has no TTL: the sweeper deletes expired items, as DynamoDB's TTL does on AWS.
  const sweeper = startTtlSweeper({
    endpoint: endpoints.dynamodb,
    region: LOCAL_REGION,
    credentials,
    tables: ttlTablesOf(resources.tables),
    intervalMs: options.sweepIntervalMs ?? (process.env.FLEET_SWEEP_INTERVAL_MS ? Number(process.env.FLEET_SWEEP_INTERVAL_MS) : 600_000),
  });

  // EventBridge Scheduler: the autoscaler runs on a timer, with the policy the template gives it.
  const schedules = startSchedules(
    resources.schedules,
    (arn, event) => lambda.invokeFunction(arn, event),
    options.autoscaleIntervalMs ?? (process.env.FLEET_AUTOSCALE_INTERVAL_MS ? Number(process.env.FLEET_AUTOSCALE_INTERVAL_MS) : undefined),
  );

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    resources,
    stepFunctions,
    resumedExecutions,
    endpoints: { ...endpoints, sqs: sqsEndpoint, stepFunctions: sfnEndpoint.url },
    lambda,
    get dynamoDbPid() {
      return dynamo.pid;
    },
    credentials,
    faults,
    idle: () => stepFunctions.idle(),
    async close(closeOptions = {}) {
      await schedules.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      let drained = true;
      if (journal) ({ drained } = await stepFunctions.suspend(closeOptions.drainMs ?? 10_000));
      else await stepFunctions.stopAll();
      await sfnEndpoint.close();
      await sweeper.stop();
      await Promise.all(proxies.map((proxy) => proxy.close()));
      s3.destroy();
      await s3rver.close();
      s3rverAccount.revokeAccessKey(credentials.accessKeyId);
      await fauxqs.close();
      await dynamo.close();
      if (scratch) rmSync(scratch, { recursive: true, force: true });
      return { drained };
    },
  };
}
