/**
 * `npm start` and `npm run demo` as a newcomer runs them, through npm itself:
 *
 * - Ctrl-C in a terminal signals the whole foreground process group (npm and
 *   the fleet), and npm passes its own copy on: the fleet must take that as one
 *   Ctrl-C and drain, not as a second one that exits at once.
 * - SIGTERM sent to npm's pid alone (a process manager, `kill <pid>`) must
 *   reach the fleet: npm waits for it, and no process outlives npm.
 * - A deliberate second Ctrl-C still exits at once.
 * - `npm run demo` finds a fleet started with PORT.
 *
 * `npm start` runs in a process group of its own (`detached`), as a terminal's
 * foreground job does, so a signal to `-pid` reaches the group as Ctrl-C would.
 */
import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import * as net from 'node:net';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, REPO_ROOT, type LocalFleet } from '../../infra/local/local-fleet';
import { api, waitUntil } from './helpers';

interface NpmStart {
  child: ChildProcess;
  pid: number;
  url: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

const started: NpmStart[] = [];

afterEach(() => {
  // A test that failed half-way must not leave a fleet serving, even one npm left behind: it keeps npm's process group.
  for (const run of started.splice(0)) {
    for (const { pid } of groupMembers(run.pid)) signalIfAlive(pid, 'SIGKILL');
  }
});

function fleetEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    FLEET_IN_MEMORY: '1',
    FLEET_RETRY_UNIT_MS: '1',
    FLEET_SWEEP_INTERVAL_MS: '0',
    ...extra,
  };
  delete env.FLEET_TOKEN;
  delete env.FLEET_URL;
  return env;
}

/** Runs `npm start` in its own process group and waits until the banner is out. */
async function npmStart(env: Record<string, string> = {}): Promise<NpmStart> {
  const child = spawn('npm', ['start'], { cwd: REPO_ROOT, env: fleetEnv(env), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => { resolve({ code, signal }); }),
  );
  if (child.pid === undefined) throw new Error('npm start has no pid');
  const run: NpmStart = { child, pid: child.pid, url: '', exited, output: () => output };
  started.push(run);
  let ended = false;
  void exited.then(() => (ended = true));
  // The banner ends with the "stop:" line: once it is there, the lines before it are too.
  run.url = await waitUntil(() => {
    if (ended) throw new Error(`npm start exited before serving:\n${output}`);
    const match = /running locally at (http:\/\/\S+)/.exec(output);
    return match?.[1] && /\n\s*stop:/.test(output) ? match[1] : undefined;
  }, 90_000);
  return run;
}

interface Member {
  pid: number;
  command: string;
}

/** The processes in process group `pgid`: npm, the fleet, and the fleet's own children. */
function groupMembers(pgid: number): Member[] {
  const table = execFileSync('ps', ['-A', '-o', 'pid=,pgid=,args='], { encoding: 'utf8' });
  return table.split('\n').flatMap((line) => {
    const match = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    return match && Number(match[2]) === pgid ? [{ pid: Number(match[1]), command: match[3] ?? '' }] : [];
  });
}

/** The process that runs infra/local/main.ts. */
function fleetOf(members: Member[]): Member {
  const fleet = members.find((member) => member.command.includes('infra/local/main.ts') && !/^(sh|npm)\b/.test(member.command));
  if (!fleet) throw new Error(`no fleet process among ${JSON.stringify(members)}`);
  return fleet;
}

const allGone = (members: Member[]) => waitUntil(() => (members.every(({ pid }) => !isAlive(pid)) ? true : undefined), 10_000);

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signalIfAlive(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Whether nothing listens on `port` any more: binding it succeeds. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => { resolve(false); });
    server.listen(port, '127.0.0.1', () => server.close(() => { resolve(true); }));
  });
}

/** Submits one sleep task and waits until its batch has started, so the stop finds work under way. */
async function startLongTask(url: string, ms: number): Promise<string> {
  const submitted = await api<{ batchId: string }>(url, 'POST', '/batches', { tasks: [{ id: 'long', type: 'sleep', data: { ms } }] });
  expect(submitted.status).toBe(202);
  await waitUntil(async () => {
    const batch = await api<{ status: string }>(url, 'GET', `/batches/${submitted.body.batchId}`);
    return batch.status === 200 && batch.body.status !== 'pending' ? true : undefined;
  });
  return submitted.body.batchId;
}

