/**
 * Local mode starts from the CloudFormation template CDK synthesizes: the
 * tables, buckets, functions and state-machine definition it creates are the
 * ones `cdk deploy` would create, with intrinsic functions resolved to local
 * names and ARNs.
 */
import { App, type Stack } from 'aws-cdk-lib';
import { FleetStack } from '../fleet-stack';
import { LOCAL_ENTRY_METADATA, type FleetProps, type LocalEntryMetadata } from '../fleet';

export type CfnTemplate = { Resources: Record<string, { Type: string; Properties?: Record<string, unknown>; Metadata?: Record<string, unknown> }> };

export const LOCAL_ACCOUNT = '000000000000';
export const LOCAL_REGION = 'us-east-1';

/**
 * Synthesizes the Fleet stack in-process. Bundling is skipped: local mode runs the sources.
 * @param fleetProps the Fleet construct's props, as `cdk deploy` would get them (infra/fleet-config.ts)
 * @param stackOf builds a user's own stack holding one Fleet in `app`, instead of FleetStack
 */
export function synthesizeTemplate(fleetProps?: FleetProps, stackOf?: (app: App) => Stack): CfnTemplate {
  const app = new App({
    // The template's schema check belongs to `cdk synth` and the infra tests; here it
    // would only cost every local start ~1 s and keep its WebAssembly engine (~170 MB) in memory.
    builtinCloudFormationValidation: false,
    context: {
      'aws:cdk:bundling-stacks': [],
      '@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2': true,
    },
  });
  const stack = stackOf ? stackOf(app) : new FleetStack(app, 'FleetLocal', { fleet: fleetProps });
  return app.synth().getStackByName(stack.stackName).template as CfnTemplate;
}

export interface LocalFunction {
  logicalId: string;
  arn: string;
  /** Module path relative to `root`, and its export. */
  entry: string;
  handler: string;
  /**
   * Whose module it is: Fleet's own (relative to Fleet's package root) or the
   * user's (FleetProps.workers, relative to their project).
   * @default 'fleet'
   */
  root?: 'fleet' | 'project';
  timeoutSeconds: number;
  environment: Record<string, string>;
}

/** An EventBridge Scheduler schedule that invokes one of Fleet's functions. */
export interface LocalSchedule {
  logicalId: string;
  /** From its `rate(...)` expression. */
  intervalMs: number;
  /** The function it invokes. */
  targetArn: string;
  /** The event it invokes it with (the target's Input, parsed). */
  input: unknown;
}

/** `rate(1 minute)`, `rate(5 minutes)`, `rate(2 hours)`... in ms; local mode implements no other expression. */
function rateMs(expression: unknown, where: string): number {
  const match = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(String(expression));
  if (!match) throw new Error(`local mode implements only rate(...) schedule expressions, not ${String(expression)} (${where})`);
  const unit = { minute: 60_000, hour: 3_600_000, day: 86_400_000 }[(match[2] ?? '').replace(/s$/, '') as 'minute' | 'hour' | 'day'];
  return Number(match[1]) * unit;
}

export interface LocalResources {
  tables: { logicalId: string; name: string; properties: Record<string, unknown> }[];
  buckets: { logicalId: string; name: string }[];
  /** SQS queues; `url` is what `Ref` resolves to. */
  queues: { logicalId: string; name: string; url: string; properties: Record<string, unknown> }[];
  functions: LocalFunction[];
  /** Enabled schedules (the autoscaler's); empty without autoscaling. */
  schedules: LocalSchedule[];
  /** The batch state machine: the one with the Distributed Map. */
  stateMachine: LocalStateMachine;
  /** Every state machine of the template, the batch one included (the file jobs' too). */
  stateMachines: LocalStateMachine[];
}

export interface LocalStateMachine {
  logicalId: string;
  arn: string;
  name: string;
  definition: string;
}

/** A local name for a resource: lower-case, so it is also a valid bucket name. */
export const localName = (logicalId: string) => `fleet-local-${logicalId.toLowerCase()}`.slice(0, 63);

export interface ResolveOptions {
  /**
   * A queue's URL (its `Ref`), as the local SQS server names it.
   * @default AWS's own format, https://sqs.<region>.amazonaws.com/<account>/<name>
   */
  queueUrl?: (name: string) => string;
}

