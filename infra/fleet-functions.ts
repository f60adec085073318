/**
 * Fleet's Lambda functions: one factory that makes each of them the same way
 * (defaults, then the user's override props, then what Fleet must set), and
 * the builders of the worker and batch-lifecycle functions with their grants.
 * Every function is made in the Fleet construct's own scope under the id it
 * always had, so its logical ID does not move.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { BATCH_RECORD_PARTITION_PATTERN, WORKER_PARTITION_PATTERNS } from '../lambdas/adapters/table-layout';
import { parseWorkerListing } from '../lambdas/domain/fleet-activity';
import { taskTypeSchema } from '../lambdas/domain/schemas';
import { fleetServiceName, powertoolsEnvironment } from './fleet-observability';
import { checkFunctionProps, checkMemorySize, checkTimeout, FleetPropsError, type FleetFunctionProps } from './fleet-overrides';
import type { FleetProps } from './fleet-props';
import { FLEET_ROOT, ownHandlerEntry } from './package-root';

/**
 * Template metadata that tells local mode which module and export a function
 * runs: `{entry, handler, root}`, `entry` relative to Fleet's package root
 * (`root: 'fleet'`, Fleet's own handlers) or to the user's project
 * (`root: 'project'`, FleetProps.workers), never an absolute path, so a
 * template reads the same on every machine.
 */
export const LOCAL_ENTRY_METADATA = 'fleet:local-entry';

/** What LOCAL_ENTRY_METADATA holds. */
export interface LocalEntryMetadata {
  entry: string;
  handler: string;
  /** Whose file `entry` is. @default 'fleet' */
  root?: 'fleet' | 'project';
}

/**
 * What a function that reads and writes the table by key and Query is
 * granted: CDK's grantReadWriteData without Scan and the stream reads
 * (GetRecords, GetShardIterator), which no Fleet function sends (the table
 * has no stream; test/infra/iam-matches-code.test.ts derives what each sends).
 */
export const TABLE_READ_WRITE_ACTIONS: readonly string[] = Object.freeze([
  'dynamodb:BatchGetItem',
  'dynamodb:GetItem',
  'dynamodb:Query',
  'dynamodb:ConditionCheckItem',
  'dynamodb:DescribeTable',
  'dynamodb:BatchWriteItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
]);

/** What a worker function writes: its task's result, the batch's counters, its registry entry. */
export const WORKER_TABLE_ACTIONS: readonly string[] = Object.freeze(['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem']);

/** Where a function's handler module is: Fleet's package, or the user's project. */
export interface FunctionSource {
  root: 'fleet' | 'project';
  /** Relative to that root, with forward slashes. */
  entry: string;
}

/** One of Fleet's own handlers, from its package wherever it is installed. */
export const own = (source: string): FunctionSource => ({ root: 'fleet', entry: ownHandlerEntry(source) });

/**
 * Makes Fleet's functions. Built once per Fleet: it checks the override props
 * up front (naming the prop) and holds the environment every function gets.
 */
export class FleetFunctionFactory {
  /** FleetProps.functionProps, checked. */
  readonly functionProps: FleetFunctionProps;
  /** FleetProps.workerFunctionProps over functionProps, checked. */
  readonly workerFunctionProps: FleetFunctionProps;
  /** FleetProps.apiFunctionProps over functionProps, checked. */
  readonly apiFunctionProps: FleetFunctionProps;
  /** Variables Fleet sets on its functions: an override may not change them. */
  readonly reserved: readonly string[];
  /** The folder a per-type worker's relative entry is resolved from. */
  readonly projectRoot: string;
  private readonly common: Record<string, string>;
  private readonly tracing: boolean;

  constructor(
    private readonly fleet: Construct,
    private readonly props: FleetProps,
    options: { readonly table: dynamodb.ITable; readonly retentionDays: number; readonly tracing: boolean },
  ) {
    this.common = {
      FLEET_RETENTION_DAYS: String(options.retentionDays),
      FLEET_WORKER_LISTING: parseWorkerListing(props.workerListing, 'Fleet workerListing'),
      TABLE_NAME: options.table.tableName,
      ...powertoolsEnvironment({ serviceName: fleetServiceName(fleet), logLevel: props.logLevel ?? 'INFO', tracing: options.tracing }),
    };
    this.tracing = options.tracing;
    this.reserved = [
      ...Object.keys(this.common),
      'FLEET_DLQ_URL',
      'TASKS_BUCKET',
      'STATE_MACHINE_ARN',
      'FILE_JOBS_STATE_MACHINE_ARN',
      'FLEET_MAX_TASKS_PER_BATCH',
      'FLEET_TASKS_FILE_BUCKETS',
      'FLEET_CHILD_EXECUTION_TYPE',
    ];
    this.functionProps = checkFunctionProps('functionProps', props.functionProps, this.reserved);
    this.workerFunctionProps = { ...this.functionProps, ...checkFunctionProps('workerFunctionProps', props.workerFunctionProps, this.reserved) };
    this.apiFunctionProps = { ...this.functionProps, ...checkFunctionProps('apiFunctionProps', props.apiFunctionProps, this.reserved) };
    this.projectRoot = path.resolve(props.projectRoot ?? process.cwd());
  }

