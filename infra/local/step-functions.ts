/**
 * Local Step Functions: executions of the synthesized state machine, run by
 * the local interpreter, behind an endpoint that speaks the service's own
 * JSON protocol, so the handlers' SFNClient works unchanged.
 */
import { setMaxListeners } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiThrottle } from './api-throttle';
import { loadDefinition, type StateMachineDefinition } from './asl/definition';
import type { FaultInjector } from './faults';
import {
  ExecutionHistory,
  HISTORY_EVENT_LIMIT,
  Interpreter,
  isHistoryLimitFailure,
  MapRun,
  PAYLOAD_LIMIT_BYTES,
  StatesError,
  type InterpreterOptions,
} from './asl/interpreter';
import { ExecutionJournal, REDRIVABLE, REDRIVE_DAYS, type ExecutionStatus, type JournaledExecution } from './journal';
import { refuse, requestVerifier, type LocalCredentials } from './emulator-guard';

export interface LocalExecution {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  input: string;
  status: ExecutionStatus;
  startDate: Date;
  stopDate?: Date;
  output?: string;
  error?: string;
  cause?: string;
  mapRuns: MapRun[];
  controller: AbortController;
  done: Promise<void>;
  /** Its number in the journal. */
  journalId: number;
  redriveCount: number;
  redriveDate?: Date;
  /** The local fleet is stopping: the execution stops in this process but stays running in the journal, and resumes on the next start. */
  suspended: boolean;
  /** Its history's event count (the parent is a Standard execution: 25,000 at most). */
  history: ExecutionHistory;
}

export type { ExecutionStatus };

/** An error the SDK maps to a named exception (`__type`). */
export class ServiceError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export interface LocalStepFunctionsOptions extends InterpreterOptions {
  /**
   * Where executions are journaled, so they resume after the local fleet
   * restarts (see journal.ts). @default an in-memory journal: nothing survives the process
   */
  journal?: ExecutionJournal;
}

export class LocalStepFunctions {
  private readonly machines = new Map<string, StateMachineDefinition>();
  private readonly executions = new Map<string, LocalExecution>();
  private readonly mapRuns = new Map<string, MapRun>();
  private readonly interpreter: Interpreter;
  private readonly journal: ExecutionJournal;
  private suspending = false;
  /**
   * Aborted only when the local fleet stops: EXPRESS children of a stopped
   * execution run on, as on AWS, until they end or the fleet stops.
   */
  private readonly shutdown = new AbortController();
  private lastPrune = Date.now();

  constructor(options: LocalStepFunctionsOptions) {
    // Every running EXPRESS child of every Map Run listens to it: thousands at once is expected.
    setMaxListeners(0, this.shutdown.signal);
    this.interpreter = new Interpreter(options);
    this.journal = options.journal ?? ExecutionJournal.inMemory();
  }

  /** Loads a definition; a field the runner does not implement is refused here. */
  createStateMachine(arn: string, definition: string): void {
    this.machines.set(arn, loadDefinition(definition));
  }

