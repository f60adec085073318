/**
 * Fleet: an HTTPS API that accepts batches of tasks and runs each task on its
 * own worker Lambda invocation inside a Step Functions Distributed Map.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack, Validations, type CfnElement } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer, HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, type IConstruct } from 'constructs';
import { BATCH_RECORD_PARTITION_PATTERN, TABLE_KEYS, WORKER_PARTITION_PATTERNS } from '../lambdas/adapters/table-layout';
import { DEFAULT_DEAD_BAND, DEFAULT_TASKS_PER_WORKER, parseAutoscalingPolicy } from '../lambdas/domain/autoscaling';
import { parseWorkerListing } from '../lambdas/domain/fleet-activity';
import { taskTypeSchema } from '../lambdas/domain/schemas';
import type { WorkerListingMode } from '../lambdas/domain/types';
import { BatchWorkflow } from './batch-workflow';
import { FileJobsWorkflow, PREPARE_EXECUTION_PREFIX } from './file-jobs-workflow';
import { FleetObservability, fleetServiceName, powertoolsEnvironment, type FleetLogLevel } from './fleet-observability';
import {
  checkFunctionProps,
  checkMemorySize,
  checkStateMachineProps,
  checkTableProps,
  checkTimeout,
  checkWholeNumber,
  FleetPropsError,
  type FleetFunctionProps,
  type FleetStateMachineProps,
  type FleetTableProps,
} from './fleet-overrides';
import { FLEET_ROOT, ownHandlerEntry } from './package-root';

export { FleetPropsError, type FleetFunctionProps, type FleetStateMachineProps, type FleetTableProps } from './fleet-overrides';

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
 * Who may call Fleet's HTTP API.
 * - `'iam'`: requests are signed with SigV4 by a principal allowed `execute-api:Invoke` on the API.
 * - `{ jwt: { issuer, audience } }`: requests carry `Authorization: Bearer <JWT>` issued by
 *   `issuer` (an OIDC provider or a Cognito user pool, e.g.
 *   `https://cognito-idp.<region>.amazonaws.com/<pool id>`) for one of `audience`.
 */
export type FleetApiAuthorization = 'iam' | { readonly jwt: { readonly issuer: string; readonly audience: string[] } };

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

/** The API's default throttling: far above what a few clients polling every second need. */
export const DEFAULT_API_THROTTLE: Readonly<Required<apigw.ThrottleSettings>> = Object.freeze({ rateLimit: 100, burstLimit: 200 });

/**
 * A task type's own worker function: the serverless form of the seed's
 * `getWorkerInstance`. Its module exports a handler made by
 * `createWorkerHandler` (lambdas/worker.ts), so it records results exactly
 * once, keeps each attempt's deadline, runs the worker middleware and sends
 * final failures to the dead-letter queue like the default worker:
 *
 *   export const handler = createWorkerHandler({ thumbnail: async (data, ctx) => ... });
 *
 * Fleet builds the function (Node.js 24, arm64, bundled by esbuild) and wires
 * what every worker needs: the state machine may invoke it, it may write the
 * worker's partitions of the table (results, counters, its registry entry;
 * nothing else) and send to the dead-letter queue, and it gets Fleet's environment.
 */
export interface FleetWorkerProps {
  /**
   * The handler module in your project, relative to FleetProps.projectRoot
   * (the folder holding cdk.json), or absolute. Local mode runs the same module.
   */
  readonly entry: string;
  /**
   * The module's export.
   * @default 'handler'
   */
  readonly handler?: string;
  /**
   * Memory in MB.
   * @default the default worker's (workerMemorySize)
   */
  readonly memorySize?: number;
  /**
   * The Lambda timeout. An attempt still running when it ends fails without
   * retry, so keep it above the longest per-attempt timeout (workerTimeout)
   * its tasks run with.
   * @default Duration.minutes(15), Lambda's maximum, as the default worker
   */
  readonly timeout?: Duration;
  /**
   * Lambda props for this function only (e.g. layers, a VPC, bundling), over
   * FleetProps.workerFunctionProps; `memorySize` and `timeout` above win.
   * @default - FleetProps.workerFunctionProps
   */
  readonly functionProps?: FleetFunctionProps;
}

/**
 * The built-in autoscaling policy (the seed's AutoScalingFleetManager): every
 * minute an EventBridge Scheduler schedule invokes the autoscaler function,
 * which sets maxConcurrentWorkers from the backlog (tasks of pending and
 * processing batches not finished yet): `ceil(backlog / tasksPerWorker)`,
 * clamped to `[min, max]`, scaling in only past the dead band. The change
 * goes where `POST /workers/scale` sends it, so running batches follow.
 * While it is on, the policy owns maxConcurrentWorkers: a cap set by hand
 * lasts until its next run.
 */
export interface FleetAutoscalingProps {
  /** Fewest workers (at least 1). */
  readonly min: number;
  /** Most workers (at least `min`). */
  readonly max: number;
  /**
   * Unfinished tasks (waiting or running) per worker the policy aims for.
   * @default 2 (the seed scales out past two waiting tasks per worker)
   */
  readonly tasksPerWorker?: number;
  /**
   * Scale in only once the backlog needs at most `(1 - deadBand)` of the
   * current workers, so a draining backlog does not move the cap every
   * minute; an empty backlog always returns to `min`. From 0 to below 1.
   * @default 0.5
   */
  readonly deadBand?: number;
}

