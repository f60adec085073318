/**
 * Smoke tests for examples/: each script runs as a child process, as a user
 * would run it, against an in-process local fleet named by FLEET_URL, and
 * must exit 0 with its key lines printed.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, REPO_ROOT, type LocalFleet } from '../../infra/local/local-fleet';

let fleet: LocalFleet;

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1 });
});
afterAll(async () => {
  await (fleet as LocalFleet | undefined)?.close();
});

/** Runs `examples/<name>` through tsx; execFile rejects on a non-zero exit, failing the test. */
async function runExample(name: string): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'examples', name)], {
    cwd: REPO_ROOT,
    env: { ...process.env, FLEET_URL: fleet.url, FLEET_TOKEN: '' },
    // Only stops a hung script.
    timeout: 300_000,
  });
}

describe('examples/', () => {
  it('image-fleet.ts resizes every image with the stand-in transform', async () => {
    const { stdout, stderr } = await runExample('image-fleet.ts');

    expect(stdout).toMatch(/^Batch submitted: [0-9a-f-]{36}$/m);
    expect(stdout).toMatch(/^Progress: 100\.00%$/m);
    expect(stdout).toContain('Completed: 3/3');
    expect(stdout).toContain('Failed: 0');
    // 4000x3000 to 800 wide keeps 4:3; 1920x1080 to 1024 keeps 16:9; 640x640 stays.
    expect(stdout).toMatch(/^task-1: 800x600 jpeg -> memory:\/\/resized\/[0-9a-f]{16}\.jpeg \(sha256 [0-9a-f]{12}…, stand-in\)$/m);
    expect(stdout).toMatch(/^task-2: 1024x576 webp /m);
    expect(stdout).toMatch(/^task-3: 640x640 png /m);
    expect(stderr).toBe('');
  });

  it('data-fleet.ts cleans and validates each source; the invalid one fails permanently', async () => {
    const { stdout, stderr } = await runExample('data-fleet.ts');

    expect(stdout).toMatch(/^Batch submitted: [0-9a-f-]{36}$/m);
    expect(stdout).toContain('Batch partial');
    expect(stdout).toContain('Successful: 3');
    expect(stdout).toContain('Failed: 1');
    expect(stdout).toMatch(/: 3 records \(1 dropped by clean\)$/m);
    expect(stdout).toMatch(/: 25 records \(0 dropped by clean\)$/m);
    expect(stdout).toMatch(/: 2 records \(2 dropped by clean\)$/m);
    expect(stdout).toContain('Records processed: 30');
    expect(stderr).toMatch(/Task task-[0-9a-f]{8} failed: process: validate: record 1: email: /);
  });

  it("coordinator-summary.ts prints the seed's getSummary lines", async () => {
    const { stdout } = await runExample('coordinator-summary.ts');

    expect(stdout).toContain('Batch partial');
    expect(stdout).toContain('Total Results: 12');
    expect(stdout).toContain('Success Rate: 83.33%');
    expect(stdout).toMatch(/Avg Duration: \d+\.\dms/);
    expect(stdout).toMatch(/p95 Duration: \d+\.\dms/);
  });

  it('autoscaling.ts scales its own local fleet from min up to max for a backlog, and back to min', async () => {
    // It starts a local fleet of its own, configured with autoscaling {min: 1, max: 8}.
    const { stdout } = await runExample('autoscaling.ts');

    expect(stdout).toContain('Idle fleet: 1 worker(s)');
    expect(stdout).toMatch(/^Scaled up to 8 workers \(backlog: \d+ tasks\)$/m);
    expect(stdout).toContain('Batch completed: 60/60 completed');
    expect(stdout).toMatch(/^Scaled down to 1 workers/m);
    expect(stdout).toContain('Peak: 8 workers; now: 1 worker(s)');
  });
});
