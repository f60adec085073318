#!/usr/bin/env node
/**
 * `npm run build`: the installable package, in dist/.
 *
 * - JavaScript: esbuild bundles each public entry (exports/*.ts), Fleet's own
 *   Lambda handlers (the construct deploys and local mode runs them from the
 *   package) and the CLI, as ES modules that share chunks, with every npm
 *   package left external: the user's install provides them, once.
 * - Types: tsc writes the .d.ts files (dist/types), nothing else.
 * - The local dashboard's static files, which local mode serves.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');

/** Fleet's own Lambda handlers: every module at the top of lambdas/ is one (the construct names them there). */
export const HANDLERS = readdirSync(path.join(root, 'lambdas'))
  .filter((file) => file.endsWith('.ts'))
  .map((file) => `lambdas/${file}`);
export const ENTRIES = ['exports/construct.ts', 'exports/worker.ts', 'exports/client.ts', 'exports/local.ts', 'client/cli.ts', ...HANDLERS];

rmSync(dist, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: ENTRIES,
  outbase: '.',
  outdir: 'dist',
  entryNames: '[dir]/[name]',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
});
cpSync(path.join(root, 'infra/local/dashboard'), path.join(dist, 'dashboard'), { recursive: true });
execFileSync(path.join(root, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
