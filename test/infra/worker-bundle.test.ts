/**
 * Test-only code stays out of what is deployed: the `fault.*` task types
 * (lambdas/tasks/faults.ts) are in no bundle of the default worker. The
 * bundle is built here as the Fleet construct has CDK build it
 * (NodejsFunction: esbuild, CommonJS for Node.js, minified, with the AWS SDK
 * bundled too, `externalModules: []`, see infra/fleet.ts), and its metafile
 * lists every source file that went in.
 * https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_lambda_nodejs-readme.html
 */
import { describe, expect, it } from 'vitest';
import { bundle as bundleOf } from './bundle';

/** Minified, as CDK bundles it. */
const bundle = async (entry: string) => {
  const { inputs, text } = await bundleOf(entry, { minify: true });
  return { inputs, code: text };
};

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