export interface FleetProps {
  /**
   * Your task types, each on its own worker function built from a module in
   * your project: `{ thumbnail: { entry: 'src/workers/thumbnail.ts', memorySize: 2048 } }`.
   * Each module exports a handler made by `createWorkerHandler` (the `/worker`
   * export). The child workflow routes on `task.type`; any other type runs on
   * the default worker, which knows only Fleet's built-in types (echo, sleep,
   * fail, resize, process). A map keyed by type (not a list of functions)
   * keeps the routing in the definition, where the console shows it, and lets
   * Fleet make each function so it can grant and configure it.
   * @default - every type runs on the default worker
   */
  readonly workers?: Readonly<Record<string, FleetWorkerProps>>;
  /**
   * The folder relative worker entries (`workers[type].entry`) are resolved
   * from: your project, where cdk.json is. Fleet's own handlers come from its
   * package, wherever it is installed.
   * @default process.cwd() (the CDK CLI runs the app from the cdk.json folder)
   */
  readonly projectRoot?: string;
  /**
   * Lambda props merged over Fleet's defaults for every Fleet function (e.g.
   * a VPC, layers, a role).
   * Entry, handler, a non-Node.js runtime and Fleet's own environment
   * variables are refused at synth.
   * @default - Fleet's defaults (Node.js 24, arm64, esbuild bundling, X-Ray per `tracing`)
   */
  readonly functionProps?: FleetFunctionProps;
  /**
   * Lambda props for the worker functions (the default one and each of
   * `workers`), over `functionProps`.
   * @default - `functionProps`
   */
  readonly workerFunctionProps?: FleetFunctionProps;
  /**
   * Lambda props for the API function, over `functionProps`.
   * @default - `functionProps`
   */
  readonly apiFunctionProps?: FleetFunctionProps;
  /**
   * DynamoDB table props merged over Fleet's (pay per request, point-in-time
   * recovery, AWS-managed encryption). Another partition key, sort key or TTL
   * attribute is refused at synth: they are Fleet's storage layout.
   * @default - Fleet's table
   */
  readonly tableProps?: FleetTableProps;
  /**
   * Props of the batch state machine, merged over Fleet's. Its definition is
   * Fleet's, and its type stays STANDARD (a Distributed Map's parent must be);
   * `logs` replaces Fleet's log settings whole.
   * @default - Fleet's state machine
   */
  readonly stateMachineProps?: FleetStateMachineProps;
  /**
   * How child executions run. EXPRESS costs ~2.6x less per short task ($29.62 against $77.48 per million 1 s tasks) but
   * ends at 5 minutes; choose STANDARD for tasks that may run longer.
   * @default sfn.StateMachineType.EXPRESS
   */
  readonly childExecutionType?: sfn.StateMachineType;
  /**
   * Days finished batches, their tasks and results are kept.
   * @default 7
   */
  readonly retentionDays?: number;
  /**
   * Memory of the default worker, in MB.
   * @default 1024
   */
  readonly workerMemorySize?: number;
  /**
   * Most tasks one batch may hold.
   * @default 100000
   */
  readonly maxTasksPerBatch?: number;
  /**
   * What happens to the table and bucket when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Extra environment for every Fleet function, merged under Fleet's own.
   * @default - none
   */
  readonly environment?: Record<string, string>;
  /**
   * Who may call the HTTP API: IAM (SigV4), or a JWT authorizer.
   * @default 'iam'
   */
  readonly authorization?: FleetApiAuthorization;
  /**
   * Throttling for every route of the API; requests beyond it get 429. A
   * field left out keeps its default.
   * @default DEFAULT_API_THROTTLE ({ rateLimit: 100, burstLimit: 200 }, per second)
   */
  readonly throttle?: apigw.ThrottleSettings;
  /**
   * What the batch state machine logs to CloudWatch Logs; never execution data
   * (task inputs and results). ALL logs every state transition of every
   * child execution, about 7 events per task: on the order of $1.50 more per
   * million tasks, beyond Fleet's $5 orchestration budget, hence ERROR.
   * The file-jobs state machine always logs ALL (still without execution
   * data): a job is a few transitions, whatever the size of its file.
   * @default sfn.LogLevel.ERROR
   */
  readonly stateMachineLogLevel?: sfn.LogLevel;
  /**
   * X-Ray tracing of batch executions and of Fleet's functions, with their
   * AWS SDK calls (sampled at X-Ray's default rule).
   * @default true
   */
  readonly tracing?: boolean;
  /**
   * Level of the functions' logs (Powertools Logger). Below INFO, the worker
   * logs a line per task attempt.
   * @default 'INFO'
   */
  readonly logLevel?: FleetLogLevel;
  /**
   * SNS topic the alarms (`observability.alarms`) notify on ALARM and OK.
   * @default - none: the alarms only show in the CloudWatch console
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * The failure-rate alarm fires when more than this percentage (0 to below
   * 100) of the tasks that ended in 5 minutes failed for good.
   * @default 10
   */
  readonly failureRateAlarmThreshold?: number;
  /**
   * The built-in autoscaling policy: maxConcurrentWorkers follows the
   * backlog between `min` and `max`, re-evaluated every minute.
   * @default - none: maxConcurrentWorkers changes only when someone sets it
   */
  readonly autoscaling?: FleetAutoscalingProps;
  /**
   * Buckets whose objects a batch may name as its tasks file
   * (`{"tasksFile": "s3://bucket/key"}`), so data already in S3 never passes
   * through a client. Fleet's roles get read access to these buckets only.
   * @default - none: tasks files come through POST /batches/uploads only
   */
  readonly tasksFileBuckets?: readonly string[];
  /**
   * Which running attempts GET /workers and `activeWorkers` list, unless the
   * config's `workerListing` (PATCH /config) says otherwise:
   * `'every-attempt'` lists each from its start (one registry write per
   * attempt); `'long-attempts'` only those that have run 2 s, so shorter
   * tasks make no registry write: $0.625 less per million tasks (`npm run cost`).
   * @default 'every-attempt'
   */
  readonly workerListing?: WorkerListingMode;
}

