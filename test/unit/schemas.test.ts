import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../lambdas/domain/config';
import { ValidationError } from '../../lambdas/domain/errors';
import { parseBatchId, parseConfigPatch, parseLimit, parseSubmitRequest, parseWorkerCount } from '../../lambdas/domain/schemas';

/** Runs `act`, which must throw a ValidationError, and returns it. */
function validationErrorOf(act: () => unknown): ValidationError {
  let thrown: unknown;
  try {
    act();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(ValidationError);
  return thrown as ValidationError;
}

describe('parseSubmitRequest', () => {
  it('accepts a valid batch and keeps tasks in submission order', () => {
    // Arrange
    const body = {
      tasks: [
        { id: 'a', type: 'echo', data: { hello: 'world' } },
        { id: 'b', type: 'sleep', data: { ms: 10 }, priority: 5, timeout: 1000 },
        { id: 'c', type: 'fail' },
      ],
      priority: 7,
    };

    // Act
    const request = parseSubmitRequest(body);

    // Assert
    expect(request.priority).toBe(7);
    expect(request.tasks.map((task) => task.id)).toEqual(['a', 'b', 'c']);
    expect(request.tasks[0]).toEqual({ id: 'a', type: 'echo', data: { hello: 'world' } });
    expect(request.tasks[1]).toEqual({ id: 'b', type: 'sleep', data: { ms: 10 }, priority: 5, timeout: 1000 });
  });

  it('defaults the batch priority to 0', () => {
    const request = parseSubmitRequest({ tasks: [{ id: 'a', type: 'echo' }] });

    expect(request.priority).toBe(0);
  });

  it('rejects an empty task list, naming `tasks`', () => {
    const error = validationErrorOf(() => parseSubmitRequest({ tasks: [] }));

    expect(error.field).toBe('tasks');
    expect(error.message).toContain('at least one task');
    expect(error.status).toBe(400);
    expect(error.code).toBe('validation_error');
  });

  it('rejects a body without tasks, naming `tasks`', () => {
    const error = validationErrorOf(() => parseSubmitRequest({}));

    expect(error.field).toBe('tasks');
    expect(error.message).toContain('must be an array of tasks');
  });

  it('rejects `tasks` that is not an array', () => {
    const error = validationErrorOf(() => parseSubmitRequest({ tasks: 'echo' }));

    expect(error.field).toBe('tasks');
    expect(error.message).toContain('must be an array of tasks');
  });

  it('rejects a duplicate task id, naming the index of the second occurrence', () => {
    // Arrange
    const body = {
      tasks: [
        { id: 'x', type: 'echo' },
        { id: 'y', type: 'echo' },
        { id: 'x', type: 'echo' },
      ],
    };

    // Act
    const error = validationErrorOf(() => parseSubmitRequest(body));

    // Assert
    expect(error.field).toBe('tasks[2].id');
    expect(error.message).toBe('tasks[2].id: duplicates the id "x"');
  });

  it('names `tasks[i].type` when a type has the wrong JSON type', () => {
    const body = {
      tasks: [
        { id: 'a', type: 'echo' },
        { id: 'b', type: 'echo' },
        { id: 'c', type: 42 },
      ],
    };

    const error = validationErrorOf(() => parseSubmitRequest(body));

    expect(error.field).toBe('tasks[2].type');
    expect(error.message).toMatch(/^tasks\[2\]\.type: /);
    expect(error.message).toContain('string');
  });

  it('names `tasks[i].id` when an id is not a string', () => {
    const error = validationErrorOf(() => parseSubmitRequest({ tasks: [{ id: 7, type: 'echo' }] }));

    expect(error.field).toBe('tasks[0].id');
    expect(error.message).toContain('string');
  });

  it('names `tasks[i].type` when the type is missing', () => {
    const error = validationErrorOf(() => parseSubmitRequest({ tasks: [{ id: 'a' }] }));

    expect(error.field).toBe('tasks[0].type');
  });

  it('rejects a type that does not start with a letter', () => {
    const error = validationErrorOf(() => parseSubmitRequest({ tasks: [{ id: 'a', type: '9lives' }] }));

    expect(error.field).toBe('tasks[0].type');
    expect(error.message).toContain('must start with a letter');
  });

  it('rejects an empty id and an id with control characters', () => {
    const empty = validationErrorOf(() => parseSubmitRequest({ tasks: [{ id: '', type: 'echo' }] }));
    const control = validationErrorOf(() => parseSubmitRequest({ tasks: [{ id: 'a\nb', type: 'echo' }] }));

    expect(empty.field).toBe('tasks[0].id');
    expect(empty.message).toContain('must not be empty');
    expect(control.field).toBe('tasks[0].id');
    expect(control.message).toContain('control characters');
  });

  it('rejects a non-integer task priority and a task timeout out of range', () => {
    const priority = validationErrorOf(() => parseSubmitRequest({ tasks: [{ id: 'a', type: 'echo', priority: 1.5 }] }));
    const zero = validationErrorOf(() => parseSubmitRequest({ tasks: [{ id: 'a', type: 'echo', timeout: 0 }] }));
    const tooLong = validationErrorOf(() =>
      parseSubmitRequest({ tasks: [{ id: 'a', type: 'echo', timeout: LIMITS.workerTimeoutMs + 1 }] }),
    );

    expect(priority.field).toBe('tasks[0].priority');
    expect(priority.message).toContain('must be an integer');
    expect(zero.field).toBe('tasks[0].timeout');
    expect(zero.message).toContain('at least 1 ms');
    expect(tooLong.field).toBe('tasks[0].timeout');
    expect(tooLong.message).toContain(`at most ${LIMITS.workerTimeoutMs} ms`);
  });

  it('rejects an unknown field on a task, naming it', () => {
    const body = { tasks: [{ id: 'a', type: 'echo' }, { id: 'b', type: 'echo', retries: 3 }] };

    const error = validationErrorOf(() => parseSubmitRequest(body));

    expect(error.field).toBe('tasks[1].retries');
    expect(error.message).toContain('is not a known field');
  });

  it('rejects an unknown top-level field, naming it', () => {
    const error = validationErrorOf(() => parseSubmitRequest({ tasks: [{ id: 'a', type: 'echo' }], callback: 'http://x' }));

    expect(error.field).toBe('callback');
    expect(error.message).toBe('callback: is not a known field');
  });

  it('rejects a task whose JSON is larger than LIMITS.taskBytes, naming the task', () => {
    // Arrange: the data alone is one byte over the limit.
    const big = 'x'.repeat(LIMITS.taskBytes + 1);
    const body = { tasks: [{ id: 'small', type: 'echo' }, { id: 'big', type: 'echo', data: big }] };

    // Act
    const error = validationErrorOf(() => parseSubmitRequest(body));

    // Assert
    expect(error.field).toBe('tasks[1]');
    expect(error.message).toContain(`at most ${LIMITS.taskBytes} bytes`);
  });

  it('counts task size in UTF-8 bytes, not characters', () => {
    // 'é' is 2 bytes in UTF-8: half the limit in characters is over it in bytes.
    const data = 'é'.repeat(Math.ceil(LIMITS.taskBytes / 2) + 1);

    const error = validationErrorOf(() => parseSubmitRequest({ tasks: [{ id: 'a', type: 'echo', data }] }));

    expect(error.field).toBe('tasks[0]');
  });

  it('accepts a task just under the size limit', () => {
    const data = 'x'.repeat(LIMITS.taskBytes - 100);

    const request = parseSubmitRequest({ tasks: [{ id: 'a', type: 'echo', data }] });

    expect(request.tasks).toHaveLength(1);
  });

  it('rejects more tasks than the limits allow, with a small override', () => {
    // Arrange
    const limits = { tasksPerBatch: 2, taskBytes: LIMITS.taskBytes };
    const tasks = [1, 2, 3].map((n) => ({ id: `t${n}`, type: 'echo' }));

    // Act
    const error = validationErrorOf(() => parseSubmitRequest({ tasks }, limits));

    // Assert
    expect(error.field).toBe('tasks');
    expect(error.message).toContain('at most 2 tasks (got 3)');
  });

  it('accepts exactly as many tasks as the limit', () => {
    const tasks = [1, 2].map((n) => ({ id: `t${n}`, type: 'echo' }));

    const request = parseSubmitRequest({ tasks }, { tasksPerBatch: 2, taskBytes: LIMITS.taskBytes });

    expect(request.tasks).toHaveLength(2);
  });

  it('applies a small taskBytes override', () => {
    const error = validationErrorOf(() =>
      parseSubmitRequest({ tasks: [{ id: 'a', type: 'echo', data: 'x'.repeat(100) }] }, { tasksPerBatch: 10, taskBytes: 50 }),
    );

    expect(error.field).toBe('tasks[0]');
    expect(error.message).toContain('at most 50 bytes');
  });

  it.each([
    ['null', null],
    ['an array', [{ id: 'a', type: 'echo' }]],
    ['a string', '{"tasks": []}'],
    ['a number', 42],
    ['undefined', undefined],
  ])('rejects a body that is %s, naming `body`', (_label, body) => {
    const error = validationErrorOf(() => parseSubmitRequest(body));

    expect(error.field).toBe('body');
    expect(error.message).toContain('must be a JSON object');
  });
});

describe('parseConfigPatch', () => {
  it('accepts either worker listing mode', () => {
    expect(parseConfigPatch({ workerListing: 'long-attempts' })).toEqual({ workerListing: 'long-attempts' });
    expect(parseConfigPatch({ workerListing: 'every-attempt' })).toEqual({ workerListing: 'every-attempt' });
  });

  it('refuses another worker listing mode, naming the field and the modes', () => {
    for (const value of ['sometimes', '', true, 2, null]) {
      const error = validationErrorOf(() => parseConfigPatch({ workerListing: value }));

      expect(error.field).toBe('workerListing');
      expect(error.message).toContain('must be one of "every-attempt", "long-attempts"');
    }
  });

  it('accepts a full, valid config', () => {
    const patch = parseConfigPatch({ maxConcurrentWorkers: 50, workerTimeout: 60_000, retryFailedTasks: false, maxRetries: 0 });

    expect(patch).toEqual({ maxConcurrentWorkers: 50, workerTimeout: 60_000, retryFailedTasks: false, maxRetries: 0 });
  });

  it('returns only the fields given (a partial update)', () => {
    const patch = parseConfigPatch({ maxRetries: 5 });

    expect(patch).toEqual({ maxRetries: 5 });
    expect(Object.keys(patch)).toEqual(['maxRetries']);
  });

  it('accepts an empty patch', () => {
    expect(parseConfigPatch({})).toEqual({});
  });

  it('accepts the bounds themselves', () => {
    const patch = parseConfigPatch({
      maxConcurrentWorkers: LIMITS.maxConcurrentWorkers,
      workerTimeout: LIMITS.workerTimeoutMs,
      maxRetries: LIMITS.maxRetries,
    });

    expect(patch).toEqual({
      maxConcurrentWorkers: LIMITS.maxConcurrentWorkers,
      workerTimeout: LIMITS.workerTimeoutMs,
      maxRetries: LIMITS.maxRetries,
    });
  });

  it.each([
    ['maxConcurrentWorkers', 0, 'at least 1'],
    ['maxConcurrentWorkers', LIMITS.maxConcurrentWorkers + 1, `at most ${LIMITS.maxConcurrentWorkers}`],
    ['maxConcurrentWorkers', 2.5, 'must be an integer'],
    ['workerTimeout', 0, 'at least 1 ms'],
    ['workerTimeout', LIMITS.workerTimeoutMs + 1, `at most ${LIMITS.workerTimeoutMs} ms`],
    ['workerTimeout', 1.5, 'integer number of ms'],
    ['maxRetries', -1, 'at least 0'],
    ['maxRetries', LIMITS.maxRetries + 1, `at most ${LIMITS.maxRetries}`],
    ['retryFailedTasks', 'yes', 'must be true or false'],
  ])('rejects %s = %s, naming the field', (field, value, expected) => {
    const error = validationErrorOf(() => parseConfigPatch({ [field]: value }));

    expect(error.field).toBe(field);
    expect(error.message).toContain(expected);
  });

  it('rejects a number sent as a string', () => {
    const error = validationErrorOf(() => parseConfigPatch({ maxRetries: '3' }));

    expect(error.field).toBe('maxRetries');
  });

  it('rejects an unknown key, naming it', () => {
    const error = validationErrorOf(() => parseConfigPatch({ maxRetries: 2, maxWorkers: 10 }));

    expect(error.field).toBe('maxWorkers');
    expect(error.message).toContain('is not a known field');
  });

  it.each([
    ['null', null],
    ['an array', []],
    ['a string', 'maxRetries=3'],
  ])('rejects a body that is %s, naming `body`', (_label, body) => {
    const error = validationErrorOf(() => parseConfigPatch(body));

    expect(error.field).toBe('body');
  });
});

describe('parseWorkerCount', () => {
  it('returns a valid count', () => {
    expect(parseWorkerCount({ count: 25 })).toBe(25);
  });

  it('accepts both bounds', () => {
    expect(parseWorkerCount({ count: 1 })).toBe(1);
    expect(parseWorkerCount({ count: LIMITS.maxConcurrentWorkers })).toBe(LIMITS.maxConcurrentWorkers);
  });

  it.each([
    [0, 'at least 1'],
    [LIMITS.maxConcurrentWorkers + 1, `at most ${LIMITS.maxConcurrentWorkers}`],
    [2.5, 'must be an integer'],
    ['3', 'must be a number'],
  ])('rejects count = %s, naming `count`', (count, expected) => {
    const error = validationErrorOf(() => parseWorkerCount({ count }));

    expect(error.field).toBe('count');
    expect(error.message).toContain(expected);
  });

  it('rejects a missing count, naming `count`', () => {
    const error = validationErrorOf(() => parseWorkerCount({}));

    expect(error.field).toBe('count');
  });

  it('rejects an unknown key, naming it', () => {
    const error = validationErrorOf(() => parseWorkerCount({ count: 3, force: true }));

    expect(error.field).toBe('force');
    expect(error.message).toContain('is not a known field');
  });

  it('rejects a body that is not an object with a ValidationError', () => {
    const error = validationErrorOf(() => parseWorkerCount(null));

    expect(error.status).toBe(400);
  });
});

describe('parseLimit', () => {
  it('falls back when the limit is absent or empty', () => {
    expect(parseLimit(undefined, 50)).toBe(50);
    expect(parseLimit('', 100)).toBe(100);
  });

  it('parses an integer in range', () => {
    expect(parseLimit('1', 50)).toBe(1);
    expect(parseLimit('25', 50)).toBe(25);
    expect(parseLimit(String(LIMITS.pageSize), 50)).toBe(LIMITS.pageSize);
  });

  it.each(['0', String(LIMITS.pageSize + 1), '-1', '1.5', 'ten', ' 5', '1e2', '99999999'])('rejects %j, naming `limit`', (raw) => {
    const error = validationErrorOf(() => parseLimit(raw, 50));

    expect(error.field).toBe('limit');
    expect(error.message).toContain(`from 1 to ${LIMITS.pageSize}`);
  });
});

describe('parseBatchId', () => {
  it('accepts ids usable as execution names', () => {
    const uuid = '0f8fad5b-d9cb-469f-a165-70867728950e';

    expect(parseBatchId(uuid)).toBe(uuid);
    expect(parseBatchId('batch_1')).toBe('batch_1');
    expect(parseBatchId('a'.repeat(80))).toBe('a'.repeat(80));
  });

  it.each([
    ['undefined', undefined],
    ['empty', ''],
    ['81 characters', 'a'.repeat(81)],
    ['a slash', 'a/b'],
    ['a space', 'a b'],
    ['a dot', 'a.b'],
    ['a colon', 'arn:aws'],
  ])('rejects an id that is %s, naming `batchId`', (_label, raw) => {
    const error = validationErrorOf(() => parseBatchId(raw));

    expect(error.field).toBe('batchId');
    expect(error.message).toContain('is not a valid batch id');
  });
});
