/**
 * `npm run bench`: how far the local fleet is from a perfect scheduler.
 *
 * For each scenario it runs N `sleep` tasks of d ms at concurrency C twice:
 *
 * - through the local fleet, in this process, over its real HTTP API
 *   (PATCH /config, POST /batches, poll GET /batches/{id}, page through
 *   GET /batches/{id}/results), so every layer a user pays for is counted;
 * - through the IDEAL: a plain in-process pool of C async workers with no
 *   persistence, which is the floor any scheduler can reach.
 *
 * The gap between the two, per task, is the fleet's overhead.
 *
 *   npm run bench                          scenario a
 *   npm run bench -- --scenario all        a, b, c and d (d takes long)
 *   npm run bench -- --tasks 500 --ms 5 --concurrency 20
 *   npm run bench -- --scenario q          1,000 batches waiting for capacity at once
 *   npm run bench -- --scenario f          a million ~200-byte tasks as a file, through `fleet submit` (~10 min)
 *   npm run bench -- --scenario r          100,000 tasks on the fleet as `npm start` runs it, in its own
 *                                          process: the peak RSS of the fleet's processes alone
 *   npm run bench -- --scenario a,b,c --peer bullmq --poll 10 --runs 3
 *                                          the same scenarios on BullMQ + Redis in the same run, medians of 3
 *
 * Timing never fails the run; a batch that does not finish correctly does.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startLocalFleet } from '../infra/local/local-fleet';
import { runOnBullmq, startRedis, type RedisServer } from './peer-bullmq';
import { nearestRank } from '../lambdas/domain/summary';
import { FINISHED_STATES, type BatchStatus, type TaskResult } from '../lambdas/domain/types';

// ---------------------------------------------------------------- scenarios

interface Scenario {
  name: string;
  tasks: number;
  /** Each task's sleep, in ms. */
  ms: number;
  concurrency: number;
  /** Every failEvery-th task fails its first attempt (retryable). 0: none. */
  failEvery: number;
}

const SCENARIOS: Record<string, Scenario> = {
  a: { name: 'a', tasks: 10_000, ms: 10, concurrency: 100, failEvery: 0 },
  b: { name: 'b', tasks: 10_000, ms: 0, concurrency: 50, failEvery: 0 },
  c: { name: 'c', tasks: 2_000, ms: 20, concurrency: 200, failEvery: 10 },
  d: { name: 'd', tasks: 100_000, ms: 0, concurrency: 100, failEvery: 0 },
  // Only when asked for by name (not in `all`): a million tasks take ~10 minutes here.
  e: { name: 'e', tasks: 1_000_000, ms: 0, concurrency: 100, failEvery: 0 },
};
/** What `--scenario all` runs. */
const ALL = ['a', 'b', 'c', 'd'];

/** How often a batch's status is polled (`--poll`). */
let POLL_MS = 50;
const RSS_SAMPLE_MS = 100;
const RESULTS_PAGE = 1000;

