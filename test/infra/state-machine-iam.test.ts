/**
 * Issue 7, item 3, for the state machine's own role: what Step Functions
 * itself does on Fleet's behalf is derived from the synthesized definition
 * (and the state machine's logging and tracing settings), and the role must
 * allow exactly that, on the right resources. Anything broader needs a
 * written reason in BROADER_THAN_NEEDED.
 *
 * What the definition needs, per the Step Functions developer guide:
 * - a Task `arn:aws:states:::lambda:invoke`: `lambda:InvokeFunction` on its FunctionName
 *   ("IAM policies for AWS Lambda", lambda-iam.html);
 * - a Distributed Map (iam-policies-eg-dist-map.html): `states:StartExecution`
 *   on the state machine itself (its children are executions of it),
 *   `states:DescribeExecution` and `states:StopExecution` on its executions
 *   (`execution:<name>:*`: not the state machine ARN, aws-cdk #35390), and,
 *   to redrive a Map Run, `states:RedriveExecution` on the Map Run's children
 *   (`execution:<name>/<Label>:*`, aws-cdk #35390, #28820);
 * - its ItemReader `s3:getObject`: `s3:GetObject` on the object read;
 * - its ResultWriter `s3:putObject`: `s3:PutObject`, `s3:GetObject`,
 *   `s3:ListMultipartUploadParts` and `s3:AbortMultipartUpload` under its Prefix;
 * - logging to CloudWatch Logs (cw-logs.html): the log delivery actions, on `*`;
 * - X-Ray tracing (xray-iam.html): the four X-Ray actions, on `*`.
 */
