/**
 * Fleet as a user gets it: `npm pack` builds and packs the package, the
 * example app (examples/app, a CDK app of its own) installs the tarball
 * offline, from the npm cache alone, then type-checks against the published
 * .d.ts files and passes its own test: its stack synthesizes, and it runs
 * locally with its own two task types. The installed `fleet` command runs
 * compiled JavaScript: no tsx, no TypeScript sources in the package.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { appLock } from './app-lock';

const exec = promisify(execFile);
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const APP = path.join(REPO_ROOT, 'examples/app');
const TARBALL = path.join(APP, 'vendor/fleet.tgz');
const manifest = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { name: string; version: string; dependencies: Record<string, string>; peerDependencies: Record<string, string>; bin: Record<string, string>; engines: Record<string, string>; license: string };
// No registry: only the npm cache the repository's own `npm ci` filled, and the tarball.
const offline = { ...process.env, npm_config_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };

let packedFiles: string[] = [];

beforeAll(async () => {
  // `npm pack` runs the `prepack` script: `npm run build`.
  const scratch = path.join(APP, 'vendor');
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  const { stdout } = await exec('npm', ['pack', '--json', '--pack-destination', scratch], { cwd: REPO_ROOT, env: offline, maxBuffer: 64 * 1024 * 1024 });
  const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  packedFiles = packed!.files.map((file) => file.path);
  // A fixed name, so the app's package.json need not change with the version.
  renameSync(path.join(scratch, path.basename(packed!.filename)), TARBALL);

  const app = JSON.parse(readFileSync(path.join(APP, 'package.json'), 'utf8')) as Parameters<typeof appLock>[0]['app'];
  const rootLock = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as Parameters<typeof appLock>[0]['rootLock'];
  const registry = (await exec('npm', ['config', 'get', 'registry'], { cwd: APP, env: offline })).stdout.trim();
  const lock = appLock({ rootLock, app, registry, fleet: { name: manifest.name, tarball: TARBALL, tarballPath: 'vendor/fleet.tgz', manifest } });
  writeFileSync(path.join(APP, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`);
  // The app's dev tools (vitest, tsc) are the repository's; its dependencies are its own.
  // No install scripts: none of Fleet's dependencies needs one, and some would reach for the network.
  await exec('npm', ['ci', '--omit=dev', '--ignore-scripts'], { cwd: APP, env: offline, maxBuffer: 64 * 1024 * 1024 });
  expect(existsSync(path.join(APP, 'node_modules/.cache/fleet-local'))).toBe(false);
});

describe('the packed package', () => {
  it('holds the built JavaScript, its types and the bin, and no TypeScript sources', () => {
    for (const file of ['dist/exports/construct.js', 'dist/exports/worker.js', 'dist/exports/client.js', 'dist/exports/local.js', 'dist/lambdas/api.js', 'dist/lambdas/worker.js', 'dist/client/cli.js', 'dist/dashboard/index.html', 'client/bin/fleet.mjs']) {
      expect(packedFiles).toContain(file);
    }
    for (const entry of ['construct', 'worker', 'client', 'local']) expect(packedFiles).toContain(`dist/types/exports/${entry}.d.ts`);
    expect(packedFiles.filter((file) => /\.[cm]?ts$/.test(file) && !file.endsWith('.d.ts'))).toEqual([]);
    expect(packedFiles.filter((file) => file.startsWith('test/') || file.startsWith('lambdas/') || file.startsWith('infra/'))).toEqual([]);
  });

  it("is installed in the app from the tarball, with the app's dependencies and none of Fleet's dev tools", () => {
    const installed = JSON.parse(readFileSync(path.join(APP, 'node_modules', manifest.name, 'package.json'), 'utf8')) as { version: string };
    expect(installed.version).toBe(manifest.version);
    expect(existsSync(path.join(APP, 'node_modules/aws-cdk-lib/package.json'))).toBe(true);
    expect(existsSync(path.join(APP, 'node_modules/tsx'))).toBe(false);
  });

  it('answers `fleet --help` from the installed bin, with compiled JavaScript', async () => {
    const { stdout } = await exec(path.join(APP, 'node_modules/.bin/fleet'), ['--help'], { cwd: APP });
    expect(stdout).toMatch(/^Usage: fleet <command>/);
    expect(existsSync(path.join(APP, 'node_modules', manifest.name, 'client/cli.ts'))).toBe(false);
  });

  it('serves the dashboard page from the installed package (`fleet dashboard`)', async () => {
    const child = spawn(path.join(APP, 'node_modules/.bin/fleet'), ['dashboard', '--url', 'http://127.0.0.1:9', '--json'], { cwd: APP, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let stdout = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          stdout += chunk;
          if (stdout.includes('\n')) resolve(stdout.slice(0, stdout.indexOf('\n')));
        });
        child.on('error', reject);
        child.on('exit', (code) => { reject(new Error(`fleet dashboard exited ${code} before printing its address`)); });
      });
      const { url } = JSON.parse(line) as { url: string };
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>Fleet');
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGINT');
        await exited;
      }
    }
  });
});

describe('the example app', () => {
  it('type-checks against the published .d.ts files', async () => {
    await expect(exec(path.join(REPO_ROOT, 'node_modules/.bin/tsc'), ['--noEmit', '-p', 'tsconfig.json'], { cwd: APP })).resolves.toBeDefined();
  });

  it('passes its own test: it synthesizes, and runs locally with its two task types', async () => {
    const run = await exec(path.join(REPO_ROOT, 'node_modules/.bin/vitest'), ['run'], { cwd: APP, env: { ...process.env, CI: '1', FORCE_COLOR: '0', NO_COLOR: '1' } }).catch(
      (reason: unknown) => {
        const error = reason as { stdout?: string; stderr?: string };
        return { stdout: `${error.stdout ?? ''}${error.stderr ?? ''}`, failed: true };
      },
    );
    expect(run.stdout).toMatch(/Tests\s+4 passed \(4\)/);
    expect('failed' in run).toBe(false);
    // Node.js cannot import the app's TypeScript handlers itself: local mode bundled them, as cdk deploy would.
    expect(readdirSync(path.join(APP, 'node_modules/.cache/fleet-local')).sort()).toEqual([expect.stringMatching(/^checksum-\w+\.mjs$/), expect.stringMatching(/^word-count-\w+\.mjs$/)]);
  });
});
