/**
 * Fleet: an HTTPS API that accepts batches of tasks and runs each task on its
 * own worker Lambda invocation inside a Step Functions Distributed Map.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { TABLE_KEYS } from '../lambdas/adapters/batch-repository';
import { BatchWorkflow } from './batch-workflow';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Template metadata that tells local mode which module and export a function runs. */
export const LOCAL_ENTRY_METADATA = 'fleet:local-entry';

export interface FleetProps {
  /**
   * How child executions run. EXPRESS is ~25x cheaper per short task but
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
}

export class Fleet extends Construct {
  readonly table: dynamodb.Table;
  readonly tasksBucket: s3.Bucket;
  readonly apiFunction: nodejs.NodejsFunction;
  readonly workerFunction: nodejs.NodejsFunction;
  readonly startBatchFunction: nodejs.NodejsFunction;
  readonly finishBatchFunction: nodejs.NodejsFunction;
  readonly stateMachine: sfn.StateMachine;
  readonly httpApi: apigw.HttpApi;

  constructor(scope: Construct, id: string, props: FleetProps = {}) {
    super(scope, id);
    const retentionDays = props.retentionDays ?? 7;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: TABLE_KEYS.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_KEYS.sortKey, type: dynamodb.AttributeType.STRING },
      // Load is bursty (a batch writes as fast as its workers run), so pay per request.
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: TABLE_KEYS.ttlAttribute,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy,
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

    this.tasksBucket = new s3.Bucket(this, 'TasksBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      // Task files and Map Run exports live as long as the batches they belong to.
      lifecycleRules: [{ expiration: Duration.days(retentionDays + 1) }],
      removalPolicy,
    });

    const common = {
      FLEET_RETENTION_DAYS: String(retentionDays),
      TABLE_NAME: this.table.tableName,
    };
    const fn = (name: string, entry: string, handler: string, extra: Partial<nodejs.NodejsFunctionProps> = {}) => {
      const f = new nodejs.NodejsFunction(this, name, {
        entry: path.join(repoRoot, entry),
        handler,
        runtime: lambda.Runtime.NODEJS_22_X,
        architecture: lambda.Architecture.ARM_64,
        memorySize: 512,
        timeout: Duration.seconds(30),
        logGroup: new logs.LogGroup(this, `${name}Logs`, { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY }),
        bundling: {
          minify: true,
          sourceMap: true,
          // Bundle the SDK too, so deployed code runs the versions package-lock.json pins.
          externalModules: [],
        },
        ...extra,
        environment: { ...props.environment, ...common, ...extra.environment },
      });
      (f.node.defaultChild as lambda.CfnFunction).addMetadata(LOCAL_ENTRY_METADATA, { entry, handler });
      return f;
    };

    this.workerFunction = fn('WorkerFunction', 'lambdas/worker.ts', 'handler', {
      memorySize: props.workerMemorySize ?? 1024,
      // Lambda's maximum: each attempt's own deadline (workerTimeout) is enforced inside.
      timeout: Duration.minutes(15),
    });
    const childExecutionType = props.childExecutionType ?? sfn.StateMachineType.EXPRESS;
    this.startBatchFunction = fn('StartBatchFunction', 'lambdas/batch-lifecycle.ts', 'start', {
      environment: { FLEET_CHILD_EXECUTION_TYPE: childExecutionType },
    });
    this.finishBatchFunction = fn('FinishBatchFunction', 'lambdas/batch-lifecycle.ts', 'finish', {
      // Recounting a 100,000-task batch reads every result once.
      timeout: Duration.minutes(5),
    });

    const workflow = new BatchWorkflow(this, 'Workflow', {
      startBatchFunction: this.startBatchFunction,
      finishBatchFunction: this.finishBatchFunction,
      workerFunction: this.workerFunction,
      tasksBucket: this.tasksBucket,
      childExecutionType,
    });
    this.stateMachine = new sfn.StateMachine(this, 'BatchStateMachine', {
      // A Distributed Map's parent must be STANDARD.
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromChainable(workflow.definition),
      comment: 'Fleet: one execution per batch, named after the batch id.',
    });

    this.apiFunction = fn('ApiFunction', 'lambdas/api.ts', 'handler', {
      environment: {
        TASKS_BUCKET: this.tasksBucket.bucketName,
        STATE_MACHINE_ARN: this.stateMachine.stateMachineArn,
        FLEET_MAX_TASKS_PER_BATCH: String(props.maxTasksPerBatch ?? 100_000),
      },
      // Parsing and storing a 100,000-task batch.
      memorySize: 1024,
    });

    this.table.grantReadWriteData(this.apiFunction);
    this.table.grantReadWriteData(this.startBatchFunction);
    this.table.grantReadWriteData(this.finishBatchFunction);
    this.table.grantWriteData(this.workerFunction);
    this.tasksBucket.grantPut(this.apiFunction);
    // DELETE /batches/{id} removes the batch's tasks file; only DeleteObject, only under batches/.
    this.apiFunction.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:DeleteObject'], resources: [this.tasksBucket.arnForObjects('batches/*')] }),
    );
    this.stateMachine.grantStartExecution(this.apiFunction);
    // cancelBatch stops a batch's execution; scaleWorkers finds its Map Run and changes it.
    // DescribeExecution: capacity held by a batch whose execution ended is reclaimed.
    this.stateMachine.grantExecution(this.apiFunction, 'states:StopExecution', 'states:ListMapRuns', 'states:DescribeExecution');
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
    // Start and Finish batch re-share the fleet-wide cap, so they too change
    // other batches' Map Runs. A standalone policy: were it in their default
    // policies, each function would depend on the state machine that invokes
    // it, a CloudFormation cycle.
    const lifecycleRoles = [this.startBatchFunction.role, this.finishBatchFunction.role].filter((role): role is iam.IRole => !!role);
    new iam.Policy(this, 'CapacitySharingPolicy', {
      roles: lifecycleRoles,
      statements: [
        new iam.PolicyStatement({
          actions: ['states:ListMapRuns', 'states:DescribeExecution'],
          resources: [
            Stack.of(this).formatArn({
              service: 'states',
              resource: 'execution',
              resourceName: `${this.stateMachine.stateMachineName}:*`,
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          ],
        }),
        updateMapRuns,
      ],
    });

    this.httpApi = new apigw.HttpApi(this, 'HttpApi', {
      description: 'Fleet: submit batches of tasks and follow them.',
      defaultIntegration: new HttpLambdaIntegration('ApiIntegration', this.apiFunction),
      // Callers sign requests with SigV4; nobody without IAM permission gets in.
      defaultAuthorizer: new HttpIamAuthorizer(),
    });

    new CfnOutput(this, 'ApiUrl', { value: this.httpApi.apiEndpoint, description: 'Fleet HTTPS API (IAM auth)' });
    new CfnOutput(this, 'StateMachineArn', { value: this.stateMachine.stateMachineArn, description: 'Watch batches here' });
  }
}
