/**
 * A local fleet whose start fails part-way leaves nothing behind. Here the
 * last step fails (its API port is taken), after the SQS and S3 emulators,
 * the local DynamoDB's process, the Step Functions endpoint and, on disk, the
 * execution journal have started: each is closed again, the start's own error
 * is what the caller sees, and the same data folder starts cleanly next time
 * (a DynamoDB process left running would still hold its LevelDB lock).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet } from '../../infra/local/local-fleet';
import { api, waitUntil } from './helpers';

/** This test process's child processes (Linux): the local DynamoDB runs in one. */
const childProcesses = () => readFileSync(`/proc/${String(process.pid)}/task/${String(process.pid)}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
/** Servers this process listens with: each emulator is one. */
const listeningServers = () => process.getActiveResourcesInfo().filter((resource) => resource === 'TCPServerWrap').length;

/**
 * The listening servers once the event loop has had up to `turns` turns to
 * release the handles the start closed (a closed server's handle goes in a
 * later turn of the loop). Bounded by turns, not time.
 */
async function listeningServersSettled(expected: number, turns = 1_000): Promise<number> {
  for (let turn = 0; turn < turns && listeningServers() !== expected; turn++) await new Promise(setImmediate);
  return listeningServers();
}

describe('a start that fails part-way', () => {
  const taken = net.createServer();
  let port = 0;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'fleet-start-failure-'));

  beforeAll(async () => {
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    port = (taken.address() as net.AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => taken.close(resolve));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('in memory: fails with EADDRINUSE, with no DynamoDB process left and no emulator listening', async () => {
    const children = childProcesses();
    const servers = listeningServers();

    await expect(startLocalFleet({ port, inMemory: true, dashboard: false })).rejects.toMatchObject({ code: 'EADDRINUSE' });

    expect(childProcesses()).toEqual(children);
    expect(await listeningServersSettled(servers)).toBe(servers);
  });

  it('on disk: the same, and the data folder then starts a fleet that runs a batch', async () => {
    const children = childProcesses();
    const servers = listeningServers();

    await expect(startLocalFleet({ port, dataDir, dashboard: false })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(childProcesses()).toEqual(children);
    expect(await listeningServersSettled(servers)).toBe(servers);

    const fleet = await startLocalFleet({ port: 0, dataDir, dashboard: false });
    try {
      const submitted = await api<{ batchId: string }>(fleet.url, 'POST', '/batches', { tasks: [{ id: 'a', type: 'echo', data: { n: 1 } }] });
      expect(submitted.status).toBe(202);
      const status = await waitUntil(async () => {
        const { body } = await api<{ status: string; completedTasks: number }>(fleet.url, 'GET', `/batches/${submitted.body.batchId}`);
        return body.status === 'completed' ? body : undefined;
      });
      expect(status.completedTasks).toBe(1);
    } finally {
      await fleet.close();
    }
  });
});