import { App, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { FleetStack, type FleetStackProps } from '../../infra/fleet-stack';
import { render } from './iam-render';

/** One action on one resource, resources rendered as text (`${Logical.Attr}` for intrinsics). */
export interface Permission {
  action: string;
  resource: string;
  /** Why it is needed (needs only). */
  why?: string;
}

const LOG_DELIVERY_ACTIONS = [
  'logs:CreateLogDelivery',
  'logs:GetLogDelivery',
  'logs:UpdateLogDelivery',
  'logs:DeleteLogDelivery',
  'logs:ListLogDeliveries',
  'logs:PutResourcePolicy',
  'logs:DescribeResourcePolicies',
  'logs:DescribeLogGroups',
];
const XRAY_ACTIONS = ['xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets'];
const RESULT_WRITER_ACTIONS = ['s3:PutObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload'];

/**
 * Grants broader than the definition needs, each with its reason. `matches`
 * receives the grant and the needs; every rule must match at least once.
 */
const BROADER_THAN_NEEDED: { name: string; reason: string; matches: (grant: Permission, needs: Permission[]) => boolean }[] = [
  {
    name: 'lambda versions and aliases',
    reason:
      "CDK's LambdaInvoke grant also covers `<function>:*`, the function's versions and aliases. The definition invokes only the unqualified ARN; the grant stays on the same function.",
    matches: (grant, needs) =>
      grant.action === 'lambda:InvokeFunction' && needs.some((n) => n.action === 'lambda:InvokeFunction' && grant.resource === `${n.resource}:*`),
  },
  {
    name: 'ResultWriter on the whole tasks bucket',
    reason:
      "CDK's ResultWriter grant covers every object of its bucket, not only its Prefix. That bucket is Fleet's tasks bucket, which holds only the tasks files (read by the ItemReader) and the Map Run exports.",
    matches: (grant, needs) =>
      RESULT_WRITER_ACTIONS.includes(grant.action) &&
      needs.some((n) => n.action === grant.action && n.why?.startsWith('ResultWriter') === true && grant.resource.endsWith('/*') && n.resource.startsWith(grant.resource.slice(0, -1))),
  },
];

type Json = Record<string, unknown>;
const asArray = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

interface AslState {
  Type: string;
  Resource?: string;
  Parameters?: Json;
  States?: Record<string, AslState>;
  ItemProcessor?: { ProcessorConfig?: { Mode?: string }; States: Record<string, AslState> };
  Iterator?: { States: Record<string, AslState> };
  Branches?: { States: Record<string, AslState> }[];
  ItemReader?: { Resource: string; Parameters: Json };
  ResultWriter?: { Resource: string; Parameters: Json };
  Label?: string;
}

const ARN_PREFIX = 'arn:${AWS::Partition}';
const integration = (resource: string | undefined) => resource?.startsWith(`${ARN_PREFIX}:states:::`) ? resource.slice(`${ARN_PREFIX}:states:::`.length) : undefined;

/** Every state, at any depth (Map item processors, Parallel branches). */
function allStates(states: Record<string, AslState>, path = ''): [string, AslState][] {
  return Object.entries(states).flatMap(([name, state]) => {
    const here: [string, AslState] = [`${path}${name}`, state];
    const nested = [state.ItemProcessor?.States, state.Iterator?.States, ...(state.Branches ?? []).map((b) => b.States)].filter((s): s is Record<string, AslState> => !!s);
    return [here, ...nested.flatMap((s) => allStates(s, `${path}${name} > `))];
  });
}

/** What the state machine needs, derived from its synthesized resource. */
export function needsOf(machineId: string, machine: { Properties?: Json }): Permission[] {
  const definition = JSON.parse(render(machine.Properties?.DefinitionString)) as { States: Record<string, AslState> };
  const needs: Permission[] = [];
  const executions = `${ARN_PREFIX}:states:\${AWS::Region}:\${AWS::AccountId}:execution:\${${machineId}.Name}`;
  const objects = (bucket: unknown, key: string) => `${ARN_PREFIX}:s3:::${String(bucket)}/${key}`;
  for (const [name, state] of allStates(definition.States)) {
    if (state.Type === 'Task') {
      const service = integration(state.Resource);
      if (service !== 'lambda:invoke') throw new Error(`${name}: Task resource ${state.Resource} has no IAM mapping in this test`);
      const fn = state.Parameters?.FunctionName;
      if (typeof fn !== 'string') throw new Error(`${name}: no static FunctionName`);
      needs.push({ action: 'lambda:InvokeFunction', resource: fn, why: `Task "${name}" invokes it` });
    }
    if (state.Type === 'Map' && state.ItemProcessor?.ProcessorConfig?.Mode === 'DISTRIBUTED') {
      if (!state.Label) throw new Error(`${name}: a Distributed Map without a Label`);
      needs.push(
        { action: 'states:StartExecution', resource: `\${${machineId}}`, why: `Distributed Map "${name}" starts its children as executions of this state machine` },
        { action: 'states:DescribeExecution', resource: `${executions}:*`, why: `Distributed Map "${name}" follows its child executions` },
        { action: 'states:StopExecution', resource: `${executions}:*`, why: `Distributed Map "${name}" stops its child executions` },
        { action: 'states:RedriveExecution', resource: `${executions}/${state.Label}:*`, why: `redriving the Map Run "${state.Label}" redrives its children` },
      );
      const reader = state.ItemReader;
      if (reader) {
        if (integration(reader.Resource) !== 's3:getObject') throw new Error(`${name}: ItemReader ${reader.Resource} has no IAM mapping in this test`);
        const key = reader.Parameters.Key;
        // A key read from the input (Key.$) can be any object of the bucket.
        needs.push({ action: 's3:GetObject', resource: objects(reader.Parameters.Bucket, typeof key === 'string' ? key : '*'), why: `ItemReader of "${name}"` });
      }
      const writer = state.ResultWriter;
      if (writer) {
        if (integration(writer.Resource) !== 's3:putObject') throw new Error(`${name}: ResultWriter ${writer.Resource} has no IAM mapping in this test`);
        const prefix = writer.Parameters.Prefix;
        const under = typeof prefix === 'string' && prefix ? `${prefix.replace(/\/+$/, '')}/*` : '*';
        for (const action of RESULT_WRITER_ACTIONS) needs.push({ action, resource: objects(writer.Parameters.Bucket, under), why: `ResultWriter of "${name}"` });
      }
    } else if (state.ItemReader || state.ResultWriter) {
      throw new Error(`${name}: ItemReader or ResultWriter outside a Distributed Map`);
    }
  }
  if (machine.Properties?.LoggingConfiguration) for (const action of LOG_DELIVERY_ACTIONS) needs.push({ action, resource: '*', why: 'logging to CloudWatch Logs (no resource-level permissions)' });
  if ((machine.Properties?.TracingConfiguration as { Enabled?: boolean } | undefined)?.Enabled) {
    for (const action of XRAY_ACTIONS) needs.push({ action, resource: '*', why: 'X-Ray tracing (no resource-level permissions)' });
  }
  return needs;
}

/** Every Allow of every policy on the role, as single permissions; managed policies and Deny are reported as such. */
export function grantsOf(roleId: string, resources: Record<string, { Type: string; Properties?: Json }>): Permission[] {
  const grants: Permission[] = [];
  const role = resources[roleId];
  if (!role) throw new Error(`no role ${roleId}`);
  if (role.Properties?.ManagedPolicyArns) grants.push({ action: 'managed policy', resource: JSON.stringify(role.Properties.ManagedPolicyArns) });
  const documents: unknown[] = ((role.Properties?.Policies ?? []) as { PolicyDocument: unknown }[]).map((p) => p.PolicyDocument);
  for (const resource of Object.values(resources)) {
    if (resource.Type !== 'AWS::IAM::Policy') continue;
    if (!((resource.Properties?.Roles ?? []) as { Ref?: string }[]).some((r) => r.Ref === roleId)) continue;
    documents.push(resource.Properties?.PolicyDocument);
  }
  for (const document of documents) {
    for (const statement of (document as { Statement: { Effect: string; Action: string | string[]; Resource: unknown }[] }).Statement) {
      if (statement.Effect !== 'Allow') continue;
      for (const action of asArray(statement.Action)) for (const r of asArray(statement.Resource)) grants.push({ action, resource: render(r) });
    }
  }
  return grants;
}

const glob = (pattern: string) => new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i');
/** Whether a granted action/resource covers the needed one (IAM wildcards; resources compared as rendered text). */
const covers = (grant: Permission, need: Permission) => glob(grant.action).test(need.action) && (grant.resource === need.resource || glob(grant.resource).test(need.resource));

export interface CheckResult {
  /** Needs no grant covers. */
  missing: string[];
  /** Grants that are neither exactly a need nor justified. */
  unexplained: string[];
  /** Justifications that matched no grant. */
  stale: string[];
}

/** Compares what the definition needs with what the role allows. */
export function check(needs: Permission[], grants: Permission[], broader = BROADER_THAN_NEEDED): CheckResult {
  const missing = needs.filter((need) => !grants.some((grant) => covers(grant, need))).map((n) => `${n.action} on ${n.resource} (${n.why})`);
  const used = new Set<string>();
  const unexplained: string[] = [];
  for (const grant of grants) {
    if (needs.some((need) => need.action === grant.action && need.resource === grant.resource)) continue;
    const rule = broader.find((r) => r.matches(grant, needs));
    if (rule) used.add(rule.name);
    else unexplained.push(`${grant.action} on ${grant.resource}`);
  }
  const stale = broader.filter((r) => !used.has(r.name)).map((r) => r.name);
  return { missing, unexplained, stale };
}

function synth(props: FleetStackProps) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [], '@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2': true } });
  const stack = new FleetStack(app, 'Test', props);
  const resources = (Template.fromStack(stack).toJSON() as { Resources: Record<string, { Type: string; Properties?: Json }> }).Resources;
  const machineId = stack.getLogicalId(stack.fleet.stateMachine.node.defaultChild as CfnElement);
  const machine = resources[machineId];
  if (!machine) throw new Error('no state machine');
  const roleId = (machine.Properties?.RoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  const fn = (f: { node: { defaultChild?: unknown } }) => stack.getLogicalId(f.node.defaultChild as CfnElement);
  return { stack, resources, machineId, machine, roleId, fn };
}