  startExecution(stateMachineArn: string, name: string, input: string): { executionArn: string; startDate: Date } {
    const machine = this.machines.get(stateMachineArn);
    if (!machine) throw new ServiceError('StateMachineDoesNotExist', `State machine does not exist: '${stateMachineArn}'`);
    if (!/^[A-Za-z0-9_-]{1,80}$/.test(name)) throw new ServiceError('InvalidName', `Invalid name: '${name}'`);
    try {
      JSON.parse(input);
    } catch {
      throw new ServiceError('InvalidExecutionInput', 'Invalid execution input: not JSON');
    }
    // StartExecution's input: "Length constraints apply to the payload size, and are expressed as bytes in
    // UTF-8 encoding. Maximum length of 262144." (API_StartExecution.html). Refused before the execution exists.
    const inputBytes = Buffer.byteLength(input, 'utf8');
    if (inputBytes > PAYLOAD_LIMIT_BYTES) {
      throw new ServiceError(
        'ValidationException',
        `1 validation error detected: Value at 'input' failed to satisfy constraint: Member must have length less than or equal to ${PAYLOAD_LIMIT_BYTES} (it has ${inputBytes} bytes)`,
      );
    }
    const executionArn = `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
    const existing = this.executions.get(executionArn);
    if (existing) {
      // StartExecution is idempotent for a running execution with the same name and input.
      if (existing.status === 'RUNNING' && existing.input === input) return { executionArn, startDate: existing.startDate };
      throw new ServiceError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
    }
    if (this.suspending) throw new ServiceError('ServiceUnavailable', 'the local fleet is stopping', 503);
    this.forgetOldExecutions();
    const journaled = this.journal.started({ executionArn, stateMachineArn, name, input, startDate: new Date() });
    const execution = this.register(journaled);
    this.launch(execution, machine, undefined);
    return { executionArn, startDate: execution.startDate };
  }

  /**
   * Restarts the executions the journal left running (the local fleet was
   * killed or stopped while they ran): each resumes at the state it was in,
   * and a Map Run skips the children that had ended. Failed executions come
   * back as they were, so they can be redriven. Returns how many resumed.
   */
  recover(): number {
    for (const journaled of this.journal.ended()) {
      if (this.executions.has(journaled.executionArn)) continue;
      const execution = this.register(journaled);
      Object.assign(execution, { ...journaled.end, status: journaled.end?.status ?? 'FAILED' });
    }
    let resumed = 0;
    for (const journaled of this.journal.running()) {
      if (this.executions.has(journaled.executionArn)) continue;
      const execution = this.register(journaled);
      // Counting goes on from the last state the journal has (the events after it, at most one state's, are lost).
      execution.history = new ExecutionHistory(HISTORY_EVENT_LIMIT, journaled.state?.historyEvents ?? 1);
      const machine = this.machines.get(journaled.stateMachineArn);
      if (!machine) {
        this.end(execution, { status: 'FAILED', error: 'States.Runtime', cause: `the state machine ${journaled.stateMachineArn} no longer exists` });
        continue;
      }
      this.launch(execution, machine, journaled.state);
      resumed++;
    }
    return resumed;
  }

  private register(journaled: JournaledExecution): LocalExecution {
    const controller = new AbortController();
    const execution: LocalExecution = {
      executionArn: journaled.executionArn,
      stateMachineArn: journaled.stateMachineArn,
      name: journaled.name,
      input: journaled.input,
      status: 'RUNNING',
      startDate: journaled.startDate,
      mapRuns: [],
      controller,
      done: Promise.resolve(),
      journalId: journaled.id,
      redriveCount: journaled.redriveCount,
      ...(journaled.redriveDate ? { redriveDate: journaled.redriveDate } : {}),
      suspended: false,
      history: new ExecutionHistory(HISTORY_EVENT_LIMIT),
    };
    this.executions.set(execution.executionArn, execution);
    return execution;
  }

  /** Runs an execution from its start, or from `resumeAt` (a recovered or redriven execution). */
  private launch(execution: LocalExecution, machine: StateMachineDefinition, resumeAt: { name: string; input: unknown } | undefined): void {
    const controller = new AbortController();
    setMaxListeners(0, controller.signal);
    execution.controller = controller;
    const input = JSON.parse(execution.input) as unknown;
    execution.done = this.interpreter
      .run(
        machine,
        resumeAt ? resumeAt.input : input,
        {
          executionArn: execution.executionArn,
          executionName: execution.name,
          stateMachineArn: execution.stateMachineArn,
          startTime: execution.startDate.toISOString(),
          input,
          signal: controller.signal,
          detachedSignal: this.shutdown.signal,
          onMapRun: (mapRun) => {
            // A resumed Map Run keeps its ARN: it replaces the one it continues.
            execution.mapRuns = [...execution.mapRuns.filter((m) => m.arn !== mapRun.arn), mapRun];
            this.mapRuns.set(mapRun.arn, mapRun);
          },
          checkpoint: this.journal.checkpointFor(execution.journalId, resumeAt !== undefined),
          history: execution.history,
        },
        resumeAt?.name,
      )
      .then(
        (output) => { this.end(execution, { status: 'SUCCEEDED', output: JSON.stringify(output) }); },
        (error: unknown) => {
          // Stopped by the shutdown: it stays running in the journal and resumes on the next start.
          if (execution.suspended && controller.signal.aborted) return;
          const failure = error instanceof StatesError ? error : new StatesError('States.Runtime', String(error));
          this.end(execution, { status: failure.error === 'States.Timeout' ? 'TIMED_OUT' : 'FAILED', error: failure.error, cause: failure.cause_ });
        },
      );
  }

  /**
   * Drops executions that ended over REDRIVE_DAYS ago, and their Map Runs, so
   * a long-running local fleet's memory follows its recent batches, not all
   * it ever ran. (AWS keeps them 90 days; past 14 days nothing Fleet does
   * reads them: they can no longer be redriven.) At most once a minute.
   */
  private forgetOldExecutions(now = Date.now()): void {
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    const cutoff = now - REDRIVE_DAYS * 86_400_000;
    for (const [arn, execution] of this.executions) {
      if (execution.status === 'RUNNING' || !execution.stopDate || execution.stopDate.getTime() >= cutoff) continue;
      for (const mapRun of execution.mapRuns) this.mapRuns.delete(mapRun.arn);
      this.executions.delete(arn);
    }
  }

  /** Records how a running execution ended, in memory and in the journal. */
  private end(execution: LocalExecution, end: { status: ExecutionStatus; output?: string; error?: string; cause?: string }): void {
    if (execution.status !== 'RUNNING') return;
    execution.status = end.status;
    execution.stopDate = new Date();
    if (end.output !== undefined) execution.output = end.output;
    if (end.error !== undefined) execution.error = end.error;
    if (end.cause !== undefined) execution.cause = end.cause;
    this.journal.endedWith(execution.journalId, { ...end, stopDate: execution.stopDate });
  }

  private execution(arn: string): LocalExecution {
    const execution = this.executions.get(arn);
    if (!execution) throw new ServiceError('ExecutionDoesNotExist', `Execution Does Not Exist: '${arn}'`);
    return execution;
  }

  describeExecution(arn: string): LocalExecution {
    return this.execution(arn);
  }

  /**
   * Stops launching children at once. Running STANDARD children are aborted;
   * EXPRESS children run to their end, retries included, since StopExecution
   * does not apply to EXPRESS executions
   * (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html).
   */
  stopExecution(arn: string, error?: string, cause?: string): { stopDate: Date } {
    const execution = this.execution(arn);
    if (execution.status === 'RUNNING') {
      this.end(execution, { status: 'ABORTED', ...(error ? { error } : {}), ...(cause ? { cause } : {}) });
      execution.controller.abort(new StatesError('States.Aborted', 'the execution was stopped'));
    }
    return { stopDate: execution.stopDate ?? new Date() };
  }

  /**
   * RedriveExecution: a FAILED or TIMED_OUT execution runs again from the
   * state it failed in, with the input that state had; a Map Run it failed in
   * keeps its succeeded children and runs the others. (AWS also redrives
   * ABORTED executions; the local journal does not keep their progress.)
   */
  redriveExecution(arn: string): { redriveDate: Date } {
    const execution = this.execution(arn);
    if (!REDRIVABLE.has(execution.status)) {
      throw new ServiceError('ExecutionNotRedrivable', `Execution is ${execution.status}: only FAILED and TIMED_OUT executions can be redriven locally`);
    }
    if (isHistoryLimitFailure(execution.error, execution.cause)) {
      // Redrive continues the same history, which is full (API_DescribeExecution.html's redriveStatusReason: "Execution history event limit exceeded.").
      throw new ServiceError('ExecutionNotRedrivable', 'Execution failed because it reached the maximum number of history events (25000); it cannot be redriven');
    }
    if (execution.stopDate && Date.now() - execution.stopDate.getTime() > REDRIVE_DAYS * 86_400_000) {
      throw new ServiceError('ExecutionNotRedrivable', `Execution stopped more than ${REDRIVE_DAYS} days ago`);
    }
    const machine = this.machines.get(execution.stateMachineArn);
    if (!machine) throw new ServiceError('StateMachineDoesNotExist', `State machine does not exist: '${execution.stateMachineArn}'`);
    if (this.suspending) throw new ServiceError('ServiceUnavailable', 'the local fleet is stopping', 503);
    const redriveDate = new Date();
    const journaled = this.journal.redriven(execution.journalId, redriveDate);
    // A redriven execution keeps its history: its ExecutionFailed (or TimedOut) event, then ExecutionRedriven.
    const history = new ExecutionHistory(HISTORY_EVENT_LIMIT, Math.max(execution.history.events, journaled.state?.historyEvents ?? 1) + 2);
    Object.assign(execution, { status: 'RUNNING', redriveCount: journaled.redriveCount, redriveDate, suspended: false, history });
    delete execution.stopDate;
    delete execution.output;
    delete execution.error;
    delete execution.cause;
    this.launch(execution, machine, journaled.state);
    return { redriveDate };
  }

  listMapRuns(executionArn: string): MapRun[] {
    return this.execution(executionArn).mapRuns;
  }

  describeMapRun(mapRunArn: string): MapRun {
    const mapRun = this.mapRuns.get(mapRunArn);
    if (!mapRun) throw new ServiceError('ResourceNotFound', `Map Run does not exist: '${mapRunArn}'`);
    return mapRun;
  }

  updateMapRun(mapRunArn: string, maxConcurrency: number | undefined): void {
    const mapRun = this.describeMapRun(mapRunArn);
    if (maxConcurrency !== undefined) {
      if (!Number.isInteger(maxConcurrency) || maxConcurrency < 0 || maxConcurrency > 10_000) {
        throw new ServiceError('ValidationException', 'maxConcurrency must be an integer from 0 to 10000');
      }
      mapRun.setMaxConcurrency(maxConcurrency);
      // A resumed Map Run keeps the concurrency it was given.
      const execution = this.executions.get(mapRun.executionArn);
      if (execution?.status === 'RUNNING') this.journal.concurrencyChanged(execution.journalId, mapRun.arn, mapRun.maxConcurrency);
    }
  }

  /** Every execution, for the dashboard and tests. */
  list(): LocalExecution[] {
    return [...this.executions.values()];
  }

  /** Resolves when no execution is running. */
  async idle(): Promise<void> {
    for (;;) {
      const running = [...this.executions.values()].filter((e) => e.status === 'RUNNING');
      if (running.length === 0) return;
      await Promise.all(running.map((e) => e.done));
    }
  }

  /**
   * Graceful shutdown: no execution starts or launches a child any more;
   * children already running may finish for up to `drainMs`, and those that
   * do are journaled as ended. Executions stay RUNNING in the journal and
   * resume on the next start; children still running when the time is up run
   * again then. Returns whether everything in flight finished in time.
   */
  async suspend(drainMs: number): Promise<{ drained: boolean; executions: number }> {
    this.suspending = true;
    this.shutdown.abort(new StatesError('States.Aborted', 'the local fleet is stopping'));
    const running = [...this.executions.values()].filter((e) => e.status === 'RUNNING');
    for (const execution of running) {
      execution.suspended = true;
      execution.controller.abort(new StatesError('States.Aborted', 'the local fleet is stopping'));
    }
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      Promise.allSettled(running.map((e) => e.done)).then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => { resolve(false); }, drainMs);
      }),
    ]);
    clearTimeout(timer);
    // Whatever ends after this is not journaled: it runs again on the next start.
    this.journal.close();
    return { drained, executions: running.length };
  }

  /** Stops everything, e.g. on shutdown. */
  async stopAll(): Promise<void> {
    this.shutdown.abort(new StatesError('States.Aborted', 'the local fleet stopped'));
    for (const execution of this.executions.values()) {
      if (execution.status === 'RUNNING') this.stopExecution(execution.executionArn, 'Fleet.Shutdown', 'the local fleet stopped');
    }
    await Promise.allSettled([...this.executions.values()].map((e) => e.done));
  }
}

const seconds = (date: Date | undefined) => (date ? date.getTime() / 1000 : undefined);

function mapRunCounts(mapRun: MapRun) {
  const c = mapRun.counts;
  return {
    pending: c.pending,
    running: c.running,
    succeeded: c.succeeded,
    failed: c.failed,
    timedOut: c.timedOut,
    aborted: c.aborted,
    total: c.total,
    resultsWritten: mapRun.status === 'SUCCEEDED' ? c.succeeded : 0,
    failuresNotRedrivable: 0,
    pendingRedrive: 0,
  };
}

type Operation = (body: Record<string, unknown>) => unknown;

/** A request field, or its default when absent; still unknown, since the service checks what it gets. */
const orDefault = (value: unknown, fallback: string): unknown => value ?? fallback;

/** The AWS Step Functions JSON protocol (awsJson1_0) over the local service. */
export function stepFunctionsOperations(service: LocalStepFunctions): Record<string, Operation> {
  return {
    StartExecution: (b) => {
      const { executionArn, startDate } = service.startExecution(String(b.stateMachineArn), String(orDefault(b.name, '')), String(orDefault(b.input, '{}')));
      return { executionArn, startDate: seconds(startDate) };
    },
    DescribeExecution: (b) => {
      const e = service.describeExecution(String(b.executionArn));
      return {
        executionArn: e.executionArn,
        stateMachineArn: e.stateMachineArn,
        name: e.name,
        status: e.status,
        startDate: seconds(e.startDate),
        stopDate: seconds(e.stopDate),
        input: e.input,
        output: e.output,
        error: e.error,
        cause: e.cause,
        redriveCount: e.redriveCount,
        redriveDate: seconds(e.redriveDate),
        redriveStatus: REDRIVABLE.has(e.status) && !isHistoryLimitFailure(e.error, e.cause) ? 'REDRIVABLE' : 'NOT_REDRIVABLE',
        // DescribeExecution's own wording for this reason.
        redriveStatusReason: isHistoryLimitFailure(e.error, e.cause) ? 'Execution history event limit exceeded.' : undefined,
      };
    },
    RedriveExecution: (b) => ({ redriveDate: seconds(service.redriveExecution(String(b.executionArn)).redriveDate) }),
    StopExecution: (b) => ({
      stopDate: seconds(service.stopExecution(String(b.executionArn), b.error as string | undefined, b.cause as string | undefined).stopDate),
    }),
    ListMapRuns: (b) => ({
      mapRuns: service.listMapRuns(String(b.executionArn)).map((m) => ({
        executionArn: m.executionArn,
        mapRunArn: m.arn,
        stateMachineArn: m.arn,
        startDate: seconds(m.startDate),
        stopDate: seconds(m.stopDate),
      })),
    }),
    DescribeMapRun: (b) => {
      const m = service.describeMapRun(String(b.mapRunArn));
      return {
        mapRunArn: m.arn,
        executionArn: m.executionArn,
        status: m.status,
        startDate: seconds(m.startDate),
        stopDate: seconds(m.stopDate),
        maxConcurrency: m.maxConcurrency,
        toleratedFailurePercentage: 0,
        toleratedFailureCount: 0,
        itemCounts: mapRunCounts(m),
        executionCounts: mapRunCounts(m),
      };
    },
    UpdateMapRun: (b) => {
      service.updateMapRun(String(b.mapRunArn), b.maxConcurrency as number | undefined);
      return {};
    },
  };
}

export interface StepFunctionsEndpointOptions {
  /** Only requests signed with these are served (emulator-guard.ts). */
  credentials?: LocalCredentials;
  /** The control plane's token buckets. @default ApiThrottle with AWS's documented quotas (api-throttle.ts) */
  throttle?: ApiThrottle;
  /** Injects ThrottlingException at the FLEET_FAULTS `sfn` rate. */
  faults?: FaultInjector;
}

/** The service's throttling error, as the JSON protocol carries it (HTTP 400, `__type`). */
const throttled = (action: string) => new ServiceError('ThrottlingException', `Rate exceeded for ${action}`, 400);

/**
 * Serves the JSON protocol on 127.0.0.1; returns the endpoint URL. With `credentials`, as on
 * the other local emulators (emulator-guard.ts), only requests signed with
 * them are served: no web page or other process can start or stop executions.
 */
export async function serveStepFunctions(
  service: LocalStepFunctions,
  options: StepFunctionsEndpointOptions = {},
): Promise<{ url: string; close: () => Promise<void> }> {
  const operations = stepFunctionsOperations(service);
  const verifier = options.credentials ? requestVerifier('states', options.credentials) : undefined;
  const throttle = options.throttle ?? new ApiThrottle();
  const server = http.createServer((req, res) => {
    const early = verifier?.precheck(req);
    if (early) {
      req.resume();
      refuse(res, 'states', early); return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const refusal = verifier?.check(req, Buffer.concat(chunks));
      if (refusal) { refuse(res, 'states', refusal); return; }
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(JSON.stringify(body));
      };
      const target = String(req.headers['x-amz-target'] ?? '');
      const name = target.slice(target.indexOf('.') + 1);
      const operation = operations[name];
      if (!operation) { reply(400, { __type: 'UnknownOperationException', message: `${name || 'this operation'} is not served locally` }); return; }
      try {
        // Throttled before anything is read or done, as the service answers a call over its quota.
        if (!throttle.admit(name) || options.faults?.decide('sfn', [name])) throw throttled(name);
        const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>) : {};
        reply(200, operation(body));
      } catch (error) {
        if (error instanceof ServiceError) { reply(error.status, { __type: error.type, message: error.message }); return; }
        reply(500, { __type: 'InternalFailure', message: (error as Error).message });
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => { resolve(); });
      }),
  };
}
