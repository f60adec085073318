/**
 * Local DynamoDB in its own process, supervised.
 *
 * dynalite answers every request on the event loop it runs on. In the fleet's
 * process it competed with the interpreter, the handlers and the SDK for one
 * core; in a process of its own it takes the machine's second core, as
 * DynamoDB is a separate service on AWS too. The handlers reach it the same
 * way either way: over HTTP at AWS_ENDPOINT_URL_DYNAMODB.
 *
 * `startDynamoDbProcess` forks this module; the child runs `serve` and
 * reports its port. It stops on the parent's `close` message, and also when
 * the parent dies (SIGKILL included), so a crashed fleet leaves nothing behind.
 *
 * Supervision: when the child dies on its own, a new one starts on the same
 * port over the same LevelDB folder, so the handlers' clients (whose endpoint
 * is fixed in their environment) reach it again with every write it had
 * acknowledged (LevelDB's log is written before dynalite answers; a killed
 * process loses nothing the OS had received). Requests in between fail with a
 * connection error, which the SDK and the workflow retry. In memory there is
 * nothing to restart with: the data died with the process, and a fleet that
 * carried on would report batches that no longer exist, so that is fatal, as is
 * a process that keeps dying (`maxRestarts` within `restartWindowMs`).
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import dynalite from 'dynalite';
import { guardServer, type LocalCredentials } from './emulator-guard';

export interface DynamoDbProcessOptions {
  /** LevelDB folder; in memory when absent. */
  path?: string;
  /** Every request must be SigV4-signed with these; without them, any request is served (unit tests). */
  credentials?: LocalCredentials;
  /** Unexpected ends tolerated within `restartWindowMs`; one more is fatal. @default 5 */
  maxRestarts?: number;
  /** @default 60000 */
  restartWindowMs?: number;
  /**
   * Called once when the process cannot be kept running: in memory at its
   * first unexpected end, on disk when restarts keep failing. Nothing can be
   * stored from then on.
   * @default logs the message and exits this process with code 1
   */
  onFatal?: (error: Error) => void;
  /** Where the WARN line about a restart goes. @default console.error */
  warn?: (line: string) => void;
}

export interface DynamoDbProcess {
  /** Stays the same across restarts. */
  endpoint: string;
  /** The current child's pid (a restart changes it). */
  readonly pid: number;
  /** How many times the process was restarted after ending unexpectedly. */
  readonly restarts: number;
  /** Closes the database (flushing it to disk) and ends the process. */
  close(): Promise<void>;
}

/** What the child is given on its command line; the credentials travel in its environment, never in argv. */
interface ChildOptions {
  path?: string;
  port: number;
}

type ChildMessage = { port: number } | { error: string };

const CREDENTIALS_VARIABLE = 'FLEET_DYNAMODB_CREDENTIALS';

/** Forks one child and resolves once it listens on `port` (0: any free port). */
function spawnChild(options: ChildOptions, credentials: LocalCredentials | undefined): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(fileURLToPath(import.meta.url), [JSON.stringify(options)], {
    // The child is TypeScript too; tsx runs it, as it runs `npm start`.
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, FLEET_DYNAMODB_CHILD: '1', ...(credentials ? { [CREDENTIALS_VARIABLE]: JSON.stringify(credentials) } : {}) },
  });
  return new Promise((resolve, reject) => {
    const failed = (code: number | null, signal: NodeJS.Signals | null) => { reject(new Error(`the local DynamoDB process ended before listening (code ${code}, signal ${signal})`)); };
    child.once('exit', failed);
    child.once('error', reject);
    child.once('message', (message: ChildMessage) => {
      child.off('exit', failed);
      if ('error' in message) {
        child.kill();
        reject(new Error(`the local DynamoDB process failed to start: ${message.error}`));
        return;
      }
      // Never keeps the parent alive on its own.
      child.unref();
      child.channel?.unref();
      resolve({ child, port: message.port });
    });
  });
}

const defaultFatal = (error: Error) => {
  console.error(`fleet: ${error.message}`);
  process.exit(1);
};

