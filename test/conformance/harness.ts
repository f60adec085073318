/**
 * A small harness for the local runner's conformance suite: a fake Task
 * invoker that records every call (with its time and the number of calls in
 * flight) and fails on demand with a named error, an in-memory object store,
 * and `execute`, which loads a definition exactly as local mode does and runs
 * it to an AWS-shaped outcome: SUCCEEDED with an output, or FAILED with
 * {error, cause}.
 */
import { vi } from 'vitest';
import { loadDefinition, type StateMachineDefinition } from '../../infra/local/asl/definition';
import { ExecutionHistory, HISTORY_EVENT_LIMIT, Interpreter, StatesError, type MapRun, type ObjectStore, type TaskInvoker } from '../../infra/local/asl/interpreter';

export const LAMBDA_INVOKE = 'arn:aws:states:::lambda:invoke';
export const STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:conformance';

/** An error with a stable name, as a Lambda function or the service would report it. */
export function namedError(name: string, message = `${name} (planned)`): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

export interface Call {
  resource: string;
  parameters: unknown;
  /** Date.now() when the call started (fake time when fake timers are on). */
  at: number;
  signal: AbortSignal;
}

/** What a call does: return a value (or a promise of one), or throw. */
export type Behaviour = (parameters: unknown, call: Call, index: number) => unknown;

/** A TaskInvoker that records calls and does what the test tells it. */
export class FakeInvoker implements TaskInvoker {
  readonly calls: Call[] = [];
  private inFlight = 0;
  /** The most calls in flight at once. */
  peak = 0;

  constructor(private readonly behaviour: Behaviour = (parameters) => parameters) {}

  async invoke(resource: string, parameters: unknown, signal: AbortSignal): Promise<unknown> {
    const call: Call = { resource, parameters, at: Date.now(), signal };
    const index = this.calls.push(call) - 1;
    this.inFlight++;
    this.peak = Math.max(this.peak, this.inFlight);
    try {
      return await this.behaviour(parameters, call, index);
    } finally {
      this.inFlight--;
    }
  }

  /** Milliseconds between consecutive calls. */
  gaps(): number[] {
    return this.calls.slice(1).map((call, i) => call.at - (this.calls[i] as Call).at);
  }
}

/** Calls in order: each entry is a value to return, or an Error to throw; the last repeats. */
export function script(...steps: unknown[]): Behaviour {
  return (_parameters, _call, index) => {
    const step = steps[Math.min(index, steps.length - 1)];
    if (step instanceof Error) throw step;
    return step;
  };
}

/** Resolves after `ms` (real or fake time, whichever is installed). */
export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** An in-memory S3 stand-in. */
export class MemoryObjects implements ObjectStore {
  readonly objects = new Map<string, string>();
  /** Sizes reported for objects that are never stored (a 10 GB file, say). */
  readonly reportedSizes = new Map<string, number>();
  /** The objects read whole, in order. */
  readonly reads: string[] = [];

  async getSize(bucket: string, key: string): Promise<number> {
    const reported = this.reportedSizes.get(`${bucket}/${key}`);
    if (reported !== undefined) return reported;
    const body = this.objects.get(`${bucket}/${key}`);
    if (body === undefined) throw namedError('NotFound', `The specified key does not exist: ${key}`);
    return Buffer.byteLength(body, 'utf8');
  }

  async getText(bucket: string, key: string): Promise<string> {
    this.reads.push(`${bucket}/${key}`);
    const body = this.objects.get(`${bucket}/${key}`);
    if (body === undefined) throw namedError('NoSuchKey', `The specified key does not exist: ${key}`);
    return body;
  }

  async putText(bucket: string, key: string, body: string): Promise<void> {
    this.objects.set(`${bucket}/${key}`, body);
  }

  put(bucket: string, key: string, body: string): this {
    this.objects.set(`${bucket}/${key}`, body);
    return this;
  }

  get(bucket: string, key: string): string | undefined {
    return this.objects.get(`${bucket}/${key}`);
  }
}

export type Outcome = { status: 'SUCCEEDED'; output: unknown } | { status: 'FAILED'; error: string; cause: string };

export interface ExecuteOptions {
  invoker?: TaskInvoker;
  objects?: ObjectStore;
  /** Milliseconds per second of retry delay. @default 1 */
  retryUnitMs?: number;
  random?: () => number;
  executionName?: string;
  startTime?: string;
  mapRuns?: MapRun[];
  /** The execution's history count. @default a Standard execution's (25,000-event limit) */
  history?: ExecutionHistory;
  /** Milliseconds an Express child may run. @default 5 minutes */
  expressMaxDurationMs?: number;
}

/**
 * Loads `definition` through loadDefinition (as a JSON string, as local mode
 * receives it from the template) and runs it to its end.
 */
