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
 * startLocalFleet runs these as named steps, in order: parse the settings
 * (settings.ts), start the queue emulator, build the template, start the
 * storage emulators and make the template's storage in them
 * (local-storage.ts), start the runtimes (fault proxies, Lambda, Step
 * Functions), give the handlers their environment, start the HTTP API, then
 * the background jobs (TTL sweeper, schedules). Closing undoes them in reverse.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { App, Stack } from 'aws-cdk-lib';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { FleetProps } from '../fleet';
import { FLEET_ROOT } from '../package-root';
import { dashboardRoute } from './dashboard';
import { newLocalCredentials, type LocalCredentials } from './emulator-guard';
import { startFaultProxy, type FaultProxy } from './fault-proxy';
import { faultInjectorFrom, type FaultInjector, type FaultProfile } from './faults';
import { API_GATEWAY_LIMITS, serveHttpApi, type LocalRoute } from './http-api';
import { groupLocalWrites } from './write-grouping';
import { lockDataFolder } from './data-folder-lock';
import { ExecutionJournal } from './journal';
import { LocalLambda } from './lambda-runtime';
import { createTemplateStorage, startQueueEmulator, startStorageEmulators, type QueueEmulator, type StorageEmulators } from './local-storage';
import { startSchedules, type ScheduleRunner } from './schedules';
import { parseLocalFleetSettings, type LocalFleetSettings } from './settings';
import { LocalStepFunctions, serveStepFunctions } from './step-functions';
import { resolveTemplate, synthesizeTemplate, LOCAL_REGION, type LocalResources } from './template';
import { startTtlSweeper, ttlTablesOf, type TtlSweeper } from './ttl-sweeper';

/** Fleet's package root: this repository, or the installed package. */
export const REPO_ROOT = FLEET_ROOT;

/**
 * What a local fleet runs with. Each plain setting (and the FLEET_* variable
 * it defaults to) is checked at start (settings.ts): a wrong one fails the
 * start, naming it, before any emulator runs.
 */
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

/** The handlers' runtimes: Lambda and Step Functions, behind fault proxies when faults are on. */
interface Runtimes {
  faults: FaultInjector | undefined;
  /** Where the handlers reach DynamoDB and S3: the emulators, or the fault proxies in front of them. */
  handlerEndpoints: { dynamodb: string; s3: string };
  lambda: LocalLambda;
  journal: ExecutionJournal | undefined;
  stepFunctions: LocalStepFunctions;
  sfnEndpoint: { url: string; close: () => Promise<void> };
  proxies: FaultProxy[];
}

/**
 * What a start has opened so far, closed last first should a later step fail:
 * a start that fails (a port in use, a template the local mode refuses)
 * leaves no process, port or folder behind, and reports its own error.
 */
class StartedSoFar {
  private readonly closers: (() => unknown)[] = [];

  add(close: () => unknown): void {
    this.closers.push(close);
  }

  async closeAll(): Promise<void> {
    for (const close of this.closers.reverse()) {
      try {
        await close();
      } catch {
        // The step that failed is what the caller needs to hear about.
      }
    }
  }
}

/** Step: fault proxies, the Lambda runtime, and Step Functions with the template's state machines and its journal. */
async function startRuntimes(
  settings: LocalFleetSettings,
  resources: LocalResources,
  storage: StorageEmulators,
  credentials: LocalCredentials,
  started: StartedSoFar,
): Promise<Runtimes> {
  // Transient faults: the handlers reach DynamoDB and S3 through proxies that inject them on the wire.
  // '' when off: the settings already read FLEET_FAULTS, and an option may have turned it off.
  const faults = faultInjectorFrom(settings.faults ?? '');
  const proxies: FaultProxy[] = [];
  const handlerEndpoints = { ...storage.endpoints };
  for (const service of ['dynamodb', 's3'] as const) {
    if (!faults || !((faults.profile.rates[service] ?? 0) > 0)) continue;
    const proxy = await startFaultProxy({ target: storage.endpoints[service], service, injector: faults });
    started.add(() => proxy.close());
    proxies.push(proxy);
    handlerEndpoints[service] = proxy.endpoint;
  }
  const lambda = new LocalLambda(resources.functions, { fleet: FLEET_ROOT, project: settings.projectRoot }, {
    concurrencyLimit: settings.lambdaConcurrencyLimit,
    faults,
    ...(settings.liftApiLimits ? { payloadBytes: Number.POSITIVE_INFINITY } : {}),
  });
  // Executions are journaled on disk, so they resume after a crash or a restart.
  const journal = settings.inMemory ? undefined : ExecutionJournal.open(path.join(settings.dataDir, 'executions.jsonl'));
  if (journal) started.add(() => { journal.close(); });
  const stepFunctions = new LocalStepFunctions({
    invoker: lambda,
    objects: storage.objects,
    retryUnitMs: settings.retryUnitMs,
    ...(settings.expressMaxDurationMs !== undefined ? { expressMaxDurationMs: settings.expressMaxDurationMs } : {}),
    journal,
  });
  for (const machine of resources.stateMachines) stepFunctions.createStateMachine(machine.arn, machine.definition);
  const sfnEndpoint = await serveStepFunctions(stepFunctions, { credentials, faults });
  started.add(() => sfnEndpoint.close());
  return { faults, handlerEndpoints, lambda, journal, stepFunctions, sfnEndpoint, proxies };
}