function positiveInt(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${flag} must be a non-negative integer, got "${raw}"`);
  return value;
}

/** The scenarios to run: the named ones, with any --tasks/--ms/--concurrency applied to each. */
function scenariosFromArgs(argv: string[]): Scenario[] {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string' },
      tasks: { type: 'string' },
      ms: { type: 'string' },
      concurrency: { type: 'string' },
      store: { type: 'string' },
      peer: { type: 'string' },
      poll: { type: 'string' },
      runs: { type: 'string' },
    },
    strict: true,
  });
  if (values.peer !== undefined && values.peer !== 'bullmq') throw new Error(`--peer must be bullmq, got "${values.peer}"`);
  POLL_MS = positiveInt('poll', values.poll) ?? POLL_MS;
  if (values.store !== undefined && values.store !== 'memory' && values.store !== 'disk') throw new Error(`--store must be memory or disk, got "${values.store}"`);
  if (values.scenario === 'q' || values.scenario === 'f') return [];
  if (values.scenario === 'r') {
    if (values.ms !== undefined || values.store !== undefined || values.peer !== undefined) throw new Error('scenario r runs 0 ms tasks in memory on the fleet alone: --ms, --store and --peer do not apply');
    FLEET_PROCESS.tasks = positiveInt('tasks', values.tasks) ?? FLEET_PROCESS.tasks;
    FLEET_PROCESS.concurrency = positiveInt('concurrency', values.concurrency) ?? FLEET_PROCESS.concurrency;
    if (FLEET_PROCESS.tasks < 2 || FLEET_PROCESS.concurrency < 1) throw new Error('scenario r needs --tasks of at least 2 and --concurrency of at least 1');
    return [];
  }
  if (values.scenario === 'm') {
    if (values.tasks !== undefined || values.ms !== undefined || values.concurrency !== undefined) throw new Error('scenario m has a fixed shape: --tasks, --ms and --concurrency do not apply');
    return [];
  }
  const names = values.scenario === undefined ? ['a'] : values.scenario === 'all' ? ALL : values.scenario.split(',');
  const overrides = {
    tasks: positiveInt('tasks', values.tasks),
    ms: positiveInt('ms', values.ms),
    concurrency: positiveInt('concurrency', values.concurrency),
  };
  if (overrides.tasks === 0 || overrides.concurrency === 0) throw new Error('--tasks and --concurrency must be at least 1');
  const custom = Object.values(overrides).some((v) => v !== undefined);
  return names.map((name) => {
    const base = SCENARIOS[name];
    if (!base) throw new Error(`unknown scenario "${name}"; use a, b, c, d, e, m or all`);
    return {
      name: custom ? `${name}*` : name,
      tasks: overrides.tasks ?? base.tasks,
      ms: overrides.ms ?? base.ms,
      concurrency: overrides.concurrency ?? base.concurrency,
      failEvery: base.failEvery,
    };
  });
}

interface BenchTask {
  id: string;
  type: 'sleep';
  data: { ms: number; failTimes?: number };
}

function buildTasks(s: Scenario): BenchTask[] {
  return Array.from({ length: s.tasks }, (_, i) => ({
    // Short ids keep 100,000 tasks under the API's 5 MiB body limit.
    id: `t${i}`,
    type: 'sleep' as const,
    data: s.failEvery > 0 && i % s.failEvery === s.failEvery - 1 ? { ms: s.ms, failTimes: 1 } : { ms: s.ms },
  }));
}

/** Attempts the batch needs when every planned failure is retried once. */
const attemptsOf = (tasks: readonly BenchTask[]) => tasks.reduce((sum, t) => sum + 1 + (t.data.failTimes ?? 0), 0);

/**
 * The floor no scheduler beats: C lanes of d ms attempts, and a task whose
 * attempts must run one after another. Retry delays (≤ 1 ms here) are ignored.
 */
function idealFormulaMs(tasks: readonly BenchTask[], s: Scenario): number {
  // A reduce, not Math.max(...spread): a million arguments would overflow the stack.
  const longestChain = tasks.reduce((longest, t) => Math.max(longest, (1 + (t.data.failTimes ?? 0)) * s.ms), 0);
  return Math.max(Math.ceil(attemptsOf(tasks) / s.concurrency) * s.ms, longestChain);
}

// ---------------------------------------------------------------- the ideal

/**
 * C async workers draining one queue of attempts; a failed attempt goes back
 * on the queue, as a retry would. A 0 ms task skips the timer, as the `sleep`
 * handler does (Node turns setTimeout(0) into 1 ms), and only yields.
 */
async function runIdeal(tasks: readonly BenchTask[], concurrency: number): Promise<number> {
  const queue = tasks.map((t) => ({ ms: t.data.ms, failuresLeft: t.data.failTimes ?? 0 }));
  let next = 0;
  const worker = async () => {
    // A worker that requeues a retry is still in this loop, so no attempt is stranded.
    while (next < queue.length) {
      const attempt = queue[next++];
      if (attempt === undefined) break;
      if (attempt.ms > 0) await sleep(attempt.ms);
      else await yieldToLoop();
      if (attempt.failuresLeft > 0) queue.push({ ms: attempt.ms, failuresLeft: attempt.failuresLeft - 1 });
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return performance.now() - started;
}

// ---------------------------------------------------------------- the fleet over HTTP

class ApiError extends Error {}

async function api<T>(base: string, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${base}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw new ApiError(`${method} ${path} → ${response.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text) as T;
}

async function waitUntilFinished(base: string, batchId: string, deadline: number): Promise<BatchStatus> {
  for (;;) {
    const status = await api<BatchStatus>(base, 'GET', `/batches/${batchId}`);
    if (FINISHED_STATES.has(status.status)) return status;
    if (performance.now() > deadline) throw new ApiError(`batch ${batchId} still ${status.status} at the deadline (${status.completedTasks + status.failedTasks}/${status.totalTasks} done)`);
    await sleep(POLL_MS);
  }
}

type ResultSummary = Pick<TaskResult, 'taskId' | 'attempts' | 'duration'>;

