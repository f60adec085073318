import { App, type CfnElement, type Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { FleetStack, type FleetStackProps } from '../../infra/fleet-stack';
import { LIMITS, RETRY_BACKOFF } from '../../lambdas/domain/config';

// ---------------------------------------------------------------- helpers

interface Synth {
  stack: FleetStack;
  template: Template;
  resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

function synth(props: FleetStackProps = {}): Synth {
  // Bundling skipped: synthesis stays fast and needs no esbuild run.
  const app = new App({
    context: { 'aws:cdk:bundling-stacks': [], '@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2': true },
  });
  const stack = new FleetStack(app, 'Test', props);
  const template = Template.fromStack(stack);
  const json = template.toJSON() as { Resources: Synth['resources'] };
  return { stack, template, resources: json.Resources };
}

function logicalIdOf(stack: Stack, construct: IConstruct): string {
  return stack.getLogicalId(construct.node.defaultChild as CfnElement);
}

/** The subset of Amazon States Language these tests read. */
interface AslRetrier {
  ErrorEquals: string[];
  IntervalSeconds?: number;
  MaxAttempts?: number;
  BackoffRate?: number;
  MaxDelaySeconds?: number;
  JitterStrategy?: string;
}
interface AslCatcher {
  ErrorEquals: string[];
  Next: string;
  ResultPath?: string | null;
}
interface AslState {
  Type: string;
  Next?: string;
  End?: boolean;
  Resource?: string;
  Parameters?: Record<string, unknown>;
  Retry?: AslRetrier[];
  Catch?: AslCatcher[];
  TimeoutSecondsPath?: string;
  TimeoutSeconds?: number;
  Label?: string;
  MaxConcurrencyPath?: string;
  MaxConcurrency?: number;
  ItemReader?: { Resource: string; ReaderConfig?: { InputType?: string }; Parameters?: Record<string, unknown> };
  ResultWriter?: { Resource: string; Parameters?: Record<string, unknown>; WriterConfig?: Record<string, unknown> };
  ItemProcessor?: { ProcessorConfig?: { Mode?: string; ExecutionType?: string }; StartAt: string; States: Record<string, AslState> };
}
interface AslMachine {
  StartAt: string;
  States: Record<string, AslState>;
}

interface Definition {
  asl: AslMachine;
  /** The CloudFormation token a `${TOKEN:n}` placeholder stands for. */
  token: (placeholder: unknown) => unknown;
}

/**
 * The state machine's DefinitionString is an Fn::Join of literal JSON text and
 * tokens (Refs, GetAtts). Tokens become `${TOKEN:n}` placeholders so the
 * joined text parses as JSON; `token()` maps a placeholder back.
 */
function parseDefinition(resources: Synth['resources']): Definition {
  const machines = Object.values(resources).filter((r) => r.Type === 'AWS::StepFunctions::StateMachine');
  expect(machines).toHaveLength(1);
  const definition = machines[0]?.Properties?.DefinitionString as { 'Fn::Join': [string, unknown[]] } | string;
  const tokens: unknown[] = [];
  let text: string;
  if (typeof definition === 'string') {
    text = definition;
  } else {
    const [separator, parts] = definition['Fn::Join'];
    text = parts
      .map((part) => {
        if (typeof part === 'string') return part;
        tokens.push(part);
        return `\${TOKEN:${tokens.length - 1}}`;
      })
      .join(separator);
  }
  const asl = JSON.parse(text) as AslMachine;
  const token = (placeholder: unknown): unknown => {
    const match = typeof placeholder === 'string' ? /^\$\{TOKEN:(\d+)\}$/.exec(placeholder) : null;
    if (!match) throw new Error(`not a single token placeholder: ${JSON.stringify(placeholder)}`);
    return tokens[Number(match[1])];
  };
  return { asl, token };
}

function state(states: Record<string, AslState> | undefined, name: string): AslState {
  const found = states?.[name];
  if (!found) throw new Error(`state "${name}" is missing; states: ${Object.keys(states ?? {}).join(', ')}`);
  return found;
}

type Statement = { Effect: string; Action: string | string[]; Resource: unknown };

/** Every policy statement attached (by a AWS::IAM::Policy) to the role with this logical id. */
function statementsOfRole(resources: Synth['resources'], roleLogicalId: string): Statement[] {
  const statements: Statement[] = [];
  for (const resource of Object.values(resources)) {
    if (resource.Type !== 'AWS::IAM::Policy') continue;
    const roles = (resource.Properties?.Roles ?? []) as unknown[];
    if (!roles.some((role) => JSON.stringify(role) === JSON.stringify({ Ref: roleLogicalId }))) continue;
    const document = resource.Properties?.PolicyDocument as { Statement: Statement[] };
    statements.push(...document.Statement);
  }
  // Inline policies on the role itself count too.
  const role = resources[roleLogicalId];
  for (const inline of (role?.Properties?.Policies ?? []) as { PolicyDocument: { Statement: Statement[] } }[]) {
    statements.push(...inline.PolicyDocument.Statement);
  }
  return statements;
}

const actionsOf = (statement: Statement): string[] => (Array.isArray(statement.Action) ? statement.Action : [statement.Action]);
const resourcesOf = (statement: Statement): unknown[] => (Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource]);

// ---------------------------------------------------------------- tests

describe('FleetStack (default props)', () => {
  let synthesized: Synth;
  let definition: Definition;
  let ids: { worker: string; api: string; start: string; finish: string; stateMachine: string; bucket: string; table: string };
  let roles: { worker: string; api: string; stateMachine: string };

  beforeAll(() => {
    synthesized = synth();
    definition = parseDefinition(synthesized.resources);
    const { stack } = synthesized;
    const fleet = stack.fleet;
    ids = {
      worker: logicalIdOf(stack, fleet.workerFunction),
      api: logicalIdOf(stack, fleet.apiFunction),
      start: logicalIdOf(stack, fleet.startBatchFunction),
      finish: logicalIdOf(stack, fleet.finishBatchFunction),
      stateMachine: logicalIdOf(stack, fleet.stateMachine),
      bucket: logicalIdOf(stack, fleet.tasksBucket),
      table: logicalIdOf(stack, fleet.table),
    };
    roles = {
      worker: logicalIdOf(stack, fleet.workerFunction.role!),
      api: logicalIdOf(stack, fleet.apiFunction.role!),
      stateMachine: logicalIdOf(stack, fleet.stateMachine.role),
    };
  });

  describe('parent state machine', () => {
    it('is STANDARD (a Distributed Map parent must be)', () => {
      synthesized.template.resourceCountIs('AWS::StepFunctions::StateMachine', 1);
      synthesized.template.hasResourceProperties('AWS::StepFunctions::StateMachine', { StateMachineType: 'STANDARD' });
    });

    it('runs Start batch → (Capacity granted? / Not started) → Run tasks → Finish batch', () => {
      const { asl } = definition;

      expect(asl.StartAt).toBe('Start batch');
      expect(Object.keys(asl.States).sort()).toEqual(['Capacity granted?', 'Finish batch', 'Not started', 'Run tasks', 'Start batch']);
      expect(state(asl.States, 'Start batch')).toMatchObject({ Type: 'Task', Next: 'Capacity granted?' });
      expect(state(asl.States, 'Run tasks')).toMatchObject({ Type: 'Map', Next: 'Finish batch' });
      expect(state(asl.States, 'Finish batch')).toMatchObject({ Type: 'Task', End: true });
    });

    it('invokes the start and finish functions from the bookend states', () => {
      const { asl, token } = definition;

      const start = state(asl.States, 'Start batch');
      const finish = state(asl.States, 'Finish batch');

      expect(start.Resource).toMatch(/:states:::lambda:invoke$/);
      expect(token(start.Parameters?.FunctionName)).toEqual({ 'Fn::GetAtt': [ids.start, 'Arn'] });
      expect(token(finish.Parameters?.FunctionName)).toEqual({ 'Fn::GetAtt': [ids.finish, 'Arn'] });
    });
  });

  describe('Run tasks (Distributed Map)', () => {
    let map: AslState;
    beforeAll(() => {
      map = state(definition.asl.States, 'Run tasks');
    });

    it('is DISTRIBUTED with EXPRESS children by default', () => {
      expect(map.ItemProcessor?.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'EXPRESS' });
    });

    it('reads MaxConcurrency from $.maxConcurrency and is labelled FleetTasks', () => {
      expect(map.MaxConcurrencyPath).toBe('$.maxConcurrency');
      expect(map.MaxConcurrency).toBeUndefined();
      expect(map.Label).toBe('FleetTasks');
    });

    it('reads tasks as JSON Lines from the tasks bucket at $.tasksKey', () => {
      const reader = map.ItemReader;

      expect(reader?.Resource).toMatch(/:states:::s3:getObject$/);
      expect(reader?.ReaderConfig?.InputType).toBe('JSONL');
      expect(reader?.Parameters?.['Key.$']).toBe('$.tasksKey');
      expect(definition.token(reader?.Parameters?.Bucket)).toEqual({ Ref: ids.bucket });
    });

    it('writes child results to the tasks bucket (ResultWriter), not into the state', () => {
      const writer = map.ResultWriter;

      expect(writer).toBeDefined();
      expect(writer?.Resource).toMatch(/:states:::s3:putObject$/);
      expect(definition.token(writer?.Parameters?.Bucket)).toEqual({ Ref: ids.bucket });
    });

    it('hands each child its batch id, task and settings', () => {
      expect((map as AslState & { ItemSelector?: unknown }).ItemSelector).toEqual({
        'batchId.$': '$.batchId',
        'task.$': '$$.Map.Item.Value',
        'settings.$': '$.settings',
      });
    });

    it('catches any Map failure into Finish batch', () => {
      expect(map.Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: 'Finish batch' }]);
    });

    it('has the child states Run task, Record failure and Failure recorded', () => {
      const processor = map.ItemProcessor;

      expect(processor?.StartAt).toBe('Run task');
      expect(Object.keys(processor?.States ?? {}).sort()).toEqual(['Failure recorded', 'Record failure', 'Run task']);
      expect(state(processor?.States, 'Failure recorded').Type).toBe('Succeed');
      expect(state(processor?.States, 'Record failure')).toMatchObject({ Type: 'Task', End: true });
    });
  });

  describe('Run task (child)', () => {
    let runTask: AslState;
    beforeAll(() => {
      runTask = state(state(definition.asl.States, 'Run tasks').ItemProcessor?.States, 'Run task');
    });

    it('invokes the worker function with the attempt number from $$.State.RetryCount', () => {
      expect(definition.token(runTask.Parameters?.FunctionName)).toEqual({ 'Fn::GetAtt': [ids.worker, 'Arn'] });
      expect(runTask.Parameters?.Payload).toEqual({
        'batchId.$': '$.batchId',
        'task.$': '$.task',
        'settings.$': '$.settings',
        'attempt.$': '$$.State.RetryCount',
        'executionStartTime.$': '$$.Execution.StartTime',
      });
    });

    it('retries TaskAttemptFailed first, with capped exponential backoff and full jitter', () => {
      const first = runTask.Retry?.[0];

      expect(first).toEqual({
        ErrorEquals: ['TaskAttemptFailed'],
        IntervalSeconds: RETRY_BACKOFF.intervalSeconds,
        BackoffRate: 2,
        MaxDelaySeconds: RETRY_BACKOFF.maxDelaySeconds,
        JitterStrategy: 'FULL',
        MaxAttempts: 10,
      });
      expect(first?.MaxAttempts).toBe(LIMITS.maxRetries);
    });

    it('has one TaskAttemptFailed retrier and never retries TaskFailed or States.ALL', () => {
      const retriers = runTask.Retry ?? [];

      expect(retriers.filter((r) => r.ErrorEquals.includes('TaskAttemptFailed'))).toHaveLength(1);
      expect(retriers.some((r) => r.ErrorEquals.includes('TaskFailed') || r.ErrorEquals.includes('States.ALL'))).toBe(false);
    });

    it('bounds each attempt with TimeoutSecondsPath $.settings.attemptTimeoutSeconds', () => {
      expect(runTask.TimeoutSecondsPath).toBe('$.settings.attemptTimeoutSeconds');
      expect(runTask.TimeoutSeconds).toBeUndefined();
    });

    it('catches TaskFailed → Failure recorded first, then States.ALL → Record failure with the error at $.error', () => {
      expect(runTask.Catch).toEqual([
        { ErrorEquals: ['TaskFailed'], ResultPath: null, Next: 'Failure recorded' },
        { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Record failure' },
      ]);
    });

    it('records an unrecorded failure through the worker function', () => {
      const recordFailure = state(state(definition.asl.States, 'Run tasks').ItemProcessor?.States, 'Record failure');

      expect(definition.token(recordFailure.Parameters?.FunctionName)).toEqual({ 'Fn::GetAtt': [ids.worker, 'Arn'] });
      expect(recordFailure.Parameters?.Payload).toMatchObject({ action: 'recordFailure', 'error.$': '$.error', 'task.$': '$.task' });
    });
  });

  describe('Lambda functions', () => {
    const props = (id: string) => synthesized.resources[id]?.Properties ?? {};

    it('all run Node.js 22 or newer', () => {
      const functions = Object.values(synthesized.resources).filter((r) => r.Type === 'AWS::Lambda::Function');

      // API, worker, Start and Finish batch, the admission reconciler.
      expect(functions).toHaveLength(5);
      for (const fn of functions) {
        const runtime = String(fn.Properties?.Runtime);
        const major = Number(/^nodejs(\d+)\.x$/.exec(runtime)?.[1]);
        expect(major, runtime).toBeGreaterThanOrEqual(22);
      }
    });

    it('use the right handler names', () => {
      expect(props(ids.worker).Handler).toBe('index.handler');
      expect(props(ids.api).Handler).toBe('index.handler');
      expect(props(ids.start).Handler).toBe('index.start');
      expect(props(ids.finish).Handler).toBe('index.finish');
    });

    it("gives the worker Lambda's maximum timeout, 900 s", () => {
      expect(props(ids.worker).Timeout).toBe(900);
    });

    it('gives the worker a timeout above the longest attempt the config allows', () => {
      expect(Number(props(ids.worker).Timeout) * 1000).toBeGreaterThan(LIMITS.workerTimeoutMs);
    });

    it('wires the API function to the state machine, bucket and table', () => {
      expect(props(ids.api).Environment).toEqual({
        Variables: expect.objectContaining({
          STATE_MACHINE_ARN: { Ref: ids.stateMachine },
          TASKS_BUCKET: { Ref: ids.bucket },
          TABLE_NAME: { Ref: ids.table },
        }),
      });
    });

    it('sets no physical function names', () => {
      for (const id of [ids.worker, ids.api, ids.start, ids.finish]) {
        expect(props(id).FunctionName).toBeUndefined();
      }
    });
  });

  describe('DynamoDB table', () => {
    it('is on-demand, with TTL on expiresAt, PITR and SSE', () => {
      synthesized.template.resourceCountIs('AWS::DynamoDB::Table', 1);
      synthesized.template.hasResourceProperties('AWS::DynamoDB::Table', {
        BillingMode: 'PAY_PER_REQUEST',
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
      });
    });

    it('has the ByCreation index', () => {
      synthesized.template.hasResourceProperties('AWS::DynamoDB::Table', {
        GlobalSecondaryIndexes: Match.arrayWith([Match.objectLike({ IndexName: 'ByCreation' })]),
      });
    });

    it('has no physical table name', () => {
      expect(synthesized.resources[ids.table]?.Properties?.TableName).toBeUndefined();
    });
  });

  describe('HTTP API', () => {
    it('requires AWS_IAM authorization on its default route', () => {
      synthesized.template.resourceCountIs('AWS::ApiGatewayV2::Route', 1);
      synthesized.template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
        RouteKey: '$default',
        AuthorizationType: 'AWS_IAM',
      });
    });
  });

  describe('IAM', () => {
    it('lets the API function start, stop and rescale executions of its own state machine only', () => {
      // Arrange
      const statements = statementsOfRole(synthesized.resources, roles.api);

      // Act
      const states = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('states:') || a === '*'));
      const byAction = (action: string) => states.filter((s) => actionsOf(s).includes(action));

      // Assert: nothing broader than these three grants
      expect(states).toHaveLength(3);
      expect(byAction('states:StartExecution')).toEqual([{ Effect: 'Allow', Action: 'states:StartExecution', Resource: { Ref: ids.stateMachine } }]);
      const executions = byAction('states:StopExecution');
      expect(executions).toHaveLength(1);
      // RedriveExecution: retry-failed redrives a batch whose own execution failed.
      expect(actionsOf(executions[0]!).sort()).toEqual(['states:DescribeExecution', 'states:ListMapRuns', 'states:RedriveExecution', 'states:StopExecution']);
      expect(JSON.stringify(executions[0]!.Resource)).toContain(':execution:');
      const mapRuns = byAction('states:UpdateMapRun');
      expect(mapRuns).toHaveLength(1);
      expect(JSON.stringify(mapRuns[0]!.Resource)).toContain(':mapRun:');
      expect(JSON.stringify(mapRuns[0]!.Resource)).toContain(ids.stateMachine);
    });

    it('gives the worker no Step Functions and no S3 permissions', () => {
      const statements = statementsOfRole(synthesized.resources, roles.worker);
      const actions = statements.flatMap(actionsOf);

      expect(actions).toContain('dynamodb:PutItem');
      expect(actions.filter((a) => /^(states|s3):/.test(a) || a === '*')).toEqual([]);
    });

    it('lets the state machine invoke exactly the three Fleet functions', () => {
      // Arrange
      const statements = statementsOfRole(synthesized.resources, roles.stateMachine);

      // Act
      const invoked = statements
        .filter((s) => actionsOf(s).includes('lambda:InvokeFunction'))
        .flatMap(resourcesOf)
        .filter((r) => JSON.stringify(r).startsWith('{"Fn::GetAtt"'));

      // Assert
      expect(invoked).toHaveLength(3);
      expect(invoked).toEqual(
        expect.arrayContaining([
          { 'Fn::GetAtt': [ids.start, 'Arn'] },
          { 'Fn::GetAtt': [ids.finish, 'Arn'] },
          { 'Fn::GetAtt': [ids.worker, 'Arn'] },
        ]),
      );
      expect(JSON.stringify(invoked)).not.toContain(ids.api);
    });

    it('lets the Distributed Map start child executions of its own state machine', () => {
      const statements = statementsOfRole(synthesized.resources, roles.stateMachine);

      const start = statements.filter((s) => actionsOf(s).includes('states:StartExecution'));

      expect(start).toEqual([{ Effect: 'Allow', Action: 'states:StartExecution', Resource: { Ref: ids.stateMachine } }]);
    });

    it('attaches a DistributedMap policy to the state machine role', () => {
      synthesized.template.hasResourceProperties('AWS::IAM::Policy', {
        PolicyName: Match.stringLikeRegexp('DistributedMapPolicy'),
        Roles: [{ Ref: roles.stateMachine }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Action: 'states:StartExecution', Effect: 'Allow', Resource: { Ref: ids.stateMachine } }),
          ]),
        },
      });
    });

    it('lets the state machine read tasks from and write results to the tasks bucket', () => {
      const statements = statementsOfRole(synthesized.resources, roles.stateMachine);
      const onBucket = statements.filter((s) => JSON.stringify(s.Resource).includes(ids.bucket));
      const actions = onBucket.flatMap(actionsOf);

      expect(actions).toEqual(expect.arrayContaining(['s3:GetObject', 's3:PutObject']));
    });
  });
});

