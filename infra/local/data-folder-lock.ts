/**
 * One fleet per data folder. The folder holds the local DynamoDB's LevelDB,
 * the execution journal and the S3 files: a second fleet on it could not open
 * the database (LevelDB's lock) and, worse, would append to the same journal.
 * A fleet takes the folder's lock file before it starts anything, and gives
 * it back when it closes. A lock whose process is gone (a fleet killed with
 * SIGKILL, a machine restarted) is stale, and the next start takes it over.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import * as path from 'node:path';

export const LOCK_FILE = 'fleet.lock';

/** Another fleet runs on the data folder: the message names the folder, the process, and what to do. */
export class DataFolderInUseError extends Error {
  readonly code = 'FLEET_DATA_FOLDER_IN_USE';

  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(
      `the data folder ${dataDir} is in use by another local fleet (process ${String(pid)}): stop that fleet, or give this one its own folder (FLEET_DATA_DIR, or FLEET_IN_MEMORY=1 to keep nothing). If process ${String(pid)} is not a fleet, delete ${path.join(dataDir, LOCK_FILE)}.`,
    );
    this.name = 'DataFolderInUseError';
  }
}

function isRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `dataDir`'s lock for this process; returns the function that gives it
 * back. Throws DataFolderInUseError while a running process holds it.
 */
export function lockDataFolder(dataDir: string): () => void {
  const lockPath = path.join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      // 'wx': created only if absent, so of two fleets starting at once only one gets it.
      const fd = openSync(lockPath, 'wx');
      writeSync(fd, `${String(process.pid)}\n`);
      closeSync(fd);
      return () => { rmSync(lockPath, { force: true }); };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let holder = Number.NaN;
    try {
      holder = Number(readFileSync(lockPath, 'utf8').trim());
    } catch {
      // Removed meanwhile: try again.
    }
    if (isRunning(holder)) throw new DataFolderInUseError(dataDir, holder);
    // Stale (its process is gone) or unreadable: taken over.
    rmSync(lockPath, { force: true });
  }
  throw new Error(`could not take the lock of the data folder ${dataDir} (${lockPath})`);
}