/** Starts dynalite in a supervised child process and resolves once it listens. */
export async function startDynamoDbProcess(options: DynamoDbProcessOptions): Promise<DynamoDbProcess> {
  const maxRestarts = options.maxRestarts ?? 5;
  const windowMs = options.restartWindowMs ?? 60_000;
  const warn = options.warn ?? ((line: string) => { console.error(line); });
  const first = await spawnChild({ ...(options.path ? { path: options.path } : {}), port: 0 }, options.credentials);
  const port = first.port;
  const endpoint = `http://127.0.0.1:${port}`;
  let current = first.child;
  let closing = false;
  /** close() may run while a restart awaits the new process: read the flag afresh. */
  const isClosing = (): boolean => closing;
  let failed = false;
  let restarts = 0;
  /** A restart under way, so close() can wait for the process it starts. */
  let restarting: Promise<void> | undefined;
  /** When the process ended unexpectedly or failed to start again, within the window. */
  const ends: number[] = [];

  const giveUp = (message: string) => {
    if (failed || closing) return;
    failed = true;
    (options.onFatal ?? defaultFatal)(new Error(message));
  };
  /** Records one failure; false when there were too many within the window. */
  const withinBudget = () => {
    const now = Date.now();
    ends.push(now);
    while ((ends[0] ?? now) < now - windowMs) ends.shift();
    return ends.length <= maxRestarts;
  };

  const restart = async (reason: string) => {
    if (!options.path) {
      giveUp(
        `the local DynamoDB process ended unexpectedly (${reason}) and its data was in memory only: every batch and result is gone; ` +
          'exiting so a supervisor can start the fleet again (run without FLEET_IN_MEMORY to keep data across such a failure)',
      ); return;
    }
    let lastError = reason;
    for (let attempt = 0; ; attempt++) {
      if (!withinBudget()) {
        giveUp(`the local DynamoDB process could not be kept running: ${ends.length} failures within ${windowMs / 1000} s (last: ${lastError}); exiting`); return;
      }
      if (attempt === 0) {
        warn(`fleet: WARN the local DynamoDB process ended unexpectedly (${reason}); restarting it on ${endpoint} over the same data folder (restart ${ends.length} of at most ${maxRestarts} within ${windowMs / 1000} s)`);
      } else {
        // The port may still be held for a moment, or the folder locked: back off a little before trying again.
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
      if (closing) return;
      try {
        const next = await spawnChild({ path: options.path, port }, options.credentials);
        current = next.child;
        if (isClosing()) return;
        restarts++;
        supervise(current);
        return;
      } catch (error) {
        lastError = (error as Error).message;
      }
    }
  };

  const supervise = (child: ChildProcess) => {
    child.once('exit', (code, signal) => {
      if (closing) return;
      restarting = restart(`code ${code}, signal ${signal}`).finally(() => (restarting = undefined));
    });
  };
  supervise(current);

  return {
    endpoint,
    get pid() {
      return current.pid ?? 0;
    },
    get restarts() {
      return restarts;
    },
    close: async () => {
      closing = true;
      await restarting;
      await closeChild(current);
    },
  };
}

function closeChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  // Unreferenced while it runs; waiting for its exit must keep this process alive.
  child.ref();
  return new Promise((resolve) => {
    child.once('exit', () => { resolve(); });
    if (child.connected) child.send('close');
    else child.kill('SIGTERM');
  });
}

/** The child's side: serve dynalite on loopback until told to stop or orphaned. */
function serve(options: ChildOptions): void {
  const server = dynalite({ ...(options.path ? { path: options.path } : {}), createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const credentials = process.env[CREDENTIALS_VARIABLE];
  // Before listening: no request reaches dynalite unchecked.
  if (credentials) guardServer(server, { service: 'dynamodb', credentials: JSON.parse(credentials) as LocalCredentials });
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    server.close(() => process.exit(0));
  };
  server.once('error', (error: Error) => {
    process.send?.({ error: error.message } satisfies ChildMessage);
    process.exit(1);
  });
  server.listen(options.port, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port } satisfies ChildMessage));
  process.on('message', (message) => {
    if (message === 'close') stop();
  });
  // The parent died or closed the channel: nobody can reach this server any more.
  process.on('disconnect', stop);
  process.on('SIGTERM', stop);
  // Ctrl-C reaches the whole process group; the parent decides when to close.
  process.on('SIGINT', () => undefined);
}

if (process.env.FLEET_DYNAMODB_CHILD === '1' && process.argv[1] === fileURLToPath(import.meta.url)) {
  serve(JSON.parse(process.argv[2] ?? '{"port":0}') as ChildOptions);
}
