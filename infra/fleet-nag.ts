/**
 * The cdk-nag findings Fleet acknowledges, each with its reason, apart from
 * the construct so the reasons read together.
 */
import { Stack, Validations, type CfnElement } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { PREPARE_EXECUTION_PREFIX } from './file-jobs-workflow';
import type { Fleet } from './fleet';

/**
 * The cdk-nag AwsSolutions findings Fleet keeps on purpose, each with its
 * reason (`test/infra/cdk-nag.test.ts` fails on any other). Acknowledged by
 * exact finding id, so a new wildcard or managed policy is still reported.
 */
export function acknowledgeNagFindings(fleet: Fleet): void {
  const stack = Stack.of(fleet);
  const logicalId = (construct: IConstruct) => stack.resolve((construct.node.defaultChild as CfnElement).logicalId) as string;
  const ack = (id: string, reason: string, scope: IConstruct = fleet) => { Validations.of(scope).acknowledge({ id, reason }); };
  const machine = logicalId(fleet.stateMachine);
  const executionsOf = (suffix: string) =>
    `arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${machine}"}]}]}${suffix}`;

  ack(
    'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    'AWSLambdaBasicExecutionRole grants only logs:CreateLogGroup, CreateLogStream and PutLogEvents, which every function needs for its own log group; a copy of it would add nothing.',
  );
  ack(
    `AwsSolutions-IAM5[Resource::<${logicalId(fleet.table)}.Arn>/index/*]`,
    "The table's own indexes (ByCreation, Active): the grants are on this one table, and index/* names only its GSIs.",
  );
  for (const fn of [fleet.workerFunction, ...Object.values(fleet.typeWorkerFunctions), fleet.startBatchFunction, fleet.finishBatchFunction, fleet.fileJobsFunction]) {
    ack(
      `AwsSolutions-IAM5[Resource::<${logicalId(fn)}.Arn>:*]`,
      'lambda:InvokeFunction on the versions and aliases of one Fleet function, as CDK grants a state machine that invokes it.',
    );
  }
  ack(
    `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<${logicalId(fleet.tasksBucket)}>/*]`,
    "The Distributed Map reads each batch's tasks file (ItemReader) and writes its results (ResultWriter) under keys named after batch ids, which are not known at deploy time; only this bucket.",
  );
  ack(
    `AwsSolutions-IAM5[Resource::<${logicalId(fleet.tasksBucket)}.Arn>/batches/*]`,
    "Objects under batches/ of this bucket only, named after batch ids made at run time: each batch's tasks file, its sort runs and its results export (the API deletes them with the batch; Start and Finish batch and the file jobs read and write them).",
  );
  ack(
    `AwsSolutions-IAM5[Resource::<${logicalId(fleet.tasksBucket)}.Arn>/uploads/*]`,
    'Objects under uploads/ of this bucket only, one per POST /batches/uploads, named after an upload id made at run time: the API presigns its PUT and checks it (HeadObject), the file jobs read it and delete it once validated.',
  );
  for (const bucket of fleet.tasksFileBuckets) {
    ack(
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::${bucket}/*]`,
      `s3:GetObject only, on a bucket the deployer listed in tasksFileBuckets: a batch names its tasks file there as s3://${bucket}/<key>, any key the caller chooses.`,
    );
  }
  if (fleet.autoscalerFunction) {
    ack(
      `AwsSolutions-IAM5[Resource::<${logicalId(fleet.autoscalerFunction)}.Arn>:*]`,
      "lambda:InvokeFunction on the versions and aliases of the autoscaler function, as CDK grants the schedule's role that invokes it.",
    );
  }
  ack(
    `AwsSolutions-IAM5[Resource::<${logicalId(fleet.admissionReconcilerFunction)}.Arn>:*]`,
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
    fleet.stateMachine,
  );
  ack(
    `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<${logicalId(fleet.fileJobsStateMachine)}.Name>:${PREPARE_EXECUTION_PREFIX}*]`,
    `StopExecution on the file jobs' validations only (${PREPARE_EXECUTION_PREFIX}<batchId>, a name made per batch at run time): a cancel stops its batch's validation, never an export.`,
  );
  ack(
    'AwsSolutions-IAM5[Resource::*]',
    "The file-jobs state machine's log delivery (logs:CreateLogDelivery and related) and X-Ray (xray:PutTraceSegments and related) actions support no resource-level permissions.",
    fleet.fileJobsStateMachine,
  );
  ack(
    'AwsSolutions-SF1',
    'Fleet logs ERROR by default: ALL would log every state transition of every child execution, about 7 events per task, well over a dollar more per million tasks. The stateMachineLogLevel prop turns ALL on.',
    fleet.stateMachine,
  );
}
