/**
 * Local Lambda: runs the deployed handler modules in this process, with
 * Lambda's contract: the event and the result cross a JSON boundary, the
 * function's timeout is enforced (Sandbox.Timedout), and an error reaches
 * Step Functions as {Error: errorType, Cause: {"errorType","errorMessage"}}.
 *
 * Lambda's own limits hold here as on AWS, at the same point and with the
 * same error: the 6 MB synchronous request and response payloads (measured on
 * the serialized JSON, as Lambda measures them), and the account's
 * concurrency (1,000 concurrent executions by default, across all functions).
 * https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { StatesError, type TaskInvoker } from './asl/interpreter';
import type { FaultInjector } from './faults';
import type { LocalFunction } from './template';

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

/**
 * Where handler modules are: Fleet's own (`root: 'fleet'`) under Fleet's
 * package, the user's task handlers (`root: 'project'`) under their project.
 * A single folder serves both (this repository, where they are one).
 */
export type HandlerRoots = string | { readonly fleet: string; readonly project: string };

/**
 * Imports a handler module. Under tsx or vitest a TypeScript module imports
 * as it is; in a plain Node.js process (a user's project running the
 * installed package) Node cannot load `.ts`, so the module is bundled with
 * esbuild first, as `cdk deploy` bundles it, its packages left external so
 * it shares Fleet's installed modules, and written under the project's
 * node_modules/.cache so those packages resolve from there.
 */
async function importHandlerModule(file: string, projectRoot: string): Promise<Record<string, unknown>> {
  try {
    return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== 'ERR_UNKNOWN_FILE_EXTENSION' || !/\.[cm]?tsx?$/.test(file)) throw error;
  }
  const { build } = await import('esbuild');
  const outdir = path.join(projectRoot, 'node_modules', '.cache', 'fleet-local');
  mkdirSync(outdir, { recursive: true });
  const outfile = path.join(outdir, `${path.basename(file).replace(/\.[cm]?tsx?$/, '')}-${createHash('sha256').update(file).digest('hex').slice(0, 12)}.mjs`);
  await build({ entryPoints: [file], outfile, bundle: true, packages: 'external', platform: 'node', format: 'esm', target: 'node20', sourcemap: 'inline', logLevel: 'silent' });
  return (await import(`${pathToFileURL(outfile).href}?t=${Date.now()}`)) as Record<string, unknown>;
}

/**
 * For Fleet's own tests: with FLEET_ENABLE_FAULT_TASKS=1 when it first runs,
 * Fleet's default worker is the one that also has the `fault.*` task types,
 * which only local mode adds, so no deployed bundle holds them.
 */
export function localEntryOf(fn: Pick<LocalFunction, 'entry' | 'handler' | 'root'>): string {
  const faultTasks = process.env.FLEET_ENABLE_FAULT_TASKS === '1' && fn.root !== 'project' && fn.entry === 'lambdas/worker.ts' && fn.handler === 'handler';
  return faultTasks ? 'infra/local/fault-tasks-worker.ts' : fn.entry;
}

/** Lambda's synchronous invocation payload quota: 6 MB for the request and 6 MB for the response. */
export const LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024;
/** Lambda's default account concurrency, shared by every function in the Region. */
export const LAMBDA_DEFAULT_CONCURRENCY = 1000;

/**
 * An error of the Lambda service itself (not of the function) as Step
 * Functions reports it: `Lambda.<exception>`, with the SDK's description of
 * the failed call as its Cause.
 */
const lambdaServiceError = (exception: string, status: number, message: string) =>
  new StatesError(`Lambda.${exception}`, `${message} (Service: AWSLambda; Status Code: ${status}; Error Code: ${exception}; Request ID: ${crypto.randomUUID()}; Proxy: null)`);

/** Lambda's transient errors, for fault injection. */
const LAMBDA_FAULTS = [
  () => lambdaServiceError('ServiceException', 500, 'Lambda encountered an internal error.'),
  () => lambdaServiceError('TooManyRequestsException', 429, 'Rate Exceeded.'),
] as const;

export interface LocalLambdaLimits {
  /**
   * Concurrent invocations across all functions; one more fails with
   * Lambda.TooManyRequestsException. @default 1000 (Lambda's default account quota)
   */
  concurrencyLimit?: number;
  /** Injects Lambda's transient errors into Step Functions' invokes (FLEET_FAULTS). */
  faults?: FaultInjector;
  /**
   * The request and response payload cap. Only the benchmark lifts it
   * (LocalFleetOptions.liftApiLimits). @default LAMBDA_PAYLOAD_BYTES (6 MB, as on AWS)
   */
  payloadBytes?: number;
}

/** The serialized size Lambda measures a payload by: its JSON, in UTF-8 bytes. */
const jsonBytes = (text: string) => Buffer.byteLength(text, 'utf8');

export class LocalLambda implements TaskInvoker {
  private readonly byArn = new Map<string, LocalFunction>();
  private readonly roots: { readonly fleet: string; readonly project: string };
  private readonly loaded = new Map<string, Promise<Handler>>();
  /** Concurrent invocations allowed across all functions. */
  readonly concurrencyLimit: number;
  private readonly faults: FaultInjector | undefined;
  private readonly payloadBytes: number;
  /** Invocations running now, across all functions (the account's concurrency). */
  private running = 0;
  /** Invokes refused so far for want of concurrency. */
  throttled = 0;

  /**
   * For Fleet's own tests: sees every Invoke before the function runs. An
   * error it returns fails that Invoke, as Lambda's own errors do (e.g.
   * `Lambda.TooManyRequestsException` for a throttle): the function never runs.
   * `'hang'`: the invocation never answers, as a handler that blocks its
   * event loop (only the function's timeout, or the state's, ends it). A
   * promise: the function runs once it settles (e.g. after the test acted).
   */
  invokeFault: ((functionName: string, payload: unknown) => StatesError | 'hang' | Promise<void> | undefined) | undefined;