describe('FleetStack with STANDARD children', () => {
  it('runs the Map children as STANDARD executions', () => {
    // Arrange / act
    const { resources, template } = synth({ fleet: { childExecutionType: sfn.StateMachineType.STANDARD } });
    const { asl } = parseDefinition(resources);

    // Assert
    expect(state(asl.States, 'Run tasks').ItemProcessor?.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' });
    // The parent stays STANDARD either way.
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', { StateMachineType: 'STANDARD' });
  });
});

describe('FleetStack: control-plane permissions', () => {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [], '@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2': true } });
  const template = Template.fromStack(new FleetStack(app, 'ControlTest'));
  const policyActions = (roleFragment: string): string[] =>
    Object.entries(template.findResources('AWS::IAM::Policy'))
      .filter(([id]) => id.includes(roleFragment))
      .flatMap(([, policy]) => (policy.Properties.PolicyDocument.Statement as { Action: string | string[] }[]).flatMap((s) => s.Action));

  it('lets the API stop executions, list their Map Runs and update them (cancelBatch, scaleWorkers)', () => {
    const actions = policyActions('ApiFunction');
    expect(actions).toEqual(expect.arrayContaining(['states:StartExecution', 'states:StopExecution', 'states:ListMapRuns', 'states:UpdateMapRun']));
  });

  it('tolerates lost children so one never fails the whole Map Run, and indexes unfinished batches', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      GlobalSecondaryIndexes: Match.arrayWith([Match.objectLike({ IndexName: 'Active', Projection: { ProjectionType: 'KEYS_ONLY' } })]),
    });
    const machine = Object.values(template.findResources('AWS::StepFunctions::StateMachine'))[0];
    const parts = (machine?.Properties.DefinitionString['Fn::Join'][1] as unknown[]).map((p) => (typeof p === 'string' ? p : 'X')).join('');
    expect(parts).toContain('"ToleratedFailurePercentage":100');
  });
});