async function readAllResults(base: string, batchId: string): Promise<ResultSummary[]> {
  const results: ResultSummary[] = [];
  let cursor: string | null = null;
  do {
    const query: string = `limit=${RESULTS_PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const page: { results: TaskResult[]; nextCursor: string | null } = await api(base, 'GET', `/batches/${batchId}/results?${query}`);
    // Only what verify() reads: a million full results would dwarf the fleet's own memory.
    for (const r of page.results) results.push({ taskId: r.taskId, attempts: r.attempts, duration: r.duration });
    cursor = page.nextCursor;
  } while (cursor);
  return results;
}

interface FleetRun {
  makespanMs: number;
  submitMs: number;
  /** From the submit to the first poll that sees the batch finished. */
  finishedMs: number;
  /** Paging through every result. */
  readMs: number;
  status: BatchStatus;
  results: ResultSummary[];
}

/** Makespan runs from the moment the submit is sent to the moment the last result is read. */
async function runOnFleet(base: string, tasks: readonly BenchTask[], s: Scenario): Promise<FleetRun> {
  await api(base, 'PATCH', '/config', { maxConcurrentWorkers: s.concurrency });
  const started = performance.now();
  const accepted = await api<BatchStatus>(base, 'POST', '/batches', { tasks });
  const submitMs = performance.now() - started;
  // Generous: a slow fleet is a figure to report, not a failure; only a stuck one is.
  const deadline = started + 120_000 + 50 * idealFormulaMs(tasks, s) + 20 * s.tasks;
  const status = await waitUntilFinished(base, accepted.batchId, deadline);
  const finishedMs = performance.now() - started;
  const results = await readAllResults(base, accepted.batchId);
  const makespanMs = performance.now() - started;
  return { makespanMs, submitMs, finishedMs, readMs: makespanMs - finishedMs, status, results };
}

// ---------------------------------------------------------------- measuring and reporting

/** Resident memory of another process, in bytes (Linux; 0 where /proc is missing). */
function rssOf(pid: number): number {
  try {
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Peak resident memory while a scenario runs: of this process (the fleet,
 * its S3 and SQS, and the bench) and of the local DynamoDB's process.
 */
class RssSampler {
  private peak = 0;
  private peakDynamoDb = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly dynamoDbPid: number) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => { this.sample(); }, RSS_SAMPLE_MS);
    this.timer.unref();
  }

  stop(): { fleet: number; dynamoDb: number } {
    this.sample();
    clearInterval(this.timer);
    return { fleet: this.peak, dynamoDb: this.peakDynamoDb };
  }

  private sample(): void {
    this.peak = Math.max(this.peak, process.memoryUsage.rss());
    this.peakDynamoDb = Math.max(this.peakDynamoDb, rssOf(this.dynamoDbPid));
  }
}

/** What went wrong with a batch, or nothing if it finished correctly. */
function verify(run: FleetRun, tasks: readonly BenchTask[]): string[] {
  const n = tasks.length;
  const { status, results } = run;
  const problems: string[] = [];
  if (status.status !== 'completed') problems.push(`status is "${status.status}", expected "completed"${status.error ? ` (${status.error})` : ''}`);
  if (status.completedTasks + status.failedTasks !== n) problems.push(`completedTasks + failedTasks = ${status.completedTasks} + ${status.failedTasks}, expected ${n}`);
  if (status.failedTasks !== 0) problems.push(`${status.failedTasks} task(s) failed; every sleep task should succeed`);
  if (results.length !== n) problems.push(`read ${results.length} results, expected ${n}`);
  const distinct = new Set(results.map((r) => r.taskId)).size;
  if (distinct !== results.length) problems.push(`${results.length - distinct} duplicate result(s)`);
  const attempts = results.reduce((sum, r) => sum + r.attempts, 0);
  if (results.length === n && attempts !== attemptsOf(tasks)) problems.push(`results report ${attempts} attempts, expected ${attemptsOf(tasks)}`);
  return problems;
}

interface Row {
  scenario: string;
  tasks: number;
  ms: number;
  concurrency: number;
  makespanS: number;
  idealS: number;
  ratio: number;
  overheadUsPerTask: number;
  tasksPerS: number;
  submitMs: number;
  peakRssMb: number;
  peakDynamoDbRssMb: number;
}

const COLUMNS: [header: string, cell: (r: Row) => string][] = [
  ['scenario', (r) => r.scenario],
  ['tasks', (r) => r.tasks.toLocaleString('en-US')],
  ['d ms', (r) => String(r.ms)],
  ['C', (r) => String(r.concurrency)],
  ['makespan s', (r) => r.makespanS.toFixed(2)],
  ['ideal s', (r) => r.idealS.toFixed(2)],
  ['ratio', (r) => `${r.ratio.toFixed(1)}×`],
  ['overhead µs/task', (r) => Math.round(r.overheadUsPerTask).toLocaleString('en-US')],
  ['tasks/s', (r) => Math.round(r.tasksPerS).toLocaleString('en-US')],
  ['submit accept ms', (r) => Math.round(r.submitMs).toLocaleString('en-US')],
  ['peak RSS MB', (r) => Math.round(r.peakRssMb).toLocaleString('en-US')],
  ['DynamoDB RSS MB', (r) => Math.round(r.peakDynamoDbRssMb).toLocaleString('en-US')],
];

/** A Markdown table, so a run can be pasted into bench/README.md as it is. */
function table(rows: readonly Row[]): string {
  const header = COLUMNS.map(([h]) => h);
  const body = rows.map((r) => COLUMNS.map(([, cell]) => cell(r)));
  const cells = [header, ...body];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((line) => line[i]?.length ?? 0)));
  const line = (values: string[]) => `| ${values.map((v, i) => v.padStart(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => `${'-'.repeat(w + 1)}:`).join('|')}|`, ...body.map(line)].join('\n');
}

async function runScenario(base: string, dynamoDbPid: number, s: Scenario, redis?: RedisServer): Promise<{ row: Row; problems: string[]; bullmqMs?: number }> {
  const tasks = buildTasks(s);
  const failing = tasks.filter((t) => t.data.failTimes).length;
  console.log(
    `\n== scenario ${s.name}: ${s.tasks.toLocaleString('en-US')} × ${s.ms} ms at C = ${s.concurrency}` +
      `${failing ? `, ${failing} task(s) fail once` : ''} (formula floor ${(idealFormulaMs(tasks, s) / 1000).toFixed(2)} s)`,
  );
  // The ideal runs first, alone, so neither run slows the other.
  const idealMs = await runIdeal(tasks, s.concurrency);
  const rss = new RssSampler(dynamoDbPid);
  rss.start();
  let run: FleetRun;
  let peakRss: { fleet: number; dynamoDb: number };
  try {
    run = await runOnFleet(base, tasks, s);
  } finally {
    peakRss = rss.stop();
  }
  const row: Row = {
    scenario: s.name,
    tasks: s.tasks,
    ms: s.ms,
    concurrency: s.concurrency,
    makespanS: run.makespanMs / 1000,
    idealS: idealMs / 1000,
    ratio: run.makespanMs / idealMs,
    overheadUsPerTask: ((run.makespanMs - idealMs) * 1000) / s.tasks,
    tasksPerS: s.tasks / (run.makespanMs / 1000),
    submitMs: run.submitMs,
    peakRssMb: peakRss.fleet / (1024 * 1024),
    peakDynamoDbRssMb: peakRss.dynamoDb / (1024 * 1024),
  };
  console.log(table([row]));
  // Where the makespan went, to tell a slow API from a slow run.
  console.log(
    `phases: submit ${Math.round(run.submitMs)} ms, running until finished ${((run.finishedMs - run.submitMs) / 1000).toFixed(2)} s ` +
      `(polled every ${POLL_MS} ms), reading ${run.results.length.toLocaleString('en-US')} results ${Math.round(run.readMs)} ms`,
  );
  // What a task's recorded duration adds to its own sleep (a figure, not a check: tests
  // only require it to cover the sleep; GET /batches/{id}/summary reports these percentiles).
  const durations = Float64Array.from(run.results, (r) => r.duration).sort();
  const [p50, p95] = [nearestRank(durations, 50), nearestRank(durations, 95)];
  if (p50 !== undefined && p95 !== undefined) console.log(`recorded task durations: p50 ${p50} ms, p95 ${p95} ms (each task sleeps ${s.ms} ms)`);
  const problems = verify(run, tasks);
  for (const problem of problems) console.log(`!!!!! WARNING: scenario ${s.name}: ${problem}`);
  if (problems.length === 0) console.log(`ok: ${run.status.completedTasks} completed, ${run.results.length} results, status ${run.status.status}`);
  if (!redis) return { row, problems };
  // The peer runs after the fleet, alone, on the same tasks.
  const peer = await runOnBullmq(redis.port, tasks, s.concurrency, POLL_MS);
  const peerAttempts = peer.results.reduce((sum, r) => sum + r.attempts, 0);
  if (peer.results.length !== s.tasks || new Set(peer.results.map((r) => r.taskId)).size !== s.tasks || peerAttempts !== attemptsOf(tasks)) {
    problems.push(`BullMQ: ${peer.results.length} results, ${peerAttempts} attempts; expected ${s.tasks} and ${attemptsOf(tasks)}`);
  }
  console.log(`BullMQ + Redis: ${(peer.makespanMs / 1000).toFixed(2)} s (Fleet ${(run.makespanMs / 1000).toFixed(2)} s, ${(run.makespanMs / peer.makespanMs).toFixed(2)}× BullMQ)`);
  return { row, problems, bullmqMs: peer.makespanMs };
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN;
};

// ---------------------------------------------------------------- scenario q: many batches waiting

const QUEUE_BATCHES = 1_000;
const QUEUE_TASKS = 100;
const QUEUE_CAP = 10;

const percentile = (sorted: readonly number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
const latencyLine = (label: string, ms: number[]) => {
  const sorted = [...ms].sort((a, b) => a - b);
  return `| ${label} | ${ms.length} | ${percentile(sorted, 50).toFixed(0)} | ${percentile(sorted, 99).toFixed(0)} | ${sorted.at(-1)?.toFixed(0)} |`;
};

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const value = await fn();
  return [value, performance.now() - start];
}

/**
 * 1,000 batches of 100 echo tasks submitted at once at a cap of 10: every
 * batch must reach a final status, in queue order (priority, then FIFO), and
 * the control plane must answer while ~1,000 batches are unfinished.
 */
async function manyWaitingBatches(base: string): Promise<boolean> {
  console.log(`\n== scenario q: ${QUEUE_BATCHES.toLocaleString('en-US')} batches × ${QUEUE_TASKS} echo tasks, submitted at once, cap ${QUEUE_CAP}`);
  await api(base, 'PATCH', '/config', { maxConcurrentWorkers: QUEUE_CAP });
  const started = performance.now();
  // A submit that fails (a 5xx, a reset connection) is counted and reported, not fatal to the run.
  const submits = await Promise.all(
    Array.from({ length: QUEUE_BATCHES }, async (_, i) => {
      const begin = performance.now();
      try {
        const status = await api<BatchStatus>(base, 'POST', '/batches', {
          priority: i % 3,
          tasks: Array.from({ length: QUEUE_TASKS }, (_, t) => ({ id: `t${t}`, type: 'echo', data: t })),
        });
        return { priority: i % 3, batchId: status.batchId, ms: performance.now() - begin };
      } catch (error) {
        // fetch's own message is only "fetch failed": the cause says which (a reset, a connect timeout).
        const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
        const why = cause ? ` (${cause.code ?? cause.message ?? 'no code'})` : '';
        return { priority: i % 3, error: `${(error as Error).message}${why}`, ms: performance.now() - begin };
      }
    }),
  );
  const refused = submits.filter((submit) => submit.batchId === undefined);
  const accepted = submits.flatMap((submit) => (submit.batchId === undefined ? [] : [{ id: submit.batchId, priority: submit.priority }]));
  const ids = accepted.map((submit) => submit.id);
  if (refused.length > 0) console.log(`!!!!! WARNING: scenario q: ${refused.length} of ${QUEUE_BATCHES} submits failed, e.g. ${refused[0]?.error}`);
  const probes: Record<'GET /stats' | 'GET /config' | 'POST /workers/scale' | 'POST /batches (one at a time)', number[]> = { 'GET /stats': [], 'GET /config': [], 'POST /workers/scale': [], 'POST /batches (one at a time)': [] };
  const probeBatches: string[] = [];
  // The control plane, and a lone submit, while nearly every batch is unfinished.
  for (let round = 0; round < 20; round++) {
    const [probe, ms] = await timed(() => api<BatchStatus>(base, 'POST', '/batches', { tasks: [{ id: 'probe', type: 'echo', data: round }] }));
    probes['POST /batches (one at a time)'].push(ms);
    probeBatches.push(probe.batchId);
    probes['GET /stats'].push((await timed(() => api(base, 'GET', '/stats')))[1]);
    probes['GET /config'].push((await timed(() => api(base, 'GET', '/config')))[1]);
    probes['POST /workers/scale'].push((await timed(() => api(base, 'POST', '/workers/scale', { count: QUEUE_CAP })))[1]);
  }
  const finals = new Map<string, BatchStatus>();
  // A fleet that stops making progress fails the run, loudly, instead of hanging it.
  const giveUpAfterMs = 20 * 60_000;
  let lastReport = performance.now();
  const everyBatch = [...ids, ...probeBatches];
  while (finals.size < everyBatch.length && performance.now() - started < giveUpAfterMs) {
    for (const id of everyBatch) {
      if (finals.has(id)) continue;
      const status = await api<BatchStatus>(base, 'GET', `/batches/${id}`);
      if (FINISHED_STATES.has(status.status)) finals.set(id, status);
    }
    if (performance.now() - lastReport > 30_000) {
      console.log(`  ${((performance.now() - started) / 1000).toFixed(0)} s: ${finals.size} of ${everyBatch.length} batches final`);
      lastReport = performance.now();
    }
    if (finals.size < everyBatch.length) await sleep(500);
  }
  if (finals.size < everyBatch.length) {
    console.log(`!!!!! WARNING: scenario q: only ${finals.size} of ${everyBatch.length} batches reached a final status in ${giveUpAfterMs / 60_000} minutes`);
    return false;
  }
  const seconds = (performance.now() - started) / 1000;
  const problems: string[] = [];
  for (const [id, status] of finals) {
    if (status.status !== 'completed' || status.completedTasks !== status.totalTasks) problems.push(`batch ${id} ended ${status.status} ${status.completedTasks}/${status.totalTasks}`);
  }
  // Queue order: by startedAt, no batch starts before one that ranks ahead of it (capacity.ts queueRankOf).
  const entries = accepted.map(({ id, priority }) => {
    const status = finals.get(id);
    if (!status) throw new Error(`batch ${id} has no final status`);
    return { id, status, priority };
  });
  const byRank = [...entries].sort((a, b) => a.status.createdAt - a.priority * 60_000 - (b.status.createdAt - b.priority * 60_000) || (a.id < b.id ? -1 : 1));
  let inversions = 0;
  byRank.forEach((entry, i) => {
    const ahead = byRank[i - 1];
    if (ahead && (entry.status.startedAt ?? 0) < (ahead.status.startedAt ?? 0)) inversions++;
  });
  console.log(
    [
      `all ${everyBatch.length} batches final in ${seconds.toFixed(1)} s (${((QUEUE_BATCHES * QUEUE_TASKS) / seconds).toFixed(0)} tasks/s); ` +
        `${problems.length} not completed exactly; ${inversions} started out of queue order (by startedAt, which Start batch stamps)`,
      '| request | n | p50 ms | p99 ms | max ms |',
      '|---|---:|---:|---:|---:|',
      latencyLine(`POST /batches (all at once; ${refused.length} failed)`, submits.map((submit) => submit.ms)),
      ...Object.entries(probes).map(([label, ms]) => latencyLine(`${label} (~${QUEUE_BATCHES} unfinished)`, ms)),
    ].join('\n'),
  );
  for (const problem of problems.slice(0, 10)) console.log(`!!!!! WARNING: scenario q: ${problem}`);
  return problems.length === 0 && refused.length === 0;
}

// ---------------------------------------------------------------- scenario m: memory across batches

const MEMORY_BATCHES = 40;
const MEMORY_TASKS = 2_000;

/** The V8 collector, on demand (the bench runs without --expose-gc). */
function forceGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/**
 * Does the fleet's memory follow its finished batches? Runs 40 batches of
 * 2,000 tasks one after another and prints the live heap after a forced GC:
 * a fleet that forgets finished batches stays flat.
 */
async function memoryAcrossBatches(base: string): Promise<boolean> {
  const s: Scenario = { name: 'm', tasks: MEMORY_TASKS, ms: 0, concurrency: 100, failEvery: 0 };
  console.log(`\n== scenario m: ${MEMORY_BATCHES} batches × ${MEMORY_TASKS.toLocaleString('en-US')} × 0 ms at C = 100, live heap after each`);
  const gc = forceGc();
  const heapMb = () => {
    gc();
    return process.memoryUsage().heapUsed / (1024 * 1024);
  };
  const lines: string[] = ['| batches finished | live heap MB |', '|---:|---:|', `| 0 | ${heapMb().toFixed(1)} |`];
  const samples: number[] = [];
  let ok = true;
  for (let i = 1; i <= MEMORY_BATCHES; i++) {
    const tasks = buildTasks(s);
    const problems = verify(await runOnFleet(base, tasks, s), tasks);
    for (const problem of problems) console.log(`!!!!! WARNING: scenario m, batch ${i}: ${problem}`);
    ok &&= problems.length === 0;
    if (i === 1 || i % 10 === 0) {
      const heap = heapMb();
      samples.push(heap);
      lines.push(`| ${i} | ${heap.toFixed(1)} |`);
    }
  }
  console.log(lines.join('\n'));
  const growth = (((samples.at(-1) ?? NaN) - (samples[1] ?? NaN)) * 1024) / (MEMORY_BATCHES - 10);
  console.log(`growth from batch 10 to ${MEMORY_BATCHES}: ${growth.toFixed(1)} KB per finished batch`);
  return ok;
}

// ---------------------------------------------------------------- scenario f: a million-task file

const FILE_TASKS = 1_000_000;
const FILE_CONCURRENCY = 100;

/** A task of about 200 bytes, as real ones are: an image to resize, with its options. */
const fileTask = (i: number) => {
  const n = String(i).padStart(7, '0');
  return JSON.stringify({
    id: `img-${n}`,
    type: 'echo',
    data: { url: `https://images.example.com/catalog/2026/12/${n}.jpg`, resize: { width: 1024, height: 768 }, format: 'webp', quality: 82, tags: ['catalog', 'winter'] },
  });
};

