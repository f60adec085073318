/**
 * In-memory fakes of the run leg's ports, for tests that call WorkerService
 * and BatchLifecycle directly (lambdas/domain/worker-service.ts,
 * lambdas/domain/batch-lifecycle.ts): each records what it was asked, in order.
 */
import type { BatchLifecycleDeps } from '../../lambdas/domain/batch-lifecycle';
import type { BatchRecord, DeadLetteredTask, Log } from '../../lambdas/domain/ports';
import type { TaskResult } from '../../lambdas/domain/types';
import type { WorkerServiceDeps } from '../../lambdas/domain/worker-service';

const unused = (what: string) => () => Promise.reject(new Error(`${what}: not expected in this test`));

/** Every call the fakes saw, in order: `method args…`. */
export type Calls = string[];

/** A Log that keeps its lines. */
export function recordingLog(): Log & { lines: { level: string; message: string; attributes: Record<string, unknown> | undefined }[] } {
  const lines: { level: string; message: string; attributes: Record<string, unknown> | undefined }[] = [];
  const at = (level: string) => (message: string, attributes?: Record<string, unknown>) => void lines.push({ level, message, attributes });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** The metrics the run leg emitted, as `name` or `name=value`. */
export function recordingMetrics() {
  const emitted: string[] = [];
  return {
    emitted,
    count: (name: string) => void emitted.push(name),
    attemptDuration: (ms: number) => void emitted.push(`WorkerDuration=${ms}`),
    batchFinished: (status: string) => void emitted.push(`BatchesFinished=${status}`),
  };
}

export interface FakeWorkerStore {
  calls: Calls;
  results: Map<string, TaskResult>;
  deadLetters: DeadLetteredTask[];
  /** The batch's status as getBatch reads it. */
  status: BatchRecord['status'];
  /** What takeNextAttempt finds noted. */
  noted: number | undefined;
  /** Thrown by the next recordResult, if set. */
  recordFails?: Error;
  /** Thrown by dead-letter sends, if set. */
  sendFails?: Error;
}

/** WorkerService's deps over memory: results are recorded once per task, the first winning. */
export function workerDeps(overrides: Partial<WorkerServiceDeps> = {}) {
  const store: FakeWorkerStore = { calls: [], results: new Map(), deadLetters: [], status: 'processing', noted: undefined };
  const log = recordingLog();
  const metrics = recordingMetrics();
  const deps: WorkerServiceDeps = {
    results: {
      getBatch: async (batchId) => {
        store.calls.push(`getBatch ${batchId}`);
        return { batchId, status: store.status, totalTasks: 1, createdAt: 1, priority: 0, tasksKey: 'k' } as BatchRecord;
      },
      recordResult: async (batchId, result) => {
        store.calls.push(`recordResult ${batchId} ${result.taskId}`);
        if (store.recordFails !== undefined) throw store.recordFails;
        if (store.results.has(result.taskId)) return false;
        store.results.set(result.taskId, result);
        return true;
      },
    },
    activity: {
      registerWorker: async (worker) => void store.calls.push(`registerWorker ${worker.id}`),
      deregisterWorker: async (_slot, workerId) => void store.calls.push(`deregisterWorker ${workerId}`),
      noteNextAttempt: async (_batchId, taskId, attempt) => void store.calls.push(`noteNextAttempt ${taskId} ${attempt}`),
      takeNextAttempt: async (_batchId, taskId) => {
        store.calls.push(`takeNextAttempt ${taskId}`);
        return store.noted;
      },
    },
    deadLetters: {
      send: async (task) => {
        store.calls.push(`send ${task.taskId}`);
        if (store.sendFails !== undefined) throw store.sendFails;
        store.deadLetters.push(task);
      },
    },
    isStorageUnavailable: (error) => error instanceof Error && error.name === 'ThrottlingException',
    log,
    metrics,
    retentionDays: 7,
    workerListing: 'every-attempt',
    workerListingDelayMs: 0,
    environmentId: 'env1',
    now: () => 1_700_000_000_000,
    ...overrides,
  };
  return { deps, store, log, metrics };
}

export interface FakeLifecycleStore {
  calls: Calls;
  record: BatchRecord | undefined;
  counts: { completedTasks: number; failedTasks: number };
  /** Whether the finish write applies (the batch was not finished yet). */
  applies: boolean;
  /** Whether the stats add the batch (it was not counted before). */
  added: boolean;
  statsFail?: Error;
}

/** BatchLifecycle's deps over memory, recording the order of the writes. */
export function lifecycleDeps(overrides: Partial<BatchLifecycleDeps> = {}) {
  const store: FakeLifecycleStore = { calls: [], record: undefined, counts: { completedTasks: 0, failedTasks: 0 }, applies: true, added: true };
  const log = recordingLog();
  const metrics = recordingMetrics();
  const deps: BatchLifecycleDeps = {
    repository: {
      getBatch: async (batchId) => {
        store.calls.push(`getBatch ${batchId}`);
        return store.record;
      },
      countResults: async (batchId) => {
        store.calls.push(`countResults ${batchId}`);
        return { ...store.counts };
      },
      finish: async (batchId, fields) => {
        store.calls.push(`finish ${batchId} ${JSON.stringify(fields)}`);
        return store.applies;
      },
      getConfig: unused('getConfig'),
      markStarted: unused('markStarted'),
    },
    capacity: { load: unused('capacity.load') },
    retry: {
      store: { getRetryState: unused('getRetryState'), listSucceededTaskIds: unused('listSucceededTaskIds'), claimRetry: unused('claimRetry'), clearFailedResult: unused('clearFailedResult'), recountRetriedBatch: unused('recountRetriedBatch') },
      taskFiles: { bucket: 'fleet-tasks', readTasks: () => ({ [Symbol.asyncIterator]: () => ({ next: unused('readTasks') }) }), writeRetryTasks: unused('writeRetryTasks'), deleteRetryTasks: unused('deleteRetryTasks') },
    },
    retryStore: {
      recountRetriedBatch: async (batchId, counts) => {
        store.calls.push(`recountRetriedBatch ${batchId} ${JSON.stringify(counts)}`);
        return true;
      },
    },
    activity: {
      addFinishedBatch: async (batchId, counts) => {
        store.calls.push(`addFinishedBatch ${batchId} ${JSON.stringify(counts)}`);
        if (store.statsFail !== undefined) throw store.statsFail;
        return store.added;
      },
    },
    release: async (stateMachineArn, batchId) => void store.calls.push(`release ${stateMachineArn} ${batchId}`),
    log,
    metrics,
    retentionDays: 7,
    childExecutionType: 'EXPRESS',
    now: () => 1_700_000_000_000,
    ...overrides,
  };
  return { deps, store, log, metrics };
}
