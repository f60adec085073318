/**
 * FleetService.submitBatchOnce over in-memory ports: the same key and body
 * give one batch however the sends interleave or crash; another body is a
 * conflict. The ports keep DynamoDB's and Step Functions' semantics that
 * matter here: a conditional create, a first-writer-wins claim, a start
 * named after the batch.
 */
import { describe, expect, it } from 'vitest';
import { ConflictError, ValidationError } from '../../lambdas/domain/errors';
import { FleetService } from '../../lambdas/domain/fleet-service';
import { canonicalJson, fingerprintSubmitRequest, hashIdempotencyKey } from '../../lambdas/domain/idempotency';
import type {
  BatchExecutionInput,
  BatchRecord,
  BatchRepository,
  FleetActivity,
  IdempotencyRecord,
  IdempotencyStore,
  TaskStore,
  WorkflowStarter,
} from '../../lambdas/domain/ports';
import { parseSubmitRequest } from '../../lambdas/domain/schemas';
import type { Task } from '../../lambdas/domain/types';

type Step = 'claim' | 'putTasks' | 'createBatch' | 'markCreated' | 'addSubmittedBatch' | 'startBatch';

class Crash extends Error {
  override readonly name = 'Crash';
}

/** In-memory ports; `crashOnce(step)` makes the next call of that step throw, as a crashed Lambda would stop there. */
function world() {
  const records = new Map<string, BatchRecord>();
  const claims = new Map<string, IdempotencyRecord>();
  const files = new Map<string, string>();
  const executions = new Map<string, string>();
  const counts = { puts: 0, creates: 0, starts: 0, submittedBatches: 0, claims: 0 };
  const crashes = new Set<Step>();
  // Every port call yields first, so concurrent sends interleave between steps.
  const step = async (name: Step) => {
    await new Promise((resolve) => setImmediate(resolve));
    if (crashes.delete(name)) throw new Crash(`crashed at ${name}`);
  };
  let ids = 0;

  const repository = {
    async createBatch(record: BatchRecord) {
      await step('createBatch');
      if (records.has(record.batchId)) throw Object.assign(new Error('conditional check failed'), { name: 'ConditionalCheckFailedException' });
      records.set(record.batchId, { ...record });
      counts.creates++;
    },
    async getBatch(batchId: string) {
      await new Promise((resolve) => setImmediate(resolve));
      return records.get(batchId);
    },
    async getStatus(batchId: string) {
      const record = records.get(batchId);
      if (!record) return undefined;
      return { batchId, status: record.status, totalTasks: record.totalTasks, completedTasks: 0, failedTasks: 0, progress: 0, createdAt: record.createdAt, startedAt: null, completedAt: null };
    },
  } as unknown as BatchRepository;

  const taskStore: TaskStore = {
    async putTasks(batchId, tasks) {
      await step('putTasks');
      const key = `batches/${batchId}/tasks.jsonl`;
      files.set(key, tasks.map((task) => JSON.stringify(task)).join('\n'));
      counts.puts++;
      return { bucket: 'tasks', key };
    },
  };

  const workflow: WorkflowStarter = {
    async startBatch(input: BatchExecutionInput) {
      await step('startBatch');
      const previous = executions.get(input.batchId);
      // Step Functions: the same name with another input is refused; the same input is a no-op.
      if (previous !== undefined && previous !== JSON.stringify(input)) throw new Error('ExecutionAlreadyExists with a different input');
      if (previous === undefined) counts.starts++;
      executions.set(input.batchId, JSON.stringify(input));
      return input.batchId;
    },
    stopBatch: async () => undefined,
    isBatchRunning: async (batchId) => executions.has(batchId),
    setBatchConcurrency: async () => false,
  };

  const activity = {
    async addSubmittedBatch() {
      await step('addSubmittedBatch');
      counts.submittedBatches++;
    },
  } as unknown as FleetActivity;

  const idempotency: IdempotencyStore = {
    async claim(record) {
      await step('claim');
      // Check and set with no await in between: DynamoDB's conditional put.
      const existing = claims.get(record.keyHash);
      if (existing) return { claimed: false, existing: { ...existing } };
      claims.set(record.keyHash, { ...record });
      counts.claims++;
      return { claimed: true };
    },
    async markCreated(keyHash, batchId) {
      await step('markCreated');
      const claim = claims.get(keyHash);
      if (claim && claim.batchId === batchId) claim.state = 'created';
    },
  };

  const service = new FleetService({
    repository,
    taskStore,
    workflow,
    activity,
    idempotency,
    now: () => 1_700_000_000_000,
    newBatchId: () => `batch-${++ids}`,
  });
  return {
    service,
    records,
    claims,
    files,
    executions,
    counts,
    crashOnce: (name: Step) => crashes.add(name),
  };
}

