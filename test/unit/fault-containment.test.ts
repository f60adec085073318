/**
 * The pieces that keep a misbehaving handler's fault inside its task:
 * describeError turns anything thrown into a bounded message and never
 * throws, and the fault task types exist only when a test asks for them.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_ERROR_MESSAGE_LENGTH, describeError } from '../../lambdas/domain/errors';

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

  it('ships echo, sleep, fail, resize and process only: no fault type without FLEET_ENABLE_FAULT_TASKS', async () => {
    delete process.env.FLEET_ENABLE_FAULT_TASKS;
    vi.resetModules();

    const { taskHandlers } = await import('../../lambdas/tasks/index');

    expect(Object.keys(taskHandlers).sort()).toEqual(['echo', 'fail', 'process', 'resize', 'sleep']);
  });

  it('adds the fault.* types when FLEET_ENABLE_FAULT_TASKS=1 at load', async () => {
    process.env.FLEET_ENABLE_FAULT_TASKS = '1';
    vi.resetModules();

    const { taskHandlers } = await import('../../lambdas/tasks/index');

    expect(Object.keys(taskHandlers).filter((type) => type.startsWith('fault.')).sort()).toEqual([
      'fault.hang',
      'fault.huge-error',
      'fault.out-of-memory',
      'fault.throw-non-error',
      'fault.unserialisable',
    ]);
  });
});
