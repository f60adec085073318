/**
 * Issue 4, worker hooks: per-type worker functions (the seed's
 * getWorkerInstance), as the Fleet construct synthesizes them.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { Duration } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { STATE_NAMES, invokeWorkerStateName, runTaskStateName } from '../../infra/batch-workflow';
import { loadDefinition } from '../../infra/local/asl/definition';
import { resolveTemplate, synthesizeTemplate } from '../../infra/local/template';
import { asArray, logicalIdOf, synth, type Resources, type Statement } from './synth';

interface AslState {
  Type: string;
  Choices?: { Variable: string; StringEquals?: string; Next: string }[];
  Default?: string;
  Retry?: unknown;
  Catch?: unknown;
  TimeoutSecondsPath?: string;
  ResultSelector?: unknown;
  Parameters?: { FunctionName?: string; Payload?: unknown; 'Payload.$'?: string } & Record<string, unknown>;
  ItemProcessor?: { StartAt: string; States: Record<string, AslState> };
  Branches?: { StartAt: string; States: Record<string, AslState> }[];
}

/** The Lambda call inside a Run task Parallel (its only branch's only state). */
const invokeOf = (runTask: AslState | undefined): AslState | undefined => {
  const branch = runTask?.Branches?.[0];
  return branch ? branch.States[branch.StartAt] : undefined;
};

const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
const THUMBNAIL_ENTRY = 'examples/workers/thumbnail-worker.ts';


/** The definition as JSON, each token written `<logicalId>` (or `<AWS::Partition>`). */
function definitionOf(resources: Resources): { StartAt: string; States: Record<string, AslState> } {
  const machine = Object.values(resources).find((r) => r.Type === 'AWS::StepFunctions::StateMachine');
  const join = machine?.Properties?.DefinitionString as { 'Fn::Join': [string, unknown[]] };
  const text = join['Fn::Join'][1]
    .map((part) => {
      if (typeof part === 'string') return part;
      const token = part as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
      return `<${token.Ref ?? token['Fn::GetAtt']?.[0]}>`;
    })
    .join('');
  return JSON.parse(text) as { StartAt: string; States: Record<string, AslState> };
}

const childOf = (resources: Resources) => {
  const processor = definitionOf(resources).States[STATE_NAMES.runTasks]?.ItemProcessor;
  if (!processor) throw new Error('no Run tasks item processor');
  return processor;
};

