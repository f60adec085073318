/**
 * Holds the local fleet's worker invokes: every `lambda:invoke` of the worker function by the state
 * machine waits until `release()`. A task then cannot finish (nor start its handler) before the test
 * says so, whatever the machine's load, where a long sleep task only made that likely.
 */
import type { LocalFleet } from '../../infra/local/local-fleet';

export interface HeldWorkers {
  /** How many worker invokes have been held so far. */
  held(): number;
  /** Lets every held invoke, and every later one, through. Safe to call more than once. */
  release(): void;
}

/** `passFirst` invokes go through unheld (tasks that must finish before the test's check). */
export function holdWorkers(fleet: LocalFleet, passFirst = 0): HeldWorkers {
  const worker = fleet.resources.functions.find((fn) => fn.entry === 'lambdas/worker.ts');
  if (!worker) throw new Error('no worker function in the local fleet');
  const lambda = fleet.lambda;
  const invoke = lambda.invoke.bind(lambda);
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let passed = 0;
  let held = 0;
  lambda.invoke = async (resource: string, parameters: unknown) => {
    if ((parameters as { FunctionName?: string } | undefined)?.FunctionName === worker.arn) {
      if (passed < passFirst) passed++;
      else {
        held++;
        await gate;
      }
    }
    return invoke(resource, parameters);
  };
  return {
    held: () => held,
    release: () => {
      lambda.invoke = invoke;
      open();
    },
  };
}
