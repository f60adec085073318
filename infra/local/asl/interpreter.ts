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
 * Retry delays are scaled by `retryUnitMs` (1000 = AWS's seconds) so tests can
 * run retries in milliseconds; nothing else is scaled.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { CHOICE_COMPARISONS, type Catcher, type ChoiceRule, type Retrier, type StateDefinition, type StateMachineDefinition } from './definition';
import { applyTemplate, readPath, writeResultPath } from './json-path';

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

export interface TaskInvoker {
  /** Calls a Task state's resource, e.g. lambda:invoke with {FunctionName, Payload}. */
  invoke(resource: string, parameters: unknown, signal: AbortSignal): Promise<unknown>;
}

export interface ObjectStore {
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
  Status?: 'SUCCEEDED' | 'FAILED';
  Input: unknown;
  Output?: unknown;
}

export interface MapRunCounts {
  pending: number;
  running: number;
  succeeded: number;
  failed: number;
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
    this.counts = { pending: total, running: 0, succeeded: 0, failed: 0, aborted: 0, total };
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
  /** A top-level state is about to run with this (raw) input. */
  stateEntered(stateName: string, input: unknown): void;
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
}

export interface InterpreterOptions {
  invoker: TaskInvoker;
  objects: ObjectStore;
  /** Milliseconds per "second" of retry delay. @default 1000 */
  retryUnitMs?: number;
  random?: () => number;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
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

function matches(errorEquals: readonly string[], name: string): boolean {
  if (name === 'States.Runtime') return false;
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
  private readonly random: () => number;

  constructor(private readonly options: InterpreterOptions) {
    this.retryUnitMs = options.retryUnitMs ?? 1000;
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
      execution.checkpoint?.stateEntered(name, value);
      const { output, next } = await this.runState(name, state, value, execution);
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
        const context = this.contextObject(execution, name, 0);
        return { output: selectPath(state.OutputPath, selectPath(state.InputPath, input, context), context), next: undefined };
      }
      case 'Fail':
        throw new StatesError(state.Error ?? 'States.Fail', state.Cause ?? '');
      case 'Pass': {
        const context = this.contextObject(execution, name, 0);
        const effective = selectPath(state.InputPath, input, context);
        const result = state.Result !== undefined ? state.Result : state.Parameters !== undefined ? applyTemplate(state.Parameters, effective, context) : effective;
        const output = selectPath(state.OutputPath, writeResultPath(state.ResultPath, input, result), context);
        return { output, next: state.End ? undefined : state.Next };
      }
      case 'Choice': {
        const context = this.contextObject(execution, name, 0);
        const effective = selectPath(state.InputPath, input, context);
        const rule = (state.Choices ?? []).find((r) => choiceMatches(r, effective, context));
        const next = rule?.Next ?? state.Default;
        if (!next) throw new StatesError('States.NoChoiceMatched', `no Choice rule matched in state "${name}" and it has no Default`);
        return { output: selectPath(state.OutputPath, effective, context), next };
      }
      case 'Wait': {
        const context = this.contextObject(execution, name, 0);
        const effective = selectPath(state.InputPath, input, context);
        const seconds = state.SecondsPath !== undefined ? readPath(state.SecondsPath, effective, context) : state.Seconds;
        if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 0) {
          throw new StatesError('States.Runtime', `Wait "${name}": SecondsPath must select a non-negative integer, got ${JSON.stringify(seconds)}`);
        }
        // Real seconds, as on AWS (only retry delays are scaled locally).
        await sleep(seconds * 1000, execution.signal);
        return { output: selectPath(state.OutputPath, effective, context), next: state.End ? undefined : state.Next };
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
        return { output, next: state.End ? undefined : state.Next };
      } catch (thrown) {
        const error = toStatesError(thrown);
        if (execution.signal.aborted) throw new StatesError('States.Aborted', 'the execution was stopped');
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
          return { output: writeResultPath(catcher.ResultPath, input, { Error: error.error, Cause: error.cause_ }), next: catcher.Next };
        }
        throw error;
      }
    }
  }

  private async runTask(state: StateDefinition, input: unknown, context: unknown, execution: ExecutionContext): Promise<unknown> {
    const parameters = state.Parameters !== undefined ? applyTemplate(state.Parameters, input, context) : input;
    let timeoutSeconds = state.TimeoutSeconds;
    if (state.TimeoutSecondsPath !== undefined) {
      const value = readPath(state.TimeoutSecondsPath, input, context);
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
        throw new StatesError('States.Runtime', `TimeoutSecondsPath '${state.TimeoutSecondsPath}' must select a positive integer, got ${JSON.stringify(value)}`);
      }
      timeoutSeconds = value;
    }
    const controller = new AbortController();
    const onAbort = () => controller.abort(execution.signal.reason);
    execution.signal.addEventListener('abort', onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    try {
      const invocation = this.options.invoker.invoke(state.Resource ?? '', parameters, controller.signal);
      if (timeoutSeconds === undefined) return await invocation;
      invocation.catch(() => undefined);
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new StatesError('States.Timeout', `the state exceeded its ${timeoutSeconds} s timeout`)), timeoutSeconds * 1000);
      });
      return await Promise.race([invocation, timeout]);
    } finally {
      if (timer) clearTimeout(timer);
      execution.signal.removeEventListener('abort', onAbort);
    }
  }

  /** The branches of one Parallel run, each on its own copy of the input. */
  private async runParallel(state: StateDefinition, input: unknown, context: unknown, execution: ExecutionContext): Promise<unknown[]> {
    const branchInput = state.Parameters !== undefined ? applyTemplate(state.Parameters, input, context) : input;
    const controller = new AbortController();
    const onAbort = () => controller.abort(execution.signal.reason);
    if (execution.signal.aborted) onAbort();
    else execution.signal.addEventListener('abort', onAbort, { once: true });
    // Branches run in the context of the workflow that contains the Parallel; only top-level states are checkpointed.
    const branchExecution: ExecutionContext = { ...execution, signal: controller.signal, checkpoint: undefined };
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
      if (failure !== undefined) throw failure;
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
      return { count: items.length, item: (i) => items[i] };
    }
    const { Bucket, Key } = applyTemplate(reader.Parameters ?? {}, input, context) as { Bucket?: unknown; Key?: unknown };
    if (typeof Bucket !== 'string' || typeof Key !== 'string') throw new StatesError('States.ItemReaderFailed', 'ItemReader needs a Bucket and a Key');
    let text: string;
    try {
      text = await this.options.objects.getText(Bucket, Key);
    } catch (error) {
      throw new StatesError('States.ItemReaderFailed', `could not read s3://${Bucket}/${Key}: ${(error as Error).message}`);
    }
    const max = reader.ReaderConfig?.MaxItems ?? Infinity;
    if (reader.ReaderConfig?.InputType === 'JSON') {
      const items = JSON.parse(text) as unknown;
      if (!Array.isArray(items)) throw new StatesError('States.ItemReaderFailed', 'the JSON file does not hold an array');
      const count = Math.min(items.length, max);
      return { count, item: (i) => items[i] };
    }
    // JSONL: keep the text and line offsets, parse each line when its child starts.
    const starts: number[] = [];
    let at = 0;
    while (at < text.length && starts.length < max) {
      const end = text.indexOf('\n', at);
      const stop = end < 0 ? text.length : end;
      if (text.slice(at, stop).trim() !== '') starts.push(at);
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
    // EXPRESS children outlive a stop of their parent: the Map Run stops launching and ends, they run on.
    const detached = distributed && processor.ProcessorConfig?.ExecutionType === 'EXPRESS' && execution.detachedSignal !== undefined;
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
    const onAbort = () => controller.abort(execution.signal.reason);
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
        mapRun.counts.failed++;
        failures.set(index, new StatesError(outcome.error, outcome.cause));
        if (mapRun.counts.failed > tolerated) firstFailure ??= new StatesError(outcome.error, outcome.cause);
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
                  mapRun.counts.failed++;
                  failures.set(index, failure);
                  checkpoint?.childEnded(mapRun, index, {
                    status: 'FAILED',
                    error: failure.error,
                    cause: failure.cause_,
                    ...(records?.[index] ? { record: records[index] } : {}),
                  });
                  if (mapRun.counts.failed > tolerated) firstFailure ??= failure;
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
      // An inline Map fails with its iteration's own error; a Map Run with the threshold's.
      if (!distributed) throw firstFailure;
      throw new StatesError('States.ExceedToleratedFailureThreshold', `a child execution failed: ${firstFailure.message}`);
    }
    mapRun.status = 'SUCCEEDED';
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
    // Inline iterations run in the context of the workflow that contains the Map.
    if (state.ItemProcessor?.ProcessorConfig?.Mode !== 'DISTRIBUTED') return this.run(processor, childInput, { ...execution, signal, checkpoint: undefined });
    const childName = `${execution.executionName}-${index}`;
    const child: ExecutionContext = {
      executionArn: `${execution.executionArn}:${childName}`,
      executionName: childName,
      // Child executions belong to the Map Run's state machine: <parent ARN>/<label>.
      stateMachineArn: `${execution.stateMachineArn}/${state.Label ?? 'Map'}`,
      startTime: new Date().toISOString(),
      input: childInput,
      signal,
    };
    if (!records) return this.run(processor, childInput, child);
    const record: ChildRecord = { ExecutionArn: child.executionArn, Name: childName, StateMachineArn: child.stateMachineArn, StartDate: child.startTime, Input: childInput };
    records[index] = record;
    try {
      const output = await this.run(processor, childInput, child);
      Object.assign(record, { Status: 'SUCCEEDED', Output: output, StopDate: new Date().toISOString() });
      return output;
    } catch (error) {
      Object.assign(record, { Status: 'FAILED', StopDate: new Date().toISOString() });
      throw error;
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
        failed.push(withMetadata(records?.[i], { Status: 'FAILED', Error: failure.error, Cause: failure.cause_ }));
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
