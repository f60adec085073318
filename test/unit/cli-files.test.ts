/**
 * The `fleet` CLI's file paths (issue 14), run in-process through `main`
 * against test/unit/fake-files-api.ts: `submit` of a big file with upload
 * progress, a file batch's bad lines, and `results --out`. Small limits
 * come from FLEET_MAX_INLINE_BYTES, so files stay small and tests fast.
 *
 * S3 behaviour relied on (the fake's 403 for an expired presigned URL):
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html
 */
import { mkdtemp, readFile as readFileForTest, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { EXIT, main } from '../../client/cli';
import { startFakeFilesApi, type FakeFilesApi } from './fake-files-api';

// The big-file path must stream from disk: a whole-file read would show here.
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return { ...actual, default: actual, readFile: vi.fn(actual.readFile) };
});
const fsPromises = await import('node:fs/promises');

let api: FakeFilesApi;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-cli-files-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await (api as FakeFilesApi | undefined)?.close();
  vi.clearAllMocks();
});

class Capture extends Writable {
  text = '';
  constructor(readonly isTTY = false) {
    super();
  }
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

async function fleet(args: string[], options: { env?: Record<string, string>; tty?: boolean; interrupt?: AbortSignal } = {}) {
  const stdout = new Capture(options.tty);
  const stderr = new Capture(options.tty);
  const code = await main(args, {
    stdout,
    stderr,
    stdin: new PassThrough(),
    env: { FLEET_URL: api.url, ...options.env },
    ...(options.interrupt ? { interrupt: options.interrupt } : {}),
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const tasksOf = (count: number) => Array.from({ length: count }, (_, i) => ({ id: `t${i}`, type: 'sleep', data: { ms: 0, value: i } }));
const jsonLines = (tasks: unknown[]) => tasks.map((task) => `${JSON.stringify(task)}\n`).join('');
const routes = () => api.requests.map((r) => `${r.method} ${r.path.replace(/[0-9a-f-]{36}/g, ':id')}`);
const SMALL = { FLEET_MAX_INLINE_BYTES: '2048' };

describe('fleet submit: inline or file', () => {
  it('submit big.jsonl --watch: streams the file with upload progress, then follows the batch to completed', async () => {
    api = await startFakeFilesApi();
    const file = path.join(dir, 'big.jsonl');
    const content = jsonLines(tasksOf(500));
    await writeFile(file, content);

    const run = await fleet(['submit', file, '--watch', '--interval', '1', '--priority', '3'], { env: SMALL });

    expect(run.code).toBe(EXIT.ok);
    const [batchId, final] = run.stdout.trimEnd().split('\n');
    expect(api.batches.has(batchId ?? '')).toBe(true);
    expect(final).toMatch(/^completed: 500 succeeded, 0 failed of 500/);
    // Plain lines, not a bar: nothing here is a terminal.
    expect(run.stderr).toContain(`uploaded ${file}: ${(content.length / 1024).toFixed(1)} KiB`);
    expect(run.stderr).not.toMatch(/\u001b\[/);
    expect(routes().slice(0, 3)).toEqual(['POST /batches/uploads', 'PUT /s3/uploads/:id', 'POST /batches']);
    expect(api.requests[1]?.body.toString()).toBe(content);
    expect(JSON.parse(api.requests[2]?.body.toString() ?? '')).toEqual({ tasksFile: expect.any(String), priority: 3 });
    expect(fsPromises.readFile).not.toHaveBeenCalled();
  });

  it('a small file still goes inline, in one request, with no upload progress', async () => {
    api = await startFakeFilesApi();
    const file = path.join(dir, 'small.jsonl');
    await writeFile(file, jsonLines(tasksOf(3)));

    const run = await fleet(['submit', file], { env: SMALL });

    expect(run.code).toBe(EXIT.ok);
    expect(routes()).toEqual(['POST /batches']);
    expect(JSON.parse(api.requests[0]?.body.toString() ?? '')).toEqual({ tasks: tasksOf(3) });
    expect(run.stderr).toBe('');
  });

  it('a big JSON array (not JSON Lines) is read, then uploaded as JSON Lines', async () => {
    api = await startFakeFilesApi();
    const file = path.join(dir, 'big.json');
    await writeFile(file, JSON.stringify({ tasks: tasksOf(200), priority: 1 }, null, 2));

    const run = await fleet(['submit', file], { env: SMALL });

    expect(run.code).toBe(EXIT.ok);
    expect(routes()).toEqual(['POST /batches/uploads', 'PUT /s3/uploads/:id', 'POST /batches']);
    expect(api.requests[1]?.body.toString()).toBe(jsonLines(tasksOf(200)));
    expect(JSON.parse(api.requests[2]?.body.toString() ?? '')).toMatchObject({ priority: 1 });
  });

  it('on a terminal, the upload shows a progress bar on stderr', async () => {
    api = await startFakeFilesApi();
    const file = path.join(dir, 'tty.jsonl');
    await writeFile(file, jsonLines(tasksOf(100)));

    const run = await fleet(['submit', file], { env: SMALL, tty: true });

    expect(run.code).toBe(EXIT.ok);
    expect(run.stderr).toContain('uploading');
    expect(run.stderr).toMatch(/100% \| [\d.]+ KiB of [\d.]+ KiB/);
  });

  it('submit s3://bucket/key names the object as the tasks file', async () => {
    api = await startFakeFilesApi();
    const run = await fleet(['submit', 's3://data-bucket/batches/today.jsonl']);
    // The fake allows no bucket: the API's 400 names the field.
    expect(run.code).toBe(EXIT.failed);
    expect(run.stderr).toMatch(/validation_error \(HTTP 400\): tasksFile/);
    expect(JSON.parse(api.requests[0]?.body.toString() ?? '')).toEqual({ tasksFile: 's3://data-bucket/batches/today.jsonl' });
  });

  it('an expired upload URL exits 1 with a clear message', async () => {
    api = await startFakeFilesApi({ faults: { urlLifetimeMs: -1000 } });
    const file = path.join(dir, 'expired.jsonl');
    await writeFile(file, jsonLines(tasksOf(100)));

    const run = await fleet(['submit', file], { env: SMALL });

    expect(run.code).toBe(EXIT.failed);
    expect(run.stderr).toMatch(/fleet: PUT tasks file: the presigned URL has expired/);
    expect(run.stdout).toBe('');
  });

  it('Ctrl-C stops a big submit: exit 130, and no batch is submitted', async () => {
    api = await startFakeFilesApi();
    const file = path.join(dir, 'interrupted.jsonl');
    await writeFile(file, jsonLines(tasksOf(100)));
    const interrupt = new AbortController();
    interrupt.abort(new DOMException('interrupted', 'AbortError'));

    const run = await fleet(['submit', file], { env: SMALL, interrupt: interrupt.signal });

    expect(run.code).toBe(EXIT.interrupted);
    expect(run.stderr).toContain('interrupted during the submit');
    expect(routes().filter((r) => r === 'POST /batches' || r.startsWith('PUT'))).toEqual([]);
  });

  it('FLEET_MAX_INLINE_BYTES must be a whole number', async () => {
    api = await startFakeFilesApi();
    const run = await fleet(['submit', '-'], { env: { FLEET_MAX_INLINE_BYTES: '5MB' } });
    expect(run.code).toBe(EXIT.usage);
    expect(run.stderr).toContain('FLEET_MAX_INLINE_BYTES');
  });
});

describe('a file batch that fails validation', () => {
  it('--watch ends with exit 1 and lists each bad line (line, field, message); status lists them too', async () => {
    api = await startFakeFilesApi();
    const file = path.join(dir, 'bad.jsonl');
    await writeFile(file, `${jsonLines(tasksOf(100))}{"id":"t5","type":"sleep"}\n{"type":"sleep"}\n{"id":\n`);

    const run = await fleet(['submit', file, '--watch', '--interval', '1'], { env: SMALL });

    expect(run.code).toBe(EXIT.failed);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[1]).toMatch(/^failed: 0 succeeded, 0 failed of 0: tasksFile: 3 invalid line/);
    expect(lines.slice(2)).toEqual([
      'invalid tasks file: 3 bad lines',
      '  line 101: id: duplicate task id "t5"',
      '  line 102: id: must be a non-empty string',
      '  line 103: is not valid JSON',
    ]);

    const status = await fleet(['status', lines[0] ?? '']);
    expect(status.stdout).toContain('tasks file  invalid, 103 lines read');
    expect(status.stdout).toContain('  line 101: id: duplicate task id "t5"');
  });
  it('says when the API kept only the first 100 bad lines', async () => {
    api = await startFakeFilesApi();
    const file = path.join(dir, 'many-bad.jsonl');
    await writeFile(file, '{"type":"sleep"}\n'.repeat(150));

    const run = await fleet(['submit', file, '--watch', '--interval', '1'], { env: SMALL });

    expect(run.code).toBe(EXIT.failed);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[2]).toBe('invalid tasks file: 100+ bad lines');
    expect(lines.filter((line) => /^ {2}line \d+: id: /.test(line))).toHaveLength(100);
    expect(lines.at(-1)).toBe('  ... more bad lines not kept: the API keeps the first 100');
  });
});

describe('fleet results --out', () => {
  async function finishedBatch(count: number): Promise<string> {
    const submitted = await fleet(['submit', await tasksPath(count), '--watch', '--interval', '1']);
    expect(submitted.code).toBe(EXIT.ok);
    api.requests.length = 0;
    return submitted.stdout.split('\n')[0] ?? '';
  }
  async function tasksPath(count: number): Promise<string> {
    const file = path.join(dir, `tasks-${count}.json`);
    await writeFile(file, JSON.stringify(tasksOf(count)));
    return file;
  }

  it('downloads the export and says where and how many', async () => {
    api = await startFakeFilesApi({ buildingPolls: 2, faults: { slowDownGets: 1 } });
    const batchId = await finishedBatch(40);
    const out = path.join(dir, 'results.jsonl');

    const run = await fleet(['results', batchId, '--out', out, '--interval', '1']);

    expect(run.code).toBe(EXIT.ok);
    const text = await readFileForTest(out, 'utf8');
    expect(text.trimEnd().split('\n').map((line) => (JSON.parse(line) as { taskId: string }).taskId)).toEqual(tasksOf(40).map((t) => t.id));
    expect(run.stdout).toBe(`wrote 40 results (${(Buffer.byteLength(text) / 1024).toFixed(1)} KiB) to ${out}\n`);
    expect(routes()).toEqual([...Array(3).fill('GET /batches/:id/results/export'), 'GET /s3/exports/:id', 'GET /s3/exports/:id']);

    const asJson = await fleet(['results', batchId, '--out', out, '--json']);
    expect(JSON.parse(asJson.stdout)).toEqual({ batchId, path: out, results: 40, bytes: Buffer.byteLength(text) });
  });

  it('a running batch: exit 1 with the conflict, and no file', async () => {
    api = await startFakeFilesApi();
    const file = await tasksPath(2);
    const submitted = await fleet(['submit', file]);
    const batchId = submitted.stdout.trim();
    api.holdRunning.add(batchId);
    const out = path.join(dir, 'running.jsonl');

    const run = await fleet(['results', batchId, '--out', out]);

    expect(run.code).toBe(EXIT.failed);
    expect(run.stderr).toMatch(/conflict \(HTTP 409\)/);
    await expect(readFileForTest(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('usage: --interval needs --out, --failed does not go with --out', async () => {
    api = await startFakeFilesApi();
    expect((await fleet(['results', 'b1', '--interval', '5'])).code).toBe(EXIT.usage);
    const both = await fleet(['results', 'b1', '--out', 'x.jsonl', '--failed']);
    expect(both.code).toBe(EXIT.usage);
    expect(both.stderr).toContain('--failed does not apply with --out');
    expect(api.requests).toHaveLength(0);
  });

  it('--help documents the file paths', async () => {
    api = await startFakeFilesApi();
    const help = await fleet(['--help']);
    expect(help.stdout).toContain('--out <file>');
    expect(help.stdout).toContain('submit s3://bucket/key');
    expect(help.stdout).toContain('FLEET_MAX_INLINE_BYTES');
  });
});
