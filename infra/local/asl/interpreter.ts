/**
 * Runs a loaded ASL definition with AWS's documented semantics for the
 * subset `definition.ts` accepts:
 *
 * - Retry: per-retrier attempt counts, IntervalSeconds × BackoffRate^n capped by
 *   MaxDelaySeconds, FULL jitter = uniform(0, delay); first matching retrier wins
 *   (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html).
 * - Catch: first matching catcher; error output {Error, Cause} placed by ResultPath.
 * - States.ALL matches every error but States.Runtime; States.TaskFailed every
 *   error but States.Timeout.
 * - Parallel: every branch runs on the (Parameters-shaped) input; the result is
 *   their outputs in branch order; the first branch to fail stops the others
 *   and the Parallel fails with that branch's error. A retry runs every branch again
 *   (https://docs.aws.amazon.com/step-functions/latest/dg/state-parallel.html).
 * - TimeoutSeconds(Path) raises States.Timeout (the invoked function keeps running, as on AWS).
 * - Distributed Map: items from an S3 ItemReader, MaxConcurrency(Path) changeable
 *   while running (UpdateMapRun), one child execution per item, children launched
 *   in item order, ToleratedFailurePercentage (default 0), ResultWriter to S3.
 *
 * - Quotas (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html):
 *   a state's input or output, a Task's parameters and result over 256 KiB of
 *   UTF-8 fail with States.DataLimitExceeded, which no Retry or Catch matches;
 *   a Standard execution fails with States.Runtime when its history reaches
 *   25,000 events (counted as docs/local-mode-limits.md describes); an Express
 *   child ends TIMED_OUT after 5 minutes.
 * - ItemReader (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html):
 *   a file over 10 GB, known from its size before it is read, or an item over
 *   8 MB fails the Map with States.ItemReaderFailed.
 *
 * Retry delays are scaled by `retryUnitMs` (1000 = AWS's seconds) so tests can
 * run retries in milliseconds; the Express duration is `expressMaxDurationMs`;
 * nothing else is scaled.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { CHOICE_COMPARISONS, type Catcher, type ChoiceRule, type Retrier, type StateDefinition, type StateMachineDefinition } from './definition';
import { applyTemplate, readPath, writeResultPath } from './json-path';

/** Step Functions' payload quota: a state's input or output, a task's parameters and result, an execution's input. */
export const PAYLOAD_LIMIT_BYTES = 262_144;
/** Events in one Standard execution's history; the event that would be the 25,000th fails the execution instead. */
export const HISTORY_EVENT_LIMIT = 25_000;
/**
 * The largest S3 object an ItemReader reads: "10 GB" (ItemReader page,
 * https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html),
 * taken as 10^10 bytes, the stricter reading.
 */
export const ITEM_READER_MAX_OBJECT_BYTES = 10_000_000_000;
/**
 * The largest item an ItemReader reads from a JSON, JSON Lines or CSV file:
 * "up to 8 MB" (same page; the child's input must still fit 256 KiB, after
 * ItemSelector), taken as 8,000,000 bytes of UTF-8, the stricter reading.
 */
export const ITEM_READER_MAX_ITEM_BYTES = 8_000_000;
/**
 * What this interpreter can hold: it reads the object into one string, and
 * V8's strings stop at 2^29 - 24 UTF-16 units. A larger file fails with
 * States.ItemReaderFailed naming this local limit (AWS would read it).
 */
export const LOCAL_ITEM_READER_MAX_OBJECT_BYTES = 2 ** 29 - 24;
/** How long an Express execution may run. */
export const EXPRESS_MAX_DURATION_MS = 5 * 60 * 1000;

/** Errors no Retry or Catch matches, States.ALL included: they end the execution. */
const UNCATCHABLE = new Set(['States.Runtime', 'States.DataLimitExceeded']);

/** An error as Step Functions names it: `Error` and `Cause`. */
export class StatesError extends Error {
  constructor(
    readonly error: string,
    readonly cause_: string,
  ) {
    super(`${error}: ${cause_}`);
    this.name = error;
  }
}

/**
 * One execution's history, as a count of events by type (the events
 * themselves are not kept). A Standard execution has a limit: the event that
 * would be number `limit` is the ExecutionFailed event instead, so at most
 * `limit - 1` events are recorded. Express executions keep no history and
 * have no limit.
 */
export class ExecutionHistory {
  readonly byType = new Map<string, number>();

  /** @param events events the execution already has (1: ExecutionStarted) */
  constructor(
    readonly limit: number | undefined,
    public events = 1,
  ) {
    if (events === 1) this.byType.set('ExecutionStarted', 1);
  }

  /** Records events in order; throws States.Runtime, uncatchable, when the limit is reached. */
  add(...types: string[]): void {
    for (const type of types) {
      if (this.limit !== undefined && this.events + 1 >= this.limit) {
        throw new StatesError('States.Runtime', `The execution reached the maximum number of history events (${this.limit}).`);
      }
      this.events++;
      this.byType.set(type, (this.byType.get(type) ?? 0) + 1);
    }
  }
}

/** Why an execution failed, when no redrive can help: the history limit. */
export const isHistoryLimitFailure = (error: string | undefined, cause: string | undefined): boolean =>
  error === 'States.Runtime' && (cause ?? '').startsWith('The execution reached the maximum number of history events');

