/**
 * The local fleet as a real child process (`node --import tsx infra/local/main.ts`),
 * for tests that kill it: SIGKILL and SIGTERM reach a process, not a promise.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface FleetProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything it printed so far, stdout and stderr. */
  output(): string;
}

/** Starts `npm start`'s entry point on a free port over `dataDir`, and waits until it serves. */
export async function startFleetProcess(dataDir: string, env: Record<string, string> = {}, startTimeoutMs = 90_000): Promise<FleetProcess> {
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    FLEET_DATA_DIR: dataDir,
    FLEET_IN_MEMORY: '0',
    FLEET_RETRY_UNIT_MS: '1',
    FLEET_SWEEP_INTERVAL_MS: '0',
    ...env,
  };
  // A token only when the caller gives one: not whatever this shell has.
  if (env.FLEET_TOKEN === undefined) delete childEnv.FLEET_TOKEN;
  const child = spawn(process.execPath, ['--import', 'tsx', 'infra/local/main.ts'], { cwd: REPO_ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => { resolve({ code, signal }); }),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`the local fleet did not start within ${startTimeoutMs} ms:\n${output}`)); }, startTimeoutMs);
    const check = () => {
      // The banner ends with the "stop:" line: once it is there, the lines before it are too.
      const match = /running locally at (http:\/\/\S+)/.exec(output);
      if (!match?.[1] || !/\n\s*stop:/.test(output)) return;
      clearTimeout(timer);
      resolve(match[1]);
    };
    child.stdout.on('data', check);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the local fleet exited (${code ?? signal}) before serving:\n${output}`));
    });
  });
  if (child.pid === undefined) throw new Error('the local fleet has no pid');
  return { url, pid: child.pid, child, exited, output: () => output };
}

/** Sends `signal` to the process by its pid and waits for it to exit. */
export async function signalAndWait(fleet: FleetProcess, signal: NodeJS.Signals, timeoutMs = 60_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  process.kill(fleet.pid, signal);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => { reject(new Error(`the local fleet did not exit within ${timeoutMs} ms of ${signal}:\n${fleet.output()}`)); }, timeoutMs);
  });
  try {
    return await Promise.race([fleet.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
