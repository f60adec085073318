/**
 * Issue 16: local-only code leaves the deployed Lambda bundles. The write
 * coalescers (lambdas/adapters/{counter,insert,put}-coalescer.ts) group writes
 * for a process that is its table's only writer: the local fleet, which
 * installs them (infra/local/write-grouping.ts) into the composition root.
 * No deployed function's bundle may contain them.
 *
 * Each function of the synthesized stack is bundled as CDK's NodejsFunction
 * bundles it (esbuild, bundle, platform node, the SDK bundled too, as
 * infra/fleet.ts sets `externalModules: []`):
 * https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_lambda_nodejs-readme.html
 * Minification is left off here, so the class names a bundle holds stay
 * readable; what a bundle contains does not depend on it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_ENTRY_METADATA, type LocalEntryMetadata } from '../../infra/fleet';
import { bundle, type Bundle } from './bundle';
import { synth } from './synth';

const COALESCERS = { CounterCoalescer: 'lambdas/adapters/counter-coalescer.ts', InsertCoalescer: 'lambdas/adapters/insert-coalescer.ts', PutCoalescer: 'lambdas/adapters/put-coalescer.ts' };

/** The class, however esbuild writes it (`class X`, or `var X = class` once bundled). */
const classNamed = (name: string) => new RegExp(`\\b${name}\\b`);

describe('local-only code is out of the deployed bundles', () => {
  const bundles = new Map<string, Bundle>();
  let local: Bundle;

  beforeAll(async () => {
    const { resources } = synth('Bundles', { workers: { thumbnail: { entry: 'examples/workers/thumbnail-worker.ts' } }, autoscaling: { min: 1, max: 10 } });
    const entries = new Set(
      Object.values(resources)
        .map((resource) => resource.Metadata?.[LOCAL_ENTRY_METADATA] as LocalEntryMetadata | undefined)
        .flatMap((metadata) => (metadata ? [metadata.entry] : [])),
    );
    for (const entry of entries) bundles.set(entry, await bundle(entry));
    // The control: the local fleet's own module does hold them.
    local = await bundle('infra/local/write-grouping.ts');
  }, 240_000);

  it("covers every Fleet function of the stack: the API, the worker, a per-type worker, the lifecycle, the schedules' and the file jobs'", () => {
    expect([...bundles.keys()].sort()).toEqual(
      [
        'examples/workers/thumbnail-worker.ts',
        'lambdas/admission-reconciler.ts',
        'lambdas/api.ts',
        'lambdas/autoscaler.ts',
        'lambdas/batch-lifecycle.ts',
        'lambdas/file-jobs.ts',
        'lambdas/worker.ts',
      ].sort(),
    );
  });

  it('the bundle of the local fleet holds the coalescers (so the check below can fail)', () => {
    for (const [name, file] of Object.entries(COALESCERS)) {
      expect(local.inputs).toContain(file);
      expect(local.text).toMatch(classNamed(name));
    }
  });

  it("no deployed function's bundle holds a coalescer, by module or by class name", () => {
    for (const [entry, { inputs, text }] of bundles) {
      for (const [name, file] of Object.entries(COALESCERS)) {
        expect(inputs, entry).not.toContain(file);
        expect(text, entry).not.toMatch(classNamed(name));
      }
      // Nor anything else of the local runtime.
      expect(inputs.filter((input) => input.startsWith('infra/local/')), entry).toEqual([]);
    }
  });

  it('the worker bundle holds its domain service and the adapters it writes through', () => {
    const worker = bundles.get('lambdas/worker.ts');
    expect(worker?.inputs).toEqual(expect.arrayContaining(['lambdas/domain/worker-service.ts', 'lambdas/adapters/batch-repository.ts', 'lambdas/adapters/dead-letter-queue.ts']));
    // And none of the API's adapters.
    expect(worker?.inputs).not.toContain('lambdas/composition-root/api.ts');
    expect(worker?.inputs).not.toContain('lambdas/adapters/file-storage.ts');
    expect(worker?.inputs).not.toContain('lambdas/adapters/workflow.ts');
  });
});
