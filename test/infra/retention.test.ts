/**
 * Retention and DELETE /batches/{id} in the template: TTL, the bucket's
 * lifecycle rule, the retention setting every function reads, and the one
 * S3 delete permission the API function needs.
 */
import { App, type CfnElement, type Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { FleetStack, type FleetStackProps } from '../../infra/fleet-stack';

function synth(props: FleetStackProps = {}) {
  // Bundling skipped: synthesis stays fast and needs no esbuild run.
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [], '@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2': true } });
  const stack = new FleetStack(app, 'RetentionTest', props);
  return { stack, template: Template.fromStack(stack) };
}

const logicalIdOf = (stack: Stack, construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);

type Statement = { Effect: string; Action: string | string[]; Resource: unknown };

/** Every statement of the AWS::IAM::Policy resources attached to a role. */
function statementsOfRole(template: Template, roleLogicalId: string): Statement[] {
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) => JSON.stringify(policy.Properties.Roles).includes(`"${roleLogicalId}"`))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement as Statement[]);
}
const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);

describe('DELETE /batches/{id}: S3 permission', () => {
  const { stack, template } = synth();
  const fleet = stack.fleet;
  const bucket = logicalIdOf(stack, fleet.tasksBucket);

  it('lets the API function delete objects under batches/ in the tasks bucket, and nothing more', () => {
    // Arrange
    const apiRole = logicalIdOf(stack, fleet.apiFunction.role!);

    // Act
    const deletes = statementsOfRole(template, apiRole).filter((s) => actionsOf(s).some((a) => a.startsWith('s3:Delete') || a === 's3:*'));

    // Assert: exactly s3:DeleteObject, scoped to the tasks files' prefix
    expect(deletes).toEqual([
      { Effect: 'Allow', Action: 's3:DeleteObject', Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucket, 'Arn'] }, '/batches/*']] } },
    ]);
  });

  it('gives no other Fleet function but the file jobs an S3 delete permission', () => {
    // The file jobs delete an upload once validated, and their own sort runs (test/infra/fleet-stack.test.ts).
    for (const fn of [fleet.workerFunction, fleet.startBatchFunction, fleet.finishBatchFunction, fleet.admissionReconcilerFunction]) {
      const actions = statementsOfRole(template, logicalIdOf(stack, fn.role!)).flatMap(actionsOf);
      expect(actions.filter((a) => a.startsWith('s3:Delete') || a === 's3:*' || a === '*')).toEqual([]);
    }
  });
});

describe('retention', () => {
  it('expires table items through TTL on expiresAt', () => {
    const { template } = synth();

    template.hasResourceProperties('AWS::DynamoDB::Table', { TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true } });
  });

  /** FLEET_RETENTION_DAYS of the API, worker, start and finish functions, and of any other function on the table. */
  function retentionSettings({ stack, template }: ReturnType<typeof synth>): { known: unknown[]; all: unknown[] } {
    const functions = template.findResources('AWS::Lambda::Function');
    const daysOf = (id: string) => functions[id]?.Properties.Environment?.Variables?.FLEET_RETENTION_DAYS;
    const { apiFunction, workerFunction, startBatchFunction, finishBatchFunction, fileJobsFunction } = stack.fleet;
    return {
      known: [apiFunction, workerFunction, startBatchFunction, finishBatchFunction, fileJobsFunction].map((fn) => daysOf(logicalIdOf(stack, fn))),
      all: Object.keys(functions)
        .filter((id) => functions[id]?.Properties.Environment?.Variables?.TABLE_NAME)
        .map(daysOf),
    };
  }

  it('defaults to 7 days: every function reads FLEET_RETENTION_DAYS=7 and task files expire a day later', () => {
    // Arrange / act
    const synthesized = synth();

    // Assert
    const { known, all } = retentionSettings(synthesized);
    expect(known).toEqual(['7', '7', '7', '7', '7']);
    expect(new Set(all)).toEqual(new Set(['7']));
    synthesized.template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ ExpirationInDays: 8, Status: 'Enabled' })]) },
    });
  });

  it('follows the retentionDays prop', () => {
    const synthesized = synth({ fleet: { retentionDays: 30 } });

    const { known, all } = retentionSettings(synthesized);
    expect(known).toEqual(['30', '30', '30', '30', '30']);
    expect(new Set(all)).toEqual(new Set(['30']));
    synthesized.template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ ExpirationInDays: 31 })]) },
    });
  });

  it('expires an upload never submitted after a day, and a multipart write that stopped midway after a day, whatever the retention', () => {
    for (const retentionDays of [7, 30]) {
      const { stack, template } = synth({ fleet: { retentionDays } });
      const bucket = template.findResources('AWS::S3::Bucket')[logicalIdOf(stack, stack.fleet.tasksBucket)];
      // Where rules overlap, S3 applies the shorter expiration: uploads/ go after a day, not after the batches' retention.
      // https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-conflicts.html
      expect(bucket?.Properties.LifecycleConfiguration).toEqual({
        Rules: [
          { ExpirationInDays: retentionDays + 1, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }, Status: 'Enabled' },
          { Prefix: 'uploads/', ExpirationInDays: 1, Status: 'Enabled' },
        ],
      });
    }
  });
});