/**
 * Step: the environment the handlers read their configuration from, as on
 * Lambda: the local endpoints and credentials, the template's variables, and
 * the settings that override them. Applied to process.env, since every
 * handler runs in this process.
 */
function applyHandlerEnvironment(
  settings: LocalFleetSettings,
  resources: LocalResources,
  endpoints: { dynamodb: string; s3: string; sqs: string; stepFunctions: string },
  credentials: LocalCredentials,
): void {
  const environment: Record<string, string> = {
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
    AWS_ENDPOINT_URL_S3: endpoints.s3,
    AWS_ENDPOINT_URL_SQS: endpoints.sqs,
    AWS_ENDPOINT_URL_SFN: endpoints.stepFunctions,
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
  if (settings.maxTasksPerBatch) environment.FLEET_MAX_TASKS_PER_BATCH = String(settings.maxTasksPerBatch);
  // The API function checks the body's size too (as API Gateway and the handler do on AWS).
  if (settings.maxBodyBytes) environment.FLEET_MAX_BODY_BYTES = String(settings.maxBodyBytes);
  // Read (by parseLocalFleetSettings) before process.env takes the template's value below.
  if (settings.retentionDays !== undefined) environment.FLEET_RETENTION_DAYS = String(settings.retentionDays);
  // Powertools, quiet and cheap locally: no EMF metric lines on stdout, no
  // X-Ray (nothing to send to), warnings and errors only, never a line per
  // task. FLEET_LOG_LEVEL=DEBUG shows every attempt.
  Object.assign(environment, {
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_TRACE_ENABLED: 'false',
    POWERTOOLS_LOG_LEVEL: settings.logLevel,
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
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { resolve((server.address() as AddressInfo).port); });
  });
}

/** Step: the HTTP API in front of the template's API function, with API Gateway's own limits (10 MB, 30 s). */
async function startHttpApi(
  settings: LocalFleetSettings,
  resources: LocalResources,
  lambda: LocalLambda,
  routes: LocalRoute[] | undefined,
): Promise<{ server: http.Server; port: number }> {
  const apiFunction = resources.functions.find((fn) => fn.root !== 'project' && /^(dist\/)?lambdas\/api\.[jt]s$/.test(fn.entry));
  if (!apiFunction) throw new Error('the template has no API function');
  // The API function applies Fleet's body limit behind API Gateway's.
  const server = serveHttpApi({
    invoke: (event: APIGatewayProxyEventV2) => lambda.invokeFunction(apiFunction.arn, event) as Promise<APIGatewayProxyStructuredResultV2>,
    ...(settings.apiIntegrationTimeoutMs !== undefined ? { integrationTimeoutMs: settings.apiIntegrationTimeoutMs } : {}),
    ...(settings.liftApiLimits ? { maxBodyBytes: Math.max(settings.maxBodyBytes ?? 0, API_GATEWAY_LIMITS.payloadBytes), integrationTimeoutMs: 2 ** 31 - 1 } : {}),
    routes,
    publicRoutes: settings.dashboard ? [dashboardRoute()] : [],
    token: settings.token,
    allowedHosts: settings.allowedHosts,
  });
  server.keepAliveTimeout = 65_000;
  return { server, port: await listen(server, settings.port, settings.host) };
}