/** Where a function's handler module is: Fleet's package, or the user's project. */
interface FunctionSource {
  root: 'fleet' | 'project';
  /** Relative to that root, with forward slashes. */
  entry: string;
}

export class Fleet extends Construct {
  readonly table: dynamodb.Table;
  readonly tasksBucket: s3.Bucket;
  readonly apiFunction: nodejs.NodejsFunction;
  readonly workerFunction: nodejs.NodejsFunction;
  /** The per-type worker functions (FleetProps.workers), by task type. */
  readonly typeWorkerFunctions: Readonly<Record<string, nodejs.NodejsFunction>>;
  /** Applies the autoscaling policy; only with FleetProps.autoscaling. */
  readonly autoscalerFunction?: nodejs.NodejsFunction;
  /** Invokes the autoscaler every minute, with the policy as its input; only with FleetProps.autoscaling. */
  readonly autoscalingSchedule?: scheduler.Schedule;
  readonly startBatchFunction: nodejs.NodejsFunction;
  readonly finishBatchFunction: nodejs.NodejsFunction;
  /** Reconciles admission every minute (lambdas/admission-reconciler.ts). */
  readonly admissionReconcilerFunction: nodejs.NodejsFunction;
  /** Invokes the admission reconciler every minute. */
  readonly admissionReconcilerSchedule: scheduler.Schedule;
  readonly stateMachine: sfn.StateMachine;
  /** Validates tasks files and builds results exports (infra/file-jobs-workflow.ts). */
  readonly fileJobsFunction: nodejs.NodejsFunction;
  /** One execution per tasks file to validate and per results export to build. */
  readonly fileJobsStateMachine: sfn.StateMachine;
  /** Buckets a batch may name its tasks file in (FleetProps.tasksFileBuckets): Fleet reads their objects. */
  readonly tasksFileBuckets: readonly string[];
  readonly httpApi: apigw.HttpApi;
  /** The API's `$default` stage, with its throttling and access log. */
  readonly apiStage: apigw.HttpStage;
  /** One line per API request: who, which route, the status; never a body or a query string. */
  readonly apiAccessLogs: logs.LogGroup;
  /** The state machine's execution log (no execution data). */
  readonly stateMachineLogs: logs.LogGroup;
  /** S3 server access logs of the tasks bucket. */
  readonly accessLogsBucket: s3.Bucket;
  /**
   * Tasks that failed for good (retries exhausted, or a permanent error), one
   * message each: `{batchId, taskId, taskType, error, attempts, workerId, failedAt}`.
   * It only informs operators: the task's result in the table is the record.
   */
  readonly deadLetterQueue: sqs.Queue;
  /** The CloudWatch dashboard and alarms (infra/fleet-observability.ts). */
  readonly observability: FleetObservability;