/** Runs the `fleet` command as a user would, sampling its resident memory; resolves with its exit code, stdout and peak RSS. */
function runCli(args: string[], url: string): Promise<{ code: number; stdout: string; stderr: string; peakRss: number; ms: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, ['client/bin/fleet.mjs', ...args], { env: { ...process.env, FLEET_URL: url }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let peakRss = 0;
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  // The CLI runs through tsx: its node process is the child's child; sample the whole tree.
  const sample = () => {
    let total = 0;
    for (const pid of processTree(child.pid ?? 0)) total += rssOf(pid);
    peakRss = Math.max(peakRss, total);
  };
  const timer = setInterval(sample, RSS_SAMPLE_MS);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(timer);
      resolve({ code: code ?? 1, stdout, stderr, peakRss, ms: performance.now() - started });
    });
  });
}

/** A process and its descendants (Linux /proc). */
function processTree(root: number): number[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) {
    try {
      const children = readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, 'utf8').trim();
      if (children) out.push(...children.split(/\s+/).map(Number));
    } catch {
      // gone already
    }
  }
  return out;
}

/**
 * A million tasks of ~200 bytes (a ~200 MB JSON Lines file), submitted with
 * `fleet submit big.jsonl --watch`: uploaded to the presigned URL, validated
 * in one streamed pass, run to completed, then exported and downloaded with
 * `fleet results <id> --out`. Checks exact counts and one result per task.
 */
