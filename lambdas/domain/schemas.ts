/**
 * Input validation for everything that crosses the API. Every rejection is a
 * ValidationError naming the offending field, e.g. `tasks[3].timeout`.
 */
import { z } from 'zod';
import { BATCH_ID_PATTERN } from './batch';
import { LIMITS } from './config';
import { WORKER_LISTING_MODES } from './fleet-activity';
import { ValidationError } from './errors';
import type { FleetManagerConfig, Task } from './types';

/** A UTF-16 surrogate that is not half of a pair (`u` mode matches only those). */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * How deep a task's `data` may nest (objects and arrays). A result is stored
 * as one DynamoDB attribute, and DynamoDB takes 32 levels counting the
 * attribute itself, so data this deep still fits when a handler echoes it.
 * The bound also keeps serialising a task far from the stack's limit (a
 * 10,000-level body would overflow JSON.stringify).
 */
export const MAX_DATA_DEPTH = 31;

/** `Idempotency-Key`: printable ASCII (space to ~), as HTTP header values are. */
export const IDEMPOTENCY_KEY_MAX_LENGTH = 128;

const taskIdSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(LIMITS.taskIdLength, `must be at most ${LIMITS.taskIdLength} characters`)
  // Control characters would make ids unreadable in logs, the console and the CLI.
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters')
  // A lone surrogate is not valid UTF-8: DynamoDB would refuse the result's key.
  .refine((id) => !LONE_SURROGATE.test(id), 'must be well-formed Unicode (it holds a lone surrogate)');

/** A task type name: what the API accepts, and what FleetProps.workers may route. */
export const taskTypeSchema = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_.-]*$/, 'must start with a letter and use only letters, digits, _ . -')
  .max(LIMITS.taskTypeLength, `must be at most ${LIMITS.taskTypeLength} characters`);

const taskSchema = z.strictObject({
  id: taskIdSchema,
  type: taskTypeSchema,
  data: z.unknown().optional(),
  priority: z.number().int('must be an integer').min(-1_000_000).max(1_000_000).optional(),
  timeout: z
    .number()
    .int('must be an integer number of ms')
    .min(1, 'must be at least 1 ms')
    .max(LIMITS.workerTimeoutMs, `must be at most ${LIMITS.workerTimeoutMs} ms`)
    .optional(),
});

const submitSchema = z.strictObject({
  tasks: z.array(z.unknown(), 'must be an array of tasks').min(1, 'must contain at least one task'),
  /** Batch-level priority: when batches compete for capacity, higher goes first. */
  priority: z.number().int('must be an integer').min(-1_000_000).max(1_000_000).optional(),
});

export interface SubmitRequest {
  tasks: Task[];
  priority: number;
}

export interface SubmitLimits {
  tasksPerBatch: number;
  taskBytes: number;
}

function fieldOf(path: readonly PropertyKey[], prefix = ''): string {
  let out = prefix;
  for (const part of path) {
    out += typeof part === 'number' ? `[${part}]` : out ? `.${String(part)}` : String(part);
  }
  return out;
}

function firstIssue(error: z.ZodError, prefix = ''): ValidationError {
  const issue = error.issues[0];
  if (!issue) return new ValidationError(prefix, 'is invalid');
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    return new ValidationError(fieldOf([...issue.path, key], prefix), 'is not a known field');
  }
  return new ValidationError(fieldOf(issue.path, prefix), issue.message);
}

/**
 * Walks `data` without recursion (its depth is what is being checked) and
 * returns what is wrong with it, if anything: nesting deeper than
 * MAX_DATA_DEPTH, a string or key that is not well-formed Unicode, or a
 * `__proto__` key.
 */
