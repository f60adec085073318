/**
 * WorkerService (lambdas/domain/worker-service.ts), called directly with
 * in-memory ports: the worker's rules without a handler, an SDK mock or a
 * prototype spy. What the state machine sees (the error names its Retry and
 * Catch match) is in test/unit/worker-*.test.ts through the handler.
 */
import { describe, expect, it } from 'vitest';
import { TaskPermanentError, WORKER_ERROR } from '../../lambdas/domain/errors';
import type { RecordFailureEvent, TaskSettings, WorkerEvent } from '../../lambdas/domain/types';
import { WorkerService, attemptDeadline, catchPathError, type TaskRegistry } from '../../lambdas/domain/worker-service';
import { workerDeps } from './run-leg-fakes';

const settings: TaskSettings = { workerTimeout: 5_000, maxRetries: 2, retryFailedTasks: true, attemptTimeoutSeconds: 15, executionBudgetMs: null };
const tasks: TaskRegistry = {
  handlers: {
    echo: (data) => data,
    broken: () => {
      throw new TaskPermanentError('out of paper');
    },
    flaky: () => {
      throw new Error('try again');
    },
  },
  middleware: [],
};
const event = (type: string, attempt = 0, extra: Partial<WorkerEvent> = {}): WorkerEvent => ({ batchId: 'b1', task: { id: `${type}-1`, type, data: { n: 1 } }, settings, attempt, ...extra });
const catchPath = (error: RecordFailureEvent['error']): RecordFailureEvent => ({ action: 'recordFailure', batchId: 'b1', task: { id: 'hung-1', type: 'sleep', data: {} }, error });
const throttled = () => Object.assign(new Error('rate exceeded'), { name: 'ThrottlingException' });

