/**
 * Local Lambda: runs the deployed handler modules in this process, with
 * Lambda's contract: the event and the result cross a JSON boundary, the
 * function's timeout is enforced (Sandbox.Timedout), and an error reaches
 * Step Functions as {Error: errorType, Cause: {"errorType","errorMessage"}}.
 */
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { StatesError, type TaskInvoker } from './asl/interpreter';
import type { LocalFunction } from './template';

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

const roundTrip = (value: unknown): unknown => (value === undefined ? null : (JSON.parse(JSON.stringify(value)) as unknown));

export class LocalLambda implements TaskInvoker {
  private readonly byArn = new Map<string, LocalFunction>();
  private readonly loaded = new Map<string, Promise<Handler>>();

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
    private readonly repoRoot: string,
  ) {
    for (const fn of functions) this.byArn.set(fn.arn, fn);
  }

  private load(fn: LocalFunction): Promise<Handler> {
    const key = `${fn.entry}#${fn.handler}`;
    let handler = this.loaded.get(key);
    if (!handler) {
      handler = import(pathToFileURL(path.join(this.repoRoot, fn.entry)).href).then((module: Record<string, unknown>) => {
        const exported = module[fn.handler];
        if (typeof exported !== 'function') throw new Error(`${fn.entry} does not export a function "${fn.handler}"`);
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
    const event = roundTrip(payload);
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
          () => reject(new StatesError('Sandbox.Timedout', JSON.stringify({ errorMessage: `Task timed out after ${fn.timeoutSeconds}.00 seconds` }))),
          fn.timeoutSeconds * 1000,
        );
        // A hung test invocation must not keep the process alive for the function's 15 minutes.
        if (fault === 'hang') timer.unref();
      });
      const result = await Promise.race([Promise.resolve().then(() => handler(event, context)), timeout]);
      return roundTrip(result);
    } catch (error) {
      if (error instanceof StatesError) throw error;
      const errorType = error instanceof Error ? error.name || 'Error' : 'Error';
      const errorMessage = error instanceof Error ? error.message : String(error);
      throw new StatesError(errorType, JSON.stringify({ errorType, errorMessage, trace: [] }));
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  /** The lambda:invoke service integration: {FunctionName, Payload} → {Payload, StatusCode, ...}. */
  async invoke(resource: string, parameters: unknown): Promise<unknown> {
    if (!/:states:::lambda:invoke$/.test(resource)) throw new StatesError('States.Runtime', `unsupported resource ${resource}`);
    const { FunctionName, Payload } = (parameters ?? {}) as { FunctionName?: string; Payload?: unknown };
    if (!FunctionName) throw new StatesError('States.Runtime', 'lambda:invoke needs a FunctionName');
    const result = await this.invokeFunction(FunctionName, Payload ?? {});
    return { ExecutedVersion: '$LATEST', Payload: result, StatusCode: 200 };
  }
}