/** Step: what runs on timers: the TTL sweeper (dynalite has no TTL) and the template's schedules. */
function startBackgroundJobs(
  settings: LocalFleetSettings,
  resources: LocalResources,
  storage: StorageEmulators,
  lambda: LocalLambda,
  credentials: LocalCredentials,
): { sweeper: TtlSweeper; schedules: ScheduleRunner } {
  // The sweeper deletes expired items, as DynamoDB's TTL does on AWS.
  const sweeper = startTtlSweeper({
    endpoint: storage.endpoints.dynamodb,
    region: LOCAL_REGION,
    credentials,
    tables: ttlTablesOf(resources.tables),
    intervalMs: settings.sweepIntervalMs,
  });
  // EventBridge Scheduler: the autoscaler runs on a timer, with the policy the template gives it.
  const schedules = startSchedules(resources.schedules, (arn, event) => lambda.invokeFunction(arn, event), settings.autoscaleIntervalMs);
  return { sweeper, schedules };
}

export async function startLocalFleet(options: LocalFleetOptions = {}): Promise<LocalFleet> {
  const settings = parseLocalFleetSettings({ ...options, fleetProjectRoot: options.fleetProps?.projectRoot });
  // Lambda runs Node.js 22; the SDK's notice about Node.js 20 is noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const started = new StartedSoFar();
  try {
    return await startSteps(settings, options, started);
  } catch (error) {
    await started.closeAll();
    throw error;
  }
}

async function startSteps(settings: LocalFleetSettings, options: LocalFleetOptions, started: StartedSoFar): Promise<LocalFleet> {
  const scratch = settings.inMemory ? mkdtempSync(path.join(tmpdir(), 'fleet-')) : undefined;
  if (scratch) started.add(() => { rmSync(scratch, { recursive: true, force: true }); });
  if (!settings.inMemory) mkdirSync(settings.dataDir, { recursive: true });
  // Before anything opens the folder: a second fleet on it fails here, saying so.
  const unlockDataFolder = settings.inMemory ? undefined : lockDataFolder(settings.dataDir);
  if (unlockDataFolder) started.add(unlockDataFolder);
  const credentials = newLocalCredentials();

  const queues: QueueEmulator = await startQueueEmulator(credentials);
  started.add(() => queues.close());
  const resources = resolveTemplate(synthesizeTemplate({ ...options.fleetProps, projectRoot: settings.projectRoot }, options.stack), { queueUrl: queues.queueUrl });
  const storage = await startStorageEmulators({ credentials, inMemory: settings.inMemory, dataDir: settings.dataDir, scratch, onStorageLost: options.onStorageLost });
  started.add(() => storage.dynamo.close());
  started.add(() => storage.close());
  await createTemplateStorage(resources, { storage, queues, credentials, tasksFileBuckets: options.fleetProps?.tasksFileBuckets ?? [] });

  const runtimes = await startRuntimes(settings, resources, storage, credentials, started);
  const { lambda, stepFunctions, journal, sfnEndpoint } = runtimes;
  // Executions the journal resumed stay resumable: suspended, as close() leaves them, never stopped.
  started.add(() => (journal ? stepFunctions.suspend(0) : stepFunctions.stopAll()));
  applyHandlerEnvironment(settings, resources, { ...runtimes.handlerEndpoints, sqs: queues.endpoint, stepFunctions: sfnEndpoint.url }, credentials);
  // The handlers can run now: resume what the journal left running.
  const resumedExecutions = stepFunctions.recover();

  const { server, port } = await startHttpApi(settings, resources, lambda, options.routes);
  started.add(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => { resolve(); });
  }));
  const { sweeper, schedules } = startBackgroundJobs(settings, resources, storage, lambda, credentials);

  const { host } = settings;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    resources,
    stepFunctions,
    resumedExecutions,
    endpoints: { ...storage.endpoints, sqs: queues.endpoint, stepFunctions: sfnEndpoint.url },
    lambda,
    get dynamoDbPid() {
      return storage.dynamo.pid;
    },
    credentials,
    faults: runtimes.faults,
    idle: () => stepFunctions.idle(),
    async close(closeOptions = {}) {
      await schedules.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => { resolve(); }));
      let drained = true;
      if (journal) ({ drained } = await stepFunctions.suspend(closeOptions.drainMs ?? 10_000));
      else await stepFunctions.stopAll();
      await sfnEndpoint.close();
      await sweeper.stop();
      await Promise.all(runtimes.proxies.map((proxy) => proxy.close()));
      await storage.close();
      await queues.close();
      await storage.dynamo.close();
      if (scratch) rmSync(scratch, { recursive: true, force: true });
      // Last: the folder is free for the next fleet once nothing of this one writes to it.
      unlockDataFolder?.();
      return { drained };
    },
  };
}
