/**
 * Override props, in the manner of AWS Solutions Constructs: a user passes
 * CDK's own props for Fleet's functions, table and state machine, and Fleet
 * merges them as defaults, then the user's props, then what Fleet must set.
 * An override that would break Fleet (another partition key, a runtime that
 * is not Node.js, a replaced handler or definition) is refused at synth,
 * naming the prop, instead of deploying a fleet that cannot work.
 */
import type { Duration } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';

/**
 * Props of one of Fleet's Lambda functions a user may override (VPC, layers,
 * memory, timeout, reserved concurrency, bundling, a role...). Fleet sets the
 * entry and handler itself: the code it runs is Fleet's or the task type's.
 */
export type FleetFunctionProps = Omit<Partial<nodejs.NodejsFunctionProps>, 'entry' | 'handler' | 'code'>;

/** Table props a user may override (billing, encryption, deletion protection...). The key schema is Fleet's. */
export type FleetTableProps = Partial<dynamodb.TableProps>;

/** State-machine props a user may override (role, timeout, tracing, logs...). The definition and type are Fleet's. */
export type FleetStateMachineProps = Omit<Partial<sfn.StateMachineProps>, 'definition' | 'definitionBody' | 'definitionSubstitutions'>;

/** Thrown at synth for props Fleet cannot run with; its message names the prop. */
export class FleetPropsError extends Error {
  override readonly name = 'FleetPropsError';
  constructor(prop: string, problem: string) {
    super(`Fleet ${prop}: ${problem}`);
  }
}

/**
 * Checks a function override and returns it: refuses what Fleet must own
 * (entry, handler, code), a runtime outside the Node.js family, and
 * environment variables Fleet sets itself (`reserved`), which the override
 * would otherwise silently lose to Fleet's values.
 */
export function checkFunctionProps(prop: string, props: FleetFunctionProps | undefined, reserved: readonly string[]): FleetFunctionProps {
  if (props === undefined) return {};
  const loose = props as Record<string, unknown>;
  for (const owned of ['entry', 'handler', 'code'] as const) {
    if (loose[owned] !== undefined) {
      throw new FleetPropsError(`${prop}.${owned}`, `Fleet sets each function's ${owned}; give a task type its own code with FleetProps.workers instead`);
    }
  }
  if (props.runtime && props.runtime.family !== lambda.RuntimeFamily.NODEJS) {
    throw new FleetPropsError(`${prop}.runtime`, `Fleet's functions are Node.js code; ${props.runtime.name} cannot run them (use a Node.js runtime, e.g. lambda.Runtime.NODEJS_24_X)`);
  }
  if (props.memorySize !== undefined && !(Number.isInteger(props.memorySize) && props.memorySize >= 128 && props.memorySize <= 10_240)) {
    throw new FleetPropsError(`${prop}.memorySize`, `Lambda memory is a whole number of MB from 128 to 10240, got ${props.memorySize}`);
  }
  for (const name of Object.keys(props.environment ?? {})) {
    if (reserved.includes(name)) throw new FleetPropsError(`${prop}.environment.${name}`, 'Fleet sets this variable itself; overriding it would point the function elsewhere');
  }
  return props;
}

/** Checks a memory size given outside an override (workerMemorySize, workers[type].memorySize). */
export function checkMemorySize(prop: string, memorySize: number | undefined): void {
  if (memorySize !== undefined && !(Number.isInteger(memorySize) && memorySize >= 128 && memorySize <= 10_240)) {
    throw new FleetPropsError(prop, `Lambda memory is a whole number of MB from 128 to 10240, got ${memorySize}`);
  }
}

/** Checks a Lambda timeout: at most 15 minutes, Lambda's maximum. */
export function checkTimeout(prop: string, timeout: Duration | undefined): void {
  if (timeout === undefined) return;
  const seconds = timeout.toSeconds();
  if (!(seconds >= 1 && seconds <= 900)) throw new FleetPropsError(prop, `a Lambda timeout is from 1 second to 15 minutes, got ${seconds} s`);
}

/** The table's key schema as Fleet reads and writes it. */
export interface FleetTableKeys {
  partitionKey: dynamodb.Attribute;
  sortKey: dynamodb.Attribute;
  timeToLiveAttribute: string;
}

const sameAttribute = (a: dynamodb.Attribute, b: dynamodb.Attribute) => a.name === b.name && a.type === b.type;
const describe = (a: dynamodb.Attribute | undefined) => (a ? `${a.name} (${a.type})` : 'none');

/** Checks a table override: the keys and the TTL attribute are Fleet's storage layout. */
export function checkTableProps(props: FleetTableProps | undefined, keys: FleetTableKeys): FleetTableProps {
  if (props === undefined) return {};
  if (props.partitionKey && !sameAttribute(props.partitionKey, keys.partitionKey)) {
    throw new FleetPropsError('tableProps.partitionKey', `Fleet's items are keyed by ${describe(keys.partitionKey)}; got ${describe(props.partitionKey)}`);
  }
  if (props.sortKey && !sameAttribute(props.sortKey, keys.sortKey)) {
    throw new FleetPropsError('tableProps.sortKey', `Fleet's items are keyed by ${describe(keys.sortKey)}; got ${describe(props.sortKey)}`);
  }
  if (props.timeToLiveAttribute !== undefined && props.timeToLiveAttribute !== keys.timeToLiveAttribute) {
    throw new FleetPropsError('tableProps.timeToLiveAttribute', `finished batches expire through ${keys.timeToLiveAttribute}; got ${props.timeToLiveAttribute}`);
  }
  return props;
}

/** Checks a state-machine override: a batch runs a Distributed Map, whose parent must be STANDARD. */
export function checkStateMachineProps(props: FleetStateMachineProps | undefined): FleetStateMachineProps {
  if (props === undefined) return {};
  const loose = props as Record<string, unknown>;
  for (const owned of ['definition', 'definitionBody', 'definitionSubstitutions'] as const) {
    if (loose[owned] !== undefined) throw new FleetPropsError(`stateMachineProps.${owned}`, 'Fleet builds the batch workflow itself (infra/batch-workflow.ts)');
  }
  if (props.stateMachineType !== undefined && props.stateMachineType !== sfn.StateMachineType.STANDARD) {
    throw new FleetPropsError('stateMachineProps.stateMachineType', "a batch runs a Distributed Map, whose parent state machine must be STANDARD (childExecutionType chooses the children's)");
  }
  return props;
}

/** Checks a whole number within bounds (retentionDays, maxTasksPerBatch...). */
export function checkWholeNumber(prop: string, value: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (value !== undefined && !(Number.isInteger(value) && value >= min && value <= max)) {
    throw new FleetPropsError(prop, `must be a whole number from ${min}${max === Number.MAX_SAFE_INTEGER ? '' : ` to ${max}`}, got ${value}`);
  }
}