  /**
   * A function `name` (also its construct id) running `handler` of `from`: Fleet's defaults, then
   * `extra` (what this function needs), then the user's `overrides`, then what Fleet must set (its
   * code, its environment). A plain path names one of Fleet's own handlers (`'lambdas/api.ts'`).
   */
  create(
    name: string,
    from: FunctionSource | string,
    handler: string,
    extra: Partial<nodejs.NodejsFunctionProps> = {},
    overrides: FleetFunctionProps = this.functionProps,
  ): nodejs.NodejsFunction {
    const source = typeof from === 'string' ? own(from) : from;
    const base = source.root === 'fleet' ? FLEET_ROOT : this.projectRoot;
    const f = new nodejs.NodejsFunction(this.fleet, name, {
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 512,
      timeout: Duration.seconds(30),
      tracing: this.tracing ? lambda.Tracing.ACTIVE : lambda.Tracing.DISABLED,
      logGroup: new logs.LogGroup(this.fleet, `${name}Logs`, { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY }),
      ...extra,
      ...overrides,
      // An override's bundling options add to Fleet's rather than dropping them.
      bundling: {
        minify: true,
        sourceMap: true,
        // Bundle the SDK too, so deployed code runs the versions package-lock.json pins.
        externalModules: [],
        ...overrides.bundling,
      },
      entry: path.join(base, source.entry),
      handler,
      // The caller's variables first, so Fleet's own always win (checkFunctionProps refuses a clash).
      environment: { ...this.props.environment, ...overrides.environment, ...this.common, ...extra.environment },
    });
    const metadata: LocalEntryMetadata = { entry: source.entry, handler, root: source.root };
    (f.node.defaultChild as lambda.CfnFunction).addMetadata(LOCAL_ENTRY_METADATA, metadata);
    if (this.tracing) {
      Validations.of(f).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: "Active X-Ray tracing: CDK's grant of xray:PutTraceSegments and xray:PutTelemetryRecords, which support no resource-level permissions.",
      });
    }
    return f;
  }
}

/**
 * A worker function writes only the partitions the worker path uses
 * (WORKER_PARTITION_PATTERNS: a batch's result shards and the workers
 * registry), so task code running in it cannot rewrite the config, the
 * capacity, an idempotency key or a batch record. `dynamodb:LeadingKeys`
 * holds the partition keys a request touches; ForAllValues requires every
 * one to match, and the Null check refuses a request that names none (for
 * which ForAllValues would hold vacuously). Only the table itself: a worker
 * never reads an index.
 */
export function grantWorkerTableAccess(worker: lambda.IFunction, table: dynamodb.ITable): void {
  worker.addToRolePolicy(
    new iam.PolicyStatement({
      actions: [...WORKER_TABLE_ACTIONS],
      resources: [table.tableArn],
      conditions: {
        'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [...WORKER_PARTITION_PATTERNS] },
        Null: { 'dynamodb:LeadingKeys': 'false' },
      },
    }),
  );
  // Before a retry the worker reads its batch's record (one GetItem): no retry starts once the batch is cancelled.
  worker.addToRolePolicy(
    new iam.PolicyStatement({
      actions: ['dynamodb:GetItem'],
      resources: [table.tableArn],
      conditions: {
        'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [BATCH_RECORD_PARTITION_PATTERN] },
        Null: { 'dynamodb:LeadingKeys': 'false' },
      },
    }),
  );
}

/** The worker functions: the default one, and one per FleetProps.workers type. */
export interface FleetWorkerFunctions {
  readonly workerFunction: nodejs.NodejsFunction;
  readonly typeWorkerFunctions: Readonly<Record<string, nodejs.NodejsFunction>>;
}

/**
 * The default worker and each task type's own (FleetProps.workers), checked
 * here so a bad entry fails `cdk synth` naming `workers.<type>...`. Each may
 * write its partitions of the table and send to the dead-letter queue.
 */
