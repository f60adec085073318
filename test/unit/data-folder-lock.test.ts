/**
 * One fleet per data folder (infra/local/data-folder-lock.ts): the lock file
 * holds its fleet's pid; a running holder refuses a second fleet, naming the
 * folder and the process; a holder that is gone leaves a stale lock that the
 * next start takes over.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DataFolderInUseError, LOCK_FILE, lockDataFolder } from '../../infra/local/data-folder-lock';

const folders: string[] = [];
const folder = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleet-lock-'));
  folders.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('lockDataFolder', () => {
  it('takes a free folder with this process id, refuses it while held, and frees it', () => {
    const dir = folder();
    const unlock = lockDataFolder(dir);
    expect(readFileSync(path.join(dir, LOCK_FILE), 'utf8').trim()).toBe(String(process.pid));

    expect(() => lockDataFolder(dir)).toThrow(DataFolderInUseError);
    try {
      lockDataFolder(dir);
    } catch (error) {
      expect(error).toMatchObject({ code: 'FLEET_DATA_FOLDER_IN_USE', dataDir: dir, pid: process.pid });
      expect((error as Error).message).toContain(`the data folder ${dir} is in use by another local fleet (process ${String(process.pid)})`);
      expect((error as Error).message).toContain('FLEET_DATA_DIR');
    }

    unlock();
    expect(existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    lockDataFolder(dir)();
  });

  it("takes over a lock whose process is gone (a fleet killed with SIGKILL), and one it cannot read", () => {
    const dir = folder();
    // A process that has exited: its pid no longer runs.
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(path.join(dir, LOCK_FILE), `${gone.stdout}\n`);
    const unlock = lockDataFolder(dir);
    expect(readFileSync(path.join(dir, LOCK_FILE), 'utf8').trim()).toBe(String(process.pid));
    unlock();

    writeFileSync(path.join(dir, LOCK_FILE), 'not a pid\n');
    lockDataFolder(dir)();
  });
});