function checkData(data: unknown): string | undefined {
  const stack: { value: unknown; depth: number }[] = [{ value: data, depth: 0 }];
  while (stack.length > 0) {
    const { value, depth } = stack.pop() as { value: unknown; depth: number };
    if (typeof value === 'string') {
      if (LONE_SURROGATE.test(value)) return 'holds a string that is not well-formed Unicode (a lone surrogate)';
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth + 1 > MAX_DATA_DEPTH) return `nests deeper than ${MAX_DATA_DEPTH} levels of objects and arrays`;
    if (Array.isArray(value)) {
      for (const item of value) stack.push({ value: item, depth: depth + 1 });
      continue;
    }
    for (const [key, item] of Object.entries(value)) {
      if (LONE_SURROGATE.test(key)) return 'holds a key that is not well-formed Unicode (a lone surrogate)';
      // Reading a result back, the DynamoDB SDK assigns keys one by one, and
      // `obj.__proto__ = ...` sets a prototype: the key could never round-trip.
      if (key === '__proto__') return 'holds a "__proto__" key, which cannot be stored and read back as data';
      stack.push({ value: item, depth: depth + 1 });
    }
  }
  return undefined;
}

/** Validates a `POST /batches` body (already JSON-parsed). */
export function parseSubmitRequest(body: unknown, limits: SubmitLimits = LIMITS): SubmitRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ValidationError('body', 'must be a JSON object like {"tasks": [...]}');
  }
  const outer = submitSchema.safeParse(body);
  if (!outer.success) throw firstIssue(outer.error);
  const rawTasks = outer.data.tasks;
  if (rawTasks.length > limits.tasksPerBatch) {
    throw new ValidationError('tasks', `must contain at most ${limits.tasksPerBatch} tasks (got ${rawTasks.length})`);
  }
  const seen = new Set<string>();
  const tasks: Task[] = new Array<Task>(rawTasks.length);
  for (let i = 0; i < rawTasks.length; i++) {
    const { task } = parseTask(rawTasks[i], `tasks[${i}]`, limits);
    if (seen.has(task.id)) throw new ValidationError(`tasks[${i}].id`, `duplicates the id "${task.id}"`);
    seen.add(task.id);
    tasks[i] = task;
  }
  return { tasks, priority: outer.data.priority ?? 0 };
}

/**
 * Validates one task, inline (`field` = `tasks[3]`) or a line of a tasks
 * file (`field` = ''), and returns it with its JSON, whose size is what the
 * task limit measures.
 */
export function parseTask(raw: unknown, field: string, limits: Pick<SubmitLimits, 'taskBytes'> = LIMITS): { task: Task; json: string } {
  const parsed = taskSchema.safeParse(raw);
  if (!parsed.success) throw firstIssue(parsed.error, field);
  const task = parsed.data as Task;
  const dataProblem = checkData(task.data);
  if (dataProblem) throw new ValidationError(fieldOf(['data'], field), dataProblem);
  const json = JSON.stringify(task);
  const bytes = Buffer.byteLength(json);
  if (bytes > limits.taskBytes) throw new ValidationError(field, `is ${bytes} bytes; a task may be at most ${limits.taskBytes} bytes`);
  return { task, json };
}

const fileSubmitSchema = z.strictObject({
  tasksFile: z.string('must be an upload id from POST /batches/uploads, or an s3://bucket/key URI').min(1, 'must not be empty').max(2048, 'must be at most 2048 characters'),
  priority: submitSchema.shape.priority,
});

/** A `POST /batches` body naming a tasks file instead of carrying the tasks. */
export interface FileSubmitRequest {
  tasksFile: string;
  priority: number;
}

/** Whether a (JSON-parsed) `POST /batches` body names a tasks file: then parseFileSubmitRequest reads it. */
export function namesTasksFile(body: unknown): boolean {
  return typeof body === 'object' && body !== null && !Array.isArray(body) && 'tasksFile' in body;
}

/** Validates a `POST /batches` body of the file path: `{"tasksFile": "<upload id>" | "s3://bucket/key", "priority"?}`. */
export function parseFileSubmitRequest(body: unknown): FileSubmitRequest {
  if (typeof body === 'object' && body !== null && 'tasks' in body) {
    throw new ValidationError('tasksFile', 'cannot come with tasks: send the tasks inline, or a tasksFile, not both');
  }
  const parsed = fileSubmitSchema.safeParse(body);
  if (!parsed.success) throw firstIssue(parsed.error);
  return { tasksFile: parsed.data.tasksFile, priority: parsed.data.priority ?? 0 };
}

