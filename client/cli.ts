/**
 * The `fleet` command: FleetClient in a terminal. `client/bin/fleet.mjs`
 * runs it through tsx, so `npx fleet <command>` works from a checkout.
 *
 * Exit codes: 0 ok; 1 the API or S3 refused (4xx, e.g. an expired upload
 * URL), a cancel that cancelled nothing, or a watched batch that ended
 * failed, partial or cancelled; 2 bad usage or unreadable input; 3 the fleet
 * could not be reached or failed (5xx), or an S3 transfer failed after its
 * retries; 130 interrupted while submitting, watching or downloading.
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { LIMITS } from '../lambdas/domain/config';
import type { FleetAuth } from './auth';
import { FleetApiError, FleetNetworkError, FleetTransferError } from './errors';
import { DEFAULT_FLEET_URL, FleetClient, isFinished, type BatchStatus, type DownloadedResults, type FleetManagerConfig, type SubmitOptions, type Task } from './fleet-client';

export const EXIT = { ok: 0, failed: 1, usage: 2, unavailable: 3, interrupted: 130 } as const;

/** Where the CLI reads and writes; the real process by default, fakes in tests. */
export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  stdin: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
  /** Aborts a `--watch` (Ctrl-C). */
  interrupt?: AbortSignal;
}

/** Bad usage: exit 2 with the message and a pointer to --help. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The tasks input could not be read or parsed: exit 2. */
export class InputError extends Error {
  override readonly name = 'InputError';
}

const USAGE = `Usage: fleet <command> [options]

Commands:
  submit <tasks.json|->       submit a batch; prints its id. Input: a JSON array of tasks,
                              {"tasks": [...], "priority"?}, or JSON Lines (one task a line); - reads stdin.
                              A batch over the API's body limit (5 MiB) is uploaded as a file, with
                              upload progress on stderr; a big JSON Lines file is streamed from disk
  submit s3://bucket/key      submit a JSON Lines file already in S3 (a bucket the deployment allows)
      --watch                 follow the batch with a progress bar until it ends; a file batch that
                              fails validation lists its bad lines (line, field, message)
      --interval <ms>         poll interval while watching (default 1000)
      --priority <n>          batch priority: higher gets capacity first
      --idempotency-key <k>   repeat a submit safely: the same key and tasks name the same batch
  status <batchId>            status, counts and times (and a file batch's bad lines)
  results <batchId>           every result as a table (--json for JSON); --failed or --succeeded keeps
                              only those (filtered by the API)
      --out <file>            download every result of a finished batch as one JSON Lines file
                              (the API's export); --interval <ms> polls while it is built
  task <batchId> <taskId>     one task: its input, its result, and the failures retry-failed cleared
  summary <batchId>           counts and duration statistics
  cancel <batchId>            cancel a pending or processing batch
  retry-failed <batchId>      run a finished batch's failed tasks again (--watch, --interval as for submit)
  delete <batchId>            remove a finished batch now
  list                        recent batches, newest first (--limit <n>, --cursor <c>)
  scale <n>                   set maxConcurrentWorkers (1-10000)
  stats                       fleet-wide totals
  workers                     workers running now, oldest first
  config get                  the fleet's config
  config set key=value ...    change config fields, e.g. maxConcurrentWorkers=20 retryFailedTasks=false
  dashboard                   serve the dashboard for the fleet at --url on 127.0.0.1, its API calls
                              forwarded with your credentials (--sigv4 or --token); prints its address
      --port <n>              the loopback port (default: a free one)

Options for every command:
  --url <url>                 the Fleet API (default $FLEET_URL, else ${DEFAULT_FLEET_URL})
  --token <token>             bearer token for local mode (default $FLEET_TOKEN)
  --sigv4                     sign requests with AWS SigV4 (automatic for *.execute-api.<region>.amazonaws.com)
  --region <region>           region for --sigv4 (default $AWS_REGION, else the URL's)
  --json                      print JSON instead of text
  -h, --help                  this help

Environment: FLEET_URL, FLEET_TOKEN as --url and --token; FLEET_MAX_INLINE_BYTES, the largest
body sent inline (default ${LIMITS.bodyBytes}, the API's limit; 0 uploads every batch as a file).

Exit codes: 0 ok; 1 the API (or S3) refused the request, cancel found nothing to cancel, or a
watched batch ended failed, partial or cancelled; 2 bad usage; 3 the fleet (or S3) is unreachable
or failed; 130 interrupted (Ctrl-C).
`;

const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  sigv4: { type: 'boolean' },
  region: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  watch: { type: 'boolean', short: 'w' },
  interval: { type: 'string' },
  priority: { type: 'string' },
  'idempotency-key': { type: 'string' },
  failed: { type: 'boolean' },
  succeeded: { type: 'boolean' },
  port: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  out: { type: 'string', short: 'o' },
} as const;

