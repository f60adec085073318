/**
 * The logical IDs of Fleet's stateful resources, pinned. A logical ID comes
 * from the construct path: were a refactor to move the table, a bucket or the
 * queue under another scope, `cdk deploy` would create a new one and delete
 * (or orphan, with RETAIN) the old one, its data with it. The AWS CDK guide:
 * "If you change a construct's ID or move it to a different location in your
 * code, AWS CloudFormation typically interprets this as a request to create a
 * new resource and delete the old one"
 * (https://docs.aws.amazon.com/cdk/v2/guide/refactor.html).
 * If this test fails, the change would replace deployed data: keep the old
 * construct id and scope instead of updating these values.
 */
import { Duration } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { logicalIdOf, synth } from './synth';

/** Every stateful resource Fleet makes, by logical ID, with the member that exposes it. */
const STATEFUL = {
  FleetTable4A611C9B: { type: 'AWS::DynamoDB::Table', member: 'table' },
  FleetTasksBucket57943F9B: { type: 'AWS::S3::Bucket', member: 'tasksBucket' },
  FleetAccessLogsBucket5DF67B64: { type: 'AWS::S3::Bucket', member: 'accessLogsBucket' },
  FleetDeadLetterQueue7A8227A0: { type: 'AWS::SQS::Queue', member: 'deadLetterQueue' },
} as const;
/** Replacing a state machine would strand the executions running on the old one. */
const STATE_MACHINES = {
  FleetBatchStateMachine42C3BA37: 'stateMachine',
  FleetFileJobsStateMachine1689C932: 'fileJobsStateMachine',
} as const;
const STATEFUL_TYPES = ['AWS::DynamoDB::Table', 'AWS::S3::Bucket', 'AWS::SQS::Queue'];

describe('logical IDs of stateful resources', () => {
  // Defaults, and every prop that adds resources: neither may move the stateful ones.
  const variants = {
    defaults: synth('LogicalIds'),
    'every optional part': synth('LogicalIdsFull', {
      workers: { thumbnail: { entry: 'examples/workers/thumbnail-worker.ts', timeout: Duration.minutes(3) } },
      autoscaling: { min: 1, max: 10 },
      tasksFileBuckets: ['my-data-bucket'],
      authorization: { jwt: { issuer: 'https://issuer.example.com', audience: ['fleet'] } },
    }),
  };

  for (const [name, { stack, resources }] of Object.entries(variants)) {
    it(`keeps the table, buckets and queue at their pinned logical IDs (${name})`, () => {
      // Arrange
      const fleet = stack.fleet;

      // Act
      const stateful = Object.entries(resources)
        .filter(([, resource]) => STATEFUL_TYPES.includes(resource.Type))
        .map(([id, resource]) => [id, resource.Type]);

      // Assert: exactly these, so a new stateful resource is pinned here too.
      expect(Object.fromEntries(stateful)).toEqual(Object.fromEntries(Object.entries(STATEFUL).map(([id, { type }]) => [id, type])));
      for (const [id, { member }] of Object.entries(STATEFUL)) expect(logicalIdOf(stack, fleet[member])).toBe(id);
    });

    it(`keeps the state machines at their pinned logical IDs (${name})`, () => {
      // Arrange
      const fleet = stack.fleet;

      // Act
      const machines = Object.keys(resources).filter((id) => resources[id]?.Type === 'AWS::StepFunctions::StateMachine');

      // Assert
      expect(machines.sort()).toEqual(Object.keys(STATE_MACHINES).sort());
      for (const [id, member] of Object.entries(STATE_MACHINES)) expect(logicalIdOf(stack, fleet[member])).toBe(id);
    });
  }
});