const STACKS: [string, FleetStackProps][] = [
  ['the default stack', {}],
  ['a stack with a per-type worker', { fleet: { workers: { thumbnail: { entry: 'examples/workers/thumbnail-worker.ts' } } } }],
];

describe("the state machine's role allows exactly what its definition uses (issue 7, item 3)", () => {
  for (const [label, props] of STACKS) {
    describe(label, () => {
      const { stack, resources, machineId, machine, roleId, fn } = synth(props);
      const needs = needsOf(machineId, machine);
      const grants = grantsOf(roleId, resources);

      it('derives the needs from the definition: each Lambda it invokes, the Distributed Map, its ItemReader and ResultWriter, logs and X-Ray', () => {
        const invoked = needs.filter((n) => n.action === 'lambda:InvokeFunction').map((n) => n.resource);
        const fleet = stack.fleet;
        const expected = [fleet.startBatchFunction, fleet.finishBatchFunction, fleet.workerFunction, ...Object.values(fleet.typeWorkerFunctions)].map((f) => `\${${fn(f)}.Arn}`);
        expect(new Set(invoked)).toEqual(new Set(expected));
        expect(needs.map((n) => n.action)).toEqual(expect.arrayContaining(['states:StartExecution', 'states:RedriveExecution', 's3:GetObject', 's3:PutObject', ...LOG_DELIVERY_ACTIONS, ...XRAY_ACTIONS]));
        const bucket = `\${${fn(fleet.tasksBucket)}}`;
        expect(needs).toContainEqual(expect.objectContaining({ action: 's3:PutObject', resource: `arn:\${AWS::Partition}:s3:::${bucket}/map-runs/*` }));
      });

      it('grants every need on the right resource: StartExecution on itself, Describe/Stop on its executions, redrive on the Map Run children', () => {
        expect(check(needs, grants).missing).toEqual([]);
        // The Distributed Map points of RESEARCH.md, spelled out.
        const own = grants.filter((g) => g.action === 'states:StartExecution').map((g) => g.resource);
        expect(own).toEqual([`\${${machineId}}`]);
        for (const action of ['states:DescribeExecution', 'states:StopExecution']) {
          const on = grants.filter((g) => g.action === action).map((g) => g.resource);
          expect(on, action).toEqual([`arn:\${AWS::Partition}:states:\${AWS::Region}:\${AWS::AccountId}:execution:\${${machineId}.Name}:*`]);
        }
        expect(grants.filter((g) => g.action === 'states:RedriveExecution').map((g) => g.resource)).toEqual([
          `arn:\${AWS::Partition}:states:\${AWS::Region}:\${AWS::AccountId}:execution:\${${machineId}.Name}/FleetTasks:*`,
        ]);
      });

      it('grants nothing beyond the needs except the justified list, and no wildcard action or resource besides logs and X-Ray', () => {
        const result = check(needs, grants);
        expect(result.unexplained, 'granted, neither needed nor justified').toEqual([]);
        expect(result.stale, 'justified, but no grant needs the reason any more').toEqual([]);
        expect(grants.filter((g) => g.action.endsWith(':*') || g.action === '*')).toEqual([]);
        expect(grants.filter((g) => g.resource === '*').every((g) => g.action.startsWith('logs:') || g.action.startsWith('xray:'))).toBe(true);
        expect(grants.some((g) => g.action === 'managed policy')).toBe(false);
      });
    });
  }

  it('the check itself catches a missing grant, a grant on the wrong resource, and an unjustified broad grant', () => {
    const { resources, machineId, machine, roleId } = synth({});
    const needs = needsOf(machineId, machine);
    const grants = grantsOf(roleId, resources);
    const withoutStart = grants.filter((g) => g.action !== 'states:StartExecution');
    expect(check(needs, withoutStart).missing).toEqual([expect.stringContaining('states:StartExecution')]);
    // The aws-cdk #35390 bug: Describe/Stop on the state machine's ARN instead of its executions.
    const onMachine = grants.map((g) => (g.action === 'states:DescribeExecution' ? { ...g, resource: `\${${machineId}}` } : g));
    expect(check(needs, onMachine).missing).toEqual([expect.stringContaining('states:DescribeExecution')]);
    expect(check(needs, onMachine).unexplained).toEqual([`states:DescribeExecution on \${${machineId}}`]);
    const broad = [...grants, { action: 's3:GetObject', resource: '*' }, { action: 'states:*', resource: `\${${machineId}}` }];
    expect(check(needs, broad).unexplained).toEqual([`s3:GetObject on *`, `states:* on \${${machineId}}`]);
    expect(check(needs, grants, [...BROADER_THAN_NEEDED, { name: 'unused', reason: '', matches: () => false }]).stale).toEqual(['unused']);
  });

  it('the check catches an execution ARN broader or narrower than the Distributed Map needs', () => {
    const { resources, machineId, machine, roleId } = synth({});
    const needs = needsOf(machineId, machine);
    const grants = grantsOf(roleId, resources);
    const executions = `arn:\${AWS::Partition}:states:\${AWS::Region}:\${AWS::AccountId}:execution:`;
    const stopOn = (resource: string) => grants.map((g) => (g.action === 'states:StopExecution' ? { ...g, resource } : g));
    // Broader: every state machine's executions. Covered, but not explained.
    const broader = check(needs, stopOn(`${executions}*`));
    expect(broader.missing).toEqual([]);
    expect(broader.unexplained).toEqual([`states:StopExecution on ${executions}*`]);
    // Narrower: one named execution, where the Map stops any of its children.
    const narrower = check(needs, stopOn(`${executions}\${${machineId}.Name}:batch-1`));
    expect(narrower.missing).toEqual([expect.stringContaining('states:StopExecution')]);
    // A Lambda the definition invokes, inside the child's Parallel, left out of the grants.
    const worker = needs.find((n) => n.why?.includes('Invoke worker'));
    expect(worker).toBeDefined();
    const withoutWorker = grants.filter((g) => !(g.action === 'lambda:InvokeFunction' && g.resource.startsWith(worker?.resource ?? '?')));
    expect(check(needs, withoutWorker).missing).toEqual(expect.arrayContaining([expect.stringContaining('Run task > Invoke worker')]));
  });
});