type OptionName = keyof typeof OPTIONS;
const GLOBAL_OPTIONS: OptionName[] = ['url', 'token', 'sigv4', 'region', 'json', 'help'];
const COMMAND_OPTIONS: Record<string, OptionName[]> = {
  submit: ['watch', 'interval', 'priority', 'idempotency-key'],
  'retry-failed': ['watch', 'interval'],
  results: ['failed', 'succeeded', 'out', 'interval'],
  dashboard: ['port'],
  list: ['limit', 'cursor'],
};

type Values = { [K in OptionName]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean };

/** Runs one command line (without `node` and the script) and resolves with its exit code. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const out = (line = '') => io.stdout.write(`${line}\n`);
  const err = (line: string) => io.stderr.write(`${line}\n`);
  let hint = '';
  try {
    let parsed: { values: Values; positionals: string[] };
    try {
      parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const { values, positionals } = parsed;
    const [command, ...args] = positionals;
    if (values.help || command === 'help') {
      out(USAGE.trimEnd());
      return EXIT.ok;
    }
    if (!command) throw new UsageError('no command given');
    const handler = COMMANDS[command];
    if (!handler) throw new UsageError(`unknown command "${command}"`);
    const allowed = new Set([...GLOBAL_OPTIONS, ...(COMMAND_OPTIONS[command] ?? [])]);
    for (const name of Object.keys(values) as OptionName[]) {
      if (!allowed.has(name)) throw new UsageError(`--${name} is not an option of "${command}"`);
    }
    let client: FleetClient;
    try {
      client = new FleetClient({
        ...(values.url !== undefined ? { url: values.url } : {}),
        ...authOption(values, io.env),
        env: io.env,
        maxInlineBytes: maxInlineBytes(io.env),
      });
    } catch (error) {
      // A malformed --url or FLEET_URL, or --sigv4 without a region.
      throw error instanceof UsageError ? error : new UsageError((error as Error).message);
    }
    const context: Context = { client, values, args, io, out, err, setHint: (text) => (hint = text) };
    return await handler(context);
  } catch (error) {
    if (error instanceof UsageError) {
      err(`fleet: ${error.message}`);
      err('Run "fleet --help" for usage.');
      return EXIT.usage;
    }
    if (error instanceof InputError) {
      err(`fleet: ${error.message}`);
      return EXIT.usage;
    }
    if (error instanceof FleetApiError) {
      err(`fleet: ${error.code} (HTTP ${error.status}): ${error.message}${hint}`);
      return error.status >= 500 ? EXIT.unavailable : EXIT.failed;
    }
    if (error instanceof FleetNetworkError) {
      err(`fleet: ${error.message}`);
      return EXIT.unavailable;
    }
    if (error instanceof FleetTransferError) {
      err(`fleet: ${error.message}`);
      return error.status !== undefined && error.status < 500 && error.status !== 429 ? EXIT.failed : EXIT.unavailable;
    }
    if (io.interrupt?.aborted) return EXIT.interrupted;
    err(`fleet: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT.failed;
  }
}

/** FLEET_MAX_INLINE_BYTES, else the API's own body limit. */
function maxInlineBytes(env: NodeJS.ProcessEnv): number {
  const raw = env.FLEET_MAX_INLINE_BYTES;
  if (raw === undefined || raw === '') return LIMITS.bodyBytes;
  if (!/^\d+$/.test(raw.trim())) throw new UsageError(`FLEET_MAX_INLINE_BYTES must be a whole number of bytes (got "${raw}")`);
  return Number(raw);
}

function authOption(values: Values, env: NodeJS.ProcessEnv): { auth?: FleetAuth } {
  if (values.token !== undefined) return { auth: { type: 'bearer', token: values.token } };
  if (values.sigv4) {
    const url = new URL(values.url ?? (env.FLEET_URL || DEFAULT_FLEET_URL));
    const region = values.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? /\.execute-api\.([a-z0-9-]+)\./.exec(url.hostname)?.[1];
    if (!region) throw new UsageError('--sigv4 needs a region: --region, or AWS_REGION');
    return { auth: { type: 'sigv4', region } };
  }
  if (values.region !== undefined) throw new UsageError('--region only applies with --sigv4');
  return {};
}

interface Context {
  client: FleetClient;
  values: Values;
  args: string[];
  io: CliIo;
  out: (line?: string) => void;
  err: (line: string) => void;
  /** Extra text for an API error message, e.g. the input line of a rejected task. */
  setHint: (text: string) => void;
}

type Command = (context: Context) => Promise<number>;

function expectArgs(args: string[], names: string[], command: string): string[] {
  if (args.length < names.length) throw new UsageError(`"${command}" needs ${names.map((n) => `<${n}>`).join(' ')}`);
  if (args.length > names.length) throw new UsageError(`"${command}" takes ${names.length} argument(s); unexpected "${args[names.length]}"`);
  return args;
}

