/**
 * Issue 4, autoscaling: the schedule, the autoscaler function and their IAM,
 * as the Fleet construct synthesizes them with FleetProps.autoscaling.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveTemplate, synthesizeTemplate } from '../../infra/local/template';
import { asArray, logicalIdOf, synth, type Resources, type Statement } from './synth';



function statementsOf(resources: Resources, roleId: string): Statement[] {
  return Object.values(resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy' && ((r.Properties?.Roles ?? []) as unknown[]).some((role) => JSON.stringify(role) === JSON.stringify({ Ref: roleId })))
    .flatMap((r) => (r.Properties?.PolicyDocument as { Statement: Statement[] }).Statement)
    .filter((s) => s.Effect === 'Allow');
}

describe('autoscaling (FleetProps.autoscaling)', () => {
  let synthesized: ReturnType<typeof synth>;
  let ids: { autoscaler: string; autoscalerRole: string; schedule: string; machine: string; table: string };

  beforeAll(() => {
    synthesized = synth('Autoscaling', { autoscaling: { min: 2, max: 40, tasksPerWorker: 4 } });
    const { stack } = synthesized;
    const { autoscalerFunction, autoscalingSchedule } = stack.fleet;
    if (!autoscalerFunction || !autoscalingSchedule) throw new Error('no autoscaler');
    ids = {
      autoscaler: logicalIdOf(stack, autoscalerFunction),
      autoscalerRole: logicalIdOf(stack, autoscalerFunction.role!),
      schedule: logicalIdOf(stack, autoscalingSchedule),
      machine: logicalIdOf(stack, stack.fleet.stateMachine),
      table: logicalIdOf(stack, stack.fleet.table),
    };
  });

  it('runs the autoscaler every minute, with the policy (defaults filled in) as its input', () => {
    const schedule = synthesized.resources[ids.schedule];
    expect(schedule?.Type).toBe('AWS::Scheduler::Schedule');
    expect(schedule?.Properties).toMatchObject({
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: { Arn: { 'Fn::GetAtt': [ids.autoscaler, 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 0 } },
    });
    const input = JSON.parse((schedule?.Properties?.Target as { Input: string }).Input) as unknown;
    expect(input).toEqual({ min: 2, max: 40, tasksPerWorker: 4, deadBand: 0.5 });
    // This one, and the admission reconciler's, which every fleet has.
    synthesized.template.resourceCountIs('AWS::Scheduler::Schedule', 2);
  });

  it("invokes it with a role of Fleet's own, which Scheduler alone may assume and which may only invoke the autoscaler", () => {
    const target = synthesized.resources[ids.schedule]?.Properties?.Target as { RoleArn: { 'Fn::GetAtt': [string, string] } };
    const roleId = target.RoleArn['Fn::GetAtt'][0];
    expect(roleId.startsWith('FleetAutoscalingScheduleRole')).toBe(true);
    expect(synthesized.resources[roleId]?.Properties?.AssumeRolePolicyDocument).toMatchObject({
      Statement: [
        {
          Action: 'sts:AssumeRole',
          Effect: 'Allow',
          Principal: { Service: 'scheduler.amazonaws.com' },
          Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
        },
      ],
    });
    const statements = statementsOf(synthesized.resources, roleId);
    expect(statements.flatMap((s) => asArray(s.Action))).toEqual(['lambda:InvokeFunction']);
    const resources = statements.flatMap((s) => asArray(s.Resource)).map((r) => JSON.stringify(r));
    expect(resources.length).toBeGreaterThan(0);
    for (const resource of resources) expect(resource).toContain(`"${ids.autoscaler}","Arn"`);
  });

  it('never runs a failed run again: no Scheduler retry, no Lambda async retry, and a run waiting over a minute is dropped', () => {
    synthesized.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: ids.autoscaler },
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 60,
    });
    expect(synthesized.resources[ids.autoscaler]?.Properties?.Timeout).toBe(120);
  });

  it('is lambdas/autoscaler.ts (locally too), with the table and the state machine in its environment', () => {
    const fn = synthesized.resources[ids.autoscaler];
    expect(fn?.Properties).toMatchObject({ Handler: 'index.handler', Runtime: 'nodejs24.x' });
    expect((fn?.Properties?.Environment as { Variables: Record<string, unknown> }).Variables).toMatchObject({
      TABLE_NAME: { Ref: ids.table },
      STATE_MACHINE_ARN: { Ref: ids.machine },
    });
    expect(fn?.Metadata?.['fleet:local-entry']).toEqual({ entry: 'lambdas/autoscaler.ts', handler: 'handler', root: 'fleet' });
  });

  it('may read and write the table, change running Map Runs and start the batches a raised cap admits, but not stop or redrive executions', () => {
    const statements = statementsOf(synthesized.resources, ids.autoscalerRole);
    const granted = (action: string) => statements.filter((s) => asArray(s.Action).includes(action)).flatMap((s) => asArray(s.Resource)).map((r) => JSON.stringify(r));
    const table = JSON.stringify({ 'Fn::GetAtt': [ids.table, 'Arn'] });
    for (const action of ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem']) expect(granted(action), action).toContain(table);
    expect(granted('states:UpdateMapRun').some((r) => r.includes(':mapRun:'))).toBe(true);
    for (const action of ['states:ListMapRuns', 'states:DescribeExecution']) expect(granted(action).some((r) => r.includes(':execution:')), action).toBe(true);
    expect(granted('states:StartExecution')).toEqual([JSON.stringify({ Ref: ids.machine })]);
    for (const action of ['states:StopExecution', 'states:RedriveExecution', 's3:PutObject', 'sqs:SendMessage']) {
      expect(statements.some((s) => asArray(s.Action).some((a) => a === action || (a.endsWith('*') && action.startsWith(a.slice(0, -1))))), action).toBe(false);
    }
  });

  it('refuses a bad policy at synth, naming the field', () => {
    expect(() => synth('BadMin', { autoscaling: { min: 0, max: 4 } })).toThrow(/autoscaling: min/);
    expect(() => synth('BadMax', { autoscaling: { min: 5, max: 4 } })).toThrow(/max must be at least min/);
    expect(() => synth('BadBand', { autoscaling: { min: 1, max: 4, deadBand: 1 } })).toThrow(/deadBand/);
  });
});

describe('without autoscaling', () => {
  it('has no autoscaling schedule and no autoscaler', () => {
    const { stack, template, resources } = synth('NoAutoscaling');
    // Only the admission reconciler's.
    template.resourceCountIs('AWS::Scheduler::Schedule', 1);
    expect(Object.keys(template.findResources('AWS::Scheduler::Schedule'))[0]).toMatch(/AdmissionReconcilerSchedule/);
    expect(stack.fleet.autoscalerFunction).toBeUndefined();
    expect(Object.values(resources).some((r) => (r.Metadata?.['fleet:local-entry'] as { entry?: string } | undefined)?.entry === 'lambdas/autoscaler.ts')).toBe(false);
  });
});

describe('the schedule in local mode', () => {
  const template = synthesizeTemplate({ autoscaling: { min: 1, max: 4 } });
  const scheduleId = Object.keys(template.Resources).find((id) => template.Resources[id]?.Type === 'AWS::Scheduler::Schedule' && id.includes('AutoscalingSchedule')) ?? '';
  const withSchedule = (change: (props: Record<string, unknown>) => void) => {
    const copy = structuredClone(template);
    change(copy.Resources[scheduleId]!.Properties!);
    return copy;
  };

  it('runs the synthesized schedule: every minute, the autoscaler, with the policy as input', () => {
    const schedule = resolveTemplate(template).schedules.find((s) => s.logicalId === scheduleId);
    expect(schedule).toMatchObject({ intervalMs: 60_000, input: { min: 1, max: 4, tasksPerWorker: 2, deadBand: 0.5 } });
  });

  it('refuses, by name, a schedule field it does not implement', () => {
    expect(() => resolveTemplate(withSchedule((p) => (p.StartDate = '2030-01-01T00:00:00Z')))).toThrow(/schedule field StartDate/);
    expect(() => resolveTemplate(withSchedule((p) => (p.FlexibleTimeWindow = { Mode: 'FLEXIBLE', MaximumWindowInMinutes: 5 })))).toThrow(/FlexibleTimeWindow\.Mode/);
    expect(() =>
      resolveTemplate(withSchedule((p) => ((p.Target as Record<string, unknown>).RetryPolicy = { MaximumRetryAttempts: 3 }))),
    ).toThrow(/Target\.RetryPolicy\.MaximumRetryAttempts/);
    expect(() => resolveTemplate(withSchedule((p) => ((p.Target as Record<string, unknown>).DeadLetterConfig = { Arn: 'x' })))).toThrow(/Target\.DeadLetterConfig/);
  });
});