async function millionTaskFile(url: string, dynamoDbPid: number): Promise<boolean> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleet-bench-file-'));
  try {
    const file = path.join(dir, 'big.jsonl');
    const out = createWriteStream(file);
    for (let i = 0; i < FILE_TASKS; i++) if (!out.write(`${fileTask(i)}\n`)) await once(out, 'drain');
    out.end();
    await once(out, 'finish');
    const bytes = statSync(file).size;
    console.log(`\n== scenario f: ${FILE_TASKS.toLocaleString('en-US')} tasks of ~${Math.round(bytes / FILE_TASKS)} bytes (${(bytes / 1e6).toFixed(0)} MB file), echo, C = ${FILE_CONCURRENCY}, through \`fleet submit --watch\``);
    await fetch(`${url}/config`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ maxConcurrentWorkers: FILE_CONCURRENCY }) });

    const rss = new RssSampler(dynamoDbPid);
    rss.start();
    const submit = await runCli(['submit', file, '--watch', '--interval', '2000', '--json'], url);
    const fleetPeak = rss.stop();
    const batchId = /"batchId"\s*:\s*"([^"]+)"/.exec(submit.stdout)?.[1] ?? /([0-9a-f]{8}-[0-9a-f-]{27})/.exec(submit.stdout)?.[1];
    if (submit.code !== 0 || !batchId) {
      console.log(`!!!!! WARNING: scenario f: fleet submit exited ${submit.code}: ${submit.stderr.slice(-800)}`);
      return false;
    }
    const status = (await (await fetch(`${url}/batches/${batchId}`)).json()) as BatchStatus;

    const exportRss = new RssSampler(dynamoDbPid);
    exportRss.start();
    const download = path.join(dir, 'results.jsonl');
    const results = await runCli(['results', batchId, '--out', download, '--interval', '1000'], url);
    const exportPeak = exportRss.stop();
    if (results.code !== 0) {
      console.log(`!!!!! WARNING: scenario f: fleet results --out exited ${results.code}: ${results.stderr.slice(-800)}`);
      return false;
    }
    const ids = new Set<string>();
    let lines = 0;
    let succeeded = 0;
    for await (const row of createInterface({ input: createReadStream(download), crlfDelay: Infinity })) {
      if (!row) continue;
      lines++;
      const result = JSON.parse(row) as TaskResult;
      ids.add(result.taskId);
      if (result.success) succeeded++;
    }

    const problems: string[] = [];
    if (status.status !== 'completed') problems.push(`status is ${status.status}${status.error ? ` (${status.error})` : ''}`);
    if (status.totalTasks !== FILE_TASKS || status.completedTasks !== FILE_TASKS || status.failedTasks !== 0) {
      problems.push(`counts ${status.totalTasks}/${status.completedTasks}/${status.failedTasks}, expected ${FILE_TASKS}/${FILE_TASKS}/0`);
    }
    if (lines !== FILE_TASKS || ids.size !== FILE_TASKS || succeeded !== FILE_TASKS) problems.push(`export: ${lines} lines, ${ids.size} distinct tasks, ${succeeded} succeeded`);

    const runS = status.startedAt && status.completedAt ? (status.completedAt - status.startedAt) / 1000 : Number.NaN;
    const acceptedToStart = status.startedAt ? (status.startedAt - status.createdAt) / 1000 : Number.NaN;
    const mb = (n: number) => Math.round(n / 1024 / 1024).toLocaleString('en-US');
    console.log(
      [
        `file                          ${(bytes / 1e6).toFixed(1)} MB, ${FILE_TASKS.toLocaleString('en-US')} lines`,
        `fleet submit --watch, wall    ${(submit.ms / 1000).toFixed(1)} s (upload, validation, queue, run)`,
        `  submitted → started         ${acceptedToStart.toFixed(1)} s (validation and admission)`,
        `  started → completed         ${runS.toFixed(1)} s = ${Math.round(FILE_TASKS / runS).toLocaleString('en-US')} tasks/s`,
        `  end to end                  ${Math.round(FILE_TASKS / (submit.ms / 1000)).toLocaleString('en-US')} tasks/s`,
        `fleet results --out, wall     ${(results.ms / 1000).toFixed(1)} s (export built, then downloaded: ${(statSync(download).size / 1e6).toFixed(0)} MB)`,
        `peak RSS MB                   fleet ${mb(Math.max(fleetPeak.fleet, exportPeak.fleet))} · DynamoDB ${mb(Math.max(fleetPeak.dynamoDb, exportPeak.dynamoDb))} · fleet submit ${mb(submit.peakRss)} · fleet results ${mb(results.peakRss)}`,
        `verified                      ${problems.length === 0 ? `completed, ${FILE_TASKS.toLocaleString('en-US')} results, one per task` : 'NO'}`,
      ].join('\n'),
    );
    for (const problem of problems) console.log(`!!!!! WARNING: scenario f: ${problem}`);
    return problems.length === 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Scenario r's shape: d's tasks and concurrency, on the fleet `npm start` runs. */