const tasks = (n: number, data: unknown = { x: 1 }): Task[] => Array.from({ length: n }, (_, i) => ({ id: `t${i}`, type: 'echo', data }));

describe('submitBatchOnce: the same key and body', () => {
  it('gives the same batch on every send: created once, started once, counted once', async () => {
    // Arrange
    const w = world();
    const body = { tasks: tasks(3) };

    // Act
    const first = await w.service.submitBatchOnce(body, 'key-1');
    const second = await w.service.submitBatchOnce(body, 'key-1');
    const third = await w.service.submitBatchOnce(structuredClone(body), 'key-1');

    // Assert
    expect(first.created).toBe(true);
    expect([second.created, third.created]).toEqual([false, false]);
    expect(second.status.batchId).toBe(first.status.batchId);
    expect(third.status.batchId).toBe(first.status.batchId);
    expect(w.counts).toMatchObject({ creates: 1, starts: 1, submittedBatches: 1, claims: 1, puts: 1 });
    expect(w.claims.get(hashIdempotencyKey('key-1'))?.state).toBe('created');
  });

  it('treats bodies that differ only in key order and whitespace as the same request', async () => {
    const w = world();
    const a = JSON.parse('{"tasks":[{"id":"a","type":"echo","data":{"x":1,"y":[1,{"p":2,"q":3}]}}],"priority":0}') as unknown;
    const b = JSON.parse('{ "priority": 0, "tasks": [ { "data": { "y": [1, {"q": 3, "p": 2}], "x": 1 }, "type": "echo", "id": "a" } ] }') as unknown;
    const c = JSON.parse('{"tasks":[{"type":"echo","id":"a","data":{"y":[1,{"q":3,"p":2}],"x":1}}]}') as unknown; // priority left at its default

    const results = [await w.service.submitBatchOnce(a, 'k'), await w.service.submitBatchOnce(b, 'k'), await w.service.submitBatchOnce(c, 'k')];

    expect(new Set(results.map((r) => r.status.batchId)).size).toBe(1);
    expect(w.counts.creates).toBe(1);
  });

  it('lets 20 concurrent sends race: exactly one creates the batch, all answer with its id', async () => {
    // Arrange
    const w = world();
    const body = { tasks: tasks(5) };

    // Act
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => w.service.submitBatchOnce(structuredClone(body), 'race')));

    // Assert
    expect(new Set(outcomes.map((o) => o.status.batchId))).toEqual(new Set(['batch-1']));
    expect(outcomes.filter((o) => o.created)).toHaveLength(1);
    expect(w.records.size).toBe(1);
    expect(w.counts).toMatchObject({ creates: 1, starts: 1, submittedBatches: 1, claims: 1 });
  });
});

describe('submitBatchOnce: the same key with another body', () => {
  it('is a ConflictError and starts nothing new', async () => {
    const w = world();
    await w.service.submitBatchOnce({ tasks: tasks(2) }, 'k');

    const attempt = w.service.submitBatchOnce({ tasks: tasks(2, { x: 2 }) }, 'k');

    await expect(attempt).rejects.toBeInstanceOf(ConflictError);
    await expect(attempt).rejects.toThrow('Idempotency-Key: this key was already used with a different request body');
    expect(w.counts).toMatchObject({ creates: 1, starts: 1, puts: 1, submittedBatches: 1 });
  });

  it('is a conflict for another priority too: priority is part of the request', async () => {
    const w = world();
    await w.service.submitBatchOnce({ tasks: tasks(1), priority: 1 }, 'k');

    await expect(w.service.submitBatchOnce({ tasks: tasks(1), priority: 2 }, 'k')).rejects.toBeInstanceOf(ConflictError);
  });
});

