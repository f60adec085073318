/**
 * The deployed API's security settings, as the template has them: IAM auth
 * by default or a JWT authorizer, throttling, an access log without bodies
 * or query strings, execution logs without task data, tracing, the latest
 * Lambda runtime, an encrypted table with point-in-time recovery and S3
 * access logs.
 */
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { describe, expect, it } from 'vitest';
import { DEFAULT_API_THROTTLE, type FleetProps } from '../../infra/fleet';
import { FleetStack } from '../../infra/fleet-stack';

function synth(props: FleetProps = {}) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [], '@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2': true } });
  const stack = new FleetStack(app, 'Security', { fleet: props });
  const template = Template.fromStack(stack);
  const logicalId = (construct: { node: { defaultChild?: unknown } }) => stack.resolve((construct.node.defaultChild as { logicalId: string }).logicalId) as string;
  return { stack, template, fleet: stack.fleet, logicalId };
}

describe('API authorization', () => {
  it('requires IAM (SigV4) on every route by default, with no other authorizer', () => {
    const { template } = synth();

    template.allResourcesProperties('AWS::ApiGatewayV2::Route', { AuthorizationType: 'AWS_IAM' });
    template.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 0);
    template.hasOutput('*', { Description: 'Fleet HTTPS API (IAM auth)' });
  });

  it('uses a JWT authorizer on every route when asked, with the issuer and audience given', () => {
    const { template } = synth({ authorization: { jwt: { issuer: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc', audience: ['fleet-client'] } } });

    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      IdentitySource: ['$request.header.Authorization'],
      JwtConfiguration: { Issuer: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc', Audience: ['fleet-client'] },
    });
    template.allResourcesProperties('AWS::ApiGatewayV2::Route', { AuthorizationType: 'JWT', AuthorizerId: Match.anyValue() });
    template.hasOutput('*', { Description: 'Fleet HTTPS API (JWT auth)' });
  });
});

describe('the API stage', () => {
  it('is the one $default stage, auto-deployed, at the path HttpApi made it before (no replacement on update)', () => {
    const { template, fleet } = synth();

    template.resourceCountIs('AWS::ApiGatewayV2::Stage', 1);
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', { StageName: '$default', AutoDeploy: true });
    expect(fleet.apiStage.node.path).toBe('Security/Fleet/HttpApi/DefaultStage');
  });

  it(`throttles every route at ${DEFAULT_API_THROTTLE.rateLimit} requests/s (burst ${DEFAULT_API_THROTTLE.burstLimit}) by default`, () => {
    const { template } = synth();

    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: DEFAULT_API_THROTTLE.rateLimit, ThrottlingBurstLimit: DEFAULT_API_THROTTLE.burstLimit },
    });
  });

  it('takes throttling from props, keeping the default for a field left out', () => {
    const { template } = synth({ throttle: { rateLimit: 5 } });

    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 5, ThrottlingBurstLimit: DEFAULT_API_THROTTLE.burstLimit },
    });
  });

  it('writes an access log line per request to its own log group: who, what, status; never a body or query string', () => {
    const { template, fleet, logicalId } = synth();

    const stage = Object.values(template.findResources('AWS::ApiGatewayV2::Stage'))[0] as { Properties: { AccessLogSettings: { DestinationArn: unknown; Format: string } } };
    const format = JSON.parse(stage.Properties.AccessLogSettings.Format) as Record<string, string>;

    expect(stage.Properties.AccessLogSettings.DestinationArn).toEqual({ 'Fn::GetAtt': [logicalId(fleet.apiAccessLogs), 'Arn'] });
    expect(format.requestId).toBe('$context.requestId');
    expect(Object.values(format).sort()).toEqual(
      [
        '$context.authorizer.error',
        '$context.error.message',
        '$context.httpMethod',
        '$context.identity.sourceIp',
        '$context.identity.userArn',
        '$context.integrationErrorMessage',
        '$context.path',
        '$context.requestId',
        '$context.requestTimeEpoch',
        '$context.responseLatency',
        '$context.responseLength',
        '$context.status',
      ].sort(),
    );
  });
});

describe('logs and traces', () => {
  it('logs the batch state machine at ERROR without execution data, and traces it with X-Ray', () => {
    const { template, fleet, logicalId } = synth();

    // The batch state machine's own settings (the file jobs' log ALL: test/infra/fleet-stack.test.ts).
    expect(template.findResources('AWS::StepFunctions::StateMachine')[logicalId(fleet.stateMachine)]?.Properties).toMatchObject({
      LoggingConfiguration: {
        Level: 'ERROR',
        IncludeExecutionData: false,
        Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [logicalId(fleet.stateMachineLogs), 'Arn'] } } }],
      },
      TracingConfiguration: { Enabled: true },
    });
  });

  it('logs ALL when asked, still without execution data; tracing can be turned off', () => {
    const { template, fleet, logicalId } = synth({ stateMachineLogLevel: sfn.LogLevel.ALL, tracing: false });

    const machines = template.findResources('AWS::StepFunctions::StateMachine');
    expect(machines[logicalId(fleet.stateMachine)]?.Properties).toMatchObject({
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: false },
      TracingConfiguration: { Enabled: false },
    });
    // Tracing off turns it off for the file jobs too.
    expect(machines[logicalId(fleet.fileJobsStateMachine)]?.Properties).toMatchObject({ TracingConfiguration: { Enabled: false } });
  });
});

describe('functions, table and buckets', () => {
  it('runs every function on Node.js 24', () => {
    const { template } = synth();

    const runtimes = Object.values(template.findResources('AWS::Lambda::Function')).map((fn) => (fn as { Properties: { Runtime?: string } }).Properties.Runtime);
    expect(runtimes.length).toBeGreaterThanOrEqual(4);
    expect(new Set(runtimes)).toEqual(new Set(['nodejs24.x']));
  });

  it('encrypts the table and keeps point-in-time recovery', () => {
    const { template } = synth();

    template.hasResourceProperties('AWS::DynamoDB::Table', {
      SSESpecification: { SSEEnabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
  });

  it('logs access to the tasks bucket into a private, encrypted, TLS-only bucket, through a bucket policy rather than an ACL', () => {
    const { template, fleet, logicalId } = synth();
    const logs = logicalId(fleet.accessLogsBucket);

    template.hasResourceProperties('AWS::S3::Bucket', { LoggingConfiguration: { DestinationBucketName: { Ref: logs }, LogFilePrefix: 'tasks-bucket/' } });
    const logBucket = template.toJSON().Resources[logs] as { Properties: Record<string, unknown> };
    expect(logBucket.Properties.AccessControl).toBeUndefined();
    expect(logBucket.Properties).toMatchObject({
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logs },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'logging.s3.amazonaws.com' },
            Action: 's3:PutObject',
            Condition: { ArnLike: { 'aws:SourceArn': { 'Fn::GetAtt': [logicalId(fleet.tasksBucket), 'Arn'] } } },
          }),
        ]),
      },
    });
  });
});