function integer(text: string, what: string): number {
  if (!/^-?\d+$/.test(text.trim())) throw new UsageError(`${what} must be an integer (got "${text}")`);
  return Number(text);
}

const json = (value: unknown) => JSON.stringify(value, null, 2);

const COMMANDS: Record<string, Command> = {
  async submit({ client, values, args, io, out, err, setHint }) {
    const [source] = expectArgs(args, ['tasks.json|-'], 'submit') as [string];
    const priority = values.priority !== undefined ? integer(values.priority, '--priority') : undefined;
    const intervalMs = values.interval !== undefined ? integer(values.interval, '--interval') : 1000;
    if (intervalMs < 1) throw new UsageError('--interval must be at least 1 ms');
    if (values.interval !== undefined && !values.watch) throw new UsageError('--interval only applies with --watch');
    const name = source === '-' ? 'stdin' : source;
    const upload = new TransferProgress('upload', name, io, err);
    const options: SubmitOptions = {
      ...(priority !== undefined ? { priority } : {}),
      ...(values['idempotency-key'] ? { idempotencyKey: values['idempotency-key'] } : {}),
      onUploadProgress: (sent, total) => { upload.update(sent, total); },
      // Ctrl-C stops an upload that may take minutes.
      ...(io.interrupt ? { signal: io.interrupt } : {}),
    };
    let batchId: string;
    try {
      if (source.startsWith('s3://')) batchId = await client.submitUploadedTasks(source, options);
      else if (source !== '-' && (await isLargeJsonLines(source, maxInlineBytes(io.env)))) {
        // Streamed from disk as it is: memory stays flat however big the file.
        batchId = await client.submitTasksFile(source, options);
      } else {
        const input = await readTasks(source, io.stdin);
        const inputPriority = priority ?? input.priority;
        try {
          batchId = await client.submitBatch(input.tasks, { ...options, ...(inputPriority !== undefined ? { priority: inputPriority } : {}) });
        } catch (error) {
          // Point at the input line of a rejected task when the input was JSON Lines.
          const index = error instanceof FleetApiError ? /^tasks\[(\d+)\]/.exec(error.field ?? '')?.[1] : undefined;
          const line = index !== undefined ? input.lines?.[Number(index)] : undefined;
          if (line !== undefined) setHint(` (${name}, line ${line})`);
          throw error;
        }
      }
    } catch (error) {
      upload.stop();
      if (io.interrupt?.aborted) err('\nfleet: interrupted during the submit; run "fleet list" to see whether the batch was created');
      throw error;
    } finally {
      upload.stop();
    }
    if (!values.watch) {
      if (values.json) out(json({ batchId }));
      else out(batchId);
      return EXIT.ok;
    }
    if (!values.json) out(batchId);
    const final = await watch(client, batchId, intervalMs, io, err);
    if (values.json) out(json(final));
    else {
      out(describeFinal(final));
      printValidationErrors(out, final);
    }
    return final.status === 'completed' ? EXIT.ok : EXIT.failed;
  },

  async status({ client, values, args, out }) {
    const [batchId] = expectArgs(args, ['batchId'], 'status') as [string];
    const status = await client.getBatchStatus(batchId);
    if (values.json) {
      out(json(status));
      return EXIT.ok;
    }
    const rows: [string, string][] = [
      ['batch', status.batchId],
      ['status', status.status],
      ['progress', `${percent(status.progress)} (${status.completedTasks + status.failedTasks} of ${status.totalTasks} done: ${status.completedTasks} succeeded, ${status.failedTasks} failed)`],
      ['created', time(status.createdAt)],
      ['started', time(status.startedAt)],
      ['completed', time(status.completedAt)],
    ];
    if (status.tasksFile) rows.push(['tasks file', `${status.tasksFile.state}, ${status.tasksFile.linesRead} lines read`]);
    if (status.error) rows.push(['error', status.error]);
    printPairs(out, rows);
    printValidationErrors(out, status);
    return EXIT.ok;
  },

  async results({ client, values, args, io, out, err }) {
    const [batchId] = expectArgs(args, ['batchId'], 'results') as [string];
    if (values.interval !== undefined && values.out === undefined) throw new UsageError('--interval only applies with --out');
    if (values.out !== undefined) {
      if (values.out === '') throw new UsageError('--out needs a file name');
      if (values.failed || values.succeeded) throw new UsageError(`--${values.failed ? 'failed' : 'succeeded'} does not apply with --out: the export holds every result`);
      const intervalMs = values.interval !== undefined ? integer(values.interval, '--interval') : 1000;
      if (intervalMs < 1) throw new UsageError('--interval must be at least 1 ms');
      const download = new TransferProgress('download', '', io, err);
      let written: DownloadedResults;
      try {
        written = await client.downloadResults(batchId, values.out, {
          intervalMs,
          ...(io.interrupt ? { signal: io.interrupt } : {}),
          onBuilding: (resultsWritten) => { download.building(resultsWritten); },
          onProgress: (received, total) => { download.update(received, total); },
        });
      } finally {
        download.stop();
      }
      if (values.json) out(json({ batchId, ...written }));
      else out(`wrote ${written.results} result${written.results === 1 ? '' : 's'} (${bytes(written.bytes)}) to ${written.path}`);
      return EXIT.ok;
    }
    if (values.failed && values.succeeded) throw new UsageError('--failed and --succeeded exclude each other');
    // The API filters: only the results asked for travel.
    const filter = values.failed ? { status: 'failed' as const } : values.succeeded ? { status: 'succeeded' as const } : {};
    if (values.json) {
      // Streamed page by page: a 100,000-task batch never sits in memory as one string.
      let first = true;
      let opened = false;
      for await (const page of client.resultPages(batchId, { limit: 1000, ...filter })) {
        // Opened after the first page arrives, so an error (an unknown batch) leaves stdout empty.
        if (!opened) io.stdout.write('[');
        opened = true;
        for (const result of page.results) {
          io.stdout.write(`${first ? '\n' : ',\n'}  ${JSON.stringify(result)}`);
          first = false;
        }
      }
      out(first ? ']' : '\n]');
      return EXIT.ok;
    }
    const results = await client.getBatchResults(batchId, filter);
    const succeeded = results.filter((r) => r.success).length;
    if (results.length === 0) {
      out(values.failed ? 'no failed results' : values.succeeded ? 'no succeeded results' : 'no results yet');
      return EXIT.ok;
    }
    printTable(
      out,
      ['TASK', 'OUTCOME', 'ATTEMPTS', 'DURATION', 'WORKER', 'RESULT / ERROR'],
      results.map((r) => [
        r.taskId,
        r.success ? 'ok' : 'failed',
        String(r.attempts),
        `${r.duration} ms`,
        r.workerId,
        truncate(r.success ? (r.result === undefined ? '' : JSON.stringify(r.result)) : (r.error ?? ''), 80),
      ]),
    );
    out();
    out(`${results.length} results: ${succeeded} succeeded, ${results.length - succeeded} failed`);
    return EXIT.ok;
  },

  async task({ client, values, args, out }) {
    const [batchId, taskId] = expectArgs(args, ['batchId', 'taskId'], 'task') as [string, string];
    const detail = await client.getTask(batchId, taskId);
    if (values.json) {
      out(json(detail));
      return EXIT.ok;
    }
    const { task, result } = detail;
    const rows: [string, string][] = [
      ['batch', detail.batchId],
      ['task', detail.taskId],
      ['type', task ? task.type : '- (no longer in the tasks file)'],
      ['data', task ? JSON.stringify(task.data) : '-'],
    ];
    if (task?.priority !== undefined) rows.push(['priority', String(task.priority)]);
    if (task?.timeout !== undefined) rows.push(['timeout', `${task.timeout} ms`]);
    if (result) {
      rows.push(
        ['outcome', result.success ? 'ok' : 'failed'],
        [result.success ? 'result' : 'error', result.success ? JSON.stringify(result.result ?? null) : (result.error ?? '')],
        ['attempts', String(result.attempts)],
        ['duration', `${result.duration} ms`],
        ['worker', result.workerId],
        ['recorded', new Date(result.timestamp).toISOString()],
      );
    } else rows.push(['outcome', 'no result yet']);
    printPairs(out, rows);
    if (detail.failedAttempts.length) {
      out();
      out('earlier failures (cleared by retry-failed):');
      printTable(
        out,
        ['RETRY', 'ATTEMPTS', 'WORKER', 'RECORDED', 'ERROR'],
        detail.failedAttempts.map((a) => [String(a.retry), String(a.attempts), a.workerId, new Date(a.timestamp).toISOString(), truncate(a.error ?? '', 80)]),
      );
    }
    return EXIT.ok;
  },

  async dashboard({ values, args, io, out, err }) {
    expectArgs(args, [], 'dashboard');
    const port = values.port !== undefined ? integer(values.port, '--port') : 0;
    if (port < 0 || port > 65_535) throw new UsageError('--port must be from 0 to 65535');
    // Loaded only here: the other commands never need an HTTP server.
    const { serveDashboard } = await import('./dashboard-server');
    const auth = authOption(values, io.env).auth;
    let server: Awaited<ReturnType<typeof serveDashboard>>;
    try {
      server = await serveDashboard({ url: values.url ?? (io.env.FLEET_URL || DEFAULT_FLEET_URL), ...(auth ? { auth } : {}), port, env: io.env });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE' || code === 'EACCES') throw new UsageError(`cannot listen on 127.0.0.1:${port} (${code})`);
      throw error;
    }
    if (values.json) out(JSON.stringify({ url: server.url, upstream: server.upstream }));
    else {
      out(`dashboard of ${server.upstream}: ${server.url}`);
      err('open it in a browser on this machine (the address holds its session token); Ctrl-C stops it');
    }
    try {
      await new Promise<void>((resolve) => {
        if (!io.interrupt) return;
        if (io.interrupt.aborted) { resolve(); return; }
        io.interrupt.addEventListener('abort', () => { resolve(); }, { once: true });
      });
    } finally {
      await server.close();
    }
    return EXIT.ok;
  },

  async summary({ client, values, args, out }) {
    const [batchId] = expectArgs(args, ['batchId'], 'summary') as [string];
    const summary = await client.getBatchSummary(batchId);
    if (values.json) {
      out(json(summary));
      return EXIT.ok;
    }
    const ms = (value: number | null) => (value === null ? '-' : `${Math.round(value * 10) / 10} ms`);
    printPairs(out, [
      ['batch', summary.batchId],
      ['results', String(summary.totalResults)],
      ['succeeded', String(summary.successCount)],
      ['failed', String(summary.failureCount)],
      ['success rate', summary.totalResults ? percent(summary.successCount / summary.totalResults) : '-'],
      ['average duration', ms(summary.averageDuration)],
      ['p50 duration', ms(summary.p50Duration)],
      ['p95 duration', ms(summary.p95Duration)],
    ]);
    return EXIT.ok;
  },

  async cancel({ client, values, args, out, err }) {
    const [batchId] = expectArgs(args, ['batchId'], 'cancel') as [string];
    const cancelled = await client.cancelBatch(batchId);
    if (values.json) out(json({ batchId, cancelled }));
    else if (cancelled) out(`cancelled ${batchId}`);
    else err(`fleet: batch ${batchId} was not cancelled: it is unknown or already finished`);
    return cancelled ? EXIT.ok : EXIT.failed;
  },

  async 'retry-failed'({ client, values, args, io, out, err }) {
    const [batchId] = expectArgs(args, ['batchId'], 'retry-failed') as [string];
    const intervalMs = values.interval !== undefined ? integer(values.interval, '--interval') : 1000;
    if (intervalMs < 1) throw new UsageError('--interval must be at least 1 ms');
    if (values.interval !== undefined && !values.watch) throw new UsageError('--interval only applies with --watch');
    const retry = await client.retryFailed(batchId);
    if (retry.mode === 'none') {
      out(values.json ? json(retry) : `nothing to retry: every task of ${batchId} succeeded`);
      return EXIT.ok;
    }
    if (!values.watch) {
      out(values.json ? json(retry) : `retrying ${retry.retriedTasks} task(s) of ${batchId} (${retry.mode === 'redrive' ? 'redriven' : `retry ${retry.retry}`})`);
      return EXIT.ok;
    }
    if (!values.json) out(`retrying ${retry.retriedTasks} task(s) of ${batchId}`);
    const final = await watch(client, batchId, intervalMs, io, err);
    if (values.json) out(json(final));
    else out(describeFinal(final));
    return final.status === 'completed' ? EXIT.ok : EXIT.failed;
  },

  async delete({ client, values, args, out }) {
    const [batchId] = expectArgs(args, ['batchId'], 'delete') as [string];
    await client.deleteBatch(batchId);
    out(values.json ? json({ batchId, deleted: true }) : `deleted ${batchId}`);
    return EXIT.ok;
  },

  async list({ client, values, args, out, err }) {
    expectArgs(args, [], 'list');
    const limit = values.limit !== undefined ? integer(values.limit, '--limit') : 20;
    const page = await client.listBatches({ limit, ...(values.cursor ? { cursor: values.cursor } : {}) });
    if (values.json) {
      out(json(page));
      return EXIT.ok;
    }
    if (page.batches.length === 0) out('no batches');
    else {
      printTable(
        out,
        ['BATCH', 'STATUS', 'PROGRESS', 'TASKS', 'SUCCEEDED', 'FAILED', 'CREATED'],
        page.batches.map((b) => [b.batchId, b.status, percent(b.progress), String(b.totalTasks), String(b.completedTasks), String(b.failedTasks), time(b.createdAt)]),
      );
    }
    if (page.nextCursor) err(`more: fleet list --limit ${limit} --cursor ${page.nextCursor}`);
    return EXIT.ok;
  },

  async scale({ client, values, args, out }) {
    const [count] = expectArgs(args, ['n'], 'scale') as [string];
    const result = await client.scaleWorkers(integer(count, 'n'));
    out(
      values.json
        ? json(result)
        : `maxConcurrentWorkers ${result.maxConcurrentWorkers} (${result.runningBatchesUpdated} running batch${result.runningBatchesUpdated === 1 ? '' : 'es'} updated)`,
    );
    return EXIT.ok;
  },

  async stats({ client, values, args, out }) {
    expectArgs(args, [], 'stats');
    const stats = await client.getStats();
    if (values.json) {
      out(json(stats));
      return EXIT.ok;
    }
    const finished = stats.completedTasks + stats.failedTasks;
    printPairs(out, [
      ['batches', String(stats.totalBatches)],
      ['tasks', String(stats.totalTasks)],
      ['succeeded', String(stats.completedTasks)],
      ['failed', String(stats.failedTasks)],
      ['active workers', String(stats.activeWorkers)],
      ['success rate', finished ? `${percent(stats.completedTasks / finished)} of finished tasks` : '-'],
    ]);
    return EXIT.ok;
  },

  async workers({ client, values, args, out }) {
    expectArgs(args, [], 'workers');
    const workers = await client.getActiveWorkers();
    if (values.json) {
      out(json(workers));
      return EXIT.ok;
    }
    if (workers.length === 0) {
      out('no active workers');
      return EXIT.ok;
    }
    const now = Date.now();
    printTable(
      out,
      ['WORKER', 'BATCH', 'TASK', 'STATUS', 'AGE'],
      workers.map((w) => [w.id, w.batchId, w.taskId, w.status, duration(now - w.spawnedAt)]),
    );
    return EXIT.ok;
  },

  async config({ client, values, args, out }) {
    const [sub, ...pairs] = args;
    let config: FleetManagerConfig;
    if (sub === 'get') {
      expectArgs(pairs, [], 'config get');
      config = await client.getConfig();
    } else if (sub === 'set') {
      if (pairs.length === 0) throw new UsageError('"config set" needs key=value pairs, e.g. maxConcurrentWorkers=20');
      config = await client.updateConfig(parseAssignments(pairs));
    } else {
      throw new UsageError(sub ? `unknown config command "${sub}"; use "config get" or "config set key=value ..."` : '"config" needs "get" or "set"');
    }
    if (values.json) out(json(config));
    else printPairs(out, Object.entries(config).map(([key, value]) => [key, String(value)]));
    return EXIT.ok;
  },
};

