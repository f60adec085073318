/**
 * Batches of any size (issue 14), the domain: a tasks file is read line by
 * line, validated as inline tasks are, written in run order, and either
 * queues its batch or fails it with errors naming line and field. The
 * storage here is in memory; test/local/tasks-files.test.ts runs the same
 * code against the local S3 and the file-jobs state machine.
 */
import { describe, expect, it } from 'vitest';
import {
  buildResultsExport,
  prepareTasksFile,
  sortIntoRunOrder,
  type FileStorage,
  type ObjectWriter,
  type PrepareDeps,
  type ResultsExport,
  type TasksFileBatches,
} from '../../lambdas/domain/file-jobs';
import type { BatchRecord, QueuedBatch } from '../../lambdas/domain/ports';
import { jsonLines, MAX_KEPT_ERRORS, parseTasksFileRef, TasksFileChangedError, TasksFileValidator, type TasksFileError } from '../../lambdas/domain/tasks-file';
import { ValidationError } from '../../lambdas/domain/errors';
import type { TaskResult } from '../../lambdas/domain/types';

const LIMITS = { tasksPerBatch: 1000, taskBytes: 1024 };

/** Chunks of `size` bytes: lines cross chunk boundaries, as they do over the network. */
async function* chunksOf(text: string | Buffer, size: number): AsyncGenerator<Uint8Array> {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('jsonLines', () => {
  it('splits across chunk boundaries, strips CR, numbers lines from 1 and keeps a last line without a break', async () => {
    for (const size of [1, 3, 7, 1000]) {
      const lines = await collect(jsonLines(chunksOf('{"a":1}\r\n\n{"b":2}\n{"c":3}', size), 100));
      expect(lines.map((l) => [l.number, l.text])).toEqual([
        [1, '{"a":1}'],
        [2, ''],
        [3, '{"b":2}'],
        [4, '{"c":3}'],
      ]);
    }
  });

  it('never keeps a line over the cap: it is reported with its size and no text', async () => {
    const long = 'x'.repeat(5000);
    const lines = await collect(jsonLines(chunksOf(`{"a":1}\n${long}\n{"b":2}\n${long}`, 64), 100));
    expect(lines.map((l) => [l.number, l.text, l.bytes])).toEqual([
      [1, '{"a":1}', 7],
      [2, undefined, 5000],
      [3, '{"b":2}', 7],
      [4, undefined, 5000],
    ]);
  });

  it('reads nothing from an empty file', async () => {
    expect(await collect(jsonLines(chunksOf('', 10), 100))).toEqual([]);
  });
});

describe('parseTasksFileRef', () => {
  it('takes an upload id or an s3:// URI', () => {
    expect(parseTasksFileRef('0b9e7a52-3c1d-4f7e-9a8b-1c2d3e4f5a6b')).toEqual({ kind: 'upload', uploadId: '0b9e7a52-3c1d-4f7e-9a8b-1c2d3e4f5a6b' });
    expect(parseTasksFileRef('s3://my-data/2026/tasks.jsonl')).toEqual({ kind: 's3', bucket: 'my-data', key: '2026/tasks.jsonl' });
  });

  it.each([
    ['not-an-id', 'upload id'],
    ['s3://My_Bucket/key', 'not a valid S3 bucket name'],
    ['s3://bucket', 'must name an object'],
    ['s3://bucket/', 'must name an object'],
  ])('refuses %s, naming tasksFile', (value, message) => {
    let error: unknown;
    try {
      parseTasksFileRef(value);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe('tasksFile');
    expect((error as ValidationError).message).toContain(message);
  });
});

async function validate(text: string, limits = LIMITS) {
  const validator = new TasksFileValidator(limits);
  const accepted: string[] = [];
  for await (const line of jsonLines(chunksOf(text, 13), validator.maxLineBytes)) {
    const task = validator.accept(line);
    if (task) accepted.push(task.json);
    if (validator.full) break;
  }
  if (!validator.full) await validator.findDuplicates(jsonLines(chunksOf(text, 13), validator.maxLineBytes), validator.sharedFingerprints());
  return { validator, accepted };
}

describe('TasksFileValidator', () => {
  it('accepts tasks as inline submits do, normalized, skipping blank lines', async () => {
    const { validator, accepted } = await validate('{ "id": "a", "type": "echo", "data": {"x": 1} }\n\n{"id":"b","type":"sleep","timeout":5000}\n');
    expect(validator.errors).toEqual([]);
    expect(accepted).toEqual(['{"id":"a","type":"echo","data":{"x":1}}', '{"id":"b","type":"sleep","timeout":5000}']);
    expect(validator.tasks).toBe(2);
    expect(validator.longestTaskTimeoutMs).toBe(5000);
    expect(validator.inRunOrder).toBe(true);
  });

  it('names the line and the field of every bad line, in line order, duplicates included', async () => {
    const file = [
      '{"id":"a","type":"echo"}',
      'not json',
      '[1,2]',
      '{"id":"b","type":"echo","timeout":-1}',
      '{"id":"a","type":"echo"}',
      '{"type":"echo"}',
      '{"id":"c","type":"echo","colour":"red"}',
      `{"id":"d","type":"echo","data":"${'y'.repeat(1100)}"}`,
      '"just a string"',
    ].join('\n');
    const { validator } = await validate(file);
    expect(validator.errors).toEqual<TasksFileError[]>([
      { line: 2, message: expect.stringContaining('is not valid JSON') },
      { line: 3, message: expect.stringContaining('is an array, not a task object') },
      { line: 4, field: 'timeout', message: 'must be at least 1 ms' },
      { line: 5, field: 'id', message: 'duplicates the id "a" of line 1' },
      { line: 6, field: 'id', message: expect.any(String) },
      { line: 7, field: 'colour', message: 'is not a known field' },
      { line: 8, message: expect.stringContaining('a task may be at most 1024 bytes') },
      { line: 9, message: expect.stringContaining('is a string, not a task object') },
    ]);
    expect(validator.errorCount).toBe(8);
  });

  it('stops at more tasks than a batch may hold, saying so', async () => {
    const file = Array.from({ length: 12 }, (_, i) => JSON.stringify({ id: `t${i}`, type: 'echo' })).join('\n');
    const { validator } = await validate(file, { ...LIMITS, tasksPerBatch: 10 });
    expect(validator.full).toBe(true);
    expect(validator.errors).toEqual([{ line: 11, message: expect.stringContaining('at most 10 tasks (maxTasksPerBatch)') }]);
  });

  it(`keeps the first ${MAX_KEPT_ERRORS} errors and stops reading there`, async () => {
    const file = Array.from({ length: 500 }, () => 'nope').join('\n');
    const { validator } = await validate(file);
    expect(validator.errors).toHaveLength(MAX_KEPT_ERRORS);
    expect(validator.errors.at(-1)?.line).toBe(MAX_KEPT_ERRORS);
    expect(validator.full).toBe(true);
  });

  it('notices a file out of run order (a priority rising along it)', async () => {
    const { validator } = await validate('{"id":"a","type":"echo","priority":1}\n{"id":"b","type":"echo","priority":5}');
    expect(validator.inRunOrder).toBe(false);
  });
});

/** An in-memory S3: objects by "bucket/key", each write a new ETag. */
class MemoryStorage implements FileStorage {
  readonly bucket = 'fleet-tasks';
  readonly objects = new Map<string, { body: Buffer; etag: string }>();
  private version = 0;
  reads = 0;
  put(bucket: string, key: string, text: string | Buffer): string {
    const etag = `"v${++this.version}"`;
    this.objects.set(`${bucket}/${key}`, { body: Buffer.isBuffer(text) ? text : Buffer.from(text), etag });
    return etag;
  }
  text(key: string): string {
    return this.objects.get(`${this.bucket}/${key}`)?.body.toString('utf8') ?? '';
  }
  async head(bucket: string, key: string) {
    const object = this.objects.get(`${bucket}/${key}`);
    return object && { etag: object.etag, bytes: object.body.length };
  }
  read(bucket: string, key: string, etag?: string): AsyncIterable<Uint8Array> {
    const object = this.objects.get(`${bucket}/${key}`);
    this.reads++;
    if (!object) throw new TasksFileChangedError(`s3://${bucket}/${key} was deleted`);
    if (etag && object.etag !== etag) throw new TasksFileChangedError(`s3://${bucket}/${key} changed`);
    return chunksOf(object.body, 17);
  }
  writer(key: string): ObjectWriter {
    const parts: string[] = [];
    return {
      write: async (text) => void parts.push(text),
      close: async () => void this.put(this.bucket, key, parts.join('')),
      abort: async () => void parts.splice(0),
    };
  }
  async remove(key: string) {
    this.objects.delete(`${this.bucket}/${key}`);
  }
  async uploadUrl(key: string) {
    return `memory://${key}`;
  }
  async downloadUrl(key: string) {
    return `memory://${key}`;
  }
}

function fileBatch(storage: MemoryStorage, text: string, status: BatchRecord['status'] = 'pending'): BatchRecord {
  const etag = storage.put(storage.bucket, 'uploads/u1.jsonl', text);
  return {
    batchId: 'b1',
    status,
    totalTasks: 0,
    createdAt: 1_000,
    startedAt: null,
    completedAt: null,
    completedTasks: 0,
    failedTasks: 0,
    priority: 2,
    longestTaskTimeoutMs: 0,
    tasksKey: 'batches/b1/tasks.jsonl',
    tasksFile: { source: 'upload', bucket: storage.bucket, key: 'uploads/u1.jsonl', etag, bytes: text.length, uploadId: 'u1', state: 'validating', linesRead: 0 },
  };
}

function prepareDeps(storage: MemoryStorage, record: BatchRecord, options: { cancelAfterProgress?: number } = {}) {
  const calls = { progress: [] as number[], ready: [] as unknown[], invalid: [] as unknown[], queued: [] as QueuedBatch[], submitted: [] as number[], finished: [] as string[] };
  const batches: TasksFileBatches = {
    progress: async (_id, lines) => {
      calls.progress.push(lines);
      if (options.cancelAfterProgress !== undefined && calls.progress.length >= options.cancelAfterProgress) record.status = 'cancelled';
      return record.status === 'pending';
    },
    ready: async (_id, fields) => {
      if (record.status !== 'pending' || record.tasksFile?.state !== 'validating') return false;
      calls.ready.push(fields);
      Object.assign(record, { totalTasks: fields.totalTasks, longestTaskTimeoutMs: fields.longestTaskTimeoutMs });
      record.tasksFile.state = 'ready';
      return true;
    },
    invalid: async (_id, fields) => {
      if (record.status !== 'pending' || record.tasksFile?.state !== 'validating') return false;
      calls.invalid.push(fields);
      record.status = 'failed';
      record.tasksFile.state = 'invalid';
      return true;
    },
  };
  const deps: PrepareDeps = {
    storage,
    batches,
    repository: { getBatch: async () => record },
    enqueue: async (entry) => void calls.queued.push(entry),
    activity: {
      addSubmittedBatch: async (n) => void calls.submitted.push(n),
      addFinishedBatch: async (id) => {
        calls.finished.push(id);
        return true;
      },
    },
    limits: LIMITS,
    retentionDays: 7,
    now: () => 5_000,
    progressEveryLines: 10,
    sortRunBytes: 200,
  };
  return { deps, calls };
}

const task = (id: string, priority?: number) => JSON.stringify({ id, type: 'echo', data: { id }, ...(priority !== undefined ? { priority } : {}) });

describe('prepareTasksFile', () => {
  it('writes the valid file as the batch tasks file, counts it once, queues it with its demand and removes the upload', async () => {
    const storage = new MemoryStorage();
    const lines = Array.from({ length: 25 }, (_, i) => task(`t${i}`));
    const record = fileBatch(storage, `${lines.join('\n')}\n`);
    const { deps, calls } = prepareDeps(storage, record);

    expect(await prepareTasksFile(deps, 'b1')).toEqual({ state: 'ready', totalTasks: 25 });
    expect(storage.text('batches/b1/tasks.jsonl')).toBe(`${lines.join('\n')}\n`);
    expect(calls.ready).toEqual([{ totalTasks: 25, longestTaskTimeoutMs: 0, linesRead: 25 }]);
    expect(calls.progress).toEqual([10, 20]);
    expect(calls.submitted).toEqual([25]);
    expect(calls.queued).toEqual([
      expect.objectContaining({ batchId: 'b1', demand: 25, priority: 2, since: 1_000, executionName: 'b1', input: { batchId: 'b1', tasksBucket: 'fleet-tasks', tasksKey: 'batches/b1/tasks.jsonl' } }),
    ]);
    expect(storage.objects.has('fleet-tasks/uploads/u1.jsonl')).toBe(false);

    // Run again (the state machine retried after a crash): nothing is counted again; queueing again is harmless.
    expect(await prepareTasksFile(deps, 'b1')).toEqual({ state: 'ready', totalTasks: 25 });
    expect(calls.submitted).toEqual([25]);
    expect(calls.queued).toHaveLength(2);
  });

  it('puts a file out of priority order in run order (higher first, file order within a priority) through sorted runs', async () => {
    const storage = new MemoryStorage();
    const priorities = [0, 3, 1, 3, 0, 2, 1, 3, 0, 2, 5, 1, 0, 2, 3];
    const record = fileBatch(storage, priorities.map((p, i) => task(`t${i}`, p)).join('\n'));
    const { deps } = prepareDeps(storage, record);

    await prepareTasksFile(deps, 'b1');
    const order = storage
      .text('batches/b1/tasks.jsonl')
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { id: string }).id);
    const expected = priorities
      .map((p, i) => ({ p, i }))
      .sort((a, b) => b.p - a.p || a.i - b.i)
      .map(({ i }) => `t${i}`);
    expect(order).toEqual(expected);
    // The sort's runs are gone.
    expect([...storage.objects.keys()].filter((key) => key.includes('/sort/'))).toEqual([]);
  });

  it('fails the batch with its line errors, writes no tasks file, and counts it as one batch of no task', async () => {
    const storage = new MemoryStorage();
    const record = fileBatch(storage, `${task('a')}\n{"id":"b"}\n${task('a')}\n`);
    const { deps, calls } = prepareDeps(storage, record);

    const outcome = await prepareTasksFile(deps, 'b1');
    expect(outcome).toMatchObject({ state: 'invalid', errors: [{ line: 2, field: 'type' }, { line: 3, field: 'id' }] });
    expect(calls.invalid).toEqual([
      expect.objectContaining({
        error: expect.stringContaining('2 bad line(s) (first: line 2, type:'),
        truncated: false,
        completedAt: 5_000,
        expiresAt: 5 + 7 * 86_400,
      }),
    ]);
    expect(storage.objects.has('fleet-tasks/batches/b1/tasks.jsonl')).toBe(false);
    expect(calls.queued).toEqual([]);
    expect(calls.submitted).toEqual([0]);
    expect(calls.finished).toEqual(['b1']);
  });

  it('fails an empty or blank file', async () => {
    const storage = new MemoryStorage();
    const record = fileBatch(storage, '\n\n  \n');
    const { deps, calls } = prepareDeps(storage, record);
    expect(await prepareTasksFile(deps, 'b1')).toMatchObject({ state: 'invalid', errors: [{ line: 3, message: 'the file holds no task: it is empty or blank' }] });
    expect(calls.queued).toEqual([]);
  });

  it('fails the batch, running nothing, when the file changed after it was submitted (its ETag)', async () => {
    const storage = new MemoryStorage();
    const record = fileBatch(storage, task('a'));
    storage.put(storage.bucket, 'uploads/u1.jsonl', `${task('a')}\n${task('evil')}`);
    const { deps, calls } = prepareDeps(storage, record);

    expect(await prepareTasksFile(deps, 'b1')).toMatchObject({ state: 'invalid', error: expect.stringContaining('changed') });
    expect(calls.invalid).toEqual([expect.objectContaining({ validationErrors: [] })]);
    expect(calls.queued).toEqual([]);
  });

  it('stops at the first progress write after a cancel, queueing nothing', async () => {
    const storage = new MemoryStorage();
    const record = fileBatch(storage, Array.from({ length: 50 }, (_, i) => task(`t${i}`)).join('\n'));
    const { deps, calls } = prepareDeps(storage, record, { cancelAfterProgress: 2 });

    expect(await prepareTasksFile(deps, 'b1')).toMatchObject({ state: 'skipped' });
    expect(calls.progress).toEqual([10, 20]);
    expect(calls.ready).toEqual([]);
    expect(calls.queued).toEqual([]);
    expect(storage.objects.has('fleet-tasks/batches/b1/tasks.jsonl')).toBe(false);
  });

  it('does nothing for a batch no longer pending', async () => {
    const storage = new MemoryStorage();
    const record = fileBatch(storage, task('a'), 'cancelled');
    const { deps, calls } = prepareDeps(storage, record);
    expect(await prepareTasksFile(deps, 'b1')).toEqual({ state: 'skipped', reason: 'the batch is cancelled' });
    expect(storage.reads).toBe(0);
    expect(calls.queued).toEqual([]);
  });
});

