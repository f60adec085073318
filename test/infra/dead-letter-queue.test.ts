/**
 * The dead-letter queue of failed tasks and what retry-failed needs, as the
 * Fleet construct synthesizes them.
 */
import { App, type CfnElement } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { FleetStack } from '../../infra/fleet-stack';

let stack: FleetStack;
let template: Template;
const idOf = (construct: { node: { defaultChild?: unknown } }) => stack.getLogicalId(construct.node.defaultChild as CfnElement);

beforeAll(() => {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [], '@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2': true } });
  stack = new FleetStack(app, 'Dlq');
  template = Template.fromStack(stack);
});

describe('dead-letter queue', () => {
  it('is one SQS queue, encrypted at rest, keeping messages 14 days', () => {
    template.resourceCountIs('AWS::SQS::Queue', 1);
    template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 86_400 });
  });

  it('refuses requests that are not over TLS', () => {
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: idOf(stack.fleet.deadLetterQueue) }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('is the worker’s, by URL in FLEET_DLQ_URL, and only the worker may send to it', () => {
    const queue = idOf(stack.fleet.deadLetterQueue);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      Environment: { Variables: Match.objectLike({ FLEET_DLQ_URL: { Ref: queue } }) },
    });
    const policies = template.findResources('AWS::IAM::Policy');
    const senders = Object.entries(policies).filter(([, policy]) =>
      JSON.stringify(policy).includes('"sqs:SendMessage"'),
    );
    expect(senders).toHaveLength(1);
    const [, sender] = senders[0]!;
    const roles = JSON.stringify((sender as { Properties: { Roles: unknown } }).Properties.Roles);
    expect(roles).toContain(idOf(stack.fleet.workerFunction.role as never));
    expect(JSON.stringify(sender)).toContain(`"${queue}","Arn"`);
  });
});

describe('retry-failed', () => {
  it('lets the API function read tasks files back, under batches/ only', () => {
    const api = idOf(stack.fleet.apiFunction.role as never);
    const policies = Object.values(template.findResources('AWS::IAM::Policy')) as { Properties: { Roles: unknown; PolicyDocument: { Statement: unknown[] } } }[];
    const apiStatements = policies.filter((p) => JSON.stringify(p.Properties.Roles).includes(api)).flatMap((p) => p.Properties.PolicyDocument.Statement);
    const reads = apiStatements.filter((s) => JSON.stringify(s).includes('"s3:GetObject"'));
    expect(reads).toHaveLength(1);
    expect(JSON.stringify(reads[0])).toContain('/batches/*');
  });
});
