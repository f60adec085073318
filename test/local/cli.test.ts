/**
 * The `fleet` CLI as users run it: `node client/bin/fleet.mjs ...` in a child
 * process, against a local fleet (guarded by a bearer token) started here.
 * Every command, plain non-TTY output, and the exit codes.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, REPO_ROOT, type LocalFleet } from '../../infra/local/local-fleet';
import { InputError, parseAssignments, parseTasks, UsageError } from '../../client/cli';
import type { BatchStatus, TaskResult } from '../../client';

const TOKEN = 'cli-test-token';
const BIN = path.join(REPO_ROOT, 'client/bin/fleet.mjs');
let fleet: LocalFleet;
let dir: string;

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1, token: TOKEN });
  dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-cli-'));
});
afterAll(async () => {
  await (fleet as LocalFleet | undefined)?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to its end. `env` adds to (or, with undefined, removes from) FLEET_URL and FLEET_TOKEN pointing at the test fleet. */
function fleetCli(args: string[], options: { input?: string; env?: Record<string, string | undefined>; onStdout?: (text: string, child: ReturnType<typeof spawn>) => void } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const given: Record<string, string | undefined> = { ...process.env, FLEET_URL: fleet.url, FLEET_TOKEN: TOKEN, ...options.env };
    const env = Object.fromEntries(Object.entries(given).filter(([, value]) => value !== undefined));
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      options.onStdout?.(stdout, child);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => { resolve({ code, stdout, stderr }); });
    child.stdin.end(options.input ?? '');
  });
}

async function tasksFile(name: string, content: unknown): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

