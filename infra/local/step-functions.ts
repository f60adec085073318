/**
 * Local Step Functions: executions of the synthesized state machine, run by
 * the local interpreter, behind an endpoint that speaks the service's own
 * JSON protocol, so the handlers' SFNClient works unchanged.
 */
import { setMaxListeners } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadDefinition, type StateMachineDefinition } from './asl/definition';
import { Interpreter, MapRun, StatesError, type InterpreterOptions } from './asl/interpreter';

type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED' | 'TIMED_OUT';

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
}

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

export class LocalStepFunctions {
  private readonly machines = new Map<string, StateMachineDefinition>();
  private readonly executions = new Map<string, LocalExecution>();
  private readonly mapRuns = new Map<string, MapRun>();
  private readonly interpreter: Interpreter;

  constructor(options: InterpreterOptions) {
    this.interpreter = new Interpreter(options);
  }

  /** Loads a definition; a field the runner does not implement is refused here. */
  createStateMachine(arn: string, definition: string): void {
    this.machines.set(arn, loadDefinition(definition));
  }

  startExecution(stateMachineArn: string, name: string, input: string): { executionArn: string; startDate: Date } {
    const machine = this.machines.get(stateMachineArn);
    if (!machine) throw new ServiceError('StateMachineDoesNotExist', `State machine does not exist: '${stateMachineArn}'`);
    if (!/^[A-Za-z0-9_-]{1,80}$/.test(name)) throw new ServiceError('InvalidName', `Invalid name: '${name}'`);
    let parsedInput: unknown;
    try {
      parsedInput = JSON.parse(input);
    } catch {
      throw new ServiceError('InvalidExecutionInput', 'Invalid execution input: not JSON');
    }
    const executionArn = `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
    const existing = this.executions.get(executionArn);
    if (existing) {
      // StartExecution is idempotent for a running execution with the same name and input.
      if (existing.status === 'RUNNING' && existing.input === input) return { executionArn, startDate: existing.startDate };
      throw new ServiceError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
    }
    const controller = new AbortController();
    setMaxListeners(0, controller.signal);
    const execution: LocalExecution = {
      executionArn,
      stateMachineArn,
      name,
      input,
      status: 'RUNNING',
      startDate: new Date(),
      mapRuns: [],
      controller,
      done: Promise.resolve(),
    };
    this.executions.set(executionArn, execution);
    execution.done = this.interpreter
      .run(machine, parsedInput, {
        executionArn,
        executionName: name,
        stateMachineArn,
        startTime: execution.startDate.toISOString(),
        input: parsedInput,
        signal: controller.signal,
        onMapRun: (mapRun) => {
          execution.mapRuns.push(mapRun);
          this.mapRuns.set(mapRun.arn, mapRun);
        },
      })
      .then(
        (output) => {
          if (execution.status !== 'RUNNING') return;
          execution.status = 'SUCCEEDED';
          execution.output = JSON.stringify(output);
        },
        (error: unknown) => {
          if (execution.status !== 'RUNNING') return;
          const failure = error instanceof StatesError ? error : new StatesError('States.Runtime', String(error));
          execution.status = failure.error === 'States.Timeout' ? 'TIMED_OUT' : 'FAILED';
          execution.error = failure.error;
          execution.cause = failure.cause_;
        },
      )
      .finally(() => {
        execution.stopDate ??= new Date();
      });
    return { executionArn, startDate: execution.startDate };
  }

  private execution(arn: string): LocalExecution {
    const execution = this.executions.get(arn);
    if (!execution) throw new ServiceError('ExecutionDoesNotExist', `Execution Does Not Exist: '${arn}'`);
    return execution;
  }

  describeExecution(arn: string): LocalExecution {
    return this.execution(arn);
  }

  /** Stops launching children at once; running children end on their own. */
  stopExecution(arn: string, error?: string, cause?: string): { stopDate: Date } {
    const execution = this.execution(arn);
    if (execution.status === 'RUNNING') {
      execution.status = 'ABORTED';
      execution.stopDate = new Date();
      if (error) execution.error = error;
      if (cause) execution.cause = cause;
      execution.controller.abort(new StatesError('States.Aborted', 'the execution was stopped'));
    }
    return { stopDate: execution.stopDate ?? new Date() };
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

  /** Stops everything, e.g. on shutdown. */
  async stopAll(): Promise<void> {
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
    timedOut: 0,
    aborted: c.aborted,
    total: c.total,
    resultsWritten: mapRun.status === 'SUCCEEDED' ? c.succeeded : 0,
    failuresNotRedrivable: 0,
    pendingRedrive: 0,
  };
}

type Operation = (body: Record<string, unknown>) => unknown;

/** The AWS Step Functions JSON protocol (awsJson1_0) over the local service. */
export function stepFunctionsOperations(service: LocalStepFunctions): Record<string, Operation> {
  return {
    StartExecution: (b) => {
      const { executionArn, startDate } = service.startExecution(String(b.stateMachineArn), String(b.name ?? ''), String(b.input ?? '{}'));
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
      };
    },
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

/** Serves the JSON protocol on 127.0.0.1; returns the endpoint URL. */
export async function serveStepFunctions(service: LocalStepFunctions): Promise<{ url: string; close: () => Promise<void> }> {
  const operations = stepFunctionsOperations(service);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(JSON.stringify(body));
      };
      const target = String(req.headers['x-amz-target'] ?? '');
      const name = target.slice(target.indexOf('.') + 1);
      const operation = operations[name];
      if (!operation) return reply(400, { __type: 'UnknownOperationException', message: `${name || 'this operation'} is not served locally` });
      try {
        const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>) : {};
        reply(200, operation(body));
      } catch (error) {
        if (error instanceof ServiceError) return reply(error.status, { __type: error.type, message: error.message });
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
        server.close(() => resolve());
      }),
  };
}
