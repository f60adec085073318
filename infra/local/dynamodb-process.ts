/**
 * Local DynamoDB in its own process.
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
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import dynalite from 'dynalite';

export interface DynamoDbProcessOptions {
  /** LevelDB folder; in memory when absent. */
  path?: string;
}

export interface DynamoDbProcess {
  endpoint: string;
  pid: number;
  /** Closes the database (flushing it to disk) and ends the process. */
  close(): Promise<void>;
}

type ChildMessage = { port: number } | { error: string };

/** Starts dynalite in a child process and resolves once it listens. */
export function startDynamoDbProcess(options: DynamoDbProcessOptions): Promise<DynamoDbProcess> {
  const child = fork(fileURLToPath(import.meta.url), [JSON.stringify(options)], {
    // The child is TypeScript too; tsx runs it, as it runs `npm start`.
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, FLEET_DYNAMODB_CHILD: '1' },
  });
  return new Promise((resolve, reject) => {
    const failed = (code: number | null, signal: NodeJS.Signals | null) =>
      reject(new Error(`the local DynamoDB process ended before listening (code ${code}, signal ${signal})`));
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
      let closing = false;
      // Every read and write of the fleet fails from then on: say why, once, where the fleet's output goes.
      child.once('exit', (code, signal) => {
        if (!closing) console.error(`fleet: the local DynamoDB process ended unexpectedly (code ${code}, signal ${signal}); restart the fleet`);
      });
      resolve({
        endpoint: `http://127.0.0.1:${message.port}`,
        pid: child.pid ?? 0,
        close: () => {
          closing = true;
          return closeChild(child);
        },
      });
    });
  });
}

function closeChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  // Unreferenced while it runs; waiting for its exit must keep this process alive.
  child.ref();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    if (child.connected) child.send('close');
    else child.kill('SIGTERM');
  });
}

/** The child's side: serve dynalite on loopback until told to stop or orphaned. */
function serve(options: DynamoDbProcessOptions): void {
  const server = dynalite({ ...(options.path ? { path: options.path } : {}), createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
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
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port } satisfies ChildMessage));
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
  serve(JSON.parse(process.argv[2] ?? '{}') as DynamoDbProcessOptions);
}
