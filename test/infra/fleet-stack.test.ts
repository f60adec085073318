import { readFileSync } from 'node:fs';
import path from 'node:path';
import { App, type CfnElement, type Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { FILE_JOB_STATE_NAMES, PREPARE_EXECUTION_PREFIX } from '../../infra/file-jobs-workflow';
import { FleetStack, type FleetStackProps } from '../../infra/fleet-stack';
import { LIMITS, RETRY_BACKOFF } from '../../lambdas/domain/config';

// ---------------------------------------------------------------- helpers

const repoRoot = path.resolve(import.meta.dirname, '../..');

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
  Default?: string;
  Choices?: { Variable?: string; StringEquals?: string; Next: string }[];
  ResultPath?: string | null;
  Cause?: string;
  Next?: string;
  End?: boolean;
  Resource?: string;
  Parameters?: Record<string, unknown>;
  Retry?: AslRetrier[];
  Catch?: AslCatcher[];
  TimeoutSecondsPath?: string;
  TimeoutSeconds?: number;
  ResultSelector?: Record<string, unknown>;
  Branches?: { StartAt: string; States: Record<string, AslState> }[];
  Error?: string;
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
 * A state machine's DefinitionString is an Fn::Join of literal JSON text and
 * tokens (Refs, GetAtts). Tokens become `${TOKEN:n}` placeholders so the
 * joined text parses as JSON; `token()` maps a placeholder back. Fleet has
 * two state machines (the batch one and the file jobs'): `which` picks one.
 */
function parseDefinition({ stack, resources }: Synth, which: (fleet: FleetStack['fleet']) => sfn.StateMachine = (fleet) => fleet.stateMachine): Definition {
  const machine = resources[logicalIdOf(stack, which(stack.fleet))];
  expect(machine?.Type).toBe('AWS::StepFunctions::StateMachine');
  const definition = machine?.Properties?.DefinitionString as { 'Fn::Join': [string, unknown[]] } | string;
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
  let ids: { worker: string; api: string; start: string; finish: string; fileJobs: string; stateMachine: string; fileJobsStateMachine: string; bucket: string; table: string };
  let roles: { worker: string; api: string; stateMachine: string };

  beforeAll(() => {
    synthesized = synth();
    definition = parseDefinition(synthesized);
    const { stack } = synthesized;
    const fleet = stack.fleet;
    ids = {
      worker: logicalIdOf(stack, fleet.workerFunction),
      api: logicalIdOf(stack, fleet.apiFunction),
      start: logicalIdOf(stack, fleet.startBatchFunction),
      finish: logicalIdOf(stack, fleet.finishBatchFunction),
      fileJobs: logicalIdOf(stack, fleet.fileJobsFunction),
      stateMachine: logicalIdOf(stack, fleet.stateMachine),
      fileJobsStateMachine: logicalIdOf(stack, fleet.fileJobsStateMachine),
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
      // The batch state machine and the file jobs' (below).
      synthesized.template.resourceCountIs('AWS::StepFunctions::StateMachine', 2);
      expect(synthesized.resources[ids.stateMachine]?.Properties?.StateMachineType).toBe('STANDARD');
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

    it('has the child states Run task, Record failure, Failure recorded and Storage unavailable', () => {
      const processor = map.ItemProcessor;

      expect(processor?.StartAt).toBe('Run task');
      expect(Object.keys(processor?.States ?? {}).sort()).toEqual(['Failure recorded', 'Record failure', 'Run task', 'Storage unavailable']);
      expect(state(processor?.States, 'Failure recorded').Type).toBe('Succeed');
      expect(state(processor?.States, 'Record failure')).toMatchObject({ Type: 'Task', End: true });
      // Storage that stayed unavailable fails the child: the Map tolerates it, Finish batch counts the task lost.
      expect(state(processor?.States, 'Storage unavailable')).toMatchObject({ Type: 'Fail', Error: 'Fleet.StorageUnavailable' });
    });
  });

  describe('Run task (child)', () => {
    // Run task is a single-branch Parallel: its RetryCount counts only the task's own retries.
    // https://docs.aws.amazon.com/step-functions/latest/dg/state-parallel.html
    let runTask: AslState;
    let invoke: AslState;
    beforeAll(() => {
      runTask = state(state(definition.asl.States, 'Run tasks').ItemProcessor?.States, 'Run task');
      const branch = runTask.Branches?.[0];
      invoke = state(branch?.States, 'Invoke worker');
    });

    it('is a Parallel of one branch, Invoke worker alone, whose result is the branch\'s', () => {
      expect(runTask.Type).toBe('Parallel');
      expect(runTask.Branches).toHaveLength(1);
      expect(runTask.Branches?.[0]?.StartAt).toBe('Invoke worker');
      expect(Object.keys(runTask.Branches?.[0]?.States ?? {})).toEqual(['Invoke worker']);
      expect(invoke).toMatchObject({ Type: 'Task', End: true });
      expect(runTask.ResultSelector).toEqual({ 'taskId.$': '$[0].taskId', 'success.$': '$[0].success' });
    });

    it('invokes the worker function with the attempt number from the Parallel\'s $$.State.RetryCount', () => {
      expect(runTask.Parameters).toEqual({
        'batchId.$': '$.batchId',
        'task.$': '$.task',
        'settings.$': '$.settings',
        'attempt.$': '$$.State.RetryCount',
        'executionStartTime.$': '$$.Execution.StartTime',
      });
      expect(definition.token(invoke.Parameters?.FunctionName)).toEqual({ 'Fn::GetAtt': [ids.worker, 'Arn'] });
      expect(invoke.Parameters?.['Payload.$']).toBe('$');
    });

    it('retries only what is not the task\'s fault inside the branch: storage unavailable, then Lambda\'s transient errors', () => {
      expect(invoke.Retry?.map((r) => r.ErrorEquals)).toEqual([
        ['Fleet.StorageUnavailable'],
        ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException'],
      ]);
      expect(invoke.Retry?.[0]).toMatchObject({ IntervalSeconds: 2, BackoffRate: 2, MaxDelaySeconds: 60, JitterStrategy: 'FULL' });
      expect(invoke.Retry?.some((r) => r.ErrorEquals.includes('TaskAttemptFailed'))).toBe(false);
      expect(invoke.Catch).toBeUndefined();
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
      expect(invoke.TimeoutSecondsPath).toBe('$.settings.attemptTimeoutSeconds');
      expect(invoke.TimeoutSeconds).toBeUndefined();
    });

    it('catches TaskFailed → Failure recorded first, Fleet.StorageUnavailable → Storage unavailable, then States.ALL → Record failure with the error at $.error', () => {
      expect(runTask.Catch).toEqual([
        { ErrorEquals: ['TaskFailed'], ResultPath: null, Next: 'Failure recorded' },
        { ErrorEquals: ['Fleet.StorageUnavailable'], ResultPath: null, Next: 'Storage unavailable' },
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

      // API, worker, Start and Finish batch, the admission reconciler, the file jobs.
      expect(functions).toHaveLength(6);
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
      expect(props(ids.fileJobs).Handler).toBe('index.handler');
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
          // POST /batches {"tasksFile"} starts a validation; GET .../results/export, a build.
          FILE_JOBS_STATE_MACHINE_ARN: { Ref: ids.fileJobsStateMachine },
          // No bucket of the deployer's unless tasksFileBuckets names some.
          FLEET_TASKS_FILE_BUCKETS: '',
        }),
      });
    });

    it("gives the file jobs Lambda's maximum timeout and room for their sort runs, and the batch state machine they queue batches on", () => {
      // One streamed pass over a file of a few GB: Lambda's longest run, 900 s.
      expect(props(ids.fileJobs).Timeout).toBe(900);
      expect(props(ids.fileJobs).MemorySize).toBe(2048);
      expect((props(ids.fileJobs).Environment as { Variables: Record<string, unknown> }).Variables).toMatchObject({
        STATE_MACHINE_ARN: { Ref: ids.stateMachine },
        TASKS_BUCKET: { Ref: ids.bucket },
        TABLE_NAME: { Ref: ids.table },
        FLEET_MAX_TASKS_PER_BATCH: '100000',
      });
      // They start no file job themselves.
      expect((props(ids.fileJobs).Environment as { Variables: Record<string, unknown> }).Variables).not.toHaveProperty('FILE_JOBS_STATE_MACHINE_ARN');
    });

    it('sets no physical function names', () => {
      for (const id of [ids.worker, ids.api, ids.start, ids.finish, ids.fileJobs]) {
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
    it("lets the API function start, stop and rescale executions of its own state machines only, and stop only the file jobs' validations", () => {
      // Arrange
      const statements = statementsOfRole(synthesized.resources, roles.api);

      // Act
      const states = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('states:') || a === '*'));
      const byAction = (action: string) => states.filter((s) => actionsOf(s).includes(action));

      // Assert: nothing broader than these five grants
      expect(states).toHaveLength(5);
      expect(byAction('states:StartExecution')).toEqual([
        { Effect: 'Allow', Action: 'states:StartExecution', Resource: { Ref: ids.stateMachine } },
        { Effect: 'Allow', Action: 'states:StartExecution', Resource: { Ref: ids.fileJobsStateMachine } },
      ]);
      // A cancel stops its batch's validation (prepare-<batchId>), never a results export.
      const stopPrepare = byAction('states:StopExecution').filter((s) => JSON.stringify(s.Resource).includes(ids.fileJobsStateMachine));
      expect(stopPrepare).toHaveLength(1);
      expect(actionsOf(stopPrepare[0]!)).toEqual(['states:StopExecution']);
      const parts = (stopPrepare[0]!.Resource as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1];
      expect(parts.at(-2)).toEqual({ 'Fn::GetAtt': [ids.fileJobsStateMachine, 'Name'] });
      expect(parts.at(-1)).toBe(`:${PREPARE_EXECUTION_PREFIX}*`);
      const executions = byAction('states:StopExecution').filter((s) => s !== stopPrepare[0]);
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

    it('lets the API write only with s3:PutObject, under batches/ (tasks files) and uploads/ (the PUTs it presigns)', () => {
      const statements = statementsOfRole(synthesized.resources, roles.api);
      const writes = statements.filter((s) => actionsOf(s).some((a) => /^s3:(Put|Abort|Restore|Replicate)|^s3:\*$|^\*$/.test(a)));
      const objects = (prefix: string) => ({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [ids.bucket, 'Arn'] }, prefix]] });
      // Single PutObjects (a submit's tasks file, a retry's), never a multipart upload, tags or object lock.
      expect(writes).toEqual([{ Effect: 'Allow', Action: 's3:PutObject', Resource: [objects('/batches/*'), objects('/uploads/*')] }]);
    });

    it('lets the file jobs write only under batches/, read and delete uploads, and nothing else of S3', () => {
      const statements = statementsOfRole(synthesized.resources, logicalIdOf(synthesized.stack, synthesized.stack.fleet.fileJobsFunction.role!));
      const s3 = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('s3:') || a === '*'));
      const objects = (prefix: string) => ({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [ids.bucket, 'Arn'] }, prefix]] });
      expect(s3).toEqual([
        // A batch's tasks file, its sort runs and its results export, written as multipart uploads (aborted on failure).
        { Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'], Resource: objects('/batches/*') },
        // An upload is read, and deleted once its batch is ready; never written.
        { Effect: 'Allow', Action: ['s3:GetObject', 's3:DeleteObject'], Resource: objects('/uploads/*') },
      ]);
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

describe('FleetStack: the file-jobs state machine (infra/file-jobs-workflow.ts)', () => {
  const synthesized = synth();
  const { asl, token } = parseDefinition(synthesized, (fleet) => fleet.fileJobsStateMachine);
  const machineId = logicalIdOf(synthesized.stack, synthesized.stack.fleet.fileJobsStateMachine);
  const fileJobsFunction = { 'Fn::GetAtt': [logicalIdOf(synthesized.stack, synthesized.stack.fleet.fileJobsFunction), 'Arn'] };
  const names = FILE_JOB_STATE_NAMES;

  it('is STANDARD, traced, and logs ALL to the state machine log group, never execution data', () => {
    // A job runs up to 15 minutes, then is retried: beyond an EXPRESS execution's 5 minutes.
    // https://docs.aws.amazon.com/step-functions/latest/dg/choosing-workflow-type.html
    expect(synthesized.resources[machineId]?.Properties).toMatchObject({
      StateMachineType: 'STANDARD',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: {
        Level: 'ALL',
        IncludeExecutionData: false,
        Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [logicalIdOf(synthesized.stack, synthesized.stack.fleet.stateMachineLogs), 'Arn'] } } }],
      },
    });
  });

  it('routes on $.job: prepare → Prepare tasks file, export → Export results, anything else fails', () => {
    expect(asl.StartAt).toBe(names.routeJob);
    expect(state(asl.States, names.routeJob)).toEqual({
      Type: 'Choice',
      Choices: [
        { Variable: '$.job', StringEquals: 'prepare', Next: names.prepareTasksFile },
        { Variable: '$.job', StringEquals: 'export', Next: names.exportResults },
      ],
      Default: 'Unknown job',
    });
    expect(state(asl.States, 'Unknown job')).toMatchObject({ Type: 'Fail', Error: 'Fleet.UnknownJob' });
    // The jobs the API starts are exactly those (lambdas/adapters/file-jobs.ts).
    const adapter = readFileSync(path.join(repoRoot, 'lambdas/adapters/file-jobs.ts'), 'utf8');
    expect(new Set([...adapter.matchAll(/\{ job: '(\w+)'/g)].map((m) => m[1]))).toEqual(new Set(['prepare', 'export']));
  });

  it('runs each job on the file-jobs function, with the action its handler dispatches on, then Done', () => {
    const prepare = state(asl.States, names.prepareTasksFile);
    const exportResults = state(asl.States, names.exportResults);
    for (const job of [prepare, exportResults]) {
      expect(job).toMatchObject({ Type: 'Task', Next: names.done, ResultSelector: { 'outcome.$': '$.Payload' } });
      expect(job.Resource).toMatch(/:states:::lambda:invoke$/);
      expect(token(job.Parameters?.FunctionName)).toEqual(fileJobsFunction);
    }
    expect(prepare.Parameters?.Payload).toEqual({ action: 'prepare', 'batchId.$': '$.batchId' });
    expect(exportResults.Parameters?.Payload).toEqual({ action: 'export', 'batchId.$': '$.batchId', 'attempt.$': '$.attempt' });
    expect(state(asl.States, names.done).Type).toBe('Succeed');
    const handler = readFileSync(path.join(repoRoot, 'lambdas/file-jobs.ts'), 'utf8');
    for (const action of ['prepare', 'export', 'failed']) expect(handler).toContain(`case '${action}':`);
  });

  it('retries a failed job three times (5 s, doubling, full jitter), but never one that timed out: it would time out again', () => {
    for (const name of [names.prepareTasksFile, names.exportResults]) {
      expect(state(asl.States, name).Retry, name).toEqual([
        { ErrorEquals: ['Sandbox.Timedout', 'States.Timeout'], IntervalSeconds: 5, MaxAttempts: 0, BackoffRate: 2, JitterStrategy: 'FULL' },
        { ErrorEquals: ['States.ALL'], IntervalSeconds: 5, MaxAttempts: 3, BackoffRate: 2, JitterStrategy: 'FULL' },
      ]);
    }
  });

  it('catches a job whose retries are spent → Record job failure (with the job and its error) → Job failed', () => {
    for (const name of [names.prepareTasksFile, names.exportResults]) {
      expect(state(asl.States, name).Catch, name).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: `${name} failed` }]);
      // The job's own input travels on as `job`, for the failure record.
      expect(state(asl.States, `${name} failed`)).toEqual({
        Type: 'Pass',
        Parameters: { 'job.$': '$$.Execution.Input', 'error.$': '$.error' },
        Next: names.recordJobFailure,
      });
    }
    const record = state(asl.States, names.recordJobFailure);
    expect(record).toMatchObject({ Type: 'Task', Next: names.jobFailed, ResultPath: null });
    expect(token(record.Parameters?.FunctionName)).toEqual(fileJobsFunction);
    expect(record.Parameters?.Payload).toEqual({ action: 'failed', 'job.$': '$.job', 'error.$': '$.error' });
    // Retried like the jobs (and on Lambda's own errors); no Catch: there is nothing left to record a failure with.
    expect(record.Retry?.at(-1)).toEqual({ ErrorEquals: ['States.ALL'], IntervalSeconds: 5, MaxAttempts: 3, BackoffRate: 2, JitterStrategy: 'FULL' });
    expect(record.Catch).toBeUndefined();
    expect(state(asl.States, names.jobFailed)).toMatchObject({ Type: 'Fail', Error: 'Fleet.FileJobFailed' });
  });

  it('has no other state', () => {
    expect(Object.keys(asl.States).sort()).toEqual(
      [names.routeJob, names.prepareTasksFile, names.exportResults, `${names.prepareTasksFile} failed`, `${names.exportResults} failed`, names.recordJobFailure, names.done, names.jobFailed, 'Unknown job'].sort(),
    );
  });
});

describe('FleetStack: tasksFileBuckets', () => {
  const s3Grants = (synthesized: Synth, fn: { role?: IConstruct }) =>
    statementsOfRole(synthesized.resources, logicalIdOf(synthesized.stack, fn.role!))
      .filter((s) => actionsOf(s).some((a) => a.startsWith('s3:') || a === '*'))
      .flatMap((s) => resourcesOf(s).map((resource) => ({ actions: actionsOf(s), resource: JSON.stringify(resource) })));
  const allFunctions = (fleet: FleetStack['fleet']) => [
    fleet.apiFunction,
    fleet.workerFunction,
    fleet.startBatchFunction,
    fleet.finishBatchFunction,
    fleet.fileJobsFunction,
    fleet.admissionReconcilerFunction,
  ];

  it('lets the API check and the file jobs read objects of exactly the listed buckets, and nothing more of them', () => {
    const synthesized = synth({ fleet: { tasksFileBuckets: ['deployer-files', 'other.files-2'] } });
    const { fleet } = synthesized.stack;
    const objectsOf = (bucket: string) => JSON.stringify({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:s3:::${bucket}/*`]] });
    for (const fn of [fleet.apiFunction, fleet.fileJobsFunction]) {
      const outside = s3Grants(synthesized, fn).filter((g) => g.resource.includes(':s3:::'));
      expect(outside).toEqual([
        { actions: ['s3:GetObject'], resource: objectsOf('deployer-files') },
        { actions: ['s3:GetObject'], resource: objectsOf('other.files-2') },
      ]);
    }
    // The API tells a submit which buckets are allowed.
    expect(
      (synthesized.resources[logicalIdOf(synthesized.stack, fleet.apiFunction)]?.Properties?.Environment as { Variables: Record<string, unknown> }).Variables
        .FLEET_TASKS_FILE_BUCKETS,
    ).toBe('deployer-files,other.files-2');
    for (const fn of [fleet.workerFunction, fleet.startBatchFunction, fleet.finishBatchFunction, fleet.admissionReconcilerFunction]) {
      expect(JSON.stringify(statementsOfRole(synthesized.resources, logicalIdOf(synthesized.stack, fn.role!)))).not.toContain('deployer-files');
    }
  });

  it("grants no function any bucket but Fleet's own when none is listed", () => {
    const synthesized = synth();
    for (const fn of allFunctions(synthesized.stack.fleet)) {
      expect(s3Grants(synthesized, fn).filter((g) => g.resource.includes(':s3:::'))).toEqual([]);
    }
  });

  it('refuses a name that is no S3 bucket name at synth', () => {
    for (const bad of ['Upper', 'a', 'bucket/key', 's3://bucket', '-leading']) {
      expect(() => synth({ fleet: { tasksFileBuckets: [bad] } }), bad).toThrow(/tasksFileBuckets/);
    }
  });
});

describe('FleetStack with STANDARD children', () => {
  it('runs the Map children as STANDARD executions', () => {
    // Arrange / act
    const synthesized = synth({ fleet: { childExecutionType: sfn.StateMachineType.STANDARD } });
    const { asl } = parseDefinition(synthesized);

    // Assert
    expect(state(asl.States, 'Run tasks').ItemProcessor?.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' });
    // The parent stays STANDARD either way.
    expect(synthesized.resources[logicalIdOf(synthesized.stack, synthesized.stack.fleet.stateMachine)]?.Properties?.StateMachineType).toBe('STANDARD');
  });
});

describe('FleetStack: control-plane permissions', () => {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [], '@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2': true } });
  const stack = new FleetStack(app, 'ControlTest');
  const template = Template.fromStack(stack);
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
    const machine = template.findResources('AWS::StepFunctions::StateMachine')[logicalIdOf(stack, stack.fleet.stateMachine)];
    const parts = (machine?.Properties.DefinitionString['Fn::Join'][1] as unknown[]).map((p) => (typeof p === 'string' ? p : 'X')).join('');
    expect(parts).toContain('"ToleratedFailurePercentage":100');
  });
});