describe('npm start: stopping', () => {
  it('one Ctrl-C (SIGINT to the whole process group) drains and exits 0', async () => {
    const run = await npmStart({ FLEET_DRAIN_MS: '60000' });
    const members = groupMembers(run.pid);
    fleetOf(members);
    await startLongTask(run.url, 3_000);

    process.kill(-run.pid, 'SIGINT');
    const { code } = await run.exited;

    expect(run.output()).toContain('SIGINT: stopping the local fleet');
    expect(run.output()).toContain('stopped: every running task finished');
    expect(run.output()).not.toContain('exiting now');
    expect(code).toBe(0);
    await allGone(members);
  });

  it('SIGTERM to npm alone reaches the fleet: it drains, npm exits 0 after it, the port is free and no process remains', async () => {
    const run = await npmStart({ FLEET_DRAIN_MS: '60000' });
    const port = Number(new URL(run.url).port);
    const members = groupMembers(run.pid);
    const fleet = fleetOf(members);
    await startLongTask(run.url, 3_000);

    process.kill(run.pid, 'SIGTERM');
    const { code } = await run.exited;

    expect(run.output()).toContain('SIGTERM: stopping the local fleet');
    expect(run.output()).toContain('stopped: every running task finished');
    expect(code).toBe(0);
    // npm waited for the fleet: it was gone before npm exited.
    expect(isAlive(fleet.pid)).toBe(false);
    await allGone(members);
    expect(await portIsFree(port)).toBe(true);
  });

  it('a deliberate second Ctrl-C, after the first has been taken, exits at once', async () => {
    const run = await npmStart({ FLEET_DRAIN_MS: '60000' });
    const members = groupMembers(run.pid);
    await startLongTask(run.url, 60_000);

    process.kill(-run.pid, 'SIGINT');
    await waitUntil(() => (run.output().includes('SIGINT: stopping the local fleet') ? true : undefined));
    // A person's second keypress comes well after the copies of the first (main.ts's SAME_SIGNAL_MS).
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    process.kill(-run.pid, 'SIGINT');
    const { code } = await run.exited;

    expect(run.output()).toContain('SIGINT again: exiting now');
    expect(run.output()).not.toContain('stopped: every running task finished');
    expect(code).toBe(1);
    await allGone(members);
  });
});

describe('npm start: a port already in use', () => {
  it('exits 1 with one line that names the address and PORT, no stack trace, and no process of it stays', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const child = spawn('npm', ['start'], { cwd: REPO_ROOT, env: fleetEnv({ PORT: String(port) }), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      if (child.pid === undefined) throw new Error('npm start has no pid');
      started.push({ child, pid: child.pid, url: '', exited: Promise.resolve({ code: null, signal: null }), output: () => '' });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      // 'close', not 'exit': only then has every byte of its stderr been read.
      const [code] = (await once(child, 'close')) as [number | null];

      expect(code).toBe(1);
      expect(stderr).toContain(`fleet: 127.0.0.1:${String(port)} is already in use`);
      expect(stderr).toContain('set PORT to a free port');
      expect(stderr).not.toMatch(/^\s+at /m);
      // Nothing of its process group is left: npm, the fleet, the local DynamoDB's process it had started
      // (which would also stop by itself once its parent is gone; the in-process check is start-failure.test.ts).
      await waitUntil(() => (groupMembers(child.pid ?? 0).length === 0 ? true : undefined), 10_000);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});

describe('npm run demo', () => {
  let fleet: LocalFleet;
  beforeAll(async () => {
    fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1 });
  });
  afterAll(async () => {
    await (fleet as LocalFleet | undefined)?.close();
  });

  it('finds a fleet started with PORT, without FLEET_URL', async () => {
    const port = new URL(fleet.url).port;
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: port };
    delete env.FLEET_URL;
    delete env.FLEET_TOKEN;

    const { stdout } = await promisify(execFile)('npm', ['run', 'demo'], { cwd: REPO_ROOT, env, timeout: 110_000 });

    expect(stdout).toMatch(/^Batch submitted: [0-9a-f-]{36}$/m);
    // 200 tasks: every 50th always fails; every 10th fails once and recovers.
    expect(stdout).toContain('Status: partial');
    expect(stdout).toContain('Successful: 196');
    expect(stdout).toContain('Failed: 4');
    expect(stdout).toContain('Retried and recovered: 20');
  });
});
