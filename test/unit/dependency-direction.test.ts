/**
 * Dependencies point one way: the domain (lambdas/domain) is pure and knows
 * neither AWS nor the task types plugged into it; lambdas/tasks depends on
 * the domain's TaskHandler, TaskContext and TaskMiddleware, not the reverse.
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Every module a folder's TypeScript files import (static, re-export and dynamic), by file. */
function importsIn(folder: string): { file: string; specifier: string }[] {
  const found: { file: string; specifier: string }[] = [];
  for (const name of readdirSync(path.join(REPO_ROOT, folder)).filter((entry) => entry.endsWith('.ts'))) {
    const source = readFileSync(path.join(REPO_ROOT, folder, name), 'utf8');
    for (const match of source.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g)) found.push({ file: `${folder}/${name}`, specifier: match[1]! });
  }
  return found;
}

describe('lambdas/domain', () => {
  const imports = importsIn('lambdas/domain');

  it('has imports to check (the scan reads its files)', () => {
    expect(imports.some(({ specifier }) => specifier === './types')).toBe(true);
  });

  it('imports nothing from lambdas/tasks, the adapters or the handlers', () => {
    expect(imports.filter(({ specifier }) => specifier.startsWith('../'))).toEqual([]);
  });

  it('imports nothing from the AWS SDK', () => {
    expect(imports.filter(({ specifier }) => specifier.startsWith('@aws-sdk/'))).toEqual([]);
  });
});

describe('lambdas/tasks', () => {
  it('takes TaskHandler and TaskMiddleware from the domain', () => {
    const imports = importsIn('lambdas/tasks');

    expect(imports.filter(({ specifier }) => specifier === '../domain/task-handler').map(({ file }) => file)).toContain('lambdas/tasks/index.ts');
    expect(imports.filter(({ specifier }) => /^\.\/(types|middleware)$/.test(specifier))).toEqual([]);
  });
});