describe('WorkerService.runTask', () => {
  it('records a success with its attempt count and worker id, counts it once, and lists the attempt while it runs', async () => {
    const { deps, store, metrics } = workerDeps();

    await expect(new WorkerService(deps).runTask(event('echo', 1), tasks)).resolves.toEqual({ taskId: 'echo-1', success: true });

    expect(store.results.get('echo-1')).toMatchObject({ success: true, result: { n: 1 }, attempts: 2, workerId: 'env1-echo-1-1', timestamp: 1_700_000_000_000 });
    expect(store.calls).toEqual(['getBatch b1', 'registerWorker env1-echo-1-1', 'recordResult b1 echo-1']);
    expect(metrics.emitted.filter((m) => !m.startsWith('WorkerDuration='))).toEqual(['TaskRetries', 'TasksSucceeded']);
    expect(metrics.emitted.filter((m) => m.startsWith('WorkerDuration='))).toHaveLength(1);
    expect(store.deadLetters).toEqual([]);
  });

  it("a success's result is written while its listing's put is still in flight, and the attempt ends (and frees its slot) only once that put has landed", async () => {
    let land = () => {};
    const registered = new Promise<void>((resolve) => { land = resolve; });
    const { deps, store } = workerDeps();
    deps.activity = { ...deps.activity, registerWorker: async (worker) => { store.calls.push(`registerWorker ${worker.id}`); await registered; store.calls.push(`registered ${worker.id}`); } };
    const service = new WorkerService(deps);
    let ended = false;

    const first = service.runTask(event('echo'), tasks).then((output) => { ended = true; return output; });
    // Bounded by turns of the event loop, not by time: the result goes in while the put has not landed.
    for (let turn = 0; turn < 50 && !store.calls.includes('recordResult b1 echo-1'); turn++) await new Promise(setImmediate);
    expect(store.calls).toContain('recordResult b1 echo-1');
    expect(store.calls).not.toContain('registered env1-echo-1-0');
    expect(ended).toBe(false);
    // Its slot is still taken: an attempt starting now lists itself under slot 1, not over the entry still landing.
    const slots: string[] = [];
    deps.activity.registerWorker = async (worker) => { slots.push(worker.slot); };
    await service.runTask(event('echo', 0, { task: { id: 'echo-2', type: 'echo', data: {} } }), tasks);
    expect(slots).toEqual(['env1-1']);

    land();
    await expect(first).resolves.toEqual({ taskId: 'echo-1', success: true });
    expect(store.calls.slice(-1)).toEqual(['registered env1-echo-1-0']);
  });

  it('a duplicate delivery records nothing new and counts nothing', async () => {
    const { deps, metrics } = workerDeps();
    const service = new WorkerService(deps);
    await service.runTask(event('echo'), tasks);
    metrics.emitted.length = 0;

    await expect(service.runTask(event('echo'), tasks)).resolves.toEqual({ taskId: 'echo-1', success: true });

    expect(metrics.emitted.filter((m) => !m.startsWith('WorkerDuration='))).toEqual([]);
  });

  it('an attempt with attempts left throws TaskAttemptFailed, records nothing and notes the next attempt for the Catch path', async () => {
    const { deps, store } = workerDeps();

    await expect(new WorkerService(deps).runTask(event('flaky', 0), tasks)).rejects.toMatchObject({ name: WORKER_ERROR.attemptFailed });

    expect(store.results.size).toBe(0);
    expect(store.calls).toEqual(['registerWorker env1-flaky-1-0', 'deregisterWorker env1-flaky-1-0', 'noteNextAttempt flaky-1 1']);
  });

  it('a final failure is recorded, counted, dead-lettered once, clears the note, then throws TaskFailed', async () => {
    const { deps, store, metrics } = workerDeps();

    await expect(new WorkerService(deps).runTask(event('flaky', 2), tasks)).rejects.toMatchObject({ name: WORKER_ERROR.failed });

    expect(store.results.get('flaky-1')).toMatchObject({ success: false, error: 'try again', attempts: 3 });
    expect(metrics.emitted).toContain('TasksFailed');
    expect(store.calls.slice(-3)).toEqual(['recordResult b1 flaky-1', 'takeNextAttempt flaky-1', 'send flaky-1']);
    expect(store.deadLetters).toEqual([{ batchId: 'b1', taskId: 'flaky-1', taskType: 'flaky', error: 'try again', attempts: 3, workerId: 'env1-flaky-1-2', failedAt: 1_700_000_000_000 }]);
  });

  it('a permanent error fails at once, on the first attempt, with no note to clear', async () => {
    const { deps, store } = workerDeps();

    await expect(new WorkerService(deps).runTask(event('broken', 0), tasks)).rejects.toMatchObject({ name: WORKER_ERROR.failed });

    expect(store.calls).not.toContain('takeNextAttempt broken-1');
    expect(store.deadLetters.map((d) => d.taskId)).toEqual(['broken-1']);
  });

  it('a dead-letter send that fails is logged and never fails the task or loses its result', async () => {
    const { deps, store, log } = workerDeps();
    store.sendFails = new Error('SQS down');

    await expect(new WorkerService(deps).runTask(event('broken'), tasks)).rejects.toMatchObject({ name: WORKER_ERROR.failed });

    expect(store.results.has('broken-1')).toBe(true);
    expect(log.lines).toContainEqual({ level: 'error', message: 'dead-letter queue: send failed', attributes: { batchId: 'b1', taskId: 'broken-1', error: 'Error: SQS down' } });
  });

  it('a retry of a cancelled batch runs nothing and records nothing', async () => {
    const { deps, store } = workerDeps();
    store.status = 'cancelled';

    await expect(new WorkerService(deps).runTask(event('echo', 1), tasks)).resolves.toEqual({ taskId: 'echo-1', success: false });

    expect(store.calls).toEqual(['getBatch b1']);
  });

  it('an outcome the store cannot take (storage unavailable) is Fleet.StorageUnavailable, with no count and no dead letter', async () => {
    const { deps, store, metrics } = workerDeps();
    store.recordFails = throttled();

    await expect(new WorkerService(deps).runTask(event('broken'), tasks)).rejects.toMatchObject({ name: 'Fleet.StorageUnavailable' });

    expect(metrics.emitted).not.toContain('TasksFailed');
    expect(store.deadLetters).toEqual([]);
  });

  it("another error of the store stays the task's own", async () => {
    const { deps, store } = workerDeps();
    store.recordFails = Object.assign(new Error('too big'), { name: 'ValidationException' });

    await expect(new WorkerService(deps).runTask(event('echo'), tasks)).rejects.toMatchObject({ name: 'ValidationException' });
  });

  it("a bounded child's attempt ends by the child's start plus its execution budget", async () => {
    const start = Date.now();
    let deadline = 0;
    const timed: TaskRegistry = { handlers: { seen: (_data, context) => void (deadline = context.deadline) }, middleware: [] };
    const { deps } = workerDeps();

    await new WorkerService(deps).runTask(event('seen', 0, { executionStartTime: new Date(start).toISOString(), settings: { ...settings, executionBudgetMs: 1_000 } }), timed);

    expect(deadline).toBe(start + 1_000);
  });
});

