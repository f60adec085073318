/**
 * The app as its author would test it: the stack synthesizes with the app's
 * two task types on their own functions, and the same stack runs on this
 * machine, where a batch of both types (and a built-in one) completes.
 */
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { FleetClient } from '@fleet-serverless/fleet/client';
import { startLocalFleet, type LocalFleet } from '@fleet-serverless/fleet/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExampleStack, PROJECT_ROOT } from '../src/stack';

describe('the stack', () => {
  // Bundling is CDK's job at deploy; here it would only run esbuild nine times.
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [], '@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2': true } });
  const stack = new ExampleStack(app, 'Test');
  const template = Template.fromStack(stack);

  it("gives each of the app's task types its own function, with the memory the app chose", () => {
    template.hasResourceProperties('AWS::Lambda::Function', { MemorySize: 256, Timeout: 60, Description: 'fleet-example-app worker' });
    const workers = Object.values(template.findResources('AWS::Lambda::Function', { Metadata: { 'fleet:local-entry': { root: 'project' } } }));
    expect(workers.map((w) => (w.Metadata as Record<string, { entry: string }>)['fleet:local-entry']!.entry).sort()).toEqual([
      'src/workers/checksum.ts',
      'src/workers/word-count.ts',
    ]);
  });

  it("runs Fleet's own functions from the installed package, not from the app", () => {
    const own = Object.values(template.findResources('AWS::Lambda::Function', { Metadata: { 'fleet:local-entry': { root: 'fleet' } } }));
    const entries = own.map((f) => (f.Metadata as Record<string, { entry: string }>)['fleet:local-entry']!.entry);
    expect(entries).toContain('dist/lambdas/api.js');
    expect(entries).toContain('dist/lambdas/worker.js');
    expect(entries.every((entry) => entry.startsWith('dist/lambdas/'))).toBe(true);
  });

  it('routes the two types to their functions in the batch workflow', () => {
    const machines = template.findResources('AWS::StepFunctions::StateMachine');
    const definitions = JSON.stringify(Object.values(machines).map((m) => m.Properties));
    expect(definitions).toContain('word-count');
    expect(definitions).toContain('checksum');
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', { DefinitionString: Match.anyValue() });
  });
});

describe('the stack on this machine', () => {
  let fleet: LocalFleet;
  beforeAll(async () => {
    fleet = await startLocalFleet({ stack: (app) => new ExampleStack(app, 'Local'), projectRoot: PROJECT_ROOT, inMemory: true, port: 0, retryUnitMs: 10 });
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it("runs a batch of the app's types and a built-in one to completion", async () => {
    const client = new FleetClient({ url: fleet.url });
    const batchId = await client.submitBatch([
      { id: 'words', type: 'word-count', data: { text: 'one two three\nfour' } },
      { id: 'sum', type: 'checksum', data: { content: 'fleet' } },
      { id: 'too-big', type: 'checksum', data: { content: 'x'.repeat(10_001) } },
      { id: 'echo', type: 'echo', data: { hello: 'fleet' } },
    ]);
    const status = await client.waitForBatch(batchId, { intervalMs: 100 });
    expect(status.status).toBe('partial');
    const results = Object.fromEntries((await client.getBatchResults(batchId)).map((r) => [r.taskId, r]));
    expect(results.words).toMatchObject({ success: true, result: { words: 4, lines: 2 } });
    expect(results.sum).toMatchObject({ success: true, result: { sha256: '5eb2ce291c7d227dd684ec83f9ddc05776e2fe9a0c4e62927b4592383e66fb28', chars: 5 } });
    // The app's middleware refused it before the handler ran: a permanent failure, one attempt.
    expect(results['too-big']).toMatchObject({ success: false, attempts: 1 });
    expect(results['too-big']?.error).toMatch(/over 10000 characters/);
    expect(results.echo).toMatchObject({ success: true });
  });
});
