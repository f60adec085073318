/**
 * Test-only code stays out of what is deployed: the `fault.*` task types
 * (lambdas/tasks/faults.ts) are in no bundle of the default worker. The
 * bundle is built here as the Fleet construct has CDK build it
 * (NodejsFunction: esbuild, CommonJS for Node.js, minified, with the AWS SDK
 * bundled too, `externalModules: []`, see infra/fleet.ts), and its metafile
 * lists every source file that went in.
 * https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_lambda_nodejs-readme.html
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

async function bundle(entry: string): Promise<{ inputs: string[]; code: string }> {
  const result = await build({
    entryPoints: [path.join(REPO_ROOT, entry)],
    absWorkingDir: REPO_ROOT,
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'cjs',
    minify: true,
    external: [],
    write: false,
    metafile: true,
    outfile: 'index.js',
    logLevel: 'silent',
  });
  return { inputs: Object.keys(result.metafile.inputs), code: result.outputFiles.map((file) => file.text).join('\n') };
}

const FAULT_TYPES = ['fault.throw-non-error', 'fault.hang', 'fault.unserialisable', 'fault.out-of-memory', 'fault.huge-error'];

describe('the default worker bundle', () => {
  it('holds the registered task types and none of the fault types', async () => {
    const { inputs, code } = await bundle('lambdas/worker.ts');

    expect(inputs).toContain('lambdas/tasks/index.ts');
    expect(inputs).not.toContain('lambdas/tasks/faults.ts');
    expect(FAULT_TYPES.filter((type) => code.includes(type))).toEqual([]);
  });

  it('(the check sees the fault types where they are bundled: the local fault-tasks worker)', async () => {
    const { inputs, code } = await bundle('infra/local/fault-tasks-worker.ts');

    expect(inputs).toContain('lambdas/tasks/faults.ts');
    expect(FAULT_TYPES.filter((type) => code.includes(type))).toEqual(FAULT_TYPES);
  });
});