const FLEET_PROCESS = { tasks: 100_000, concurrency: 100, batches: 2 };

/**
 * Scenario r: 100,000 × 0 ms at C = 100 on the fleet as `npm start` runs it
 * (`node --import tsx infra/local/main.ts`, in memory, AWS's API limits on),
 * in a process of its own. The other scenarios run the fleet inside the bench's
 * own process, so their peak RSS also holds the bench's tasks and the results
 * it reads back; here the sampled RSS is the fleet's processes' alone (the
 * API, handlers, interpreter, S3 and SQS in one, the local DynamoDB in its
 * child). One request of 100,000 tasks is over the API's 5 MiB body, so they
 * go as two batches of 50,000, submitted at once, sharing the C slots.
 */
async function fleetInItsOwnProcess(): Promise<boolean> {
  const { tasks: n, concurrency, batches } = FLEET_PROCESS;
  // Not what this shell may have set: it would change what is measured (faults, another store) or refuse the bench (a token).
  const inherited = Object.entries(process.env).filter(([name]) => !name.startsWith('FLEET_') && name !== 'PORT' && name !== 'HOST');
  const env: NodeJS.ProcessEnv = { ...Object.fromEntries(inherited), PORT: '0', HOST: '127.0.0.1', FLEET_IN_MEMORY: '1', FLEET_LOG_LEVEL: 'ERROR' };
  const fleet = spawn(process.execPath, ['--import', 'tsx', 'infra/local/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  fleet.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = once(fleet, 'exit');
  try {
    const base = await new Promise<string>((resolve, reject) => {
      let stdout = '';
      fleet.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        const url = /running locally at (http:\/\/\S+)/.exec(stdout)?.[1];
        if (url) resolve(url);
      });
      void exited.then(([code]) => { reject(new Error(`the fleet exited (${String(code)}) before it was up: ${stderr.slice(-800)}`)); });
    });
    console.log(`\n== scenario r: ${n.toLocaleString('en-US')} × 0 ms at C = ${concurrency}, as ${batches} batches, on \`npm start\`'s fleet (pid ${fleet.pid ?? '?'}, in memory) at ${base}`);
    let peak = { total: 0, main: 0, rest: 0 };
    const sample = () => {
      const [main, ...rest] = processTree(fleet.pid ?? 0).map(rssOf);
      const restTotal = rest.reduce((a, b) => a + b, 0);
      if ((main ?? 0) + restTotal > peak.total) peak = { total: (main ?? 0) + restTotal, main: main ?? 0, rest: restTotal };
    };
    const timer = setInterval(sample, RSS_SAMPLE_MS);
    const started = performance.now();
    await api(base, 'PATCH', '/config', { maxConcurrentWorkers: concurrency, maxRetries: 0 });
    const perBatch = Math.ceil(n / batches);
    const parts = Array.from({ length: batches }, (_, b) => buildTasks({ name: 'r', tasks: Math.min(perBatch, n - b * perBatch), ms: 0, concurrency, failEvery: 0 }));
    const accepted = await Promise.all(parts.map((tasks) => api<BatchStatus>(base, 'POST', '/batches', { tasks })));
    const deadline = started + 120_000 + 20 * n;
    const statuses = await Promise.all(accepted.map((batch) => waitUntilFinished(base, batch.batchId, deadline)));
    const finishedMs = performance.now() - started;
    const results: ResultSummary[][] = [];
    for (const batch of accepted) results.push(await readAllResults(base, batch.batchId));
    const makespanMs = performance.now() - started;
    clearInterval(timer);
    sample();
    const problems = statuses.flatMap((status, b) => verify({ makespanMs, submitMs: 0, finishedMs, readMs: 0, status, results: results[b] ?? [] }, parts[b] ?? []));
    const mb = (bytes: number) => Math.round(bytes / 1048576).toLocaleString('en-US');
    console.log(
      [
        `makespan                      ${(makespanMs / 1000).toFixed(2)} s = ${Math.round(n / (makespanMs / 1000)).toLocaleString('en-US')} tasks/s (running ${(finishedMs / 1000).toFixed(2)} s, reading results ${((makespanMs - finishedMs) / 1000).toFixed(2)} s)`,
        `peak RSS MB                   ${mb(peak.total)} = fleet ${mb(peak.main)} + local DynamoDB ${mb(peak.rest)} (sampled together every ${RSS_SAMPLE_MS} ms)`,
        `verified                      ${problems.length === 0 ? `completed, ${n.toLocaleString('en-US')} results, one per task` : 'NO'}`,
      ].join('\n'),
    );
    for (const problem of problems) console.log(`!!!!! WARNING: scenario r: ${problem}`);
    return problems.length === 0;
  } finally {
    fleet.kill('SIGTERM');
    await exited;
  }
}