export function resolveTemplate(template: CfnTemplate, options: ResolveOptions = {}): LocalResources {
  const resources = template.Resources;
  const queueUrl = options.queueUrl ?? ((name: string) => `https://sqs.${LOCAL_REGION}.amazonaws.com/${LOCAL_ACCOUNT}/${name}`);
  const physical = new Map<string, { ref: string; arn: string }>();
  for (const [id, resource] of Object.entries(resources)) {
    const name = localName(id);
    switch (resource.Type) {
      case 'AWS::DynamoDB::Table':
        physical.set(id, { ref: name, arn: `arn:aws:dynamodb:${LOCAL_REGION}:${LOCAL_ACCOUNT}:table/${name}` });
        break;
      case 'AWS::S3::Bucket':
        physical.set(id, { ref: name, arn: `arn:aws:s3:::${name}` });
        break;
      case 'AWS::Lambda::Function':
        physical.set(id, { ref: name, arn: `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:${name}` });
        break;
      case 'AWS::SQS::Queue':
        physical.set(id, { ref: queueUrl(name), arn: `arn:aws:sqs:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${name}` });
        break;
      case 'AWS::StepFunctions::StateMachine': {
        const arn = `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stateMachine:${name}`;
        physical.set(id, { ref: arn, arn });
        break;
      }
      default:
        physical.set(id, { ref: name, arn: `arn:aws:local:${LOCAL_REGION}:${LOCAL_ACCOUNT}:${name}` });
    }
  }
  const pseudo: Record<string, string> = {
    'AWS::Partition': 'aws',
    'AWS::Region': LOCAL_REGION,
    'AWS::AccountId': LOCAL_ACCOUNT,
    'AWS::URLSuffix': 'amazonaws.com',
    'AWS::StackName': 'FleetLocal',
  };
  const resolve = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(resolve);
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 1) {
      const [fn, arg] = entries[0] as [string, unknown];
      if (fn === 'Ref') {
        const ref = arg as string;
        const found = pseudo[ref] ?? physical.get(ref)?.ref;
        if (found === undefined) throw new Error(`local mode cannot resolve Ref ${ref}`);
        return found;
      }
      if (fn === 'Fn::GetAtt') {
        const [id, attribute] = arg as [string, string];
        const target = physical.get(id);
        if (!target) throw new Error(`local mode cannot resolve Fn::GetAtt ${id}.${attribute}`);
        if (attribute === 'Arn') return target.arn;
        if (resources[id]?.Type === 'AWS::SQS::Queue' && (attribute === 'QueueName' || attribute === 'QueueUrl')) {
          return attribute === 'QueueName' ? localName(id) : target.ref;
        }
        if (attribute === 'Name' || attribute === 'StateMachineName') return target.ref;
        throw new Error(`local mode cannot resolve Fn::GetAtt ${id}.${attribute}`);
      }
      if (fn === 'Fn::Join') {
        const [separator, parts] = arg as [string, unknown[]];
        return parts.map<unknown>(resolve).map(String).join(separator);
      }
      if (fn === 'Fn::Select') {
        const [index, list] = arg as [number, unknown];
        return (resolve(list) as unknown[])[index];
      }
      if (fn === 'Fn::Split') {
        const [separator, source] = arg as [string, unknown];
        return String(resolve(source)).split(separator);
      }
      if (fn.startsWith('Fn::')) throw new Error(`local mode does not resolve ${fn}`);
    }
    return Object.fromEntries(entries.map(([k, v]) => [k, resolve(v)]));
  };

  const out: LocalResources = { tables: [], buckets: [], queues: [], functions: [], schedules: [], stateMachine: undefined as never, stateMachines: [] };
  for (const [id, resource] of Object.entries(resources)) {
    const props = resource.Properties ?? {};
    if (resource.Type === 'AWS::DynamoDB::Table') {
      out.tables.push({ logicalId: id, name: localName(id), properties: props });
    } else if (resource.Type === 'AWS::S3::Bucket') {
      out.buckets.push({ logicalId: id, name: localName(id) });
    } else if (resource.Type === 'AWS::SQS::Queue') {
      out.queues.push({ logicalId: id, name: localName(id), url: queueUrl(localName(id)), properties: props });
    } else if (resource.Type === 'AWS::Lambda::Function') {
      const meta = resource.Metadata?.[LOCAL_ENTRY_METADATA] as Partial<LocalEntryMetadata> | undefined;
      if (!meta?.entry || !meta.handler) continue; // not one of Fleet's own functions (e.g. a custom resource)
      const env = resolve((props.Environment as { Variables?: unknown } | undefined)?.Variables ?? {}) as Record<string, string>;
      out.functions.push({
        logicalId: id,
        arn: physical.get(id)?.arn ?? '',
        entry: meta.entry,
        handler: meta.handler,
        root: meta.root ?? 'fleet',
        timeoutSeconds: (props.Timeout as number | undefined) ?? 3,
        environment: env,
      });
    } else if (resource.Type === 'AWS::Scheduler::Schedule') {
      if (props.State === 'DISABLED') continue;
      refuseUnimplementedScheduleFields(id, props);
      const target = resolve(props.Target) as { Arn: string; Input?: string };
      out.schedules.push({
        logicalId: id,
        intervalMs: rateMs(props.ScheduleExpression, id),
        targetArn: target.Arn,
        input: target.Input === undefined ? {} : (JSON.parse(target.Input) as unknown),
      });
    } else if (resource.Type === 'AWS::StepFunctions::StateMachine') {
      const definition = resolve(props.DefinitionString) as string;
      out.stateMachines.push({ logicalId: id, arn: physical.get(id)?.arn ?? '', name: localName(id), definition });
    }
  }
  const batchMachine = out.stateMachines.find((machine) => machine.definition.includes('"DISTRIBUTED"')) ?? out.stateMachines[0];
  if (!batchMachine) throw new Error('the template has no state machine');
  out.stateMachine = batchMachine;
  return out;
}

/**
 * The local timer runs a schedule at its rate, once, with the target's input:
 * anything that would make AWS behave otherwise is refused, never ignored.
 */
function refuseUnimplementedScheduleFields(id: string, props: Record<string, unknown>): void {
  const known = new Set(['Description', 'FlexibleTimeWindow', 'ScheduleExpression', 'ScheduleExpressionTimezone', 'State', 'Target', 'Name', 'GroupName']);
  const refuse = (field: string) => {
    throw new Error(`local mode does not implement the schedule field ${field} (schedule ${id})`);
  };
  for (const key of Object.keys(props)) if (!known.has(key)) refuse(key);
  const window = props.FlexibleTimeWindow as { Mode?: string } | undefined;
  if (window && window.Mode !== 'OFF') refuse('FlexibleTimeWindow.Mode');
  const target = (props.Target ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(target)) if (!['Arn', 'Input', 'RoleArn', 'RetryPolicy'].includes(key)) refuse(`Target.${key}`);
  const retry = target.RetryPolicy as { MaximumRetryAttempts?: number } | undefined;
  if (retry && retry.MaximumRetryAttempts !== 0) refuse('Target.RetryPolicy.MaximumRetryAttempts (only 0)');
}