describe('attemptDeadline', () => {
  it('is the child start plus the budget, or none without either', () => {
    expect(attemptDeadline({ executionStartTime: '2026-01-01T00:00:00.000Z', settings: { ...settings, executionBudgetMs: 60_000 } })).toBe(Date.parse('2026-01-01T00:01:00.000Z'));
    expect(attemptDeadline({ executionStartTime: '2026-01-01T00:00:00.000Z', settings })).toBeUndefined();
    expect(attemptDeadline({ settings: { ...settings, executionBudgetMs: 60_000 } })).toBeUndefined();
    expect(attemptDeadline({ executionStartTime: 'not a date', settings: { ...settings, executionBudgetMs: 60_000 } })).toBeUndefined();
  });
});

describe('WorkerService.recordFailure (the Catch path)', () => {
  it('records the failure as the noted attempt, counts it and dead-letters it once', async () => {
    const { deps, store, metrics } = workerDeps();
    store.noted = 2;

    await expect(new WorkerService(deps).recordFailure(catchPath({ Error: 'States.Timeout', Cause: '' }))).resolves.toEqual({ taskId: 'hung-1', success: false });

    expect(store.results.get('hung-1')).toMatchObject({ success: false, error: 'timed out: the attempt exceeded its backstop timeout', attempts: 3, duration: 0, workerId: 'env1-catch' });
    expect(metrics.emitted).toEqual(['TasksFailed']);
    expect(store.deadLetters.map((d) => d.taskId)).toEqual(['hung-1']);
  });

  it('without a note it records the first attempt; a duplicate counts and sends nothing', async () => {
    const { deps, store, metrics } = workerDeps();
    const service = new WorkerService(deps);
    await service.recordFailure(catchPath({ Error: 'Lambda.Unknown', Cause: 'crashed' }));
    await service.recordFailure(catchPath({ Error: 'Lambda.Unknown', Cause: 'crashed' }));

    expect(store.results.get('hung-1')?.attempts).toBe(1);
    expect(metrics.emitted).toEqual(['TasksFailed']);
    expect(store.deadLetters).toHaveLength(1);
  });

  it('throws Fleet.StorageUnavailable when the failure cannot be stored, so it is retried rather than lost', async () => {
    const { deps, store } = workerDeps();
    store.recordFails = throttled();

    await expect(new WorkerService(deps).recordFailure(catchPath({ Error: 'States.Timeout' }))).rejects.toMatchObject({ name: 'Fleet.StorageUnavailable' });
    expect(store.deadLetters).toEqual([]);
  });
});

describe('catchPathError: the Step Functions Cause', () => {
  it("takes a Lambda error's errorMessage from its JSON Cause", () => {
    expect(catchPathError({ Error: 'Error', Cause: JSON.stringify({ errorType: 'Error', errorMessage: 'boom', trace: [] }) })).toBe('Error: boom');
  });

  it('keeps a plain-text Cause as it is, and a missing one out', () => {
    expect(catchPathError({ Error: 'Lambda.ServiceException', Cause: 'Lambda encountered an internal error.' })).toBe('Lambda.ServiceException: Lambda encountered an internal error.');
    expect(catchPathError({ Error: 'Sandbox.Timedout' })).toBe('Sandbox.Timedout');
    expect(catchPathError(undefined)).toBe('Error');
  });

  it('names a backstop timeout (States.Timeout) whatever its Cause', () => {
    expect(catchPathError({ Error: 'States.Timeout', Cause: 'anything' })).toBe('timed out: the attempt exceeded its backstop timeout');
  });
});
