/**
 * The client's and the CLI's file paths (issue 14) against a real local
 * fleet (the API, the file-jobs state machine, s3rver behind the S3 guard):
 * a batch uploaded as a file runs and its export downloads whole; a bad
 * file ends failed with its lines named; `fleet submit` and `fleet results
 * --out` do the same from a terminal. Small batches: the 32,000-task run is
 * the server's test.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { FleetClient, type Task, type TaskResult } from '../../client';
import { EXIT, main } from '../../client/cli';

const TOKEN = 'client-files-token';
let fleet: LocalFleet;
let client: FleetClient;
let dir: string;

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1, token: TOKEN });
  client = new FleetClient({ url: fleet.url, auth: { type: 'bearer', token: TOKEN } });
  dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-client-files-'));
});
afterAll(async () => {
  await (fleet as LocalFleet | undefined)?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const sleepTasks = (n: number, prefix = 't'): Task[] => Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, type: 'sleep', data: { ms: 0, value: i } }));
const jsonLines = (tasks: unknown[]) => tasks.map((task) => `${JSON.stringify(task)}\n`).join('');
const parseLines = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as TaskResult<{ value?: number }>);

describe('FleetClient', () => {
  it('a batch too big to go inline is uploaded, runs, and its export downloads whole', async () => {
    const tasks = sleepTasks(300);
    let uploaded = 0;

    const batchId = await client.submitBatch(tasks, { maxInlineBytes: 1024, onUploadProgress: (sent) => (uploaded = sent) });
    const final = await client.waitForBatch(batchId, { intervalMs: 50 });
    const out = path.join(dir, 'results.jsonl');
    const written = await client.downloadResults(batchId, out, { intervalMs: 50 });

    expect(uploaded).toBe(Buffer.byteLength(jsonLines(tasks)));
    expect(final).toMatchObject({ status: 'completed', totalTasks: 300, completedTasks: 300, failedTasks: 0, tasksFile: { state: 'ready', linesRead: 300 } });
    const results = parseLines(await readFile(out, 'utf8'));
    expect(written).toEqual({ path: out, results: 300, bytes: Buffer.byteLength(await readFile(out)) });
    expect(results.map((r) => r.taskId).sort()).toEqual(tasks.map((t) => t.id).sort());
    expect(results.every((r) => r.success && r.result?.value === Number(r.taskId.slice(1)))).toBe(true);
    // The export holds what the pages hold.
    const paged = await client.getBatchResults(batchId);
    expect(new Map(results.map((r) => [r.taskId, r]))).toEqual(new Map(paged.map((r) => [r.taskId, r])));
  });

  it('a file with bad lines ends failed before any task runs, naming each line', async () => {
    const file = path.join(dir, 'bad.jsonl');
    await writeFile(file, `${jsonLines(sleepTasks(5))}${JSON.stringify({ id: 't1', type: 'sleep', data: { ms: 0 } })}\nnot json\n`);

    const batchId = await client.submitTasksFile(file);
    const final = await client.waitForBatch(batchId, { intervalMs: 50 });

    expect(final.status).toBe('failed');
    expect(final.completedTasks + final.failedTasks).toBe(0);
    expect(final.validationErrors?.map((e) => e.line)).toEqual([6, 7]);
    expect(final.validationErrors?.[0]?.field).toBe('id');
    expect(final.validationErrorsTruncated).toBe(false);
  });

  it('exportResults of an unknown batch is not_found', async () => {
    await expect(client.exportResults('no-such-batch')).rejects.toMatchObject({ name: 'FleetApiError', code: 'not_found' });
  });
});

describe('fleet CLI', () => {
  class Capture extends Writable {
    text = '';
    override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: () => void): void {
      this.text += chunk.toString();
      done();
    }
  }
  const run = async (args: string[]) => {
    const stdout = new Capture();
    const stderr = new Capture();
    const env = { FLEET_URL: fleet.url, FLEET_TOKEN: TOKEN, FLEET_MAX_INLINE_BYTES: '2048' };
    const code = await main(args, { stdout, stderr, stdin: new PassThrough(), env });
    return { code, stdout: stdout.text, stderr: stderr.text };
  };

  it('submit big.jsonl --watch uploads with progress and follows the batch; results --out downloads the export', async () => {
    const file = path.join(dir, 'big.jsonl');
    await writeFile(file, jsonLines(sleepTasks(200, 'c')));

    const submitted = await run(['submit', file, '--watch', '--interval', '50']);

    expect(submitted.code).toBe(EXIT.ok);
    expect(submitted.stderr).toContain(`uploaded ${file}`);
    const [batchId, final] = submitted.stdout.trimEnd().split('\n');
    expect(final).toMatch(/^completed: 200 succeeded, 0 failed of 200/);

    const out = path.join(dir, 'cli-results.jsonl');
    const downloaded = await run(['results', batchId ?? '', '--out', out, '--interval', '50']);
    expect(downloaded.code).toBe(EXIT.ok);
    expect(downloaded.stdout).toMatch(new RegExp(`^wrote 200 results \\(.+\\) to ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n$`));
    expect(parseLines(await readFile(out, 'utf8')).map((r) => r.taskId).sort()).toEqual(sleepTasks(200, 'c').map((t) => t.id).sort());
  });
});

describe('client/examples/big-batch.ts', () => {
  it('writes, submits as a file, follows, downloads and reads every result', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'client/examples/big-batch.ts'), '500'], {
      cwd: REPO_ROOT,
      env: { ...process.env, FLEET_URL: fleet.url, FLEET_TOKEN: TOKEN },
    });
    expect(stdout).toMatch(/^Uploaded 100% of \d+ bytes$/m);
    expect(stdout).toMatch(/^Batch submitted: [0-9a-f-]{36}$/m);
    expect(stdout).toContain('Batch completed: 500/500 completed, 0 failed');
    expect(stdout).toMatch(/^Downloaded 500 results \(\d+ bytes\)$/m);
    expect(stdout).toContain('Results read: 500 succeeded, 0 failed');
  });
});