describe('sortIntoRunOrder', () => {
  it('keeps every line exactly once whatever the run size', async () => {
    for (const runBytes of [1, 50, 10_000]) {
      const storage = new MemoryStorage();
      const lines = Array.from({ length: 40 }, (_, i) => task(`t${i}`, (i * 7) % 5));
      storage.put(storage.bucket, 'batches/b/tasks.jsonl', lines.join('\n'));
      await sortIntoRunOrder(storage, 'b', 'batches/b/tasks.jsonl', runBytes);
      const sorted = storage.text('batches/b/tasks.jsonl').trim().split('\n');
      expect([...sorted].sort()).toEqual([...lines].sort());
      const priorities = sorted.map((line) => (JSON.parse(line) as { priority: number }).priority);
      expect(priorities).toEqual([...priorities].sort((a, b) => b - a));
    }
  });
});

describe('buildResultsExport', () => {
  const result = (i: number): TaskResult => ({ taskId: `t${i}`, success: i % 3 !== 0, duration: i, timestamp: 1_000 + i, attempts: 1, workerId: `w${i}` });

  function exportDeps(total: number, current: ResultsExport) {
    const storage = new MemoryStorage();
    const stored = { current: { ...current } };
    const results = Array.from({ length: total }, (_, i) => result(i));
    return {
      storage,
      stored,
      results,
      deps: {
        storage,
        repository: {
          // Pages of at most `limit`, as the repository pages.
          listResults: async (_id: string, limit: number, cursor: string | undefined) => {
            const from = Number(cursor ?? 0);
            const items = results.slice(from, from + limit);
            return { items, nextCursor: from + limit < total ? String(from + limit) : null };
          },
        },
        exports: {
          get: async () => ({ ...stored.current }),
          begin: async () => true,
          progress: async (_id: string, attempt: number, fields: { resultsWritten: number }) => {
            if (attempt !== stored.current.attempt) return false;
            stored.current.resultsWritten = fields.resultsWritten;
            return true;
          },
          end: async (_id: string, attempt: number, fields: Partial<ResultsExport>) => {
            if (attempt !== stored.current.attempt) return false;
            Object.assign(stored.current, fields);
            return true;
          },
        },
        now: () => 9_000,
      },
    };
  }
  const building: ResultsExport = { batchId: 'b', builtFor: 7, attempt: 1, state: 'building', key: 'batches/b/results.jsonl', resultsWritten: 0, startedAt: 1, updatedAt: 1 };

  it('writes every result once, as the pages return them, and records the count and size', async () => {
    const { deps, storage, results, stored } = exportDeps(2_345, building);
    const built = await buildResultsExport(deps, 'b', 1);
    const lines = storage.text('batches/b/results.jsonl').trim().split('\n');
    expect(lines.map((line) => JSON.parse(line) as TaskResult)).toEqual(results);
    expect(built).toMatchObject({ state: 'ready', resultsWritten: 2_345, bytes: Buffer.byteLength(storage.text('batches/b/results.jsonl')) });
    expect(stored.current.state).toBe('ready');
  });

  it('leaves a build another attempt took over', async () => {
    const { deps, storage } = exportDeps(10, { ...building, attempt: 2 });
    expect(await buildResultsExport(deps, 'b', 1)).toMatchObject({ attempt: 2, state: 'building' });
    expect(storage.objects.size).toBe(0);
  });
});