export function createWorkerFunctions(
  factory: FleetFunctionFactory,
  props: FleetProps,
  storage: { readonly table: dynamodb.ITable; readonly deadLetterQueue: sqs.IQueue },
): FleetWorkerFunctions {
  const { table, deadLetterQueue } = storage;
  const { projectRoot, workerFunctionProps } = factory;
  const workerFunction = factory.create(
    'WorkerFunction',
    own('lambdas/worker.ts'),
    'handler',
    {
      memorySize: props.workerMemorySize ?? 1024,
      // Lambda's maximum: each attempt's own deadline (workerTimeout) is enforced inside.
      timeout: Duration.minutes(15),
      environment: { FLEET_DLQ_URL: deadLetterQueue.queueUrl },
    },
    workerFunctionProps,
  );
  deadLetterQueue.grantSendMessages(workerFunction);
  grantWorkerTableAccess(workerFunction, table);
  const typeWorkerFunctions: Record<string, nodejs.NodejsFunction> = {};
  for (const [taskType, worker] of Object.entries(props.workers ?? {})) {
    const valid = taskTypeSchema.safeParse(taskType);
    if (!valid.success) throw new FleetPropsError('workers', `"${taskType}" is not a valid task type: ${valid.error.issues[0]?.message}`);
    if (typeof worker.entry !== 'string' || worker.entry === '') throw new FleetPropsError(`workers.${taskType}.entry`, 'the path of the handler module is required');
    const absolute = path.resolve(projectRoot, worker.entry);
    if (!existsSync(absolute)) throw new FleetPropsError(`workers.${taskType}.entry`, `${worker.entry} is not a file (relative entries are resolved from ${projectRoot})`);
    checkMemorySize(`workers.${taskType}.memorySize`, worker.memorySize);
    checkTimeout(`workers.${taskType}.timeout`, worker.timeout);
    const overrides = { ...workerFunctionProps, ...checkFunctionProps(`workers.${taskType}.functionProps`, worker.functionProps, factory.reserved) };
    const typeWorker = factory.create(
      `WorkerFunction-${taskType}`,
      // Relative to the project, with forward slashes, so the template reads the same on every machine.
      { root: 'project', entry: path.relative(projectRoot, absolute).split(path.sep).join('/') },
      worker.handler ?? 'handler',
      {
        memorySize: worker.memorySize ?? props.workerMemorySize ?? 1024,
        timeout: Duration.minutes(15),
        environment: { FLEET_DLQ_URL: deadLetterQueue.queueUrl },
      },
      // The type's own memorySize and timeout win over the overrides.
      { ...overrides, ...(worker.memorySize !== undefined ? { memorySize: worker.memorySize } : {}), ...(worker.timeout ? { timeout: worker.timeout } : {}) },
    );
    deadLetterQueue.grantSendMessages(typeWorker);
    grantWorkerTableAccess(typeWorker, table);
    typeWorkerFunctions[taskType] = typeWorker;
  }
  return { workerFunction, typeWorkerFunctions: Object.freeze(typeWorkerFunctions) };
}

/** Start batch and Finish batch (lambdas/batch-lifecycle.ts), the batch state machine's first and last steps. */
export interface FleetLifecycleFunctions {
  readonly startBatchFunction: nodejs.NodejsFunction;
  readonly finishBatchFunction: nodejs.NodejsFunction;
}

/** Start batch and Finish batch, with their table and tasks-bucket grants. */
export function createLifecycleFunctions(
  factory: FleetFunctionFactory,
  options: { readonly table: dynamodb.ITable; readonly tasksBucket: s3.IBucket; readonly childExecutionType: string },
): FleetLifecycleFunctions {
  const { table, tasksBucket } = options;
  const startBatchFunction = factory.create('StartBatchFunction', own('lambdas/batch-lifecycle.ts'), 'start', {
    environment: { FLEET_CHILD_EXECUTION_TYPE: options.childExecutionType, TASKS_BUCKET: tasksBucket.bucketName },
    // A retry-failed run's Start batch writes its tasks file and clears up to every failed result once.
    timeout: Duration.minutes(15),
  });
  const finishBatchFunction = factory.create('FinishBatchFunction', own('lambdas/batch-lifecycle.ts'), 'finish', {
    environment: { TASKS_BUCKET: tasksBucket.bucketName },
    // Recounting a 100,000-task batch reads every result once.
    timeout: Duration.minutes(5),
  });
  // A retry-failed run's Start batch reads the batch's tasks file and writes the retry's beside it
  // (Finish batch is the same module, so the same code).
  for (const lifecycle of [startBatchFunction, finishBatchFunction]) {
    // Streamed (multipart): a write that fails midway aborts its upload.
    lifecycle.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'], resources: [tasksBucket.arnForObjects('batches/*')] }),
    );
    table.grant(lifecycle, ...TABLE_READ_WRITE_ACTIONS);
  }
  return { startBatchFunction, finishBatchFunction };
}