export async function execute(definition: StateMachineDefinition | object, input: unknown, options: ExecuteOptions = {}): Promise<Outcome> {
  const machine = loadDefinition(JSON.stringify(definition));
  const interpreter = new Interpreter({
    invoker: options.invoker ?? new FakeInvoker(),
    objects: options.objects ?? new MemoryObjects(),
    retryUnitMs: options.retryUnitMs ?? 1,
    random: options.random,
    expressMaxDurationMs: options.expressMaxDurationMs,
  });
  const name = options.executionName ?? 'exec-1';
  try {
    const output = await interpreter.run(machine, JSON.parse(JSON.stringify(input)) as unknown, {
      executionArn: `${STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:${name}`,
      executionName: name,
      stateMachineArn: STATE_MACHINE_ARN,
      startTime: options.startTime ?? new Date().toISOString(),
      input,
      signal: new AbortController().signal,
      onMapRun: (mapRun) => options.mapRuns?.push(mapRun),
      history: options.history ?? new ExecutionHistory(HISTORY_EVENT_LIMIT),
    });
    // What leaves an execution crosses a JSON boundary (DescribeExecution's output string).
    return { status: 'SUCCEEDED', output: JSON.parse(JSON.stringify(output ?? null)) as unknown };
  } catch (error) {
    if (error instanceof StatesError) return { status: 'FAILED', error: error.error, cause: error.cause_ };
    // What LocalStepFunctions records for anything else (infra/local/step-functions.ts).
    return { status: 'FAILED', error: 'States.Runtime', cause: String(error) };
  }
}

/**
 * Under fake timers: drives the clock until `promise` settles, so a schedule
 * of retries, timeouts and waits in AWS's whole seconds runs instantly and
 * every Date.now() in it is exact.
 */
export async function settle<T>(promise: Promise<T>): Promise<T> {
  // Set by the callbacks below, while the loop awaits: boolean, not the `false` it starts as.
  let done = false as boolean;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; !done && i < 100_000; i++) await vi.advanceTimersToNextTimerAsync();
  return promise;
}

/** Fake timers for setTimeout and Date only: promises and I/O stay real. */
export function useFakeClock(): void {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: new Date('2025-01-01T00:00:00.000Z') });
}

/** A single Task state calling lambda:invoke, for the error-handling tests. */
export function taskMachine(task: Record<string, unknown>, extraStates: Record<string, unknown> = {}): object {
  return {
    StartAt: 'Task',
    States: {
      Task: { Type: 'Task', Resource: LAMBDA_INVOKE, ...(task.Next === undefined ? { End: true } : {}), ...task },
      ...extraStates,
    },
  };
}

/** A Succeed state, to land on after a Catch. */
export const END: Record<string, unknown> = { Type: 'Succeed' };

/** The AWS documentation pages the conformance tests cite. */
export const CHOICE = 'https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html';
export const CONNECT_LAMBDA = 'https://docs.aws.amazon.com/step-functions/latest/dg/connect-lambda.html';
export const CONTEXT = 'https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html';
export const DISTRIBUTED = 'https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html';
export const ERRORS = 'https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html';
export const EXPRESS_VS_STANDARD = 'https://docs.aws.amazon.com/step-functions/latest/dg/choosing-workflow-type.html';
export const HISTORY_EVENT = 'https://docs.aws.amazon.com/step-functions/latest/apireference/API_HistoryEvent.html';
export const MAPRUN_COUNTS = 'https://docs.aws.amazon.com/step-functions/latest/apireference/API_MapRunExecutionCounts.html';
export const QUOTAS = 'https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html';
export const FILTERING = 'https://docs.aws.amazon.com/step-functions/latest/dg/concepts-input-output-filtering.html';
export const INLINE = 'https://docs.aws.amazon.com/step-functions/latest/dg/state-map-inline.html';
export const INPUTPATH_PARAMETERS = 'https://docs.aws.amazon.com/step-functions/latest/dg/input-output-inputpath-params.html';
export const ITEMREADER = 'https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html';
export const ITEMSELECTOR = 'https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemselector.html';
export const LAMBDA_ERRORS = 'https://docs.aws.amazon.com/lambda/latest/dg/nodejs-exceptions.html';
export const MAPRUN = 'https://docs.aws.amazon.com/step-functions/latest/dg/concepts-examine-map-run.html';
export const RESULTPATH = 'https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultpath.html';
export const RESULTWRITER = 'https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html';
export const TASK = 'https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html';
export const TUTORIAL = 'https://docs.aws.amazon.com/step-functions/latest/dg/tutorial-handling-error-conditions.html';
export const WAIT = 'https://docs.aws.amazon.com/step-functions/latest/dg/state-wait.html';

/** Runs a definition to its end with AWS's own retry timing (1 s per retry unit). */
export const run = (definition: object, input: unknown, options: ExecuteOptions = {}) => settle(execute(definition, input, { retryUnitMs: 1000, ...options }));