/** Throws States.DataLimitExceeded when `value`, as JSON in UTF-8, is over 256 KiB. */
export function checkPayload(value: unknown, what: string): void {
  const text = JSON.stringify(value ?? null);
  // A UTF-16 code unit is at most 3 bytes of UTF-8: most payloads need no count.
  if (text.length * 3 <= PAYLOAD_LIMIT_BYTES) return;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > PAYLOAD_LIMIT_BYTES) {
    throw new StatesError('States.DataLimitExceeded', `${what} is ${bytes} bytes, over the ${PAYLOAD_LIMIT_BYTES}-byte (256 KiB) quota`);
  }
}

/** An Express execution that ran past its maximum duration: it ends TIMED_OUT, which is not a state error. */
export class ExecutionTimedOut extends StatesError {
  constructor(durationMs: number) {
    super('States.Timeout', `The execution ran longer than the Express maximum of ${durationMs / 1000} s`);
  }
}

export interface TaskInvoker {
  /** Calls a Task state's resource, e.g. lambda:invoke with {FunctionName, Payload}. */
  invoke(resource: string, parameters: unknown, signal: AbortSignal): Promise<unknown>;
}

export interface ObjectStore {
  /** The object's size in bytes (HeadObject's ContentLength), known before reading it. */
  getSize(bucket: string, key: string): Promise<number>;
  getText(bucket: string, key: string): Promise<string>;
  putText(bucket: string, key: string, body: string): Promise<void>;
}

/** A distributed child's execution metadata, kept for ResultWriter's NONE transformation. */
export interface ChildRecord {
  ExecutionArn: string;
  Name: string;
  StateMachineArn: string;
  StartDate: string;
  StopDate?: string;
  Status?: 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT';
  Input: unknown;
  Output?: unknown;
}

export interface MapRunCounts {
  pending: number;
  running: number;
  succeeded: number;
  failed: number;
  /** Express children that ran past 5 minutes; they count toward the tolerated failures. */
  timedOut: number;
  aborted: number;
  total: number;
}

/** A Map Run as DescribeMapRun / UpdateMapRun see it. */
export class MapRun {
  readonly arn: string;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED' = 'RUNNING';
  readonly startDate = new Date();
  stopDate: Date | undefined;
  readonly counts: MapRunCounts;
  private listener: (() => void) | undefined;

  constructor(
    readonly executionArn: string,
    label: string,
    private concurrency: number,
    total: number,
    /** A resumed Map Run keeps the ARN it had, as a redriven one does on AWS. */
    arn?: string,
  ) {
    this.arn = arn ?? `${executionArn.replace(':execution:', ':mapRun:')}/${label}:${randomUUID()}`;
    this.counts = { pending: total, running: 0, succeeded: 0, failed: 0, timedOut: 0, aborted: 0, total };
  }

  get maxConcurrency(): number {
    return this.concurrency;
  }

  /** UpdateMapRun: takes effect on the next child launch. */
  setMaxConcurrency(value: number): void {
    this.concurrency = value === 0 ? 10_000 : value;
    this.listener?.();
  }

  /** Called on UpdateMapRun while the Map Run runs; `undefined` once it has ended. */
  onChange(listener: (() => void) | undefined): void {
    this.listener = listener;
  }
}

/** How a distributed child ended, as a checkpoint keeps it. */
export type ChildOutcome =
  | { status: 'SUCCEEDED'; output: unknown; record?: ChildRecord }
  | { status: 'FAILED'; error: string; cause: string; record?: ChildRecord };

/** A Map Run an earlier run of the execution left unfinished, and the children of it that ended. */
export interface ResumedMapRun {
  arn: string;
  /** The last MaxConcurrency it had (UpdateMapRun included). */
  maxConcurrency?: number;
  /** Children that ended: they are not run again. */
  children: ReadonlyMap<number, ChildOutcome>;
}

/**
 * Hooks for a runner that persists executions (local crash recovery,
 * redrive). The interpreter reports the top-level states it enters and each
 * distributed child's launch and end; a resumed execution starts again at the
 * state it was in, and its Map Run skips the children that had ended, as a
 * redriven Map Run does. Only the top-level execution carries these hooks.
 */
export interface ExecutionCheckpoint {
  /** A top-level state is about to run with this (raw) input; `historyEvents`: the events the execution had then. */
  stateEntered(stateName: string, input: unknown, historyEvents?: number): void;
  /** A Distributed Map is about to start a Map Run: the one to resume, if any. */
  mapRunStarting(stateName: string): ResumedMapRun | undefined;
  mapRunStarted(stateName: string, mapRun: MapRun): void;
  childLaunched(mapRun: MapRun, index: number): void;
  childEnded(mapRun: MapRun, index: number, outcome: ChildOutcome): void;
}

export interface ExecutionContext {
  executionArn: string;
  executionName: string;
  stateMachineArn: string;
  startTime: string;
  input: unknown;
  signal: AbortSignal;
  /**
   * What EXPRESS children of a Distributed Map listen to instead of `signal`:
   * stopping the parent does not stop them (StopExecution does not apply to
   * EXPRESS executions); only this does (the local fleet stopping). Absent: `signal`.
   */
  detachedSignal?: AbortSignal;
  onMapRun?: (mapRun: MapRun) => void;
  /** Top-level executions only. */
  checkpoint?: ExecutionCheckpoint;
  /** Its history's event count; absent for an Express execution, which keeps none. */
  history?: ExecutionHistory;
}

