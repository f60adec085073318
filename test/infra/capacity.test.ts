/** The fleet-wide cap's workflow (admission starts executions; no waiting loop) and the permissions capacity sharing needs. */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { FleetStack } from '../../infra/fleet-stack';

const app = new App({ context: { 'aws:cdk:bundling-stacks': [], '@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2': true } });
const template = Template.fromStack(new FleetStack(app, 'CapacityTest'));

function definition(): { States: Record<string, Record<string, unknown>> } {
  const machine = Object.values(template.findResources('AWS::StepFunctions::StateMachine'))[0];
  const parts = machine?.Properties.DefinitionString['Fn::Join'][1] as unknown[];
  return JSON.parse(parts.map((p) => (typeof p === 'string' ? p : 'TOKEN')).join(''));
}

describe('capacity sharing', () => {
  it('starts only admitted batches: no state waits or loops, so a waiting batch grows no execution history', () => {
    const { States } = definition();
    expect(States['Start batch']?.Next).toBe('Capacity granted?');
    expect(States['Capacity granted?']).toEqual({
      Type: 'Choice',
      Choices: [{ Variable: '$.admitted', BooleanEquals: true, Next: 'Run tasks' }],
      Default: 'Not started',
    });
    expect(States['Not started']).toMatchObject({ Type: 'Succeed' });
    expect(Object.values(States).filter((s) => s.Type === 'Wait')).toEqual([]);
    // Storage errors of the bookends are the fleet's, retried for ~25 minutes, never the batch's.
    for (const name of ['Start batch', 'Finish batch']) {
      expect((States[name]?.Retry as unknown[]).at(-1), name).toEqual({
        ErrorEquals: ['States.ALL'],
        IntervalSeconds: 2,
        MaxAttempts: 30,
        BackoffRate: 2,
        MaxDelaySeconds: 60,
        JitterStrategy: 'FULL',
      });
    }
    expect((States['Start batch']?.Parameters as { Payload: unknown }).Payload).toEqual({ 'state.$': '$', 'stateMachineArn.$': '$$.StateMachine.Id' });
  });

  it('lets Start and Finish batch list, describe and update Map Runs and start admitted batches through a standalone policy (no dependency cycle)', () => {
    const policies = template.findResources('AWS::IAM::Policy');
    const [id, policy] = Object.entries(policies).find(([key]) => key.includes('CapacitySharingPolicy')) ?? [];
    expect(id).toBeDefined();
    const statements = policy!.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[];
    const actions = statements.flatMap((s) => s.Action).sort();
    expect(actions).toEqual(['states:DescribeExecution', 'states:ListMapRuns', 'states:StartExecution', 'states:UpdateMapRun']);
    expect(JSON.stringify(statements.map((s) => s.Resource))).not.toContain('"*"');
    const roles = JSON.stringify(policy!.Properties.Roles);
    expect(roles).toContain('StartBatchFunction');
    expect(roles).toContain('FinishBatchFunction');
    expect(roles).not.toContain('WorkerFunction');
  });
});
