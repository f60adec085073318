/**
 * `cdk synth` loads infra/fleet.ts and everything it imports. The table's
 * names and key patterns come from lambdas/adapters/table-layout.ts, which
 * imports nothing from the AWS SDK, so synthesizing never loads the DynamoDB
 * client (nor any other adapter). esbuild's metafile lists every module a
 * bundle of infra/fleet.ts reads: exactly what loading it would load,
 * aws-cdk-lib and constructs aside (left external, as they are CDK itself).
 */
import { describe, expect, it } from 'vitest';
import { bundle } from './bundle';

/** The modules (repository-relative paths) loading `entry` loads. */
async function modulesLoadedBy(entry: string): Promise<string[]> {
  return (await bundle(entry, { format: 'esm', external: ['aws-cdk-lib', 'aws-cdk-lib/*', 'constructs'] })).inputs;
}

const DYNAMODB_SDK = /node_modules\/@aws-sdk\/(client-dynamodb|lib-dynamodb)\//;

describe('what synthesizing the Fleet construct loads', () => {
  it('infra/fleet.ts loads neither @aws-sdk/client-dynamodb nor @aws-sdk/lib-dynamodb, and no adapter but table-layout.ts', async () => {
    const loaded = await modulesLoadedBy('infra/fleet.ts');

    expect(loaded).toContain('infra/fleet.ts');
    expect(loaded).toContain('lambdas/adapters/table-layout.ts');
    expect(loaded.filter((file) => DYNAMODB_SDK.test(file))).toEqual([]);
    expect(loaded.filter((file) => file.startsWith('lambdas/adapters/'))).toEqual(['lambdas/adapters/table-layout.ts']);
  });

  it('(the check sees the SDK where it is loaded: an adapter that sends DynamoDB commands)', async () => {
    const loaded = await modulesLoadedBy('lambdas/adapters/batch-repository.ts');

    expect(loaded.some((file) => DYNAMODB_SDK.test(file))).toBe(true);
  });
});