export interface InterpreterOptions {
  invoker: TaskInvoker;
  objects: ObjectStore;
  /** Milliseconds per "second" of retry delay. @default 1000 */
  retryUnitMs?: number;
  /** How long an Express child execution may run before it ends TIMED_OUT. @default EXPRESS_MAX_DURATION_MS (5 minutes) */
  expressMaxDurationMs?: number;
  random?: () => number;
}

/** JSON.stringify's result, typed as it is at runtime: undefined for a value JSON cannot hold. */
const stringify = (value: unknown): string | undefined => JSON.stringify(value);

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) { reject(signal.reason); return; }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });

function toStatesError(error: unknown): StatesError {
  if (error instanceof StatesError) return error;
  if (error instanceof Error && error.name === 'States.Runtime') return new StatesError('States.Runtime', error.message);
  if (error instanceof Error) return new StatesError(error.name || 'Error', error.message);
  return new StatesError('States.Runtime', String(error));
}

/**
 * States.ALL "can't catch the States.DataLimitExceeded terminal error or
 * Runtime error types" (concepts-error-handling.html). The page calls
 * DataLimitExceeded terminal; local mode lets no retrier or catcher match
 * either, not even one naming it, which is never kinder than AWS.
 */
function matches(errorEquals: readonly string[], name: string): boolean {
  if (UNCATCHABLE.has(name)) return false;
  return errorEquals.some(
    (candidate) => candidate === name || candidate === 'States.ALL' || (candidate === 'States.TaskFailed' && name !== 'States.Timeout'),
  );
}

function selectPath(path: string | null | undefined, value: unknown, context: unknown): unknown {
  if (path === null) return {};
  if (path === undefined || path === '$') return value;
  return readPath(path, value, context);
}

/**
 * One Choice rule (https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html):
 * a missing Variable fails with States.Runtime, except under IsPresent; a
 * comparison against a value of another type is simply false.
 */
function choiceMatches(rule: ChoiceRule, input: unknown, context: unknown): boolean {
  const comparison = CHOICE_COMPARISONS.find((name) => rule[name] !== undefined);
  if (comparison === 'IsPresent') {
    let present = true;
    try {
      readPath(rule.Variable, input, context);
    } catch {
      present = false;
    }
    return present === rule.IsPresent;
  }
  const value = readPath(rule.Variable, input, context);
  switch (comparison) {
    case 'BooleanEquals':
      return typeof value === 'boolean' && value === rule.BooleanEquals;
    case 'StringEquals':
      return typeof value === 'string' && value === rule.StringEquals;
    case 'NumericEquals':
      return typeof value === 'number' && value === rule.NumericEquals;
    case 'NumericGreaterThan':
      return typeof value === 'number' && value > (rule.NumericGreaterThan as number);
    case 'NumericGreaterThanEquals':
      return typeof value === 'number' && value >= (rule.NumericGreaterThanEquals as number);
    case 'NumericLessThan':
      return typeof value === 'number' && value < (rule.NumericLessThan as number);
    case 'NumericLessThanEquals':
      return typeof value === 'number' && value <= (rule.NumericLessThanEquals as number);
    default:
      return false;
  }
}

export class Interpreter {
  private readonly retryUnitMs: number;
  private readonly expressMaxDurationMs: number;
  private readonly random: () => number;

  constructor(private readonly options: InterpreterOptions) {
    this.retryUnitMs = options.retryUnitMs ?? 1000;
    this.expressMaxDurationMs = options.expressMaxDurationMs ?? EXPRESS_MAX_DURATION_MS;
    this.random = options.random ?? Math.random;
  }

  /**
   * Runs a state machine (or a Map's ItemProcessor) to its end; throws StatesError on failure.
   * @param startAt resume at this state, with `input` as that state's input (crash recovery, redrive)
   */
  async run(machine: StateMachineDefinition, input: unknown, execution: ExecutionContext, startAt?: string): Promise<unknown> {
    let name = startAt ?? machine.StartAt;
    let value = input;
    for (;;) {
      if (execution.signal.aborted) throw new StatesError('States.Aborted', 'the execution was stopped');
      const state = machine.States[name];
      if (!state) throw new StatesError('States.Runtime', `no state named "${name}"`);
      execution.checkpoint?.stateEntered(name, value, execution.history?.events);
      checkPayload(value, `the input of state "${name}"`);
      const { output, next } = await this.runState(name, state, value, execution);
      checkPayload(output, `the output of state "${name}"`);
      if (state.Type === 'Succeed') return output;
      if (next === undefined) return output;
      name = next;
      value = output;
    }
  }

  private contextObject(execution: ExecutionContext, stateName: string, retryCount: number, extra?: object) {
    return {
      Execution: { Id: execution.executionArn, Name: execution.executionName, StartTime: execution.startTime, Input: execution.input },
      StateMachine: { Id: execution.stateMachineArn },
      State: { Name: stateName, EnteredTime: new Date().toISOString(), RetryCount: retryCount },
      ...extra,
    };
  }