  constructor(
    functions: readonly LocalFunction[],
    roots: HandlerRoots,
    limits: LocalLambdaLimits = {},
  ) {
    this.roots = typeof roots === 'string' ? { fleet: roots, project: roots } : roots;
    for (const fn of functions) this.byArn.set(fn.arn, fn);
    this.concurrencyLimit = limits.concurrencyLimit ?? LAMBDA_DEFAULT_CONCURRENCY;
    if (!Number.isInteger(this.concurrencyLimit) || this.concurrencyLimit < 1) {
      throw new Error(`the Lambda concurrency limit must be a positive whole number, got ${this.concurrencyLimit}`);
    }
    this.faults = limits.faults;
    this.payloadBytes = limits.payloadBytes ?? LAMBDA_PAYLOAD_BYTES;
  }

  /** Invocations running now, across all functions. */
  get concurrentInvocations(): number {
    return this.running;
  }

  private load(fn: LocalFunction): Promise<Handler> {
    const entry = localEntryOf(fn);
    const key = `${fn.root ?? 'fleet'}:${entry}#${fn.handler}`;
    let handler = this.loaded.get(key);
    if (!handler) {
      const file = path.resolve(fn.root === 'project' ? this.roots.project : this.roots.fleet, entry);
      handler = importHandlerModule(file, this.roots.project).then((module) => {
        const exported = module[fn.handler];
        if (typeof exported !== 'function') throw new Error(`${entry} does not export a function "${fn.handler}"`);
        return exported as Handler;
      });
      this.loaded.set(key, handler);
    }
    return handler;
  }

  /** Runs a function by ARN, as a synchronous Invoke. */
  async invokeFunction(functionName: string, payload: unknown): Promise<unknown> {
    const fn = this.byArn.get(functionName) ?? [...this.byArn.values()].find((f) => f.arn.endsWith(`:function:${functionName}`));
    if (!fn) throw new StatesError('Lambda.ResourceNotFoundException', `Function not found: ${functionName}`);
    const fault = this.invokeFault?.(fn.arn, payload);
    if (fault instanceof StatesError) throw fault;
    if (fault instanceof Promise) await fault;
    const handler: Handler = fault === 'hang' ? () => new Promise<never>(() => undefined) : await this.load(fn);
    // Lambda refuses the request before running anything: the Invoke API's 413.
    const request = payload === undefined ? 'null' : JSON.stringify(payload);
    if (jsonBytes(request) > this.payloadBytes) {
      throw lambdaServiceError('RequestTooLargeException', 413, `Request must be smaller than ${this.payloadBytes} bytes for the InvokeFunction operation`);
    }
    // Beyond the account's concurrency, Lambda throttles the invoke: the function does not run.
    if (this.running >= this.concurrencyLimit) {
      this.throttled++;
      throw lambdaServiceError('TooManyRequestsException', 429, `Rate Exceeded. Reason: ConcurrentInvocationLimitExceeded (${this.concurrencyLimit} concurrent executions).`);
    }
    this.running++;
    const event = JSON.parse(request) as unknown;
    const deadline = Date.now() + fn.timeoutSeconds * 1000;
    const context = {
      functionName: fn.logicalId,
      awsRequestId: crypto.randomUUID(),
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    };
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => { reject(new StatesError('Sandbox.Timedout', JSON.stringify({ errorMessage: `Task timed out after ${fn.timeoutSeconds}.00 seconds` }))); },
          fn.timeoutSeconds * 1000,
        );
        // A hung test invocation must not keep the process alive for the function's 15 minutes.
        if (fault === 'hang') timer.unref();
      });
      const result = await Promise.race([Promise.resolve().then(() => handler(event, context)), timeout]);
      const response = result === undefined ? 'null' : JSON.stringify(result);
      // The function ran, but Lambda cannot return what it answered: a function error.
      if (jsonBytes(response) > this.payloadBytes) {
        const errorType = 'Function.ResponseSizeTooLarge';
        const errorMessage = `Response payload size exceeded maximum allowed payload size (${this.payloadBytes} bytes).`;
        throw new StatesError(errorType, JSON.stringify({ errorType, errorMessage }));
      }
      return JSON.parse(response) as unknown;
    } catch (error) {
      if (error instanceof StatesError) throw error;
      const errorType = error instanceof Error ? error.name || 'Error' : 'Error';
      const errorMessage = error instanceof Error ? error.message : String(error);
      throw new StatesError(errorType, JSON.stringify({ errorType, errorMessage, trace: [] }));
    } finally {
      this.running--;
      if (timer) clearTimeout(timer);
    }
  }

  /** The lambda:invoke service integration: {FunctionName, Payload} → {Payload, StatusCode, ...}. */
  async invoke(resource: string, parameters: unknown): Promise<unknown> {
    if (!/:states:::lambda:invoke$/.test(resource)) throw new StatesError('States.Runtime', `unsupported resource ${resource}`);
    const { FunctionName, Payload } = (parameters ?? {}) as { FunctionName?: string; Payload?: unknown };
    if (!FunctionName) throw new StatesError('States.Runtime', 'lambda:invoke needs a FunctionName');
    const fault = this.faults?.decide('lambda', LAMBDA_FAULTS);
    if (fault) throw fault();
    const result = await this.invokeFunction(FunctionName, Payload ?? {});
    return { ExecutedVersion: '$LATEST', Payload: result, StatusCode: 200 };
  }
}