/** Every Allow statement of the policies attached to a role. */
function statementsOf(resources: Resources, roleId: string): Statement[] {
  return Object.values(resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy' && ((r.Properties?.Roles ?? []) as unknown[]).some((role) => JSON.stringify(role) === JSON.stringify({ Ref: roleId })))
    .flatMap((r) => (r.Properties?.PolicyDocument as { Statement: Statement[] }).Statement)
    .filter((s) => s.Effect === 'Allow');
}

const allows = (statements: Statement[], action: string, resource: unknown) =>
  statements.some((s) => asArray(s.Action).includes(action) && asArray(s.Resource).some((r) => JSON.stringify(r) === JSON.stringify(resource)));

describe('per-type worker functions (FleetProps.workers)', () => {
  let configured: ReturnType<typeof synth>;
  let ids: { thumbnail: string; thumbnailRole: string; worker: string; table: string; queue: string; machineRole: string };

  beforeAll(() => {
    configured = synth('Workers', {
      environment: { TEAM_SETTING: 'kept' },
      workers: { thumbnail: { entry: THUMBNAIL_ENTRY, memorySize: 2048, timeout: Duration.seconds(90) } },
    });
    const { stack } = configured;
    const thumbnail = stack.fleet.typeWorkerFunctions.thumbnail;
    if (!thumbnail) throw new Error('no thumbnail worker function');
    ids = {
      thumbnail: logicalIdOf(stack, thumbnail),
      thumbnailRole: logicalIdOf(stack, thumbnail.role!),
      worker: logicalIdOf(stack, stack.fleet.workerFunction),
      table: logicalIdOf(stack, stack.fleet.table),
      queue: logicalIdOf(stack, stack.fleet.deadLetterQueue),
      machineRole: logicalIdOf(stack, stack.fleet.stateMachine.role),
    };
  });

  it('makes a function per type with its own memory, timeout and handler, on the runtime Fleet uses', () => {
    const fn = configured.resources[ids.thumbnail];
    expect(fn?.Type).toBe('AWS::Lambda::Function');
    expect(fn?.Properties).toMatchObject({ MemorySize: 2048, Timeout: 90, Handler: 'index.handler', Runtime: 'nodejs24.x', Architectures: ['arm64'] });
    // The default worker keeps its own settings.
    expect(configured.resources[ids.worker]?.Properties).toMatchObject({ MemorySize: 1024, Timeout: 900 });
  });

  it('tells local mode which module it runs (fleet:local-entry)', () => {
    expect(configured.resources[ids.thumbnail]?.Metadata?.['fleet:local-entry']).toEqual({ entry: THUMBNAIL_ENTRY, handler: 'handler', root: 'project' });
  });

  it("gets Fleet's environment (table, dead-letter queue, retention) and the caller's variables", () => {
    expect(configured.resources[ids.thumbnail]?.Properties?.Environment).toEqual({
      Variables: {
        TEAM_SETTING: 'kept',
        FLEET_RETENTION_DAYS: '7',
        // How GET /workers lists attempts (FleetProps.workerListing; the default lists every one).
        FLEET_WORKER_LISTING: 'every-attempt',
        TABLE_NAME: { Ref: ids.table },
        FLEET_DLQ_URL: { Ref: ids.queue },
        // Powertools (infra/fleet-observability.ts): the same for every Fleet function.
        POWERTOOLS_SERVICE_NAME: 'Workers/Fleet',
        POWERTOOLS_METRICS_NAMESPACE: 'Fleet',
        POWERTOOLS_LOG_LEVEL: 'INFO',
        POWERTOOLS_TRACE_ENABLED: 'true',
      },
    });
  });

  it('may write the table, read an item (its batch, before a retry) and send to the dead-letter queue, and nothing beyond the default worker', () => {
    const statements = statementsOf(configured.resources, ids.thumbnailRole);
    const table = { 'Fn::GetAtt': [ids.table, 'Arn'] };
    for (const action of ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:GetItem']) expect(allows(statements, action, table), action).toBe(true);
    expect(allows(statements, 'sqs:SendMessage', { 'Fn::GetAtt': [ids.queue, 'Arn'] })).toBe(true);
    expect(statements.flatMap((s) => asArray(s.Action)).some((a) => a.startsWith('dynamodb:Query') || a.startsWith('dynamodb:Scan'))).toBe(false);
    const defaultActions = new Set(statementsOf(configured.resources, logicalIdOf(configured.stack, configured.stack.fleet.workerFunction.role!)).flatMap((s) => asArray(s.Action)));
    expect(statements.flatMap((s) => asArray(s.Action)).filter((a) => !defaultActions.has(a))).toEqual([]);
  });

  it('may be invoked by the state machine', () => {
    const statements = statementsOf(configured.resources, ids.machineRole);
    expect(allows(statements, 'lambda:InvokeFunction', { 'Fn::GetAtt': [ids.thumbnail, 'Arn'] })).toBe(true);
  });

  it('routes on $.task.type: the configured type to its function, every other type to the default worker', () => {
    const child = childOf(configured.resources);
    expect(child.StartAt).toBe(STATE_NAMES.routeByType);
    const route = child.States[STATE_NAMES.routeByType];
    expect(route).toEqual({
      Type: 'Choice',
      Choices: [{ Variable: '$.task.type', StringEquals: 'thumbnail', Next: runTaskStateName('thumbnail') }],
      Default: STATE_NAMES.runTask,
    });
    expect(invokeOf(child.States[runTaskStateName('thumbnail')])?.Parameters?.FunctionName).toBe(`<${ids.thumbnail}>`);
    expect(invokeOf(child.States[STATE_NAMES.runTask])?.Parameters?.FunctionName).toBe(`<${ids.worker}>`);
  });

  it('runs a typed task with the same payload, Retry, backstop timeout and Catch as Run task', () => {
    const child = childOf(configured.resources);
    const typed = child.States[runTaskStateName('thumbnail')];
    const base = child.States[STATE_NAMES.runTask];
    for (const field of ['Type', 'Retry', 'Catch', 'ResultSelector', 'Parameters'] as const) expect(typed?.[field], field).toEqual(base?.[field]);
    const typedInvoke = invokeOf(typed);
    const baseInvoke = invokeOf(base);
    expect(typed?.Branches?.[0]?.StartAt).toBe(invokeWorkerStateName('thumbnail'));
    expect(typedInvoke?.TimeoutSecondsPath).toBe('$.settings.attemptTimeoutSeconds');
    for (const field of ['Type', 'Retry', 'Catch', 'TimeoutSecondsPath', 'ResultSelector'] as const) expect(typedInvoke?.[field], field).toEqual(baseInvoke?.[field]);
    expect(typedInvoke?.Parameters?.['Payload.$']).toEqual(baseInvoke?.Parameters?.['Payload.$']);
    // A failure the typed function could not record is recorded by the default worker.
    expect(child.States[STATE_NAMES.recordFailure]?.Parameters?.FunctionName).toBe(`<${ids.worker}>`);
  });

  it('is valid ASL (asl-validator), and the strict local runner loads it as local mode resolves it', () => {
    const { definition } = resolveTemplate(synthesizeTemplate({ workers: { thumbnail: { entry: THUMBNAIL_ENTRY } } })).stateMachine;
    const validate = createRequire(import.meta.url)('asl-validator') as (d: unknown, o: { checkPaths: boolean; checkArn: boolean }) => { isValid: boolean; errorsText: () => string };
    const result = validate(JSON.parse(definition), { checkPaths: true, checkArn: true });
    expect(result.isValid, result.errorsText()).toBe(true);
    const loaded = loadDefinition(definition);
    expect(loaded.States[STATE_NAMES.runTasks]?.ItemProcessor?.StartAt).toBe(STATE_NAMES.routeByType);
  });

  it('stores an absolute entry relative to the project root, so local mode can find it', () => {
    const { resources, stack } = synth('AbsoluteEntry', { workers: { thumbnail: { entry: path.join(REPO_ROOT, THUMBNAIL_ENTRY), handler: 'handler' } } });
    const id = logicalIdOf(stack, stack.fleet.typeWorkerFunctions.thumbnail!);
    expect(resources[id]?.Metadata?.['fleet:local-entry']).toEqual({ entry: THUMBNAIL_ENTRY, handler: 'handler', root: 'project' });
  });

  it('refuses a key that is not a valid task type', () => {
    expect(() => synth('BadType', { workers: { '1thumb': { entry: THUMBNAIL_ENTRY } } })).toThrow(/not a valid task type/);
  });
});

describe('without workers', () => {
  it('keeps the child workflow as it was (Run task alone, no routing), and an empty map changes nothing', () => {
    const plain = synth('Plain');
    const empty = synth('Plain', { workers: {} });
    // The child is Run task alone, as before per-type workers.
    expect(childOf(plain.resources).StartAt).toBe(STATE_NAMES.runTask);
    expect(Object.keys(childOf(plain.resources).States).sort()).toEqual(
      [STATE_NAMES.failureRecorded, STATE_NAMES.recordFailure, STATE_NAMES.runTask, STATE_NAMES.storageUnavailable].sort(),
    );
    expect(plain.stack.fleet.typeWorkerFunctions).toEqual({});
    expect(empty.template.toJSON()).toEqual(plain.template.toJSON());
    plain.template.resourcePropertiesCountIs('AWS::Lambda::Function', { Handler: 'index.handler', MemorySize: 1024, Timeout: 900 }, 1);
    plain.template.hasResourceProperties('AWS::StepFunctions::StateMachine', { DefinitionString: Match.anyValue() });
  });
});
