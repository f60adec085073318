/**
 * Fault task types, for Fleet's own tests: handlers that misbehave the ways
 * a user's handler can, so tests can prove each fault is contained to its
 * task. Only local mode registers them, when FLEET_ENABLE_FAULT_TASKS=1
 * (infra/local/fault-tasks-worker.ts): the task registry
 * (lambdas/tasks/index.ts) does not import this module, so no deployed
 * worker bundle holds it.
 */
import type { TaskHandler } from '../domain/task-handler';

/** Builds a value that is not JSON-serialisable (or not printable) in the way `kind` names. */
function badValue(kind: unknown): unknown {
  switch (kind) {
    case 'circular': {
      const value: Record<string, unknown> = { name: 'loop' };
      value.self = value;
      return value;
    }
    case 'bigint':
      return { count: 10n ** 30n };
    case 'throwing-toJSON':
      return {
        toJSON() {
          throw new Error('toJSON refused');
        },
      };
    case 'too-deep': {
      // Deeper than any JSON.stringify stack can go.
      let value: unknown = 'bottom';
      for (let i = 0; i < 1_000_000; i++) value = [value];
      return value;
    }
    case 'oversize':
      return { blob: 'x'.repeat(300 * 1024) };
    case 'unprintable': {
      // Neither String() nor JSON.stringify can turn this into text.
      const value = Object.create(null) as Record<string, unknown>;
      value.self = value;
      return value;
    }
    default:
      throw new Error(`unknown kind ${String(kind)}`);
  }
}

const kindOf = (data: unknown) => (data as { kind?: unknown } | null | undefined)?.kind;

export const faultHandlers: Readonly<Record<string, TaskHandler>> = Object.freeze({
  /** Throws something that is not an Error: `data.kind` picks what. */
  'fault.throw-non-error': (data) => {
    const kind = kindOf(data);
    const thrown: Record<string, unknown> = {
      string: 'a thrown string',
      number: 42,
      object: { code: 'E_FAULT', detail: 'a thrown plain object' },
      null: null,
      undefined,
    };
    throw Object.hasOwn(thrown, String(kind)) ? thrown[String(kind)] : badValue(kind);
  },
  /** Never settles and ignores its abort signal: only the attempt's deadline ends it. */
  'fault.hang': () => new Promise<never>(() => undefined),
  /** Returns a result JSON cannot carry: `data.kind` picks how. */
  'fault.unserialisable': (data) => badValue(kindOf(data)),
  /**
   * Asks for far more memory than any Lambda has. The allocation fails at
   * once with a RangeError; it never really exhausts the process (a real
   * out-of-memory kill is the runtime crash the state machine's Catch records).
   */
  'fault.out-of-memory': (data) => {
    if (kindOf(data) === 'array') return new Array<number>(2 ** 32).fill(0);
    return new ArrayBuffer(2 ** 52).byteLength;
  },
  /** Throws an Error whose message is `data.length` characters long. */
  'fault.huge-error': (data) => {
    const length = (data as { length?: unknown } | null)?.length;
    throw new Error('E'.repeat(typeof length === 'number' ? length : 1_000_000));
  },
});