describe("the file-jobs state machine's role allows exactly what its definition uses", () => {
  for (const [label, props] of [
    ['the default stack', {}],
    ['tracing off', { fleet: { tracing: false } }],
  ] as [string, FleetStackProps][]) {
    describe(label, () => {
      const { stack, resources, fn } = synth(props);
      const machineId = fn(stack.fleet.fileJobsStateMachine);
      const machine = resources[machineId];
      if (!machine) throw new Error('no file-jobs state machine');
      const roleId = (machine.Properties?.RoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
      const needs = needsOf(machineId, machine);
      const grants = grantsOf(roleId, resources);
      // No Distributed Map and no S3 integration: only the one function's versions can be broader than needed.
      const broader = BROADER_THAN_NEEDED.filter((rule) => rule.name === 'lambda versions and aliases');

      it('derives the needs from the definition: the file-jobs function alone, logs, and X-Ray when traced', () => {
        const invoked = new Set(needs.filter((n) => n.action === 'lambda:InvokeFunction').map((n) => n.resource));
        expect(invoked).toEqual(new Set([`\${${fn(stack.fleet.fileJobsFunction)}.Arn}`]));
        expect(needs.filter((n) => /^(states|s3):/.test(n.action))).toEqual([]);
        expect(needs.some((n) => n.action.startsWith('xray:'))).toBe(props.fleet?.tracing !== false);
      });

      it('grants every need and nothing beyond but the function\'s versions and aliases; no wildcard besides logs and X-Ray', () => {
        expect(check(needs, grants, broader)).toEqual({ missing: [], unexplained: [], stale: [] });
        expect(grants.filter((g) => g.action.endsWith(':*') || g.action === '*')).toEqual([]);
        expect(grants.filter((g) => g.resource === '*').every((g) => g.action.startsWith('logs:') || g.action.startsWith('xray:'))).toBe(true);
        expect(grants.some((g) => g.action === 'managed policy')).toBe(false);
      });

      it('is not the batch state machine\'s role: neither may start or invoke what the other does', () => {
        expect(roleId).not.toBe(fn(stack.fleet.stateMachine.role));
        expect(grants.some((g) => g.resource.includes(fn(stack.fleet.workerFunction)))).toBe(false);
      });
    });
  }
});
