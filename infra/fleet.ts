/**
 * Fleet: an HTTPS API that accepts batches of tasks and runs each task on its
 * own worker Lambda invocation inside a Step Functions Distributed Map.
 *
 * The construct checks its props, then delegates to one builder per part, in
 * this order (each in its own file): storage (fleet-storage.ts), functions
 * (fleet-functions.ts), state machines (fleet-workflows.ts), the HTTP API
 * (fleet-api.ts), capacity: admission and autoscaling (fleet-capacity.ts),
 * observability (fleet-observability.ts), and the cdk-nag acknowledgements
 * (fleet-nag.ts). Every builder makes its resources in this construct's own
 * scope with the ids they always had: a construct path is a logical ID, and a
 * moved table or bucket would be replaced, data and all, on the next deploy
 * (test/infra/logical-ids.test.ts pins them).
 */
import { CfnOutput, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { createApiFunction, createHttpApi } from './fleet-api';
import { createAdmissionReconciler, createAutoscaler, createCapacitySharingPolicy } from './fleet-capacity';
import { createLifecycleFunctions, createWorkerFunctions, FleetFunctionFactory } from './fleet-functions';
import { acknowledgeNagFindings } from './fleet-nag';
import { FleetObservability, fleetServiceName } from './fleet-observability';
import { checkMemorySize, checkWholeNumber } from './fleet-overrides';
import type { FleetProps } from './fleet-props';
import { createFleetStorage } from './fleet-storage';
import { createBatchStateMachine, createFileJobs } from './fleet-workflows';

export { DEFAULT_API_THROTTLE } from './fleet-api';
export { LOCAL_ENTRY_METADATA, TABLE_READ_WRITE_ACTIONS, WORKER_TABLE_ACTIONS, type LocalEntryMetadata } from './fleet-functions';
export { FleetPropsError, type FleetFunctionProps, type FleetStateMachineProps, type FleetTableProps } from './fleet-overrides';
export type { FleetApiAuthorization, FleetAutoscalingProps, FleetProps, FleetWorkerProps } from './fleet-props';

/**
 * The Fleet L3 construct: a table, a tasks bucket, the worker and lifecycle
 * functions, the batch and file-jobs state machines, the HTTP API, admission
 * and autoscaling, dashboard and alarms, wired together and granted only what
 * each needs.
 */
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
    const tracing = props.tracing ?? true;
    const childExecutionType = props.childExecutionType ?? sfn.StateMachineType.EXPRESS;
    const authorization = props.authorization ?? 'iam';

    const storage = createFleetStorage(this, { retentionDays, removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN, tableProps: props.tableProps });
    ({ table: this.table, accessLogsBucket: this.accessLogsBucket, tasksBucket: this.tasksBucket, deadLetterQueue: this.deadLetterQueue } = storage);

    const functions = new FleetFunctionFactory(this, props, { table: this.table, retentionDays, tracing });
    ({ workerFunction: this.workerFunction, typeWorkerFunctions: this.typeWorkerFunctions } = createWorkerFunctions(functions, props, storage));
    ({ startBatchFunction: this.startBatchFunction, finishBatchFunction: this.finishBatchFunction } = createLifecycleFunctions(functions, {
      table: this.table,
      tasksBucket: this.tasksBucket,
      childExecutionType,
    }));

    ({ stateMachine: this.stateMachine, stateMachineLogs: this.stateMachineLogs } = createBatchStateMachine(this, {
      startBatchFunction: this.startBatchFunction,
      finishBatchFunction: this.finishBatchFunction,
      workerFunction: this.workerFunction,
      typeWorkers: this.typeWorkerFunctions,
      tasksBucket: this.tasksBucket,
      childExecutionType,
      tracing,
      logLevel: props.stateMachineLogLevel ?? sfn.LogLevel.ERROR,
      stateMachineProps: props.stateMachineProps,
    }));

    const tasksFileBuckets = [...(props.tasksFileBuckets ?? [])];
    this.tasksFileBuckets = Object.freeze(tasksFileBuckets);
    for (const bucket of tasksFileBuckets) {
      if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new Error(`Fleet tasksFileBuckets: "${bucket}" is not an S3 bucket name`);
    }
    const tasksFileObjects = tasksFileBuckets.map((bucket) => `arn:${Stack.of(this).partition}:s3:::${bucket}/*`);
    const maxTasksPerBatch = String(props.maxTasksPerBatch ?? 100_000);

    ({ fileJobsFunction: this.fileJobsFunction, fileJobsStateMachine: this.fileJobsStateMachine } = createFileJobs(this, functions, {
      table: this.table,
      tasksBucket: this.tasksBucket,
      stateMachine: this.stateMachine,
      stateMachineLogs: this.stateMachineLogs,
      tasksFileObjects,
      maxTasksPerBatch,
      tracing,
    }));

    this.apiFunction = createApiFunction(functions, {
      table: this.table,
      tasksBucket: this.tasksBucket,
      stateMachine: this.stateMachine,
      fileJobsStateMachine: this.fileJobsStateMachine,
      tasksFileBuckets,
      tasksFileObjects,
      maxTasksPerBatch,
    });

    // The file jobs queue a validated batch, which admits it as a submit does.
    const lifecycleRoles = [this.startBatchFunction.role, this.finishBatchFunction.role, this.fileJobsFunction.role].filter((role): role is iam.IRole => !!role);
    const capacitySharing = createCapacitySharingPolicy(this, this.stateMachine, lifecycleRoles);
    const capacity = { table: this.table, stateMachine: this.stateMachine, capacitySharing };
    ({ admissionReconcilerFunction: this.admissionReconcilerFunction, admissionReconcilerSchedule: this.admissionReconcilerSchedule } = createAdmissionReconciler(
      this,
      functions,
      capacity,
    ));
    if (props.autoscaling) {
      ({ autoscalerFunction: this.autoscalerFunction, autoscalingSchedule: this.autoscalingSchedule } = createAutoscaler(this, functions, props.autoscaling, capacity));
    }

    ({ httpApi: this.httpApi, apiStage: this.apiStage, apiAccessLogs: this.apiAccessLogs } = createHttpApi(this, {
      apiFunction: this.apiFunction,
      authorization,
      throttle: props.throttle,
    }));

    this.observability = new FleetObservability(this, 'Observability', {
      serviceName: fleetServiceName(this),
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
    acknowledgeNagFindings(this);
  }
}
