/**
 * The deployed definition is the one tested: the ASL local mode runs is, byte
 * for byte, the ASL that `cdk synth` writes into the template, with only the
 * template's tokens (the partition, function ARNs, the bucket name) replaced
 * by their local values. It is also valid ASL by asl-validator.
 *
 * - In process: synthesizeTemplate() (what local mode synthesizes, bundling
 *   skipped), its DefinitionString joined here with each token replaced by
 *   the value resolveTemplate gives that resource, against
 *   resolveTemplate(...).stateMachine.definition (what local-fleet.ts hands
 *   to LocalStepFunctions.createStateMachine).
 * - The real CLI: `npx cdk synth` (cdk.json's app and context, esbuild
 *   bundling, offline), into a temporary directory: its DefinitionString must
 *   equal the in-process one, tokens included.
 *
 * Pages: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-stepfunctions-statemachine.html (DefinitionString),
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference-join.html (Fn::Join).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDefinition } from '../../infra/local/asl/definition';
import { LOCAL_ACCOUNT, LOCAL_REGION, localName, resolveTemplate, synthesizeTemplate, type CfnTemplate, type LocalResources } from '../../infra/local/template';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface AslValidation {
  isValid: boolean;
  errors: unknown[];
  errorsText: (separator?: string) => string;
}
/** asl-validator 4 (CommonJS, untyped): `validator(definition, {checkPaths, checkArn})`. */
const aslValidator = createRequire(import.meta.url)('asl-validator') as (definition: unknown, options?: { checkPaths: boolean; checkArn: boolean }) => AslValidation;

type Join = { 'Fn::Join': [string, unknown[]] };

/** Every state machine of the template: the batch one and the file jobs' (infra/file-jobs-workflow.ts). */
function definitionStringsOf(template: CfnTemplate): { logicalId: string; definitionString: Join; type: unknown }[] {
  const machines = Object.entries(template.Resources).filter(([, r]) => r.Type === 'AWS::StepFunctions::StateMachine');
  expect(machines.map(([id]) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual(['FleetBatchStateMachine', 'FleetFileJobsStateMachine']);
  return machines
    .map(([logicalId, resource]) => ({
      logicalId,
      definitionString: (resource as { Properties?: Record<string, unknown> }).Properties?.DefinitionString as Join,
      type: (resource as { Properties?: Record<string, unknown> }).Properties?.StateMachineType,
    }))
    .sort((a, b) => a.logicalId.localeCompare(b.logicalId));
}

/** What local mode loads for the state machine `logicalId`. */
const localDefinitionOf = (logicalId: string): string => {
  const machine = resources.stateMachines.find((m) => m.logicalId === logicalId);
  if (!machine) throw new Error(`local mode has no state machine ${logicalId}`);
  return machine.definition;
};

/**
 * The local value of each token a definition may hold, written out here
 * rather than taken from resolveTemplate, so the two must agree. Any other
 * token fails the test by name.
 */
function localValue(token: unknown, template: CfnTemplate): string {
  const t = token as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
  if (t.Ref === 'AWS::Partition') return 'aws';
  if (t.Ref && template.Resources[t.Ref]?.Type === 'AWS::S3::Bucket') return localName(t.Ref);
  const [id, attribute] = t['Fn::GetAtt'] ?? [];
  if (id && attribute === 'Arn' && template.Resources[id]?.Type === 'AWS::Lambda::Function') {
    return `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:${localName(id)}`;
  }
  throw new Error(`the definition holds a token this test does not know: ${JSON.stringify(token)}`);
}

/** Spawns the real CDK CLI; resolves with the synthesized template. */
function cdkSynth(outdir: string): Promise<CfnTemplate> {
  return new Promise((resolve, reject) => {
    const child = spawn('npx', ['cdk', 'synth', '--quiet', '--no-notices', '--no-version-reporting', '--output', outdir], {
      cwd: REPO_ROOT,
      env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: 'true' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) { reject(new Error(`cdk synth exited with ${code}:\n${stderr}`)); return; }
      const file = readdirSync(outdir).find((name) => name.endsWith('.template.json'));
      if (!file) { reject(new Error(`cdk synth wrote no template to ${outdir}`)); return; }
      resolve(JSON.parse(readFileSync(path.join(outdir, file), 'utf8')) as CfnTemplate);
    });
  });
}

let outdir: string;
let cli: Promise<CfnTemplate>;
let template: CfnTemplate;
let resources: LocalResources;

beforeAll(() => {
  // The CLI (~15 s: it bundles the functions) runs while this process synthesizes.
  outdir = mkdtempSync(path.join(tmpdir(), 'fleet-cdk-synth-'));
  cli = cdkSynth(outdir);
  cli.catch(() => undefined); // awaited in its own test
  template = synthesizeTemplate();
  resources = resolveTemplate(template);
});

afterAll(async () => {
  await cli.catch(() => undefined);
  rmSync(outdir, { recursive: true, force: true });
});

describe('the definition local mode runs is the definition cdk synth writes', () => {
  it('DefinitionString is one Fn::Join of literal JSON text and tokens; joined with local values it is, byte for byte, what local mode loads', () => {
    for (const { logicalId, definitionString } of definitionStringsOf(template)) {
      const [separator, parts] = definitionString['Fn::Join'];
      expect(Object.keys(definitionString)).toEqual(['Fn::Join']);

      const joined = parts.map((part) => (typeof part === 'string' ? part : localValue(part, template))).join(separator);

      expect(localDefinitionOf(logicalId)).toBe(joined);
    }
    // The batch workflow is the one local mode runs batches on.
    expect(resources.stateMachine.definition).toContain('"DISTRIBUTED"');
  });

  it('every token resolves to a resource local mode creates: a function it runs, or a bucket it serves', () => {
    const local = new Set([...resources.functions.map((f) => f.arn), ...resources.buckets.map((b) => b.name), 'aws']);
    for (const { definitionString } of definitionStringsOf(template)) {
      const tokens = definitionString['Fn::Join'][1].filter((part) => typeof part !== 'string');
      expect(tokens.length).toBeGreaterThan(0);
      for (const token of tokens) expect(local).toContain(localValue(token, template));
    }
  });

  it('the runner loads it unchanged: loadDefinition accepts it and returns the same ASL', () => {
    for (const { definition } of resources.stateMachines) {
      const parsed = JSON.parse(definition) as unknown;
      expect(loadDefinition(definition)).toEqual(parsed);
    }
  });

  it('asl-validator reports it valid (paths and ARNs checked), and does flag a broken copy', () => {
    expect(resources.stateMachines).toHaveLength(2);
    for (const machine of resources.stateMachines) {
      const definition = JSON.parse(machine.definition) as { StartAt: string };

      const result = aslValidator(structuredClone(definition), { checkPaths: true, checkArn: true });
      const broken = aslValidator({ ...structuredClone(definition), StartAt: 'No such state' }, { checkPaths: true, checkArn: true });

      expect(result.errorsText('\n'), machine.logicalId).toBe('');
      expect(result.isValid).toBe(true);
      expect(broken.isValid).toBe(false);
    }
  });

  it('`npx cdk synth` (cdk.json app and context, bundled) writes the same DefinitionString, tokens included, as the in-process synthesis', async () => {
    const real = await cli;

    const ours = definitionStringsOf(template);
    const theirs = definitionStringsOf(real);

    expect(theirs.map((m) => m.logicalId)).toEqual(ours.map((m) => m.logicalId));
    expect(theirs.map((m) => m.type)).toEqual(ours.map((m) => m.type));
    expect(theirs.map((m) => m.definitionString)).toEqual(ours.map((m) => m.definitionString));
  });
});