export const configPatchSchema = z.strictObject({
  maxConcurrentWorkers: z
    .number()
    .int('must be an integer')
    .min(1, 'must be at least 1')
    .max(LIMITS.maxConcurrentWorkers, `must be at most ${LIMITS.maxConcurrentWorkers}`)
    .optional(),
  workerTimeout: z
    .number()
    .int('must be an integer number of ms')
    .min(1, 'must be at least 1 ms')
    .max(LIMITS.workerTimeoutMs, `must be at most ${LIMITS.workerTimeoutMs} ms (Lambda's 15-minute limit less recording time)`)
    .optional(),
  retryFailedTasks: z.boolean('must be true or false').optional(),
  maxRetries: z
    .number()
    .int('must be an integer')
    .min(0, 'must be at least 0')
    .max(LIMITS.maxRetries, `must be at most ${LIMITS.maxRetries}`)
    .optional(),
  workerListing: z.enum(WORKER_LISTING_MODES, `must be one of ${WORKER_LISTING_MODES.map((mode) => `"${mode}"`).join(', ')}`).optional(),
});

/** Validates a partial config update. */
export function parseConfigPatch(body: unknown): Partial<FleetManagerConfig> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ValidationError('body', 'must be a JSON object of config fields');
  }
  const parsed = configPatchSchema.safeParse(body);
  if (!parsed.success) throw firstIssue(parsed.error);
  const patch: Partial<FleetManagerConfig> = {};
  for (const [key, value] of Object.entries<unknown>(parsed.data)) {
    if (value !== undefined) (patch as Record<string, unknown>)[key] = value;
  }
  return patch;
}

/** Validates a `count` for scaleWorkers. */
export function parseWorkerCount(body: unknown): number {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ValidationError('body', 'must be a JSON object like {"count": 20}');
  }
  const parsed = z
    .strictObject({
      count: z
        .number('must be a number')
        .int('must be an integer')
        .min(1, 'must be at least 1')
        .max(LIMITS.maxConcurrentWorkers, `must be at most ${LIMITS.maxConcurrentWorkers}`),
    })
    .safeParse(body);
  if (!parsed.success) throw firstIssue(parsed.error);
  return parsed.data.count;
}

/** Validates `limit` on paginated reads. */
export function parseLimit(raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d{1,7}$/.test(raw)) throw new ValidationError('limit', `must be an integer from 1 to ${LIMITS.pageSize}`);
  const limit = Number(raw);
  if (limit < 1 || limit > LIMITS.pageSize) throw new ValidationError('limit', `must be an integer from 1 to ${LIMITS.pageSize}`);
  return limit;
}

/** Batch ids double as Step Functions execution names: 1-80 of [A-Za-z0-9_-]. */
export function parseBatchId(raw: string | undefined): string {
  if (!raw || !BATCH_ID_PATTERN.test(raw)) throw new ValidationError('batchId', 'is not a valid batch id');
  return raw;
}

/**
 * Validates an `Idempotency-Key` header: absent is fine (no idempotency);
 * present, it is 1 to 128 printable ASCII characters.
 */
export function parseIdempotencyKey(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (raw.length < 1 || raw.length > IDEMPOTENCY_KEY_MAX_LENGTH || !/^[\x20-\x7e]+$/.test(raw) || raw.trim() === '') {
    throw new ValidationError('Idempotency-Key', `must be 1 to ${IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters`);
  }
  return raw;
}

/** `status` of GET /batches/{id}/results: only failures or only successes; absent for all. */
export function parseResultStatus(raw: string | undefined): boolean | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (raw === 'failed') return false;
  if (raw === 'succeeded') return true;
  throw new ValidationError('status', 'must be failed or succeeded (or left out for every result)');
}

/** A task id in a path or query (`field` names it): the ids a batch accepts. */
export function parseTaskIdParam(raw: string | undefined, field: string): string {
  const parsed = taskIdSchema.safeParse(raw ?? '');
  if (!parsed.success) throw new ValidationError(field, parsed.error.issues[0]?.message ?? 'is not a valid task id');
  return parsed.data;
}

/** `taskIdPrefix` of GET /batches/{id}/results: the start of task ids, as they may hold it. */
export function parseTaskIdPrefix(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  return parseTaskIdParam(raw, 'taskIdPrefix');
}
