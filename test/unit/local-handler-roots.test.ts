/**
 * Local mode finds each handler module where it lives: Fleet's own under
 * Fleet's package root, a user's task handlers (FleetProps.workers,
 * template metadata `root: 'project'`) under the user's project. The two
 * are one folder in this repository, and two once Fleet is installed.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { StatesError } from '../../infra/local/asl/interpreter';
import { LocalLambda } from '../../infra/local/lambda-runtime';
import type { LocalFunction } from '../../infra/local/template';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PROJECT = path.join(REPO_ROOT, 'test/unit/fixtures');
const fn = (name: string, root: LocalFunction['root'], entry: string): LocalFunction => ({
  logicalId: name,
  arn: `arn:aws:lambda:us-east-1:000000000000:function:${name}`,
  entry,
  handler: 'echo',
  root,
  timeoutSeconds: 30,
  environment: {},
});

describe('handler roots', () => {
  const lambda = new LocalLambda(
    [fn('user', 'project', 'limit-handlers.ts'), fn('own', 'fleet', 'test/unit/fixtures/limit-handlers.ts'), fn('misplaced', 'fleet', 'limit-handlers.ts')],
    { fleet: REPO_ROOT, project: PROJECT },
  );

  it("runs a user's handler from the project folder", async () => {
    await expect(lambda.invokeFunction('user', { from: 'project' })).resolves.toEqual({ from: 'project' });
  });

  it("runs Fleet's own handler from Fleet's package root", async () => {
    await expect(lambda.invokeFunction('own', { from: 'fleet' })).resolves.toEqual({ from: 'fleet' });
  });

  it("does not look for Fleet's handlers in the project", async () => {
    const error = await lambda.invokeFunction('misplaced', {}).catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(StatesError);
    expect(String(error)).toMatch(/limit-handlers\.ts/);
    expect(String(error)).not.toMatch(/test\/unit\/fixtures\/limit-handlers/);
  });
});
