/**
 * The scratch stack `npm run test:aws` deploys (`-c scratch=true`) must be
 * destroyable whole: nothing retained, buckets emptied before deletion. The
 * default stack keeps its data.
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { FleetStack } from '../../infra/fleet-stack';

type Resources = Record<string, { Type: string; DeletionPolicy?: string; UpdateReplacePolicy?: string; Properties?: Record<string, unknown> }>;

function synth(scratch: boolean): Resources {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [], '@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2': true } });
  const stack = new FleetStack(app, scratch ? 'Fleet-e2e-test' : 'Fleet-dev', { scratch });
  return (Template.fromStack(stack).toJSON() as { Resources: Resources }).Resources;
}

describe('the scratch stack (npm run test:aws)', () => {
  it('retains nothing: every resource with a deletion policy is deleted with the stack', () => {
    const resources = Object.entries(synth(true));
    const retained = resources.filter(([, r]) => r.DeletionPolicy !== undefined && r.DeletionPolicy !== 'Delete').map(([id, r]) => `${id} (${r.Type}: ${r.DeletionPolicy})`);
    expect(retained).toEqual([]);
    for (const type of ['AWS::DynamoDB::Table', 'AWS::S3::Bucket', 'AWS::SQS::Queue']) {
      const ofType = resources.filter(([, r]) => r.Type === type);
      expect(ofType.length, type).toBeGreaterThan(0);
      for (const [, r] of ofType) expect(r.DeletionPolicy, type).toBe('Delete');
    }
  });

  it('empties each bucket before deleting it (autoDeleteObjects)', () => {
    const resources = synth(true);
    const buckets = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::S3::Bucket').map(([id]) => id);
    const emptied = Object.values(resources)
      .filter((r) => r.Type === 'Custom::S3AutoDeleteObjects')
      .map((r) => (r.Properties?.BucketName as { Ref?: string } | undefined)?.Ref);
    expect(buckets.length).toBeGreaterThanOrEqual(2);
    expect(emptied.sort()).toEqual([...buckets].sort());
  });

  it('the default stack keeps its table and buckets when deleted', () => {
    const resources = Object.values(synth(false));
    for (const type of ['AWS::DynamoDB::Table', 'AWS::S3::Bucket']) {
      for (const r of resources.filter((x) => x.Type === type)) expect(r.DeletionPolicy, type).toBe('Retain');
    }
    expect(resources.some((r) => r.Type === 'Custom::S3AutoDeleteObjects')).toBe(false);
  });
});
