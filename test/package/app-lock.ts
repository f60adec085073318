/**
 * A package-lock.json for the example app, derived from the repository's
 * own: the packed Fleet tarball, and every package it needs at the versions
 * (and integrity) the repository's lock pins. With it, `npm ci --offline`
 * installs the app from the local npm cache alone: no registry involved,
 * which an offline resolution of version ranges would need.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

type LockEntry = {
  version?: string;
  resolved?: string;
  integrity?: string;
  dev?: boolean;
  peer?: boolean;
  optional?: boolean;
  devOptional?: boolean;
  inBundle?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [field: string]: unknown;
};
type Lock = { name?: string; version?: string; lockfileVersion: number; requires?: boolean; packages: Record<string, LockEntry> };

/** Where Node (and npm's tree) finds `name` for the package at `location`: the nearest node_modules above it. */
function locate(packages: Record<string, LockEntry>, location: string, name: string): string | undefined {
  let dir = location;
  for (;;) {
    const candidate = dir ? `${dir}/node_modules/${name}` : `node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (!dir) return undefined;
    const at = dir.lastIndexOf('/node_modules/');
    dir = at === -1 ? '' : dir.slice(0, at);
  }
}

export interface AppLockOptions {
  /** The repository's package-lock.json, parsed. */
  rootLock: Lock;
  /** The app's package.json, parsed. */
  app: { name: string; version?: string; dependencies?: Record<string, string>; devDependencies?: Record<string, string> };
  /**
   * The registry's URL (`npm config get registry`): where each package's
   * tarball is, by name and version, so npm finds it in its cache by that URL
   * and integrity without asking the registry for the package's metadata.
   */
  registry: string;
  /** The Fleet package's name and the tarball the app depends on (its path as the app's package.json writes it). */
  fleet: { name: string; tarball: string; tarballPath: string; manifest: { version: string; dependencies?: Record<string, string>; peerDependencies?: Record<string, string>; bin?: Record<string, string>; engines?: Record<string, string>; license?: string } };
}

export function appLock({ rootLock, app, fleet, registry }: AppLockOptions): Lock {
  const source = rootLock.packages;
  const fleetLocation = `node_modules/${fleet.name}`;
  const picked = new Map<string, LockEntry>();
  // The app's own dependencies other than Fleet, and Fleet's dependencies and peers, at the root lock's versions.
  let pending: string[] = [];
  const want = (from: string, name: string, optional: boolean) => {
    const found = locate(source, from, name);
    if (!found) {
      if (optional) return;
      throw new Error(`the repository's lock has no ${name} (needed from ${from || 'the app'})`);
    }
    if (!picked.has(found)) {
      picked.set(found, source[found]!);
      pending.push(found);
    }
  };
  const close = () => {
    while (pending.length > 0) walk(pending.pop()!);
  };
  const walk = (location: string) => {
    const entry = picked.get(location)!;
    for (const name of Object.keys(entry.dependencies ?? {})) want(location, name, false);
    for (const name of Object.keys(entry.optionalDependencies ?? {})) want(location, name, true);
    for (const [name] of Object.entries(entry.peerDependencies ?? {})) want(location, name, true);
    // A bundled package's own files are in its parent's tarball.
    for (const [other, value] of Object.entries(source)) if (value.inBundle && other.startsWith(`${location}/node_modules/`)) picked.set(other, value);
  };
  for (const name of Object.keys({ ...fleet.manifest.dependencies, ...fleet.manifest.peerDependencies })) want('', name, false);
  for (const name of Object.keys(app.dependencies ?? {})) if (name !== fleet.name) want('', name, false);
  close();
  const production = new Set(picked.keys());
  // The app's dev tools must be in its lock too (npm ci checks), though `--omit=dev` leaves them out.
  pending = [];
  for (const name of Object.keys(app.devDependencies ?? {})) want('', name, false);
  close();
  const packages: Record<string, LockEntry> = {
    '': { name: app.name, version: app.version ?? '0.0.0', dependencies: app.dependencies, devDependencies: app.devDependencies },
    [fleetLocation]: {
      version: fleet.manifest.version,
      resolved: `file:${fleet.tarballPath}`,
      integrity: `sha512-${createHash('sha512').update(readFileSync(fleet.tarball)).digest('base64')}`,
      license: fleet.manifest.license,
      dependencies: fleet.manifest.dependencies,
      peerDependencies: fleet.manifest.peerDependencies,
      bin: fleet.manifest.bin,
      engines: fleet.manifest.engines,
    },
  };
  for (const [location, entry] of [...picked].sort(([a], [b]) => a.localeCompare(b))) {
    // The app's production packages, whatever they were to the repository; the rest are its dev tools.
    const { dev: _dev, devOptional: _devOptional, peer: _peer, ...rest } = entry;
    const name = location.slice(location.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const resolved = entry.inBundle || entry.resolved ? entry.resolved : `${registry.replace(/\/?$/, '/')}${name}/-/${name.split('/').pop()}-${entry.version}.tgz`;
    packages[location] = {
      ...rest,
      ...(resolved ? { resolved } : {}),
      ...(production.has(location) ? {} : { dev: true }),
      ...(entry.devOptional || entry.optional ? { optional: true } : {}),
    };
  }
  return { name: app.name, version: app.version ?? '0.0.0', lockfileVersion: 3, requires: true, packages };
}