  private async runState(
    name: string,
    state: StateDefinition,
    input: unknown,
    execution: ExecutionContext,
  ): Promise<{ output: unknown; next: string | undefined }> {
    switch (state.Type) {
      case 'Succeed': {
        execution.history?.add('SucceedStateEntered');
        const context = this.contextObject(execution, name, 0);
        const output = selectPath(state.OutputPath, selectPath(state.InputPath, input, context), context);
        execution.history?.add('SucceedStateExited');
        return { output, next: undefined };
      }
      case 'Fail':
        execution.history?.add('FailStateEntered');
        throw new StatesError(state.Error ?? 'States.Fail', state.Cause ?? '');
      case 'Pass': {
        execution.history?.add('PassStateEntered');
        const context = this.contextObject(execution, name, 0);
        const effective = selectPath(state.InputPath, input, context);
        const result = state.Result !== undefined ? state.Result : state.Parameters !== undefined ? applyTemplate(state.Parameters, effective, context) : effective;
        const output = selectPath(state.OutputPath, writeResultPath(state.ResultPath, input, result), context);
        execution.history?.add('PassStateExited');
        return { output, next: state.End ? undefined : state.Next };
      }
      case 'Choice': {
        execution.history?.add('ChoiceStateEntered');
        const context = this.contextObject(execution, name, 0);
        const effective = selectPath(state.InputPath, input, context);
        const rule = (state.Choices ?? []).find((r) => choiceMatches(r, effective, context));
        const next = rule?.Next ?? state.Default;
        if (!next) throw new StatesError('States.NoChoiceMatched', `no Choice rule matched in state "${name}" and it has no Default`);
        const output = selectPath(state.OutputPath, effective, context);
        execution.history?.add('ChoiceStateExited');
        return { output, next };
      }
      case 'Wait': {
        execution.history?.add('WaitStateEntered');
        const context = this.contextObject(execution, name, 0);
        const effective = selectPath(state.InputPath, input, context);
        const seconds = state.SecondsPath !== undefined ? readPath(state.SecondsPath, effective, context) : state.Seconds;
        if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 0) {
          throw new StatesError('States.Runtime', `Wait "${name}": SecondsPath must select a non-negative integer, got ${JSON.stringify(seconds)}`);
        }
        // Real seconds, as on AWS (only retry delays are scaled locally).
        await sleep(seconds * 1000, execution.signal);
        const output = selectPath(state.OutputPath, effective, context);
        execution.history?.add('WaitStateExited');
        return { output, next: state.End ? undefined : state.Next };
      }
      case 'Task':
      case 'Map':
      case 'Parallel':
        return this.runWithRetries(name, state, input, execution);
    }
  }

  private async runWithRetries(
    name: string,
    state: StateDefinition,
    input: unknown,
    execution: ExecutionContext,
  ): Promise<{ output: unknown; next: string | undefined }> {
    const retriers: Retrier[] = state.Retry ?? [];
    // As in the error-handling guide's "complex retry scenario": the backoff
    // exponent counts every retry a retrier made, while MaxAttempts limits the
    // retries of each error name under that retrier.
    const counts = new Array<number>(retriers.length).fill(0);
    const countsByError = retriers.map(() => new Map<string, number>());
    let retryCount = 0;
    execution.history?.add(`${state.Type}StateEntered`);
    for (;;) {
      const context = this.contextObject(execution, name, retryCount);
      try {
        const effective = selectPath(state.InputPath, input, context);
        const raw =
          state.Type === 'Task'
            ? await this.runTask(state, effective, context, execution)
            : state.Type === 'Parallel'
              ? await this.runParallel(state, effective, context, execution)
              : await this.runMap(name, state, effective, context, execution);
        const selected = state.ResultSelector !== undefined ? applyTemplate(state.ResultSelector, raw, context) : raw;
        const output = selectPath(state.OutputPath, writeResultPath(state.ResultPath, input, selected), context);
        execution.history?.add(`${state.Type}StateExited`);
        return { output, next: state.End ? undefined : state.Next };
      } catch (thrown) {
        const error = toStatesError(thrown);
        if (execution.signal.aborted) throw new StatesError('States.Aborted', 'the execution was stopped');
        if (UNCATCHABLE.has(error.error)) throw error;
        const index = retriers.findIndex((retrier) => matches(retrier.ErrorEquals, error.error));
        const retrier = index >= 0 ? retriers[index] : undefined;
        const byError = index >= 0 ? countsByError[index] : undefined;
        if (retrier && byError && (byError.get(error.error) ?? 0) < (retrier.MaxAttempts ?? 3)) {
          const n = counts[index] ?? 0;
          let delay = (retrier.IntervalSeconds ?? 1) * (retrier.BackoffRate ?? 2) ** n;
          if (retrier.MaxDelaySeconds !== undefined) delay = Math.min(delay, retrier.MaxDelaySeconds);
          if (retrier.JitterStrategy === 'FULL') delay = this.random() * delay;
          counts[index] = n + 1;
          byError.set(error.error, (byError.get(error.error) ?? 0) + 1);
          retryCount++;
          await sleep(delay * this.retryUnitMs, execution.signal);
          continue;
        }
        const catcher: Catcher | undefined = (state.Catch ?? []).find((c) => matches(c.ErrorEquals, error.error));
        if (catcher) {
          const output = writeResultPath(catcher.ResultPath, input, { Error: error.error, Cause: error.cause_ });
          execution.history?.add(`${state.Type}StateExited`);
          return { output, next: catcher.Next };
        }
        throw error;
      }
    }
  }

  private async runTask(state: StateDefinition, input: unknown, context: unknown, execution: ExecutionContext): Promise<unknown> {
    const parameters = state.Parameters !== undefined ? applyTemplate(state.Parameters, input, context) : input;
    // "The state input is larger than the payload size quota after Parameters processing" (concepts-error-handling.html).
    checkPayload(parameters, 'the task input after Parameters');
    let timeoutSeconds = state.TimeoutSeconds;
    if (state.TimeoutSecondsPath !== undefined) {
      const value = readPath(state.TimeoutSecondsPath, input, context);
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
        throw new StatesError('States.Runtime', `TimeoutSecondsPath '${state.TimeoutSecondsPath}' must select a positive integer, got ${JSON.stringify(value)}`);
      }
      timeoutSeconds = value;
    }
    const controller = new AbortController();
    const onAbort = () => { controller.abort(execution.signal.reason); };
    execution.signal.addEventListener('abort', onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    execution.history?.add('TaskScheduled', 'TaskStarted');
    let result: unknown;
    try {
      const invocation = this.options.invoker.invoke(state.Resource ?? '', parameters, controller.signal);
      if (timeoutSeconds === undefined) result = await invocation;
      else {
        invocation.catch(() => undefined);
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => { reject(new StatesError('States.Timeout', `the state exceeded its ${timeoutSeconds} s timeout`)); }, timeoutSeconds * 1000);
        });
        result = await Promise.race([invocation, timeout]);
      }
    } catch (error) {
      if (!execution.signal.aborted) execution.history?.add(error instanceof StatesError && error.error === 'States.Timeout' ? 'TaskTimedOut' : 'TaskFailed');
      throw error;
    } finally {
      if (timer) clearTimeout(timer);
      execution.signal.removeEventListener('abort', onAbort);
    }
    // "The connector output is larger than the payload size quota".
    checkPayload(result, 'the task result');
    execution.history?.add('TaskSucceeded');
    return result;
  }

  /** The branches of one Parallel run, each on its own copy of the input. */
  private async runParallel(state: StateDefinition, input: unknown, context: unknown, execution: ExecutionContext): Promise<unknown[]> {
    const branchInput = state.Parameters !== undefined ? applyTemplate(state.Parameters, input, context) : input;
    const controller = new AbortController();
    const onAbort = () => { controller.abort(execution.signal.reason); };
    if (execution.signal.aborted) onAbort();
    else execution.signal.addEventListener('abort', onAbort, { once: true });
    // Branches run in the context of the workflow that contains the Parallel; only top-level states are checkpointed.
    const branchExecution: ExecutionContext = { ...execution, signal: controller.signal, checkpoint: undefined };
    execution.history?.add('ParallelStateStarted');
    let failure: unknown;
    try {
      const runs = (state.Branches ?? []).map((branch) =>
        this.run(branch, structuredClone(branchInput), branchExecution).catch((error: unknown) => {
          // The first failure stops the other branches and is the Parallel's error.
          if (failure === undefined) {
            failure = error;
            controller.abort(error);
          }
          throw error;
        }),
      );
      const settled = await Promise.allSettled(runs);
      execution.history?.add(failure === undefined ? 'ParallelStateSucceeded' : 'ParallelStateFailed');
      if (failure !== undefined) throw failure as unknown;
      return settled.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value : undefined));
    } finally {
      execution.signal.removeEventListener('abort', onAbort);
    }
  }

  private async readItems(state: StateDefinition, input: unknown, context: unknown): Promise<{ count: number; item: (i: number) => unknown }> {
    const reader = state.ItemReader;
    if (!reader) {
      const items = selectPath(state.ItemsPath, input, context);
      if (!Array.isArray(items)) throw new StatesError('States.Runtime', `ItemsPath '${state.ItemsPath ?? '$'}' did not select an array`);
      const list = items as unknown[];
      return { count: list.length, item: (i) => list[i] };
    }
    const { Bucket, Key } = applyTemplate(reader.Parameters ?? {}, input, context) as { Bucket?: unknown; Key?: unknown };
    if (typeof Bucket !== 'string' || typeof Key !== 'string') throw new StatesError('States.ItemReaderFailed', 'ItemReader needs a Bucket and a Key');
    const source = `s3://${Bucket}/${Key}`;
    // The object's size first, as AWS bounds it: a file over the limit is never read.
    let size: number;
    try {
      size = await this.options.objects.getSize(Bucket, Key);
    } catch (error) {
      throw new StatesError('States.ItemReaderFailed', `could not read ${source}: ${(error as Error).message}`);
    }
    if (size > ITEM_READER_MAX_OBJECT_BYTES) {
      throw new StatesError('States.ItemReaderFailed', `${source} is ${size} bytes; an ItemReader reads files of up to 10 GB (${ITEM_READER_MAX_OBJECT_BYTES} bytes)`);
    }
    if (size > LOCAL_ITEM_READER_MAX_OBJECT_BYTES) {
      throw new StatesError('States.ItemReaderFailed', `${source} is ${size} bytes; local mode reads files of up to ${LOCAL_ITEM_READER_MAX_OBJECT_BYTES} bytes (AWS reads up to 10 GB)`);
    }
    let text: string;
    try {
      text = await this.options.objects.getText(Bucket, Key);
    } catch (error) {
      throw new StatesError('States.ItemReaderFailed', `could not read ${source}: ${(error as Error).message}`);
    }
    const tooBig = (bytes: number, which: string) =>
      new StatesError('States.ItemReaderFailed', `${which} of ${source} is ${bytes} bytes; an ItemReader reads items of up to 8 MB (${ITEM_READER_MAX_ITEM_BYTES} bytes)`);
    const max = reader.ReaderConfig?.MaxItems ?? Infinity;
    if (reader.ReaderConfig?.InputType === 'JSON') {
      const items = JSON.parse(text) as unknown;
      if (!Array.isArray(items)) throw new StatesError('States.ItemReaderFailed', 'the JSON file does not hold an array');
      const list = items as unknown[];
      const count = Math.min(list.length, max);
      for (let i = 0; i < count; i++) {
        // An item's size as its own compact JSON: no larger than its text in the file.
        const bytes = Buffer.byteLength(stringify(list[i]) ?? '', 'utf8');
        if (bytes > ITEM_READER_MAX_ITEM_BYTES) throw tooBig(bytes, `item ${i + 1}`);
      }
      return { count, item: (i) => list[i] };
    }
    // JSONL: keep the text and line offsets, parse each line when its child starts.
    // Every line is measured before any child starts: the stricter reading of
    // when AWS's readers, which read ahead, would meet an oversized one.
    const starts: number[] = [];
    let at = 0;
    while (at < text.length && starts.length < max) {
      const end = text.indexOf('\n', at);
      const stop = end < 0 ? text.length : end;
      const line = text.slice(at, stop);
      if (line.trim() !== '') {
        // A UTF-16 unit is at most 3 bytes of UTF-8: only long lines need counting.
        if (line.length * 3 > ITEM_READER_MAX_ITEM_BYTES) {
          const bytes = Buffer.byteLength(line, 'utf8');
          if (bytes > ITEM_READER_MAX_ITEM_BYTES) throw tooBig(bytes, `line ${starts.length + 1}`);
        }
        starts.push(at);
      }
      at = stop + 1;
    }
    return {
      count: starts.length,
      item: (i) => {
        const start = starts[i] ?? 0;
        const end = text.indexOf('\n', start);
        try {
          return JSON.parse(text.slice(start, end < 0 ? text.length : end)) as unknown;
        } catch {
          throw new StatesError('States.ItemReaderFailed', `line ${i + 1} of s3://${Bucket}/${Key} is not JSON`);
        }
      },
    };
  }

  private async runMap(name: string, state: StateDefinition, input: unknown, context: unknown, execution: ExecutionContext): Promise<unknown> {
    const processor = state.ItemProcessor;
    if (!processor) throw new StatesError('States.Runtime', 'Map without ItemProcessor');
    const { count, item } = await this.readItems(state, input, context);
    let maxConcurrency = state.MaxConcurrency ?? 0;
    if (state.MaxConcurrencyPath !== undefined) {
      const value = readPath(state.MaxConcurrencyPath, input, context);
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
        throw new StatesError('States.Runtime', `MaxConcurrencyPath '${state.MaxConcurrencyPath}' must select a non-negative integer`);
      }
      maxConcurrency = value;
    }
    const distributed = processor.ProcessorConfig?.Mode === 'DISTRIBUTED';
    const express = distributed && processor.ProcessorConfig?.ExecutionType === 'EXPRESS';
    execution.history?.add(distributed ? 'MapRunStarted' : 'MapStateStarted');
    // EXPRESS children outlive a stop of their parent: the Map Run stops launching and ends, they run on.
    const detached = express && execution.detachedSignal !== undefined;
    const checkpoint = distributed ? execution.checkpoint : undefined;
    const resumed = checkpoint?.mapRunStarting(name);
    const mapRun = new MapRun(execution.executionArn, state.Label ?? 'Map', 0, count, resumed?.arn);
    mapRun.setMaxConcurrency(resumed?.maxConcurrency ?? (maxConcurrency === 0 ? (distributed ? 10_000 : 40) : maxConcurrency));
    if (distributed) execution.onMapRun?.(mapRun);
    checkpoint?.mapRunStarted(name, mapRun);
    const outputs: unknown[] = new Array(count);
    const controller = new AbortController();
    // Every running child listens to this signal: thousands at once is expected.
    setMaxListeners(0, controller.signal);
    const onAbort = () => { controller.abort(execution.signal.reason); };
    execution.signal.addEventListener('abort', onAbort, { once: true });
    let next = 0;
    let firstFailure: StatesError | undefined;
    const failures = new Map<number, StatesError>();
    const transformation = state.ResultWriter ? (state.ResultWriter.WriterConfig?.Transformation ?? 'NONE') : 'COMPACT';
    const records: ChildRecord[] | undefined = transformation === 'NONE' ? new Array(count) : undefined;
    // The Map Run fails once failures exceed ToleratedFailurePercentage
    // of all items (0 by default: the first failure); then nothing new launches.
    const tolerated = ((state.ToleratedFailurePercentage ?? 0) / 100) * count;
    // A resumed Map Run: children that ended before count as they ended and are not run again.
    const ended = resumed?.children;
    for (const [index, outcome] of ended ?? []) {
      if (index < 0 || index >= count) throw new StatesError('States.Runtime', `the resumed Map Run has child ${index} but only ${count} items`);
      mapRun.counts.pending--;
      if (records && outcome.record) records[index] = outcome.record;
      if (outcome.status === 'SUCCEEDED') {
        outputs[index] = outcome.output;
        mapRun.counts.succeeded++;
      } else {
        if (express && outcome.error === 'States.Timeout') mapRun.counts.timedOut++;
        else mapRun.counts.failed++;
        failures.set(index, new StatesError(outcome.error, outcome.cause));
        if (mapRun.counts.failed + mapRun.counts.timedOut > tolerated) firstFailure ??= new StatesError(outcome.error, outcome.cause);
      }
    }
    try {
      await new Promise<void>((resolve) => {
        const pump = () => {
          while (next < count && mapRun.counts.running < mapRun.maxConcurrency && !firstFailure && !controller.signal.aborted) {
            const index = next++;
            if (ended?.has(index)) continue;
            mapRun.counts.pending--;
            mapRun.counts.running++;
            checkpoint?.childLaunched(mapRun, index);
            const childSignal = detached && execution.detachedSignal ? execution.detachedSignal : controller.signal;
            void this.runChild(processor, state, index, item, input, context, execution, childSignal, records).then(
              (output) => {
                outputs[index] = output;
                mapRun.counts.running--;
                mapRun.counts.succeeded++;
                // Also while stopping: a child that ended is done, and is not run again on resume.
                checkpoint?.childEnded(mapRun, index, { status: 'SUCCEEDED', output, ...(records?.[index] ? { record: records[index] } : {}) });
                pump();
              },
              (error: unknown) => {
                mapRun.counts.running--;
                if (controller.signal.aborted) mapRun.counts.aborted++;
                else {
                  const failure = toStatesError(error);
                  if (error instanceof ExecutionTimedOut) mapRun.counts.timedOut++;
                  else mapRun.counts.failed++;
                  failures.set(index, failure);
                  checkpoint?.childEnded(mapRun, index, {
                    status: 'FAILED',
                    error: failure.error,
                    cause: failure.cause_,
                    ...(records?.[index] ? { record: records[index] } : {}),
                  });
                  // Timed-out children count as failures toward the threshold.
                  if (mapRun.counts.failed + mapRun.counts.timedOut > tolerated) firstFailure ??= failure;
                }
                pump();
              },
            );
          }
          const stopped = firstFailure !== undefined || controller.signal.aborted;
          // A stopped parent does not wait for its EXPRESS children; a stopping fleet drains them.
          const waitFor = detached && controller.signal.aborted && !execution.detachedSignal?.aborted ? 0 : mapRun.counts.running;
          if (waitFor === 0 && (next >= count || stopped)) resolve();
        };
        mapRun.onChange(pump);
        controller.signal.addEventListener('abort', pump, { once: true });
        pump();
      });
    } finally {
      execution.signal.removeEventListener('abort', onAbort);
      // Not a no-op closure: one made here would share this function's scope
      // and keep the items and outputs alive as long as the Map Run is listed.
      mapRun.onChange(undefined);
      mapRun.stopDate = new Date();
    }
    if (controller.signal.aborted) {
      mapRun.status = 'ABORTED';
      throw new StatesError('States.Aborted', 'the execution was stopped');
    }
    if (firstFailure) {
      mapRun.status = 'FAILED';
      execution.history?.add(distributed ? 'MapRunFailed' : 'MapStateFailed');
      // An inline Map fails with its iteration's own error; a Map Run with the threshold's.
      if (!distributed) throw firstFailure;
      throw new StatesError('States.ExceedToleratedFailureThreshold', `a child execution failed: ${firstFailure.message}`);
    }
    mapRun.status = 'SUCCEEDED';
    execution.history?.add(distributed ? 'MapRunSucceeded' : 'MapStateSucceeded');
    if (!state.ResultWriter) return outputs;
    return this.writeResults(state, input, context, mapRun, outputs, failures, records);
  }

  private async runChild(
    processor: StateMachineDefinition,
    state: StateDefinition,
    index: number,
    item: (i: number) => unknown,
    input: unknown,
    context: unknown,
    execution: ExecutionContext,
    signal: AbortSignal,
    records: ChildRecord[] | undefined,
  ): Promise<unknown> {
    const value = item(index);
    const mapContext = { ...(context as object), Map: { Item: { Index: index, Value: value } } };
    const childInput = state.ItemSelector !== undefined ? applyTemplate(state.ItemSelector, input, mapContext) : value;
    // Inline iterations run in the context of the workflow that contains the Map, and count in its history.
    if (state.ItemProcessor?.ProcessorConfig?.Mode !== 'DISTRIBUTED') return this.runIteration(processor, childInput, { ...execution, signal, checkpoint: undefined });
    const express = state.ItemProcessor.ProcessorConfig.ExecutionType === 'EXPRESS';
    const childName = `${execution.executionName}-${index}`;
    // An Express child has its own deadline: the parent cannot stop it, and the child cannot catch it.
    const childController = express ? new AbortController() : undefined;
    const child: ExecutionContext = {
      executionArn: `${execution.executionArn}:${childName}`,
      executionName: childName,
      // Child executions belong to the Map Run's state machine: <parent ARN>/<label>.
      stateMachineArn: `${execution.stateMachineArn}/${state.Label ?? 'Map'}`,
      startTime: new Date().toISOString(),
      input: childInput,
      signal: childController?.signal ?? signal,
      // Each child is an execution with its own history; only a Standard one keeps (and is bounded by) it.
      ...(express ? {} : { history: new ExecutionHistory(HISTORY_EVENT_LIMIT) }),
    };
    const record: ChildRecord | undefined = records
      ? { ExecutionArn: child.executionArn, Name: childName, StateMachineArn: child.stateMachineArn, StartDate: child.startTime, Input: childInput }
      : undefined;
    if (records && record) records[index] = record;
    try {
      const output = childController ? await this.runExpress(processor, childInput, child, childController, signal) : await this.run(processor, childInput, child);
      if (record) Object.assign(record, { Status: 'SUCCEEDED', Output: output, StopDate: new Date().toISOString() });
      return output;
    } catch (error) {
      if (record) Object.assign(record, { Status: error instanceof ExecutionTimedOut ? 'TIMED_OUT' : 'FAILED', StopDate: new Date().toISOString() });
      throw error;
    }
  }

  /** An inline Map iteration, with its MapIteration* events in the execution's history. */
  private async runIteration(processor: StateMachineDefinition, input: unknown, execution: ExecutionContext): Promise<unknown> {
    execution.history?.add('MapIterationStarted');
    try {
      const output = await this.run(processor, input, execution);
      execution.history?.add('MapIterationSucceeded');
      return output;
    } catch (error) {
      if (!execution.signal.aborted && !UNCATCHABLE.has(toStatesError(error).error)) execution.history?.add('MapIterationFailed');
      throw error;
    }
  }

  /**
   * An Express child: after expressMaxDurationMs it ends TIMED_OUT at once
   * (States.Timeout), and runs no further state; a Lambda it was waiting for
   * runs on, as it does on AWS. Stopping the parent stops launching, not this.
   */
  private async runExpress(
    processor: StateMachineDefinition,
    input: unknown,
    child: ExecutionContext,
    controller: AbortController,
    mapSignal: AbortSignal,
  ): Promise<unknown> {
    // A failed or stopped Map Run still ends its running children locally (see runMap's abort).
    const onAbort = () => { controller.abort(mapSignal.reason); };
    mapSignal.addEventListener('abort', onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    try {
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const timedOut = new ExecutionTimedOut(this.expressMaxDurationMs);
          controller.abort(timedOut);
          reject(timedOut);
        }, this.expressMaxDurationMs);
      });
      const run = this.run(processor, input, child);
      run.catch(() => undefined);
      return await Promise.race([run, deadline]);
    } finally {
      clearTimeout(timer);
      mapSignal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * ResultWriter: results by status, SUCCEEDED_0 and FAILED_0, listed in
   * manifest.json. COMPACT writes succeeded children's bare outputs; NONE
   * (the default with no WriterConfig) writes each child with its execution
   * metadata, Input and Output as JSON strings. A failed child is always
   * written as NONE would.
   */
  private async writeResults(
    state: StateDefinition,
    input: unknown,
    context: unknown,
    mapRun: MapRun,
    outputs: unknown[],
    failures: ReadonlyMap<number, StatesError>,
    records: ChildRecord[] | undefined,
  ): Promise<unknown> {
    const writer = state.ResultWriter ?? {};
    const { Bucket, Prefix } = applyTemplate(writer.Parameters ?? {}, input, context) as { Bucket?: string; Prefix?: string };
    if (!Bucket) return outputs;
    const runId = mapRun.arn.slice(mapRun.arn.lastIndexOf(':') + 1);
    const base = `${Prefix ? `${Prefix}/` : ''}${runId}`;
    const jsonl = writer.WriterConfig?.OutputType === 'JSONL';
    const serialize = (entries: unknown[]) => (jsonl ? entries.map((o) => JSON.stringify(o)).join('\n') : JSON.stringify(entries));
    const withMetadata = (record: ChildRecord | undefined, extra: object) =>
      record ? { ...record, Input: JSON.stringify(record.Input), InputDetails: { Included: true }, ...extra } : extra;
    const succeeded: unknown[] = [];
    const failed: unknown[] = [];
    for (let i = 0; i < outputs.length; i++) {
      const failure = failures.get(i);
      if (failure) {
        failed.push(withMetadata(records?.[i], { Status: records?.[i]?.Status === 'TIMED_OUT' ? 'TIMED_OUT' : 'FAILED', Error: failure.error, Cause: failure.cause_ }));
      } else if (records) {
        const record = records[i];
        succeeded.push(withMetadata(record, { Output: JSON.stringify(record?.Output ?? null), OutputDetails: { Included: true } }));
      } else {
        succeeded.push(outputs[i]);
      }
    }
    const files: Record<'SUCCEEDED' | 'FAILED' | 'PENDING', { Key: string; Size: number }[]> = { SUCCEEDED: [], FAILED: [], PENDING: [] };
    try {
      for (const [status, entries] of [
        ['SUCCEEDED', succeeded],
        ['FAILED', failed],
      ] as const) {
        if (entries.length === 0 && status === 'FAILED') continue;
        const key = `${base}/${status}_0.json`;
        const body = serialize(entries);
        await this.options.objects.putText(Bucket, key, body);
        files[status].push({ Key: key, Size: Buffer.byteLength(body, 'utf8') });
      }
      const manifestKey = `${base}/manifest.json`;
      await this.options.objects.putText(Bucket, manifestKey, JSON.stringify({ DestinationBucket: Bucket, MapRunArn: mapRun.arn, ResultFiles: files }));
      return { MapRunArn: mapRun.arn, ResultWriterDetails: { Bucket, Key: manifestKey } };
    } catch (error) {
      throw new StatesError('States.ResultWriterFailed', (error as Error).message);
    }
  }
}
