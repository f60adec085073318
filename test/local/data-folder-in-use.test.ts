/**
 * One fleet per data folder (infra/local/data-folder-lock.ts), end to end: a
 * second fleet on a folder in use fails before it starts anything (no second
 * DynamoDB process on the same LevelDB, no second writer of the journal), and
 * `npm start` says so in one line. In a file of its own: the handlers' SDK
 * clients are built once per process, for the first fleet that runs them.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataFolderInUseError } from '../../infra/local/data-folder-lock';
import { REPO_ROOT, startLocalFleet } from '../../infra/local/local-fleet';
import { api } from './helpers';

/** This test process's child processes (Linux): the local DynamoDB runs in one. */
const childProcesses = () => readFileSync(`/proc/${String(process.pid)}/task/${String(process.pid)}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);

describe('a data folder another fleet runs on', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'fleet-folder-in-use-'));
  afterAll(() => { rmSync(dataDir, { recursive: true, force: true }); });

  it('refuses a second fleet before it starts anything, naming the folder and the first fleet; the first runs on', async () => {
    const first = await startLocalFleet({ port: 0, dataDir, dashboard: false });
    try {
      const children = childProcesses();

      const refused = startLocalFleet({ port: 0, dataDir, dashboard: false });
      await expect(refused).rejects.toBeInstanceOf(DataFolderInUseError);
      await expect(refused).rejects.toMatchObject({ dataDir, pid: process.pid });
      expect(childProcesses()).toEqual(children);

      // `npm start` on the same folder: one line that says what to do, and exit 1.
      const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', FLEET_DATA_DIR: dataDir, FLEET_IN_MEMORY: '0' };
      delete env.FLEET_TOKEN;
      const npmStart = spawn('npm', ['start'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      npmStart.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      const [code] = (await once(npmStart, 'close')) as [number | null];
      expect(code).toBe(1);
      expect(stderr).toContain(`fleet: the data folder ${dataDir} is in use by another local fleet (process ${String(process.pid)})`);
      expect(stderr).not.toMatch(/^\s+at /m);

      expect((await api(first.url, 'GET', '/stats')).status).toBe(200);
    } finally {
      await first.close();
    }
    // Closed, the folder takes the next fleet.
    await (await startLocalFleet({ port: 0, dataDir, dashboard: false })).close();
  });
});