describe('submitBatchOnce: input and keys', () => {
  it('rejects an invalid body before claiming the key, so the key still works with a corrected body', async () => {
    const w = world();

    await expect(w.service.submitBatchOnce({ tasks: [{ id: 'a', type: '1bad' }] }, 'k')).rejects.toBeInstanceOf(ValidationError);
    const fixed = await w.service.submitBatchOnce({ tasks: tasks(1) }, 'k');

    expect(fixed.created).toBe(true);
    expect(w.counts.claims).toBe(1);
  });

  it('gives different keys different batches', async () => {
    const w = world();
    const body = { tasks: tasks(1) };

    const a = await w.service.submitBatchOnce(body, 'a');
    const b = await w.service.submitBatchOnce(body, 'b');

    expect(a.status.batchId).not.toBe(b.status.batchId);
    expect(w.counts.creates).toBe(2);
  });

  it('stores hashes only: neither the key nor the body is kept in the claim', async () => {
    const w = world();
    await w.service.submitBatchOnce({ tasks: tasks(1, { secret: 'hunter2' }) }, 'my-secret-key');

    const stored = JSON.stringify([...w.claims.entries()]);
    expect(stored).not.toContain('my-secret-key');
    expect(stored).not.toContain('hunter2');
    expect(w.claims.get(hashIdempotencyKey('my-secret-key'))?.bodyHash).toBe(
      fingerprintSubmitRequest(parseSubmitRequest({ tasks: tasks(1, { secret: 'hunter2' }) })),
    );
  });
});

describe('submitBatchOnce: a send that crashed midway', () => {
  const steps: Step[] = ['putTasks', 'createBatch', 'markCreated', 'addSubmittedBatch', 'startBatch'];

  it.each(steps)('is completed by the next send with the same key after a crash at %s: one batch, started once, counted at most once', async (crashAt) => {
    // Arrange: the first send claims the key, then stops at `crashAt`.
    const w = world();
    const body = { tasks: tasks(4) };
    w.crashOnce(crashAt);
    await expect(w.service.submitBatchOnce(body, 'k')).rejects.toBeInstanceOf(Crash);

    // Act
    const retry = await w.service.submitBatchOnce(body, 'k');
    const again = await w.service.submitBatchOnce(body, 'k');

    // Assert
    expect(retry.status.batchId).toBe('batch-1');
    expect(again.status.batchId).toBe('batch-1');
    expect(w.records.size).toBe(1);
    expect(w.executions.has('batch-1')).toBe(true);
    expect(w.counts.starts).toBe(1);
    // A crash between the create and the ADD leaves the batch out of the
    // stats (README: they undercount, never overcount).
    expect(w.counts.submittedBatches).toBe(crashAt === 'addSubmittedBatch' ? 0 : 1);
    expect(w.files.get('batches/batch-1/tasks.jsonl')?.split('\n')).toHaveLength(4);
    expect(w.claims.get(hashIdempotencyKey('k'))?.state).toBe('created');
  });

  it('is a ConflictError naming the batch once its batch was deleted: a key never brings a batch back', async () => {
    const w = world();
    const body = { tasks: tasks(1) };
    const { status } = await w.service.submitBatchOnce(body, 'k');
    w.records.delete(status.batchId);

    const attempt = w.service.submitBatchOnce(body, 'k');

    await expect(attempt).rejects.toBeInstanceOf(ConflictError);
    await expect(attempt).rejects.toThrow(`batch ${status.batchId} was submitted with this key and no longer exists`);
    expect(w.records.size).toBe(0);
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every level and keeps array order', () => {
    expect(canonicalJson({ b: [2, { d: 1, c: null }], a: 'x' })).toBe('{"a":"x","b":[2,{"c":null,"d":1}]}');
  });

  it('keeps an own __proto__ key as data, as JSON.parse made it', () => {
    const parsed = JSON.parse('{"__proto__":{"polluted":true},"a":1}') as unknown;

    expect(canonicalJson(parsed)).toBe('{"__proto__":{"polluted":true},"a":1}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
