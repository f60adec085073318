/**
 * The gates of the `gate` task type (./gate-worker.ts): a gate task runs
 * until the test opens its gate. Local mode runs every handler in the test's
 * own process, so the gates live on globalThis (under a registered symbol,
 * shared by every copy of this module, bundled or not).
 */
export interface Gate {
  opened: Promise<void>;
  open: () => void;
}

const GATES = Symbol.for('fleet.test.gates');

/** The gate of a task id, made on first use by the task or the test. */
export function gateOf(taskId: string): Gate {
  const registry = ((globalThis as { [GATES]?: Map<string, Gate> })[GATES] ??= new Map<string, Gate>());
  let gate = registry.get(taskId);
  if (!gate) {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    gate = { opened, open };
    registry.set(taskId, gate);
  }
  return gate;
}