/**
 * `key=value` pairs to a config patch. Values are read as JSON where they
 * parse (`20`, `true`), else kept as strings, so the API names a bad field.
 */
export function parseAssignments(pairs: string[]): Partial<FleetManagerConfig> {
  const patch: Record<string, unknown> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`"${pair}" is not key=value`);
    const key = pair.slice(0, at);
    const raw = pair.slice(at + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // not JSON: a string
    }
    patch[key] = value;
  }
  return patch;
}

export interface TasksInput {
  tasks: Task[];
  priority?: number;
  /** For JSON Lines: the 1-based input line of each task. */
  lines?: number[];
}

async function readTasks(source: string, stdin: NodeJS.ReadableStream): Promise<TasksInput> {
  let text: string;
  if (source === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    text = Buffer.concat(chunks).toString('utf8');
  } else {
    try {
      text = await readFile(source, 'utf8');
    } catch (error) {
      throw new InputError(`cannot read ${source}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
  return parseTasks(text, source === '-' ? 'stdin' : source);
}

/**
 * Reads tasks from a JSON array, a `{"tasks": [...], "priority"?}` object
 * (the API's own body), or JSON Lines with one task object a line. The tasks
 * themselves are checked by the API, which names the field at fault.
 */
export function parseTasks(text: string, name = 'input'): TasksInput {
  const trimmed = text.trim();
  if (trimmed === '') throw new InputError(`${name} is empty: expected a JSON array of tasks, {"tasks": [...]}, or JSON Lines`);
  let whole: unknown;
  let wholeParsed = false;
  try {
    whole = JSON.parse(trimmed);
    wholeParsed = true;
  } catch (error) {
    if (trimmed.startsWith('[')) throw new InputError(`${name} is not valid JSON: ${(error as Error).message}`);
  }
  if (wholeParsed) {
    if (Array.isArray(whole)) return { tasks: whole as Task[] };
    if (isObject(whole) && 'tasks' in whole) {
      if (!Array.isArray(whole.tasks)) throw new InputError(`${name}: "tasks" must be an array`);
      const priority = whole.priority;
      if (priority !== undefined && typeof priority !== 'number') throw new InputError(`${name}: "priority" must be a number`);
      return { tasks: whole.tasks as Task[], ...(priority !== undefined ? { priority } : {}) };
    }
    // A one-line JSON Lines file.
    if (isObject(whole)) return { tasks: [whole as unknown as Task], lines: [lineOfFirstContent(text)] };
    throw new InputError(`${name} must hold tasks: a JSON array, {"tasks": [...]}, or JSON Lines`);
  }
  const tasks: Task[] = [];
  const lines: number[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new InputError(`${name}, line ${index + 1}: not valid JSON (${(error as Error).message})`);
    }
    if (!isObject(value)) throw new InputError(`${name}, line ${index + 1}: a JSON Lines task must be an object`);
    tasks.push(value as unknown as Task);
    lines.push(index + 1);
  });
  return { tasks, lines };
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function lineOfFirstContent(text: string): number {
  return text.split(/\r?\n/).findIndex((line) => line.trim() !== '') + 1;
}

/**
 * True when `path` is bigger than the inline limit and reads as JSON Lines
 * (its first line is one task object), so it can be streamed from disk as it
 * is. Other big inputs (a JSON array, `{"tasks": [...]}`) are parsed whole
 * and then uploaded as generated JSON Lines.
 */
async function isLargeJsonLines(path: string, limit: number): Promise<boolean> {
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) return false;
    size = info.size;
  } catch {
    return false; // readTasks names the error
  }
  if (size <= limit) return false;
  const first = await firstLine(path, 4 * LIMITS.taskBytes);
  if (first === undefined) return false;
  try {
    const value: unknown = JSON.parse(first);
    return isObject(value) && !(Array.isArray(value.tasks) && !('type' in value));
  } catch {
    return false;
  }
}

/** The first non-blank line of a file, reading at most `max` bytes; undefined if it is longer. */
async function firstLine(path: string, max: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let read = 0;
  const stream = createReadStream(path, { start: 0, end: max - 1 });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      read += chunk.length;
      const text = Buffer.concat(chunks).toString('utf8');
      const lines = text.split(/\r?\n/);
      for (const line of lines.slice(0, -1)) if (line.trim() !== '') return line;
    }
  } finally {
    stream.destroy();
  }
  // No newline within `max`: the whole file, if it fits.
  const text = Buffer.concat(chunks).toString('utf8');
  return read < max && text.trim() !== '' ? text : undefined;
}

/**
 * An upload's or a download's progress on stderr: a bar on a terminal, else
 * at most one plain line a second. An upload also says when it is done (and
 * starts again on a retry); a download first reports the export being built.
 */
class TransferProgress {
  private bar: cliProgress.SingleBar | undefined;
  private lastLineAt = 0;
  private finished = false;
  private readonly interactive: boolean;

  constructor(
    private readonly direction: 'upload' | 'download',
    /** What moves, for the plain lines: the file's name for an upload. */
    private readonly label: string,
    io: CliIo,
    private readonly err: (line: string) => void,
    private readonly stream = io.stderr,
  ) {
    this.interactive = Boolean(io.stdout.isTTY && io.stderr.isTTY);
  }

  private verb(): string {
    return this.direction === 'upload' ? 'uploading' : 'downloading';
  }

  /** A plain line, at most once a second. */
  private throttled(line: string): void {
    const now = Date.now();
    if (now - this.lastLineAt < 1000) return;
    this.lastLineAt = now;
    this.err(line);
  }

  /** Before a download: the export is being built. */
  building(resultsWritten: number): void {
    this.throttled(`building the export: ${resultsWritten} results written`);
  }

  update(moved: number, total: number): void {
    if (this.interactive) {
      const payload = { movedText: bytes(moved), totalText: bytes(total) };
      if (!this.bar) {
        this.bar = new cliProgress.SingleBar(
          { stream: this.stream, format: ` ${this.verb()} {bar} {percentage}% | {movedText} of {totalText} | ETA {eta_formatted}`, hideCursor: true, emptyOnZero: true },
          cliProgress.Presets.shades_classic,
        );
        this.bar.start(total, moved, payload);
      } else this.bar.update(moved, payload);
      return;
    }
    if (this.direction === 'upload') {
      if (moved === 0) this.finished = false; // a retry starts again
      if (this.finished) return;
      if (moved === total) {
        this.finished = true;
        this.err(`uploaded ${this.label}: ${bytes(total)}`);
        return;
      }
    } else if (moved === 0 || moved === total) return;
    this.throttled(`${this.verb()}${this.label ? ` ${this.label}` : ''}: ${percent(total ? moved / total : 0)} (${bytes(moved)} of ${bytes(total)})`);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}

/** A file batch's bad lines, as the API keeps them (the first 100). */
function printValidationErrors(out: (line?: string) => void, status: BatchStatus): void {
  const errors = status.validationErrors ?? [];
  if (errors.length === 0) return;
  out(`invalid tasks file: ${errors.length}${status.validationErrorsTruncated ? '+' : ''} bad line${errors.length === 1 && !status.validationErrorsTruncated ? '' : 's'}`);
  for (const { line, field, message } of errors) out(`  line ${line}: ${field ? `${field}: ` : ''}${message}`);
  if (status.validationErrorsTruncated) out(`  ... more bad lines not kept: the API keeps the first ${errors.length}`);
}

/**
 * Follows a batch to its end. On a terminal: a live bar with counts, rate and
 * ETA. Otherwise (a pipe, a CI log): at most one plain line a second.
 */
async function watch(client: FleetClient, batchId: string, intervalMs: number, io: CliIo, err: (line: string) => void): Promise<BatchStatus> {
  const interactive = Boolean(io.stdout.isTTY && io.stderr.isTTY);
  const meter = new RateMeter();
  let bar: cliProgress.SingleBar | undefined;
  let lastLineAt = 0;
  try {
    return await client.waitForBatch(batchId, {
      intervalMs,
      ...(io.interrupt ? { signal: io.interrupt } : {}),
      onProgress: (status) => {
        const done = status.completedTasks + status.failedTasks;
        meter.add(done);
        const validating = status.tasksFile?.state === 'validating';
        const payload = {
          state: validating ? `validating tasks file (${status.tasksFile?.linesRead ?? 0} lines read)` : status.status,
          succeeded: status.completedTasks,
          failed: status.failedTasks,
          rate: meter.rate().toFixed(1),
          etaText: validating ? '-' : eta(status, meter.rate()),
        };
        if (interactive) {
          if (!bar) {
            bar = new cliProgress.SingleBar(
              {
                stream: io.stderr,
                format: ' {bar} {percentage}% | {value}/{total} | {succeeded} ok, {failed} failed | {rate} tasks/s | ETA {etaText} | {state}',
                hideCursor: true,
                // A file batch has no total until its file is validated.
                emptyOnZero: true,
              },
              cliProgress.Presets.shades_classic,
            );
            bar.start(status.totalTasks, done, payload);
          } else {
            if (bar.getTotal() !== status.totalTasks) bar.setTotal(status.totalTasks);
            bar.update(done, payload);
          }
          return;
        }
        const now = Date.now();
        if (isFinished(status) || now - lastLineAt < 1000) return;
        lastLineAt = now;
        if (validating) err(`${status.status}: validating tasks file, ${status.tasksFile?.linesRead ?? 0} lines read`);
        else err(`${status.status} ${percent(status.progress)} ${done}/${status.totalTasks} (${status.completedTasks} ok, ${status.failedTasks} failed) ${payload.rate} tasks/s ETA ${payload.etaText}`);
      },
    });
  } catch (error) {
    if (io.interrupt?.aborted) {
      bar?.stop();
      bar = undefined;
      err(`\nfleet: stopped watching; batch ${batchId} runs on. Follow it with: fleet status ${batchId}`);
    }
    throw error;
  } finally {
    bar?.stop();
  }
}

/** Tasks finished per second over the last 10 s of samples. */
class RateMeter {
  private readonly samples: { at: number; done: number }[] = [];

  add(done: number, at = Date.now()): void {
    this.samples.push({ at, done });
    while (this.samples.length > 2 && at - (this.samples[0]?.at ?? at) > 10_000) this.samples.shift();
  }

  rate(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.at === first.at) return 0;
    return ((last.done - first.done) * 1000) / (last.at - first.at);
  }
}

function eta(status: BatchStatus, rate: number): string {
  const left = status.totalTasks - status.completedTasks - status.failedTasks;
  if (left <= 0) return '0s';
  if (rate <= 0) return '-';
  return duration((left / rate) * 1000);
}

function describeFinal(status: BatchStatus): string {
  const took = status.completedAt !== null && status.startedAt !== null ? ` in ${duration(status.completedAt - status.startedAt)}` : '';
  const detail = status.error ? `: ${status.error}` : '';
  return `${status.status}: ${status.completedTasks} succeeded, ${status.failedTasks} failed of ${status.totalTasks}${took}${detail}`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function percent(fraction: number): string {
  return `${(fraction * 100).toFixed(1)}%`;
}

function time(epochMs: number | null): string {
  return epochMs === null ? '-' : new Date(epochMs).toISOString();
}

function duration(ms: number): string {
  const seconds = Math.max(0, ms) / 1000;
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  if (seconds < 60) return `${Math.round(seconds)}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, '0')}m`;
}

function truncate(text: string, max: number): string {
  const oneLine = text.replace(/\s+/g, ' ');
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}

function printPairs(out: (line: string) => void, rows: [string, string][]): void {
  const width = Math.max(...rows.map(([key]) => key.length));
  for (const [key, value] of rows) out(`${key.padEnd(width)}  ${value}`);
}

function printTable(out: (line: string) => void, header: string[], rows: string[][]): void {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  out(line(header));
  for (const row of rows) out(line(row));
}

/** The process entry: real streams, Ctrl-C ends a watch, and the exit code is set for Node to exit with. */
export async function run(argv = process.argv.slice(2)): Promise<void> {
  const interrupt = new AbortController();
  const onSigint = () => { interrupt.abort(new DOMException('interrupted', 'AbortError')); };
  process.once('SIGINT', onSigint);
  // `fleet results x | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
  try {
    process.exitCode = await main(argv, { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, interrupt: interrupt.signal });
  } finally {
    process.off('SIGINT', onSigint);
  }
}