const lines = (text: string) => text.trimEnd().split('\n');
// Plain output only: no cursor movement or colour when nothing is a terminal.
const ESCAPE = /\u001b\[/;

describe('help and usage (exit 2)', () => {
  it('--help prints the commands and exits 0; `npm exec fleet` runs the package bin', async () => {
    const [help, viaNpm] = await Promise.all([
      fleetCli(['--help']),
      new Promise<Run>((resolve, reject) => {
        const child = spawn('npm', ['exec', '--offline', '--no', '--', 'fleet', '--help'], { cwd: REPO_ROOT, env: process.env });
        let stdout = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
        child.on('error', reject);
        child.on('close', (code) => { resolve({ code, stdout, stderr: '' }); });
      }),
    ]);
    expect(help.code).toBe(0);
    for (const command of ['submit', 'status', 'results', 'summary', 'cancel', 'delete', 'list', 'scale', 'stats', 'workers', 'config get', 'config set']) {
      expect(help.stdout).toContain(`  ${command}`);
    }
    expect(viaNpm).toMatchObject({ code: 0, stdout: help.stdout });
  });

  it.each([
    [[], /no command given/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['status'], /"status" needs <batchId>/],
    [['status', 'a', 'b'], /unexpected "b"/],
    [['status', 'x', '--watch'], /--watch is not an option of "status"/],
    [['stats', '--bogus'], /Unknown option '--bogus'/],
    [['scale', 'many'], /n must be an integer/],
    [['submit', '-', '--priority', 'high'], /--priority must be an integer/],
    [['submit', '-', '--interval', '100'], /--interval only applies with --watch/],
    [['config'], /"config" needs "get" or "set"/],
    [['config', 'set'], /needs key=value pairs/],
    [['config', 'set', 'maxRetries'], /"maxRetries" is not key=value/],
    [['stats', '--url', 'not a url'], /"not a url" is not a valid URL/],
    [['stats', '--region', 'eu-west-1'], /--region only applies with --sigv4/],
  ])('fleet %j exits 2', async (args, message) => {
    const run = await fleetCli(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stdout).toBe('');
  });

  it('unreadable or malformed input exits 2 and says where', async () => {
    const [missing, badJson, badLine] = await Promise.all([
      fleetCli(['submit', path.join(dir, 'missing.json')]),
      fleetCli(['submit', '-'], { input: '[{"id": "a",' }),
      fleetCli(['submit', '-'], { input: '{"id":"a","type":"echo","data":1}\n{"id": "b", oops}\n' }),
    ]);
    expect(missing).toMatchObject({ code: 2, stderr: expect.stringContaining('cannot read') });
    expect(badJson).toMatchObject({ code: 2, stderr: expect.stringContaining('stdin is not valid JSON') });
    expect(badLine).toMatchObject({ code: 2, stderr: expect.stringContaining('stdin, line 2: not valid JSON') });
  });
});

describe('submit and --watch', () => {
  it('submits a JSON array file and, under --watch, exits 0 when the batch completes', async () => {
    const file = await tasksFile('ok.json', [
      { id: 'a', type: 'echo', data: { n: 1 } },
      { id: 'b', type: 'sleep', data: { ms: 50, value: 2 } },
      { id: 'c', type: 'sleep', data: { ms: 10, failTimes: 1, value: 3 } },
    ]);

    const run = await fleetCli(['submit', file, '--watch', '--interval', '50']);

    expect(run.code).toBe(0);
    const out = lines(run.stdout);
    expect(out[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(out.at(-1)).toMatch(/^completed: 3 succeeded, 0 failed of 3 in [\d.]+s$/);
    expect(run.stdout + run.stderr).not.toMatch(ESCAPE);
    for (const line of lines(run.stderr).filter(Boolean)) expect(line).toMatch(/^(pending|processing) [\d.]+% \d+\/3 \(\d+ ok, \d+ failed\) [\d.]+ tasks\/s ETA \S+$/);
  });

  it('submits JSON Lines from stdin with --priority and --idempotency-key; a partial batch exits 1 under --watch', async () => {
    const input = [
      '{"id": "ok-1", "type": "echo", "data": 1}',
      '',
      '{"id": "ok-2", "type": "echo", "data": 2}',
      '{"id": "bad", "type": "fail", "data": {"message": "no good"}}',
    ].join('\n');

    const run = await fleetCli(['submit', '-', '--watch', '--interval', '50', '--priority', '3', '--idempotency-key', 'cli-test-1'], { input });

    expect(run.code).toBe(1);
    const out = lines(run.stdout);
    expect(out[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(out.at(-1)).toMatch(/^partial: 2 succeeded, 1 failed of 3/);
  });

  it('a batch that fails entirely exits 1 under --watch, and 0 without it (the submit itself succeeded)', async () => {
    const file = await tasksFile('fail.json', { tasks: [{ id: 'x', type: 'fail', data: { message: 'nope' } }] });
    const [watched, fireAndForget] = await Promise.all([fleetCli(['submit', file, '--watch', '--interval', '50', '--json']), fleetCli(['submit', file])]);

    expect(watched.code).toBe(1);
    const final = JSON.parse(watched.stdout) as BatchStatus;
    expect(final).toMatchObject({ status: 'failed', totalTasks: 1, failedTasks: 1 });
    expect(fireAndForget.code).toBe(0);
    expect(fireAndForget.stdout).toMatch(/^[0-9a-f-]{36}\n$/);
  });

  it('a watched batch cancelled from another terminal exits 1; Ctrl-C stops watching with 130 and the batch runs on', async () => {
    expect((await fleetCli(['scale', '2'])).code).toBe(0);
    const file = await tasksFile('slow.json', Array.from({ length: 40 }, (_, i) => ({ id: `s${i}`, type: 'sleep', data: { ms: 200 } })));

    let cancelled: Promise<Run> | undefined;
    const watched = await fleetCli(['submit', file, '--watch', '--interval', '50'], {
      onStdout: (text) => {
        const id = /^([0-9a-f-]{36})\n/.exec(text)?.[1];
        if (id && !cancelled) cancelled = fleetCli(['cancel', id]);
      },
    });
    expect(watched.code).toBe(1);
    expect(lines(watched.stdout).at(-1)).toMatch(/^cancelled: \d+ succeeded, 0 failed of 40/);
    expect(await cancelled).toMatchObject({ code: 0, stdout: expect.stringMatching(/^cancelled [0-9a-f-]{36}\n$/) });

    let interruptedId = '';
    const interrupted = await fleetCli(['submit', file, '--watch', '--interval', '50'], {
      onStdout: (text, child) => {
        const id = /^([0-9a-f-]{36})\n/.exec(text)?.[1];
        if (id && !interruptedId) {
          interruptedId = id;
          child.kill('SIGINT');
        }
      },
    });
    expect(interrupted.code).toBe(130);
    expect(interrupted.stderr).toContain(`stopped watching; batch ${interruptedId} runs on`);
    const status = await fleetCli(['status', interruptedId, '--json']);
    expect((JSON.parse(status.stdout) as BatchStatus).status).toMatch(/^(pending|processing|completed)$/);
    await fleetCli(['cancel', interruptedId]);
    expect((await fleetCli(['scale', '10'])).code).toBe(0);
  });

  it('an API refusal exits 1 with its code, and points at the JSON Lines line at fault', async () => {
    const run = await fleetCli(['submit', '-'], { input: '{"id":"a","type":"echo","data":1}\n{"id":"a","type":"echo","data":2}\n' });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('fleet: validation_error (HTTP 400): tasks[1].id: duplicates the id "a" (stdin, line 2)\n');
  });
});

describe('reading a batch: status, results, summary, list, delete', () => {
  let batchId = '';

  beforeAll(async () => {
    const file = await tasksFile('read.json', [
      { id: 'r1', type: 'echo', data: { hello: 'fleet' } },
      { id: 'r2', type: 'sleep', data: { ms: 5, value: 42 } },
      { id: 'r3', type: 'fail', data: { message: 'r3 always fails' } },
    ]);
    const run = await fleetCli(['submit', file, '--watch', '--interval', '50']);
    batchId = lines(run.stdout)[0] ?? '';
  });

  it('status: a readable summary, or --json', async () => {
    const [text, json] = await Promise.all([fleetCli(['status', batchId]), fleetCli(['status', batchId, '--json'])]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`batch      ${batchId}\nstatus     partial\nprogress   100.0% (3 of 3 done: 2 succeeded, 1 failed)\n`);
    expect(JSON.parse(json.stdout)).toMatchObject({ batchId, status: 'partial', completedTasks: 2, failedTasks: 1 });
  });

  it('results: a table by default, --json for every result, --failed for failures only', async () => {
    const [table, json, failed] = await Promise.all([
      fleetCli(['results', batchId]),
      fleetCli(['results', batchId, '--json']),
      fleetCli(['results', batchId, '--failed']),
    ]);
    expect(table.code).toBe(0);
    const rows = lines(table.stdout);
    expect(rows[0]).toMatch(/^TASK\s+OUTCOME\s+ATTEMPTS\s+DURATION\s+WORKER\s+RESULT \/ ERROR$/);
    expect(rows.find((row) => row.startsWith('r1 '))).toMatch(/^r1\s+ok\s+1\s+\d+ ms\s+\S+\s+\{"hello":"fleet"\}$/);
    expect(rows.find((row) => row.startsWith('r3 '))).toMatch(/^r3\s+failed\s+4\s+\d+ ms\s+\S+\s+r3 always fails$/);
    expect(rows.at(-1)).toBe('3 results: 2 succeeded, 1 failed');

    const results = JSON.parse(json.stdout) as TaskResult[];
    expect(results.map((r) => r.taskId).sort()).toEqual(['r1', 'r2', 'r3']);
    expect(results.find((r) => r.taskId === 'r2')?.result).toEqual({ sleptMs: expect.any(Number), value: 42 });

    expect(lines(failed.stdout).filter((row) => /^r\d /.test(row)).map((row) => row.split(/\s+/)[0])).toEqual(['r3']);
  });

  it('summary: counts and durations', async () => {
    const run = await fleetCli(['summary', batchId]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^results\s+3$/m);
    expect(run.stdout).toMatch(/^succeeded\s+2$/m);
    expect(run.stdout).toMatch(/^success rate\s+66\.7%$/m);
    expect(run.stdout).toMatch(/^p95 duration\s+[\d.]+ ms$/m);
  });

  it('list: recent batches as a table, with a pointer to the next page', async () => {
    const [all, one, oneJson] = await Promise.all([fleetCli(['list']), fleetCli(['list', '--limit', '1']), fleetCli(['list', '--limit', '1', '--json'])]);
    expect(all.code).toBe(0);
    expect(lines(all.stdout)[0]).toMatch(/^BATCH\s+STATUS\s+PROGRESS\s+TASKS\s+SUCCEEDED\s+FAILED\s+CREATED$/);
    expect(all.stdout).toMatch(new RegExp(`^${batchId}\\s+partial\\s+100\\.0%\\s+3\\s+2\\s+1\\s`, 'm'));
    // JSON carries the cursor itself; text points at the next page on stderr.
    const page = JSON.parse(oneJson.stdout) as { batches: BatchStatus[]; nextCursor: string };
    expect(page.batches).toHaveLength(1);
    expect(page.nextCursor).toEqual(expect.any(String));
    expect(lines(one.stdout)).toHaveLength(2);
    expect(one.stderr).toBe(`more: fleet list --limit 1 --cursor ${page.nextCursor}\n`);
  });

  it('cancel of a finished batch and status of an unknown one exit 1, with the API code for the latter', async () => {
    const [cancel, unknown, unknownResults] = await Promise.all([
      fleetCli(['cancel', batchId]),
      fleetCli(['status', 'no-such-batch']),
      fleetCli(['results', 'no-such-batch', '--json']),
    ]);
    expect(unknownResults).toMatchObject({ code: 1, stdout: '', stderr: expect.stringContaining('fleet: not_found (HTTP 404)') });
    expect(cancel).toMatchObject({ code: 1, stdout: '' });
    expect(cancel.stderr).toContain('was not cancelled: it is unknown or already finished');
    expect(unknown).toMatchObject({ code: 1, stdout: '', stderr: 'fleet: not_found (HTTP 404): batch no-such-batch not found\n' });
  });

  it('delete removes a finished batch; afterwards it is not_found', async () => {
    const deleted = await fleetCli(['delete', batchId]);
    expect(deleted).toMatchObject({ code: 0, stdout: `deleted ${batchId}\n` });
    const again = await fleetCli(['delete', batchId]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('fleet: not_found (HTTP 404)');
  });
});

describe('fleet control: scale, stats, workers, config', () => {
  it('scale sets the cap; an out-of-range count is refused by the API (exit 1)', async () => {
    const [ok, refused] = await Promise.all([fleetCli(['scale', '6']), fleetCli(['scale', '0'])]);
    expect(ok).toMatchObject({ code: 0, stdout: expect.stringMatching(/^maxConcurrentWorkers 6 \(\d+ running batch(es)? updated\)\n$/) });
    expect(refused).toMatchObject({ code: 1, stderr: 'fleet: validation_error (HTTP 400): count: must be at least 1\n' });
  });

  it('stats and workers', async () => {
    const [stats, statsJson, workers] = await Promise.all([fleetCli(['stats']), fleetCli(['stats', '--json']), fleetCli(['workers', '--json'])]);
    expect(stats.code).toBe(0);
    expect(stats.stdout).toMatch(/^batches\s+\d+$/m);
    expect(stats.stdout).toMatch(/^active workers\s+\d+$/m);
    expect(Object.keys(JSON.parse(statsJson.stdout) as object).sort()).toEqual(['activeWorkers', 'completedTasks', 'failedTasks', 'totalBatches', 'totalTasks']);
    expect(workers.code).toBe(0);
    expect(Array.isArray(JSON.parse(workers.stdout))).toBe(true);
    const text = await fleetCli(['workers']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^(no active workers|WORKER\s+BATCH\s+TASK\s+STATUS\s+AGE)$/m);
  });

  it('config get and config set key=value ...; an unknown key is refused with its name (exit 1)', async () => {
    const set = await fleetCli(['config', 'set', 'maxRetries=2', 'retryFailedTasks=false']);
    expect(set.code).toBe(0);
    expect(set.stdout).toMatch(/^maxRetries\s+2$/m);
    expect(set.stdout).toMatch(/^retryFailedTasks\s+false$/m);

    const get = await fleetCli(['config', 'get', '--json']);
    expect(JSON.parse(get.stdout)).toMatchObject({ maxRetries: 2, retryFailedTasks: false });

    const unknown = await fleetCli(['config', 'set', 'bogus=1']);
    expect(unknown).toMatchObject({ code: 1, stderr: 'fleet: validation_error (HTTP 400): bogus: is not a known field\n' });
    expect((await fleetCli(['config', 'set', 'maxRetries=3', 'retryFailedTasks=true'])).code).toBe(0);
  });
});

describe('retry-failed', () => {
  it('reruns the failed tasks (exit 0 once the watched batch completes), says when there is nothing to retry, and exits 1 for an unknown batch', async () => {
    expect((await fleetCli(['config', 'set', 'maxRetries=0'])).code).toBe(0);
    const file = await tasksFile('flaky.json', [
      { id: 'steady', type: 'echo', data: 1 },
      { id: 'flaky', type: 'sleep', data: { ms: 1, failTimes: 1 } },
    ]);
    const first = await fleetCli(['submit', file, '--watch', '--interval', '50']);
    expect(first.code).toBe(1);
    const batchId = lines(first.stdout)[0] ?? '';
    expect((await fleetCli(['config', 'set', 'maxRetries=3'])).code).toBe(0);

    const retried = await fleetCli(['retry-failed', batchId, '--watch', '--interval', '50', '--json']);
    const again = await fleetCli(['retry-failed', batchId]);
    const unknown = await fleetCli(['retry-failed', 'no-such-batch']);

    expect(retried.code).toBe(0);
    expect(JSON.parse(retried.stdout) as BatchStatus).toMatchObject({ batchId, status: 'completed', completedTasks: 2, failedTasks: 0 });
    expect(again).toMatchObject({ code: 0, stdout: `nothing to retry: every task of ${batchId} succeeded\n` });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^fleet: not_found \(HTTP 404\)/);
  });
});

describe('connection and auth', () => {
  let server: Server;
  let brokenUrl = '';

  beforeAll(async () => {
    // A fleet that fails on its side: every request is a 500 in Fleet's error envelope.
    server = createServer((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'internal_error', message: 'Fleet could not complete the request; it has been logged.' } }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    brokenUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => (server as Server | undefined)?.close(resolve));
  });

  it('--url and --token override the environment; a wrong token is 401 (exit 1)', async () => {
    const [ok, wrong, none] = await Promise.all([
      fleetCli(['config', 'get', '--url', fleet.url, '--token', TOKEN], { env: { FLEET_URL: 'http://127.0.0.1:9', FLEET_TOKEN: 'stale' } }),
      fleetCli(['stats', '--token', 'wrong']),
      fleetCli(['stats'], { env: { FLEET_TOKEN: undefined } }),
    ]);
    expect(ok.code).toBe(0);
    expect(wrong).toMatchObject({ code: 1, stderr: expect.stringContaining('fleet: unauthorized (HTTP 401)') });
    expect(none).toMatchObject({ code: 1, stderr: expect.stringContaining('fleet: unauthorized (HTTP 401)') });
  });

  it('a fleet that cannot be reached, or fails with a 5xx, exits 3', async () => {
    const [unreachable, failing] = await Promise.all([fleetCli(['stats', '--url', 'http://127.0.0.1:9']), fleetCli(['status', 'x', '--url', brokenUrl])]);
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toContain('cannot reach http://127.0.0.1:9');
    expect(failing.code).toBe(3);
    expect(failing.stderr).toBe('fleet: internal_error (HTTP 500): Fleet could not complete the request; it has been logged.\n');
  });
});

describe('input parsing', () => {
  it('accepts a JSON array, the API body, and JSON Lines (noting each task line)', () => {
    expect(parseTasks('[{"id":"a"}]')).toEqual({ tasks: [{ id: 'a' }] });
    expect(parseTasks('{"tasks":[{"id":"a"}],"priority":4}')).toEqual({ tasks: [{ id: 'a' }], priority: 4 });
    expect(parseTasks('\n{"id":"a"}\n\n{"id":"b"}\r\n')).toEqual({ tasks: [{ id: 'a' }, { id: 'b' }], lines: [2, 4] });
    expect(parseTasks('\n{"id":"only"}\n')).toEqual({ tasks: [{ id: 'only' }], lines: [2] });
  });

  it('refuses empty input, non-objects and bad lines as InputError', () => {
    expect(() => parseTasks('  ')).toThrow(InputError);
    expect(() => parseTasks('42')).toThrow(/must hold tasks/);
    expect(() => parseTasks('{"tasks": 3}')).toThrow(/"tasks" must be an array/);
    expect(() => parseTasks('{"id":"a"}\n[1]', 'in.jsonl')).toThrow('in.jsonl, line 2: a JSON Lines task must be an object');
  });

  it('reads key=value as JSON where it parses, else as a string', () => {
    expect(parseAssignments(['maxConcurrentWorkers=20', 'retryFailedTasks=false', 'workerTimeout=abc'])).toEqual({
      maxConcurrentWorkers: 20,
      retryFailedTasks: false,
      workerTimeout: 'abc',
    });
    expect(() => parseAssignments(['=1'])).toThrow(UsageError);
  });
});
