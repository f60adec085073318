/**
 * The Fleet construct's props (FleetProps and the types it names), apart from
 * the construct, so the builders (fleet-storage.ts, fleet-functions.ts, ...)
 * read them without importing the construct. infra/fleet.ts re-exports them.
 */
import type { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { WorkerListingMode } from '../lambdas/domain/types';
import type { FleetLogLevel } from './fleet-observability';
import type { FleetFunctionProps, FleetStateMachineProps, FleetTableProps } from './fleet-overrides';

/**
 * Who may call Fleet's HTTP API.
 * - `'iam'`: requests are signed with SigV4 by a principal allowed `execute-api:Invoke` on the API.
 * - `{ jwt: { issuer, audience } }`: requests carry `Authorization: Bearer <JWT>` issued by
 *   `issuer` (an OIDC provider or a Cognito user pool, e.g.
 *   `https://cognito-idp.<region>.amazonaws.com/<pool id>`) for one of `audience`.
 */
export type FleetApiAuthorization = 'iam' | { readonly jwt: { readonly issuer: string; readonly audience: string[] } };

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

/** What a Fleet is built from: every field is optional, with its default below. */
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
