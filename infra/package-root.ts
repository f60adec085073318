/**
 * Where Fleet's own files are, whether it runs from this repository's
 * sources (tsx, vitest) or from the built package a user installed
 * (`dist/`, inside their node_modules). The construct and local mode both
 * find Fleet's Lambda handlers here, and never in the user's project.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder `npm run build` writes to, relative to the package root. */
export const DIST_DIR = 'dist';

/** The nearest folder above `fromUrl` holding a package.json: Fleet's package root. */
export function packageRootOf(fromUrl: string): string {
  let dir = path.dirname(fileURLToPath(fromUrl));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(fromUrl)}`);
    dir = parent;
  }
}

/** Fleet's package root: this repository in development, the installed package otherwise. */
export const FLEET_ROOT = packageRootOf(import.meta.url);

/**
 * True when Fleet runs as the built package: its modules are under dist/.
 * The repository's own tests and `npm start` run the sources even after a
 * build, so what they test is what they read.
 */
export const RUNNING_FROM_DIST = fileURLToPath(import.meta.url).startsWith(path.join(FLEET_ROOT, DIST_DIR) + path.sep);

/**
 * One of Fleet's own Lambda handler modules, by its source name (`lambdas/api.ts`),
 * relative to FLEET_ROOT: the source itself, or its build under dist/ (`dist/lambdas/api.js`).
 */
export function ownHandlerEntry(source: string): string {
  if (!RUNNING_FROM_DIST) return source;
  return path.posix.join(DIST_DIR, source.replace(/\.ts$/, '.js'));
}
