/**
 * Fleet's state machines: the batch state machine (one execution per batch,
 * infra/batch-workflow.ts) and the file jobs (infra/file-jobs-workflow.ts)
 * with the function that runs them. Made in the Fleet construct's own scope
 * under the ids they always had, so their logical IDs do not move.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { BatchWorkflow } from './batch-workflow';
import { FileJobsWorkflow } from './file-jobs-workflow';
import { own, TABLE_READ_WRITE_ACTIONS, type FleetFunctionFactory } from './fleet-functions';
import { checkStateMachineProps, type FleetStateMachineProps } from './fleet-overrides';

export interface BatchStateMachineProps {
  readonly startBatchFunction: lambda.IFunction;
  readonly finishBatchFunction: lambda.IFunction;
  readonly workerFunction: lambda.IFunction;
  readonly typeWorkers: Readonly<Record<string, lambda.IFunction>>;
  readonly tasksBucket: s3.IBucket;
  readonly childExecutionType: sfn.StateMachineType;
  readonly tracing: boolean;
  readonly logLevel: sfn.LogLevel;
  readonly stateMachineProps?: FleetStateMachineProps;
}

/** The batch state machine and its log group (which the file jobs' state machine shares). */
export interface BatchStateMachine {
  readonly stateMachine: sfn.StateMachine;
  readonly stateMachineLogs: logs.LogGroup;
}

/** The batch state machine (id BatchStateMachine), its definition (id Workflow) and its log group (id StateMachineLogs). */
export function createBatchStateMachine(fleet: Construct, props: BatchStateMachineProps): BatchStateMachine {
  const workflow = new BatchWorkflow(fleet, 'Workflow', {
    startBatchFunction: props.startBatchFunction,
    finishBatchFunction: props.finishBatchFunction,
    workerFunction: props.workerFunction,
    typeWorkers: props.typeWorkers,
    tasksBucket: props.tasksBucket,
    childExecutionType: props.childExecutionType,
  });
  const stateMachineLogs = new logs.LogGroup(fleet, 'StateMachineLogs', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
  const stateMachine = new sfn.StateMachine(fleet, 'BatchStateMachine', {
    // Task data stays out of the logs: states' inputs and outputs are never included.
    logs: { destination: stateMachineLogs, level: props.logLevel, includeExecutionData: false },
    tracingEnabled: props.tracing,
    comment: 'Fleet: one execution per batch, named after the batch id.',
    ...checkStateMachineProps(props.stateMachineProps),
    // A Distributed Map's parent must be STANDARD.
    stateMachineType: sfn.StateMachineType.STANDARD,
    definitionBody: sfn.DefinitionBody.fromChainable(workflow.definition),
  });
  return { stateMachine, stateMachineLogs };
}

export interface FileJobsProps {
  readonly table: dynamodb.ITable;
  readonly tasksBucket: s3.IBucket;
  readonly stateMachine: sfn.IStateMachine;
  readonly stateMachineLogs: logs.ILogGroup;
  /** `arn:...:s3:::<bucket>/*` of each FleetProps.tasksFileBuckets. */
  readonly tasksFileObjects: readonly string[];
  readonly maxTasksPerBatch: string;
  readonly tracing: boolean;
}

/** The file jobs: their function and state machine. */
export interface FileJobs {
  readonly fileJobsFunction: nodejs.NodejsFunction;
  readonly fileJobsStateMachine: sfn.StateMachine;
}

/**
 * Tasks files: validated in one streamed pass (a 15-minute Lambda reads and
 * rewrites a few GB), and results exports built, each in its own execution
 * (ids FileJobsFunction, FileJobs, FileJobsStateMachine).
 */
export function createFileJobs(fleet: Construct, factory: FleetFunctionFactory, props: FileJobsProps): FileJobs {
  const { table, tasksBucket, tasksFileObjects } = props;
  const fileJobsFunction = factory.create('FileJobsFunction', own('lambdas/file-jobs.ts'), 'handler', {
    environment: { TASKS_BUCKET: tasksBucket.bucketName, STATE_MACHINE_ARN: props.stateMachine.stateMachineArn, FLEET_MAX_TASKS_PER_BATCH: props.maxTasksPerBatch },
    timeout: Duration.minutes(15),
    // 8 bytes per task id (a 10-million-task file checks its ids in 80 MB), sort runs of 64 MB, and multipart parts.
    memorySize: 2048,
  });
  table.grant(fileJobsFunction, ...TABLE_READ_WRITE_ACTIONS);
  // It writes only under batches/ (a batch's tasks file, its sort runs, its results export), as a
  // multipart upload that it aborts when a write fails; an upload it only reads, then deletes once validated.
  fileJobsFunction.addToRolePolicy(
    new iam.PolicyStatement({
      actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
      resources: [tasksBucket.arnForObjects('batches/*')],
    }),
  );
  fileJobsFunction.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:GetObject', 's3:DeleteObject'], resources: [tasksBucket.arnForObjects('uploads/*')] }));
  // A deployer's own file (s3://bucket/key) is read, never written or deleted.
  if (tasksFileObjects.length > 0) {
    fileJobsFunction.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [...tasksFileObjects] }));
  }
  const fileJobs = new FileJobsWorkflow(fleet, 'FileJobs', { fileJobsFunction });
  const fileJobsStateMachine = new sfn.StateMachine(fleet, 'FileJobsStateMachine', {
    stateMachineType: sfn.StateMachineType.STANDARD,
    // ALL: a job is a handful of state transitions, whatever the size of its file, so its full
    // history costs nothing worth saving; still never its data (batch ids and errors are in the input).
    logs: { destination: props.stateMachineLogs, level: sfn.LogLevel.ALL, includeExecutionData: false },
    tracingEnabled: props.tracing,
    definitionBody: sfn.DefinitionBody.fromChainable(fileJobs.definition),
    comment: 'Fleet: validates tasks files (prepare-<batchId>) and builds results exports (export-<batchId>-<n>).',
  });
  return { fileJobsFunction, fileJobsStateMachine };
}
