/**
 * Bundles a file of this repository with esbuild, for the tests that check
 * what a bundle holds. By default as CDK's NodejsFunction bundles a Lambda
 * entry for the Fleet construct: esbuild, bundle, platform node, CommonJS,
 * the AWS SDK bundled too (infra/fleet-functions.ts sets `externalModules: []`).
 * https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_lambda_nodejs-readme.html
 * The metafile's inputs are every source file that went in, relative to the
 * repository's root: exactly what loading the entry would load, `external`
 * aside.
 */
import * as path from 'node:path';
import { build } from 'esbuild';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');

export interface Bundle {
  /** Repository-relative paths of every module in the bundle. */
  inputs: string[];
  /** The bundle's code. */
  text: string;
}

export async function bundle(entry: string, options: { format?: 'cjs' | 'esm'; minify?: boolean; external?: string[] } = {}): Promise<Bundle> {
  const result = await build({
    entryPoints: [path.join(REPO_ROOT, entry)],
    absWorkingDir: REPO_ROOT,
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: options.format ?? 'cjs',
    minify: options.minify ?? false,
    external: options.external ?? [],
    write: false,
    metafile: true,
    outfile: 'index.js',
    logLevel: 'silent',
  });
  return { inputs: Object.keys(result.metafile.inputs), text: result.outputFiles.map((file) => file.text).join('\n') };
}