async function main(): Promise<number> {
  let scenarios: Scenario[];
  try {
    scenarios = scenariosFromArgs(process.argv.slice(2));
  } catch (error) {
    console.error(
      `${(error as Error).message}\nusage: npm run bench -- [--scenario a|b|c|d|e|f|m|q|r|all|a,b,c] [--tasks N] [--ms D] [--concurrency C] [--store memory|disk] [--peer bullmq] [--poll MS] [--runs N]`,
    );
    return 2;
  }
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { store: { type: 'string' }, scenario: { type: 'string' }, peer: { type: 'string' }, runs: { type: 'string' } },
    strict: false,
  });
  const runs = Math.max(1, Number(values.runs ?? 1) || 1);
  if (values.scenario === 'r') return (await fleetInItsOwnProcess()) ? 0 : 1;
  const onDisk = values.store === 'disk';
  const dataDir = onDisk ? mkdtempSync(path.join(tmpdir(), 'fleet-bench-')) : undefined;
  // One fleet for every scenario: the handler modules (and their SDK clients)
  // load once per process, so a second fleet in this process would not be reached.
  const fleet = await startLocalFleet({
    port: 0,
    inMemory: !onDisk,
    ...(dataDir ? { dataDir } : {}),
    retryUnitMs: 1,
    maxTasksPerBatch: 1_000_000,
    // A million short tasks are a ~47 MB request body; on AWS, API Gateway takes at most 10 MB
    // and Lambda 6 MB, so this one request is possible only with those limits lifted.
    maxBodyBytes: 64 * 1024 * 1024,
    // Scenario f goes by the file path, under AWS's limits.
    liftApiLimits: values.scenario !== 'f',
  });
  console.log(`local fleet at ${fleet.url} (${onDisk ? 'on disk: LevelDB and the execution journal' : 'in memory'}); Node ${process.version}`);
  const rows: Row[] = [];
  let failed = false;
  try {
    if (values.scenario === 'f') failed = !(await millionTaskFile(fleet.url, fleet.dynamoDbPid));
    else if (scenarios.length === 0) failed = !(values.scenario === 'q' ? await manyWaitingBatches(fleet.url) : await memoryAcrossBatches(fleet.url));
    const redis = values.peer === 'bullmq' ? await startRedis() : undefined;
    const comparison = new Map<string, { ideal: number[]; bullmq: number[]; fleet: number[] }>();
    try {
      for (let run = 1; run <= runs; run++) {
        if (runs > 1) console.log(`\n######## run ${run} of ${runs}`);
        for (const s of scenarios) {
          try {
            const { row, problems, bullmqMs } = await runScenario(fleet.url, fleet.dynamoDbPid, s, redis);
            rows.push(row);
            failed ||= problems.length > 0;
            const entry = comparison.get(s.name) ?? { ideal: [], bullmq: [], fleet: [] };
            entry.ideal.push(row.idealS * 1000);
            entry.fleet.push(row.makespanS * 1000);
            if (bullmqMs !== undefined) entry.bullmq.push(bullmqMs);
            comparison.set(s.name, entry);
          } catch (error) {
            // A batch that never finishes (or an API error) is a failed run; the other scenarios still run.
            console.log(`!!!!! WARNING: scenario ${s.name} did not finish: ${(error as Error).message}`);
            failed = true;
          }
        }
      }
    } finally {
      await redis?.stop();
    }
    if (redis) {
      console.log(`\n== Fleet local vs BullMQ + Redis, same run, status polled every ${POLL_MS} ms, medians of ${runs}`);
      console.log('| scenario | ideal pool s | BullMQ + Redis s | Fleet local s | Fleet / BullMQ | Fleet / ideal |');
      console.log('|---|---:|---:|---:|---:|---:|');
      for (const [name, c] of comparison) {
        const [ideal, bullmq, fleetMs] = [median(c.ideal), median(c.bullmq), median(c.fleet)];
        console.log(`| ${name} | ${(ideal / 1000).toFixed(2)} | ${(bullmq / 1000).toFixed(2)} | ${(fleetMs / 1000).toFixed(2)} | ${(fleetMs / bullmq).toFixed(2)}× | ${(fleetMs / ideal).toFixed(2)}× |`);
      }
    }
  } finally {
    await fleet.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
  if (rows.length > 1) console.log(`\n== summary\n${table(rows)}`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
