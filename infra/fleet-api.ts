/**
 * Fleet's HTTP API: the API function with its grants, and the HTTP API in
 * front of it (authorizer, throttled `$default` stage, access log). Made in
 * the Fleet construct's own scope under the ids they always had, so their
 * logical IDs do not move.
 */
import { ArnFormat, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer, HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { PREPARE_EXECUTION_PREFIX } from './file-jobs-workflow';
import { own, TABLE_READ_WRITE_ACTIONS, type FleetFunctionFactory } from './fleet-functions';
import type { FleetApiAuthorization } from './fleet-props';

/** The API's default throttling: far above what a few clients polling every second need. */
export const DEFAULT_API_THROTTLE: Readonly<Required<apigw.ThrottleSettings>> = Object.freeze({ rateLimit: 100, burstLimit: 200 });

/** UpdateMapRun on the batch state machine's Map Runs: how a new cap reaches running batches. */
export function updateMapRunsStatement(stateMachine: sfn.StateMachine): iam.PolicyStatement {
  return new iam.PolicyStatement({
    actions: ['states:UpdateMapRun'],
    resources: [
      Stack.of(stateMachine).formatArn({
        service: 'states',
        resource: 'mapRun',
        resourceName: `${stateMachine.stateMachineName}/*`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      }),
    ],
  });
}

export interface ApiFunctionProps {
  readonly table: dynamodb.ITable;
  readonly tasksBucket: s3.IBucket;
  readonly stateMachine: sfn.StateMachine;
  readonly fileJobsStateMachine: sfn.StateMachine;
  /** FleetProps.tasksFileBuckets, checked. */
  readonly tasksFileBuckets: readonly string[];
  /** `arn:...:s3:::<bucket>/*` of each of tasksFileBuckets. */
  readonly tasksFileObjects: readonly string[];
  readonly maxTasksPerBatch: string;
}

/** The API function (id ApiFunction), allowed what its routes do and nothing more. */
export function createApiFunction(factory: FleetFunctionFactory, props: ApiFunctionProps): nodejs.NodejsFunction {
  const { table, tasksBucket, stateMachine, fileJobsStateMachine, tasksFileObjects } = props;
  const apiFunction = factory.create(
    'ApiFunction',
    own('lambdas/api.ts'),
    'handler',
    {
      environment: {
        TASKS_BUCKET: tasksBucket.bucketName,
        STATE_MACHINE_ARN: stateMachine.stateMachineArn,
        FILE_JOBS_STATE_MACHINE_ARN: fileJobsStateMachine.stateMachineArn,
        FLEET_MAX_TASKS_PER_BATCH: props.maxTasksPerBatch,
        FLEET_TASKS_FILE_BUCKETS: props.tasksFileBuckets.join(','),
      },
      // Parsing and storing a 100,000-task batch.
      memorySize: 1024,
    },
    factory.apiFunctionProps,
  );

  table.grant(apiFunction, ...TABLE_READ_WRITE_ACTIONS);
  // A submit writes its batch's tasks file (and retry-failed its retry's) under batches/, in one
  // PutObject each; POST /batches/uploads presigns a PUT of uploads/<uploadId>.jsonl, which S3
  // authorizes with this role. Only s3:PutObject: not grantPut's tagging, object-lock and abort actions.
  apiFunction.addToRolePolicy(
    new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [tasksBucket.arnForObjects('batches/*'), tasksBucket.arnForObjects('uploads/*')] }),
  );
  // DELETE /batches/{id} removes the batch's tasks file; only DeleteObject, only under batches/.
  apiFunction.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:DeleteObject'], resources: [tasksBucket.arnForObjects('batches/*')] }));
  stateMachine.grantStartExecution(apiFunction);
  // cancelBatch stops a batch's execution; scaleWorkers finds its Map Run and changes it.
  // DescribeExecution: capacity held by a batch whose execution ended is reclaimed.
  // RedriveExecution: retry-failed redrives a batch whose execution itself failed.
  stateMachine.grantExecution(apiFunction, 'states:StopExecution', 'states:ListMapRuns', 'states:DescribeExecution', 'states:RedriveExecution');
  // retry-failed reads a batch's tasks file back to write the tasks it runs again; a submit
  // looks at an upload (HeadObject); an export's presigned URL reads with this role.
  apiFunction.addToRolePolicy(
    new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [tasksBucket.arnForObjects('batches/*'), tasksBucket.arnForObjects('uploads/*')] }),
  );
  // A submit naming s3://bucket/key checks the object (HeadObject) in an allowed bucket.
  if (tasksFileObjects.length > 0) apiFunction.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [...tasksFileObjects] }));
  fileJobsStateMachine.grantStartExecution(apiFunction);
  // A cancel stops its batch's file validation, the execution named prepare-<batchId>
  // (lambdas/adapters/file-jobs.ts); never an export's.
  const prepareExecutions = Stack.of(apiFunction).formatArn({
    service: 'states',
    resource: 'execution',
    resourceName: `${fileJobsStateMachine.stateMachineName}:${PREPARE_EXECUTION_PREFIX}*`,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
  apiFunction.addToRolePolicy(new iam.PolicyStatement({ actions: ['states:StopExecution'], resources: [prepareExecutions] }));
  apiFunction.addToRolePolicy(updateMapRunsStatement(stateMachine));
  return apiFunction;
}

export interface FleetHttpApiProps {
  readonly apiFunction: lambda.IFunction;
  readonly authorization: FleetApiAuthorization;
  /** Over DEFAULT_API_THROTTLE, field by field. */
  readonly throttle?: apigw.ThrottleSettings;
}

/** The HTTP API, its stage and its access log. */
export interface FleetHttpApi {
  readonly httpApi: apigw.HttpApi;
  readonly apiStage: apigw.HttpStage;
  readonly apiAccessLogs: logs.LogGroup;
}

/** The HTTP API (id HttpApi), its `$default` stage (HttpApi/DefaultStage) and its access log (ApiAccessLogs). */
export function createHttpApi(fleet: Construct, props: FleetHttpApiProps): FleetHttpApi {
  const { authorization } = props;
  const httpApi = new apigw.HttpApi(fleet, 'HttpApi', {
    description: 'Fleet: submit batches of tasks and follow them.',
    defaultIntegration: new HttpLambdaIntegration('ApiIntegration', props.apiFunction),
    // Every route needs a signed (IAM) or token-bearing (JWT) caller; nobody else gets in.
    defaultAuthorizer:
      authorization === 'iam'
        ? new HttpIamAuthorizer()
        : new HttpJwtAuthorizer('JwtAuthorizer', authorization.jwt.issuer, { jwtAudience: authorization.jwt.audience }),
    // The stage is made below, with throttling and an access log.
    createDefaultStage: false,
  });
  const apiAccessLogs = new logs.LogGroup(fleet, 'ApiAccessLogs', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
  // Same construct path as the stage HttpApi would make, so deployed stacks keep their stage.
  const apiStage = new apigw.HttpStage(httpApi, 'DefaultStage', {
    httpApi,
    stageName: '$default',
    autoDeploy: true,
    throttle: { ...DEFAULT_API_THROTTLE, ...props.throttle },
    accessLogSettings: {
      destination: new apigw.LogGroupLogDestination(apiAccessLogs),
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
  return { httpApi, apiStage, apiAccessLogs };
}