  constructor(scope: Construct, id: string, props: FleetProps = {}) {
    super(scope, id);
    // S3 server access logs reach their bucket through a bucket policy, not the
    // deprecated LogDeliveryWrite ACL, whatever the app's feature flags say.
    this.node.setContext('@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy', true);
    checkWholeNumber('retentionDays', props.retentionDays, 1);
    checkWholeNumber('maxTasksPerBatch', props.maxTasksPerBatch, 1);
    checkMemorySize('workerMemorySize', props.workerMemorySize);
    const retentionDays = props.retentionDays ?? 7;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const tableKeys = {
      partitionKey: { name: TABLE_KEYS.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_KEYS.sortKey, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: TABLE_KEYS.ttlAttribute,
    };

    this.table = new dynamodb.Table(this, 'Table', {
      // Load is bursty (a batch writes as fast as its workers run), so pay per request.
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy,
      ...checkTableProps(props.tableProps, tableKeys),
      ...tableKeys,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: TABLE_KEYS.byCreationIndex,
      partitionKey: { name: TABLE_KEYS.byCreationPartitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_KEYS.byCreationSortKey, type: dynamodb.AttributeType.STRING },
    });

    this.table.addGlobalSecondaryIndex({
      indexName: TABLE_KEYS.activeIndex,
      partitionKey: { name: TABLE_KEYS.activePartitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_KEYS.byCreationSortKey, type: dynamodb.AttributeType.STRING },
      // Only unfinished batches carry the key: live scaling reads just those.
      projectionType: dynamodb.ProjectionType.KEYS_ONLY,
    });

    this.accessLogsBucket = new s3.Bucket(this, 'AccessLogsBucket', {
      // Server access logs can only be delivered to SSE-S3 buckets.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy,
    });
    this.tasksBucket = new s3.Bucket(this, 'TasksBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'tasks-bucket/',
      // Task files, results exports and Map Run outputs live as long as the batches they belong to;
      // an upload never submitted, a day; a multipart write that stopped midway, a day.
      lifecycleRules: [
        { expiration: Duration.days(retentionDays + 1), abortIncompleteMultipartUploadAfter: Duration.days(1) },
        { prefix: 'uploads/', expiration: Duration.days(1) },
      ],
      removalPolicy,
    });

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // SQS's longest: operators have two weeks to look at a failed task.
      retentionPeriod: Duration.days(14),
      removalPolicy,
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself a dead-letter queue: failed tasks are sent to it for operators to inspect, and nothing consumes it automatically.',
    });

    const tracing = props.tracing ?? true;
    const serviceName = fleetServiceName(this);
    const common = {
      FLEET_RETENTION_DAYS: String(retentionDays),
      FLEET_WORKER_LISTING: parseWorkerListing(props.workerListing, 'Fleet workerListing'),
      TABLE_NAME: this.table.tableName,
      ...powertoolsEnvironment({ serviceName, logLevel: props.logLevel ?? 'INFO', tracing }),
    };
    // Variables Fleet sets on its functions: an override may not change them.
    const reserved = [...Object.keys(common), 'FLEET_DLQ_URL', 'TASKS_BUCKET', 'STATE_MACHINE_ARN', 'FILE_JOBS_STATE_MACHINE_ARN', 'FLEET_MAX_TASKS_PER_BATCH', 'FLEET_TASKS_FILE_BUCKETS', 'FLEET_CHILD_EXECUTION_TYPE'];
    const functionProps = checkFunctionProps('functionProps', props.functionProps, reserved);
    const workerFunctionProps = { ...functionProps, ...checkFunctionProps('workerFunctionProps', props.workerFunctionProps, reserved) };
    const apiFunctionProps = { ...functionProps, ...checkFunctionProps('apiFunctionProps', props.apiFunctionProps, reserved) };
    const projectRoot = path.resolve(props.projectRoot ?? process.cwd());
    /** One of Fleet's own handlers, from its package wherever it is installed. */
    const own = (source: string): FunctionSource => ({ root: 'fleet', entry: ownHandlerEntry(source) });
    // Defaults, then the user's overrides, then what Fleet must set (its code, its environment).
    // A plain path names one of Fleet's own handlers (`'lambdas/api.ts'`).
    const fn = (name: string, from: FunctionSource | string, handler: string, extra: Partial<nodejs.NodejsFunctionProps> = {}, overrides: FleetFunctionProps = functionProps) => {
      const source = typeof from === 'string' ? own(from) : from;
      const base = source.root === 'fleet' ? FLEET_ROOT : projectRoot;
      const f = new nodejs.NodejsFunction(this, name, {
        runtime: lambda.Runtime.NODEJS_24_X,
        architecture: lambda.Architecture.ARM_64,
        memorySize: 512,
        timeout: Duration.seconds(30),
        tracing: tracing ? lambda.Tracing.ACTIVE : lambda.Tracing.DISABLED,
        logGroup: new logs.LogGroup(this, `${name}Logs`, { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY }),
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
        environment: { ...props.environment, ...overrides.environment, ...common, ...extra.environment },
      });
      const metadata: LocalEntryMetadata = { entry: source.entry, handler, root: source.root };
      (f.node.defaultChild as lambda.CfnFunction).addMetadata(LOCAL_ENTRY_METADATA, metadata);
      if (tracing) {
        Validations.of(f).acknowledge({
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason: "Active X-Ray tracing: CDK's grant of xray:PutTraceSegments and xray:PutTelemetryRecords, which support no resource-level permissions.",
        });
      }
      return f;
    };

    this.workerFunction = fn(
      'WorkerFunction',
      own('lambdas/worker.ts'),
      'handler',
      {
        memorySize: props.workerMemorySize ?? 1024,
        // Lambda's maximum: each attempt's own deadline (workerTimeout) is enforced inside.
        timeout: Duration.minutes(15),
        environment: { FLEET_DLQ_URL: this.deadLetterQueue.queueUrl },
      },
      workerFunctionProps,
    );
    this.deadLetterQueue.grantSendMessages(this.workerFunction);
    this.grantWorkerTableAccess(this.workerFunction);
    const typeWorkerFunctions: Record<string, nodejs.NodejsFunction> = {};
    for (const [taskType, worker] of Object.entries(props.workers ?? {})) {
      const valid = taskTypeSchema.safeParse(taskType);
      if (!valid.success) throw new FleetPropsError('workers', `"${taskType}" is not a valid task type: ${valid.error.issues[0]?.message}`);
      if (typeof worker.entry !== 'string' || worker.entry === '') throw new FleetPropsError(`workers.${taskType}.entry`, 'the path of the handler module is required');
      const absolute = path.resolve(projectRoot, worker.entry);
      if (!existsSync(absolute)) throw new FleetPropsError(`workers.${taskType}.entry`, `${worker.entry} is not a file (relative entries are resolved from ${projectRoot})`);
      checkMemorySize(`workers.${taskType}.memorySize`, worker.memorySize);
      checkTimeout(`workers.${taskType}.timeout`, worker.timeout);
      const overrides = { ...workerFunctionProps, ...checkFunctionProps(`workers.${taskType}.functionProps`, worker.functionProps, reserved) };
      const typeWorker = fn(
        `WorkerFunction-${taskType}`,
        // Relative to the project, with forward slashes, so the template reads the same on every machine.
        { root: 'project', entry: path.relative(projectRoot, absolute).split(path.sep).join('/') },
        worker.handler ?? 'handler',
        {
          memorySize: worker.memorySize ?? props.workerMemorySize ?? 1024,
          timeout: Duration.minutes(15),
          environment: { FLEET_DLQ_URL: this.deadLetterQueue.queueUrl },
        },
        // The type's own memorySize and timeout win over the overrides.
        { ...overrides, ...(worker.memorySize !== undefined ? { memorySize: worker.memorySize } : {}), ...(worker.timeout ? { timeout: worker.timeout } : {}) },
      );
      this.deadLetterQueue.grantSendMessages(typeWorker);
      this.grantWorkerTableAccess(typeWorker);
      typeWorkerFunctions[taskType] = typeWorker;
    }
    this.typeWorkerFunctions = Object.freeze(typeWorkerFunctions);
    const childExecutionType = props.childExecutionType ?? sfn.StateMachineType.EXPRESS;
    this.startBatchFunction = fn('StartBatchFunction', own('lambdas/batch-lifecycle.ts'), 'start', {
      environment: { FLEET_CHILD_EXECUTION_TYPE: childExecutionType, TASKS_BUCKET: this.tasksBucket.bucketName },
      // A retry-failed run's Start batch writes its tasks file and clears up to every failed result once.
      timeout: Duration.minutes(15),
    });
    this.finishBatchFunction = fn('FinishBatchFunction', own('lambdas/batch-lifecycle.ts'), 'finish', {
      environment: { TASKS_BUCKET: this.tasksBucket.bucketName },
      // Recounting a 100,000-task batch reads every result once.
      timeout: Duration.minutes(5),
    });
    // A retry-failed run's Start batch reads the batch's tasks file and writes the retry's beside it
    // (Finish batch is the same module, so the same code).
    for (const lifecycle of [this.startBatchFunction, this.finishBatchFunction]) {
      // Streamed (multipart): a write that fails midway aborts its upload.
      lifecycle.addToRolePolicy(
        new iam.PolicyStatement({ actions: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'], resources: [this.tasksBucket.arnForObjects('batches/*')] }),
      );
    }

    const workflow = new BatchWorkflow(this, 'Workflow', {
      startBatchFunction: this.startBatchFunction,
      finishBatchFunction: this.finishBatchFunction,
      workerFunction: this.workerFunction,
      typeWorkers: this.typeWorkerFunctions,
      tasksBucket: this.tasksBucket,
      childExecutionType,
    });
    this.stateMachineLogs = new logs.LogGroup(this, 'StateMachineLogs', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
    this.stateMachine = new sfn.StateMachine(this, 'BatchStateMachine', {
      // Task data stays out of the logs: states' inputs and outputs are never included.
      logs: { destination: this.stateMachineLogs, level: props.stateMachineLogLevel ?? sfn.LogLevel.ERROR, includeExecutionData: false },
      tracingEnabled: tracing,
      comment: 'Fleet: one execution per batch, named after the batch id.',
      ...checkStateMachineProps(props.stateMachineProps),
      // A Distributed Map's parent must be STANDARD.
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromChainable(workflow.definition),
    });

    const tasksFileBuckets = [...(props.tasksFileBuckets ?? [])];
    this.tasksFileBuckets = Object.freeze(tasksFileBuckets);
    for (const bucket of tasksFileBuckets) {
      if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new Error(`Fleet tasksFileBuckets: "${bucket}" is not an S3 bucket name`);
    }
    const tasksFileObjects = tasksFileBuckets.map((bucket) => `arn:${Stack.of(this).partition}:s3:::${bucket}/*`);
    const maxTasksPerBatch = String(props.maxTasksPerBatch ?? 100_000);

    // Tasks files: validated in one streamed pass (a 15-minute Lambda reads and
    // rewrites a few GB), and results exports built, each in its own execution.
    this.fileJobsFunction = fn('FileJobsFunction', own('lambdas/file-jobs.ts'), 'handler', {
      environment: { TASKS_BUCKET: this.tasksBucket.bucketName, STATE_MACHINE_ARN: this.stateMachine.stateMachineArn, FLEET_MAX_TASKS_PER_BATCH: maxTasksPerBatch },
      timeout: Duration.minutes(15),
      // 8 bytes per task id (a 10-million-task file checks its ids in 80 MB), sort runs of 64 MB, and multipart parts.
      memorySize: 2048,
    });
    this.table.grant(this.fileJobsFunction, ...TABLE_READ_WRITE_ACTIONS);
    // It writes only under batches/ (a batch's tasks file, its sort runs, its results export), as a
    // multipart upload that it aborts when a write fails; an upload it only reads, then deletes once validated.
    this.fileJobsFunction.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
        resources: [this.tasksBucket.arnForObjects('batches/*')],
      }),
    );
    this.fileJobsFunction.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:GetObject', 's3:DeleteObject'], resources: [this.tasksBucket.arnForObjects('uploads/*')] }),
    );
    // A deployer's own file (s3://bucket/key) is read, never written or deleted.
    if (tasksFileObjects.length > 0) {
      this.fileJobsFunction.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: tasksFileObjects }));
    }
    const fileJobs = new FileJobsWorkflow(this, 'FileJobs', { fileJobsFunction: this.fileJobsFunction });
    this.fileJobsStateMachine = new sfn.StateMachine(this, 'FileJobsStateMachine', {
      stateMachineType: sfn.StateMachineType.STANDARD,
      // ALL: a job is a handful of state transitions, whatever the size of its file, so its full
      // history costs nothing worth saving; still never its data (batch ids and errors are in the input).
      logs: { destination: this.stateMachineLogs, level: sfn.LogLevel.ALL, includeExecutionData: false },
      tracingEnabled: tracing,
      definitionBody: sfn.DefinitionBody.fromChainable(fileJobs.definition),
      comment: 'Fleet: validates tasks files (prepare-<batchId>) and builds results exports (export-<batchId>-<n>).',
    });

    this.apiFunction = fn(
      'ApiFunction',
      own('lambdas/api.ts'),
      'handler',
      {
        environment: {
          TASKS_BUCKET: this.tasksBucket.bucketName,
          STATE_MACHINE_ARN: this.stateMachine.stateMachineArn,
          FILE_JOBS_STATE_MACHINE_ARN: this.fileJobsStateMachine.stateMachineArn,
          FLEET_MAX_TASKS_PER_BATCH: maxTasksPerBatch,
          FLEET_TASKS_FILE_BUCKETS: tasksFileBuckets.join(','),
        },
        // Parsing and storing a 100,000-task batch.
        memorySize: 1024,
      },
      apiFunctionProps,
    );

    this.table.grant(this.apiFunction, ...TABLE_READ_WRITE_ACTIONS);
    this.table.grant(this.startBatchFunction, ...TABLE_READ_WRITE_ACTIONS);
    this.table.grant(this.finishBatchFunction, ...TABLE_READ_WRITE_ACTIONS);
    // A submit writes its batch's tasks file (and retry-failed its retry's) under batches/, in one
    // PutObject each; POST /batches/uploads presigns a PUT of uploads/<uploadId>.jsonl, which S3
    // authorizes with this role. Only s3:PutObject: not grantPut's tagging, object-lock and abort actions.
    this.apiFunction.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [this.tasksBucket.arnForObjects('batches/*'), this.tasksBucket.arnForObjects('uploads/*')] }),
    );
    // DELETE /batches/{id} removes the batch's tasks file; only DeleteObject, only under batches/.
    this.apiFunction.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:DeleteObject'], resources: [this.tasksBucket.arnForObjects('batches/*')] }),
    );
    this.stateMachine.grantStartExecution(this.apiFunction);
    // cancelBatch stops a batch's execution; scaleWorkers finds its Map Run and changes it.
    // DescribeExecution: capacity held by a batch whose execution ended is reclaimed.
    // RedriveExecution: retry-failed redrives a batch whose execution itself failed.
    this.stateMachine.grantExecution(this.apiFunction, 'states:StopExecution', 'states:ListMapRuns', 'states:DescribeExecution', 'states:RedriveExecution');
    // retry-failed reads a batch's tasks file back to write the tasks it runs again; a submit
    // looks at an upload (HeadObject); an export's presigned URL reads with this role.
    this.apiFunction.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [this.tasksBucket.arnForObjects('batches/*'), this.tasksBucket.arnForObjects('uploads/*')] }),
    );
    // A submit naming s3://bucket/key checks the object (HeadObject) in an allowed bucket.
    if (tasksFileObjects.length > 0) this.apiFunction.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: tasksFileObjects }));
    this.fileJobsStateMachine.grantStartExecution(this.apiFunction);
    // A cancel stops its batch's file validation, the execution named prepare-<batchId>
    // (lambdas/adapters/file-jobs.ts); never an export's.
    const prepareExecutions = Stack.of(this).formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${this.fileJobsStateMachine.stateMachineName}:${PREPARE_EXECUTION_PREFIX}*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    this.apiFunction.addToRolePolicy(new iam.PolicyStatement({ actions: ['states:StopExecution'], resources: [prepareExecutions] }));
    const updateMapRuns = new iam.PolicyStatement({
      actions: ['states:UpdateMapRun'],
      resources: [
        Stack.of(this).formatArn({
          service: 'states',
          resource: 'mapRun',
          resourceName: `${this.stateMachine.stateMachineName}/*`,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ],
    });
    this.apiFunction.addToRolePolicy(updateMapRuns);
    // Finish batch hands the fleet-wide cap on: it re-shares it (other batches'
    // Map Runs change) and admits the next batches (their executions start).
    // The autoscaler and the reconciler do the same. A standalone policy: were
    // it in the lifecycle functions' default policies, each would depend on the
    // state machine that invokes it, a CloudFormation cycle.
    const executionsArn = Stack.of(this).formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${this.stateMachine.stateMachineName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    // The file jobs queue a validated batch, which admits it as a submit does.
    const lifecycleRoles = [this.startBatchFunction.role, this.finishBatchFunction.role, this.fileJobsFunction.role].filter((role): role is iam.IRole => !!role);
    const capacitySharing = new iam.Policy(this, 'CapacitySharingPolicy', {
      roles: lifecycleRoles,
      statements: [
        new iam.PolicyStatement({ actions: ['states:ListMapRuns', 'states:DescribeExecution'], resources: [executionsArn] }),
        new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: [this.stateMachine.stateMachineArn] }),
        updateMapRuns,
      ],
    });

    // The admission safety net: every minute, frees the shares of batches whose
    // execution ended without Finish batch, redrives executions that failed
    // outside their tasks, and admits whatever an interrupted pass left queued.
    const reconciler = fn('AdmissionReconcilerFunction', own('lambdas/admission-reconciler.ts'), 'handler', {
      environment: { STATE_MACHINE_ARN: this.stateMachine.stateMachineArn },
      timeout: Duration.minutes(2),
    });
    reconciler.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(1) });
    this.table.grant(reconciler, ...TABLE_READ_WRITE_ACTIONS);
    if (reconciler.role) {
      capacitySharing.attachToRole(reconciler.role);
      // Only the reconciler redrives: an unfinished batch's execution that failed outside its tasks.
      new iam.Policy(this, 'AdmissionRepairPolicy', {
        roles: [reconciler.role],
        statements: [new iam.PolicyStatement({ actions: ['states:RedriveExecution'], resources: [executionsArn] })],
      });
    }
    this.admissionReconcilerFunction = reconciler;
    this.admissionReconcilerSchedule = new scheduler.Schedule(this, 'AdmissionReconcilerSchedule', {
      schedule: scheduler.ScheduleExpression.rate(Duration.minutes(1)),
      // A missed run is not retried: the next one, a minute later, looks afresh.
      target: new schedulerTargets.LambdaInvoke(reconciler, {
        input: scheduler.ScheduleTargetInput.fromObject({}),
        retryAttempts: 0,
        role: new iam.Role(this, 'AdmissionReconcilerScheduleRole', {
          assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com').withConditions({ StringEquals: { 'aws:SourceAccount': Stack.of(this).account } }),
        }),
      }),
      description: 'Fleet admission: reclaim capacity held by ended executions, redrive failed ones, admit waiting batches',
    });

    if (props.autoscaling) {
      // Checked here, so a bad policy fails `cdk synth`, not every run of the schedule.
      const policy = parseAutoscalingPolicy({
        tasksPerWorker: DEFAULT_TASKS_PER_WORKER,
        deadBand: DEFAULT_DEAD_BAND,
        ...props.autoscaling,
      });
      const autoscaler = fn('AutoscalerFunction', own('lambdas/autoscaler.ts'), 'handler', {
        environment: { STATE_MACHINE_ARN: this.stateMachine.stateMachineArn },
        // Re-sharing the cap calls UpdateMapRun (~1 request/s) on each running batch whose share moved.
        timeout: Duration.minutes(2),
      });
      // Scheduler invokes asynchronously: without this, Lambda itself would run a
      // failed run again up to twice, minutes later, beside the scheduled ones.
      autoscaler.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(1) });
      // It reads the batches and the config, and stores the cap and its shares.
      this.table.grant(autoscaler, ...TABLE_READ_WRITE_ACTIONS);
      // And re-shares the cap among running Map Runs, as Start and Finish batch do.
      if (autoscaler.role) capacitySharing.attachToRole(autoscaler.role);
      this.autoscalerFunction = autoscaler;
      this.autoscalingSchedule = new scheduler.Schedule(this, 'AutoscalingSchedule', {
        schedule: scheduler.ScheduleExpression.rate(Duration.minutes(1)),
        // The policy travels as the event: the schedule shows it, and local mode reads it from the template.
        // A missed run is not retried: the next one, a minute later, reads the backlog afresh.
        target: new schedulerTargets.LambdaInvoke(autoscaler, {
          input: scheduler.ScheduleTargetInput.fromObject(policy),
          retryAttempts: 0,
          // Fleet's own role (not CDK's stack-wide one), so it lives and is reviewed with the construct.
          role: new iam.Role(this, 'AutoscalingScheduleRole', {
            assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com').withConditions({ StringEquals: { 'aws:SourceAccount': Stack.of(this).account } }),
          }),
        }),
        description: `Fleet autoscaling: maxConcurrentWorkers from ${policy.min} to ${policy.max}, following the backlog`,
      });
    }

    const authorization = props.authorization ?? 'iam';
    this.httpApi = new apigw.HttpApi(this, 'HttpApi', {
      description: 'Fleet: submit batches of tasks and follow them.',
      defaultIntegration: new HttpLambdaIntegration('ApiIntegration', this.apiFunction),
      // Every route needs a signed (IAM) or token-bearing (JWT) caller; nobody else gets in.
      defaultAuthorizer:
        authorization === 'iam'
          ? new HttpIamAuthorizer()
          : new HttpJwtAuthorizer('JwtAuthorizer', authorization.jwt.issuer, { jwtAudience: authorization.jwt.audience }),
      // The stage is made below, with throttling and an access log.
      createDefaultStage: false,
    });
    this.apiAccessLogs = new logs.LogGroup(this, 'ApiAccessLogs', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
    // Same construct path as the stage HttpApi would make, so deployed stacks keep their stage.
    this.apiStage = new apigw.HttpStage(this.httpApi, 'DefaultStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: { ...DEFAULT_API_THROTTLE, ...props.throttle },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(this.apiAccessLogs),
        // The path carries batch ids only; bodies and query strings (cursors) are never logged.
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            time: '$context.requestTimeEpoch',
            ip: '$context.identity.sourceIp',
            caller: '$context.identity.userArn',
            method: '$context.httpMethod',
            path: '$context.path',
            status: '$context.status',
            latencyMs: '$context.responseLatency',
            responseBytes: '$context.responseLength',
            error: '$context.error.message',
            authorizerError: '$context.authorizer.error',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });

    this.observability = new FleetObservability(this, 'Observability', {
      serviceName,
      apiFunction: this.apiFunction,
      startBatchFunction: this.startBatchFunction,
      finishBatchFunction: this.finishBatchFunction,
      workerFunctions: [this.workerFunction, ...Object.values(this.typeWorkerFunctions)],
      stateMachine: this.stateMachine,
      httpApi: this.httpApi,
      apiAccessLogs: this.apiAccessLogs,
      alarmTopic: props.alarmTopic,
      failureRateAlarmThreshold: props.failureRateAlarmThreshold,
    });

    new CfnOutput(this, 'ApiUrl', { value: this.httpApi.apiEndpoint, description: `Fleet HTTPS API (${authorization === 'iam' ? 'IAM' : 'JWT'} auth)` });
    new CfnOutput(this, 'StateMachineArn', { value: this.stateMachine.stateMachineArn, description: 'Watch batches here' });
    this.acknowledgeNagFindings();
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
  private grantWorkerTableAccess(worker: lambda.IFunction): void {
    worker.addToRolePolicy(
      new iam.PolicyStatement({
        actions: [...WORKER_TABLE_ACTIONS],
        resources: [this.table.tableArn],
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
        resources: [this.table.tableArn],
        conditions: {
          'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [BATCH_RECORD_PARTITION_PATTERN] },
          Null: { 'dynamodb:LeadingKeys': 'false' },
        },
      }),
    );
  }

  /**
   * The cdk-nag AwsSolutions findings Fleet keeps on purpose, each with its
   * reason (`test/infra/cdk-nag.test.ts` fails on any other). Acknowledged by
   * exact finding id, so a new wildcard or managed policy is still reported.
   */
  private acknowledgeNagFindings(): void {
    const stack = Stack.of(this);
    const logicalId = (construct: IConstruct) => stack.resolve((construct.node.defaultChild as CfnElement).logicalId) as string;
    const ack = (id: string, reason: string, scope: IConstruct = this) => Validations.of(scope).acknowledge({ id, reason });
    const machine = logicalId(this.stateMachine);
    const executionsOf = (suffix: string) =>
      `arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${machine}"}]}]}${suffix}`;

    ack(
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      'AWSLambdaBasicExecutionRole grants only logs:CreateLogGroup, CreateLogStream and PutLogEvents, which every function needs for its own log group; a copy of it would add nothing.',
    );
    ack(
      `AwsSolutions-IAM5[Resource::<${logicalId(this.table)}.Arn>/index/*]`,
      "The table's own indexes (ByCreation, Active): the grants are on this one table, and index/* names only its GSIs.",
    );
    for (const fn of [this.workerFunction, ...Object.values(this.typeWorkerFunctions), this.startBatchFunction, this.finishBatchFunction, this.fileJobsFunction]) {
      ack(
        `AwsSolutions-IAM5[Resource::<${logicalId(fn)}.Arn>:*]`,
        'lambda:InvokeFunction on the versions and aliases of one Fleet function, as CDK grants a state machine that invokes it.',
      );
    }
    ack(
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<${logicalId(this.tasksBucket)}>/*]`,
      "The Distributed Map reads each batch's tasks file (ItemReader) and writes its results (ResultWriter) under keys named after batch ids, which are not known at deploy time; only this bucket.",
    );
    ack(
      `AwsSolutions-IAM5[Resource::<${logicalId(this.tasksBucket)}.Arn>/batches/*]`,
      "Objects under batches/ of this bucket only, named after batch ids made at run time: each batch's tasks file, its sort runs and its results export (the API deletes them with the batch; Start and Finish batch and the file jobs read and write them).",
    );
    ack(
      `AwsSolutions-IAM5[Resource::<${logicalId(this.tasksBucket)}.Arn>/uploads/*]`,
      'Objects under uploads/ of this bucket only, one per POST /batches/uploads, named after an upload id made at run time: the API presigns its PUT and checks it (HeadObject), the file jobs read it and delete it once validated.',
    );
    for (const bucket of this.tasksFileBuckets) {
      ack(
        `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::${bucket}/*]`,
        `s3:GetObject only, on a bucket the deployer listed in tasksFileBuckets: a batch names its tasks file there as s3://${bucket}/<key>, any key the caller chooses.`,
      );
    }
    if (this.autoscalerFunction) {
      ack(
        `AwsSolutions-IAM5[Resource::<${logicalId(this.autoscalerFunction)}.Arn>:*]`,
        "lambda:InvokeFunction on the versions and aliases of the autoscaler function, as CDK grants the schedule's role that invokes it.",
      );
    }
    ack(
      `AwsSolutions-IAM5[Resource::<${logicalId(this.admissionReconcilerFunction)}.Arn>:*]`,
      "lambda:InvokeFunction on the versions and aliases of the admission reconciler, as CDK grants the schedule's role that invokes it.",
    );
    ack(
      `AwsSolutions-IAM5[Resource::${executionsOf(':*')}]`,
      'Executions of this one state machine: each batch is an execution named after its batch id (unknown at deploy time), which the API stops and describes and the Distributed Map runs.',
    );
    ack(
      `AwsSolutions-IAM5[Resource::${executionsOf('/FleetTasks:*')}]`,
      "The Distributed Map's child executions (Map Run label FleetTasks) of this one state machine, named by Step Functions at run time.",
    );
    ack(
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:mapRun:<${machine}.Name>/*]`,
      "UpdateMapRun on this state machine's Map Runs, created per batch at run time: how scaleWorkers and the fleet-wide cap reach running batches.",
    );
    ack(
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<${machine}.Name>:*]`,
      'ListMapRuns and DescribeExecution on executions of this one state machine, named after batch ids at run time (capacity sharing).',
    );
    ack(
      'AwsSolutions-IAM5[Resource::*]',
      "The state machine's log delivery (logs:CreateLogDelivery and related) and X-Ray (xray:PutTraceSegments and related) actions support no resource-level permissions.",
      this.stateMachine,
    );
    ack(
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<${logicalId(this.fileJobsStateMachine)}.Name>:${PREPARE_EXECUTION_PREFIX}*]`,
      `StopExecution on the file jobs' validations only (${PREPARE_EXECUTION_PREFIX}<batchId>, a name made per batch at run time): a cancel stops its batch's validation, never an export.`,
    );
    ack(
      'AwsSolutions-IAM5[Resource::*]',
      "The file-jobs state machine's log delivery (logs:CreateLogDelivery and related) and X-Ray (xray:PutTraceSegments and related) actions support no resource-level permissions.",
      this.fileJobsStateMachine,
    );
    ack(
      'AwsSolutions-SF1',
      'Fleet logs ERROR by default: ALL would log every state transition of every child execution, about 7 events per task, well over a dollar more per million tasks. The stateMachineLogLevel prop turns ALL on.',
      this.stateMachine,
    );
  }
}
