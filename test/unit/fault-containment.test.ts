/**
 * The pieces that keep a misbehaving handler's fault inside its task:
 * describeError turns anything thrown into a bounded message and never
 * throws, and the fault task types exist only when a test asks for them,
 * in local mode: never in the task registry a deployed worker bundles.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_ERROR_MESSAGE_LENGTH, describeError } from '../../lambdas/domain/errors';
import { useHandlerEnvironment } from './handler-fixtures';

describe('describeError', () => {
  it.each([
    ['an Error', new Error('boom'), 'boom'],
    ['an Error without a message', new RangeError(''), 'RangeError'],
    ['a string', 'plain text', 'plain text'],
    ['a number', 42, 'Non-Error thrown: 42'],
    ['null', null, 'Non-Error thrown: null'],
    ['undefined', undefined, 'Non-Error thrown: undefined'],
    ['a symbol', Symbol('s'), 'Non-Error thrown: Symbol(s)'],
    ['a BigInt', 10n, 'Non-Error thrown: 10'],
    ['a plain object', { code: 7 }, 'Non-Error thrown: {"code":7}'],
  ])('describes %s', (_label, thrown, expected) => {
    expect(describeError(thrown)).toBe(expected);
  });

  it('never throws, even for a value neither JSON nor String() can print', () => {
    const unprintable = Object.create(null) as Record<string, unknown>;
    unprintable.self = unprintable;
    const hostile = new Error('x');
    Object.defineProperty(hostile, 'message', {
      get() {
        throw new Error('no message for you');
      },
    });

    expect(describeError(unprintable)).toBe('Non-Error thrown: a value that cannot be shown as text');
    expect(describeError(hostile)).toBe('Non-Error thrown: a value that cannot be shown as text');
  });

  it(`keeps at most ${MAX_ERROR_MESSAGE_LENGTH} characters and says how many it left out`, () => {
    const message = describeError(new Error('E'.repeat(10_000)));

    expect(message).toBe(`${'E'.repeat(MAX_ERROR_MESSAGE_LENGTH)}… (${10_000 - MAX_ERROR_MESSAGE_LENGTH} more characters)`);
  });
});

describe('the task registry', () => {
  afterEach(() => {
    delete process.env.FLEET_ENABLE_FAULT_TASKS;
    vi.resetModules();
  });

  it('ships echo, sleep, fail, resize and process only: no fault type, even with FLEET_ENABLE_FAULT_TASKS=1', async () => {
    for (const setting of [undefined, '1']) {
      if (setting === undefined) delete process.env.FLEET_ENABLE_FAULT_TASKS;
      else process.env.FLEET_ENABLE_FAULT_TASKS = setting;
      vi.resetModules();

      const { taskHandlers } = await import('../../lambdas/tasks/index');

      expect(Object.keys(taskHandlers).sort()).toEqual(['echo', 'fail', 'process', 'resize', 'sleep']);
    }
  });

  it('local mode runs the worker with the fault.* types only when FLEET_ENABLE_FAULT_TASKS=1 when it loads', async () => {
    const defaultWorker = { entry: 'lambdas/worker.ts', handler: 'handler', root: 'fleet' as const };
    const { localEntryOf } = await import('../../infra/local/lambda-runtime');

    delete process.env.FLEET_ENABLE_FAULT_TASKS;
    expect(localEntryOf(defaultWorker)).toBe('lambdas/worker.ts');
    process.env.FLEET_ENABLE_FAULT_TASKS = '1';
    expect(localEntryOf(defaultWorker)).toBe('infra/local/fault-tasks-worker.ts');
    // Only Fleet's default worker: a project's own module of the same name, and every other function, run as deployed.
    expect(localEntryOf({ ...defaultWorker, root: 'project' })).toBe('lambdas/worker.ts');
    expect(localEntryOf({ entry: 'lambdas/api.ts', handler: 'handler', root: 'fleet' })).toBe('lambdas/api.ts');
  });

  it('adds the fault.* types to the registered ones in the local fault-tasks worker', async () => {
    useHandlerEnvironment();
    vi.resetModules();

    const { faultTaskHandlers, handler } = await import('../../infra/local/fault-tasks-worker');

    expect(typeof handler).toBe('function');
    expect(Object.keys(faultTaskHandlers).filter((type) => !type.startsWith('fault.')).sort()).toEqual(['echo', 'fail', 'process', 'resize', 'sleep']);
    expect(Object.keys(faultTaskHandlers).filter((type) => type.startsWith('fault.')).sort()).toEqual([
      'fault.hang',
      'fault.huge-error',
      'fault.out-of-memory',
      'fault.throw-non-error',
      'fault.unserialisable',
    ]);
  });
});
