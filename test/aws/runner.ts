/**
 * `npm run test:aws`: deploy a scratch Fleet stack, run the end-to-end
 * scenarios against it with SigV4, and always destroy it.
 *
 * The pure parts (arguments, stage names, the outputs file, the commands)
 * are exported for test/unit/aws-runner.test.ts; `main` does the rest.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Exit codes, also listed in `--help`. */
export const EXIT = {
  /** Deployed, every scenario passed, destroyed. */
  ok: 0,
  /** A scenario failed (the stack was destroyed). */
  testsFailed: 1,
  /** Bad arguments, no credentials or no region: nothing was deployed. */
  refused: 2,
  /** The deploy failed (the stack was destroyed). */
  deployFailed: 3,
  /** The destroy failed: the stack may still exist and cost money. */
  destroyFailed: 4,
  /** Interrupted (Ctrl-C or SIGTERM); the stack was destroyed. */
  interrupted: 130,
} as const;

export const USAGE = `Usage: npm run test:aws -- [--stage e2e-<name>] [--region <region>] [--profile <profile>]

Deploys the stack Fleet-<stage> (a scratch stack: everything in it is deleted
with it), runs the end-to-end scenarios (test/e2e/scenarios.ts) against its API
with SigV4, then destroys it, also when a scenario fails or on Ctrl-C.

  --stage     the scratch stage, "e2e-" then lowercase letters, digits and "-";
              default: e2e-<6 random hex digits>
  --region    default: AWS_REGION, AWS_DEFAULT_REGION, else the profile's region
  --profile   an AWS profile (sets AWS_PROFILE for the run)

Credentials come from the AWS SDK's default chain, as for the AWS CLI. The
account and region must be bootstrapped once (npx cdk bootstrap).

Exit codes: 0 passed; 1 a scenario failed; 2 refused (bad arguments, no
credentials or region: nothing deployed); 3 deploy failed; 4 destroy failed
(the stack may remain: destroy it yourself); 130 interrupted.`;

/** A refusal before anything is deployed: the message is for the user. */
export class RunRefused extends Error {
  override readonly name = 'RunRefused';
}

export interface RunOptions {
  stage: string;
  region?: string;
  profile?: string;
  help: boolean;
}

/** Scratch stages only: the runner destroys what it deploys, so it must never name a real stage. */
const SCRATCH_STAGE = /^e2e-[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;
const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d$/;

export function defaultStage(): string {
  return `e2e-${randomBytes(3).toString('hex')}`;
}

/** Parses the runner's arguments (`--name value` or `--name=value`). */
export function parseArgs(argv: readonly string[], makeStage: () => string = defaultStage): RunOptions {
  const options: RunOptions = { stage: '', help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') {
      options.help = true;
      continue;
    }
    const match = /^--(stage|region|profile)(?:=(.*))?$/.exec(arg);
    if (!match) throw new RunRefused(`unknown argument "${arg}"\n\n${USAGE}`);
    const name = match[1] as 'stage' | 'region' | 'profile';
    const value = match[2] ?? argv[++i];
    if (value === undefined || value === '' || (match[2] === undefined && value.startsWith('--'))) throw new RunRefused(`--${name} needs a value`);
    options[name] = value;
  }
  if (!options.stage) options.stage = makeStage();
  if (!SCRATCH_STAGE.test(options.stage)) {
    throw new RunRefused(
      `--stage "${options.stage}" is not a scratch stage: it must be "e2e-" then lowercase letters, digits and "-" (at most 36 characters), since the stack is destroyed afterwards`,
    );
  }
  if (options.region !== undefined && !REGION.test(options.region)) throw new RunRefused(`--region "${options.region}" is not an AWS region name`);
  return options;
}

export const stackName = (stage: string) => `Fleet-${stage}`;

/** The cdk command lines, as argument vectors for `cdk`. */
export function cdkDeployArgs(stage: string, outputsFile: string): string[] {
  return ['deploy', stackName(stage), '-c', `stage=${stage}`, '-c', 'scratch=true', '--require-approval', 'never', '--outputs-file', outputsFile, '--progress', 'events'];
}

export function cdkDestroyArgs(stage: string): string[] {
  return ['destroy', stackName(stage), '-c', `stage=${stage}`, '-c', 'scratch=true', '--force'];
}

export interface StackOutputs {
  apiUrl: string;
  stateMachineArn?: string;
}

/**
 * Reads the API URL from `cdk deploy --outputs-file`: `{"<stack>": {"<output logical id>": value}}`.
 * The Fleet construct's `ApiUrl` output has a logical id like `FleetApiUrl1A2B3C4D`.
 */
export function parseOutputs(text: string, stack: string): StackOutputs {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error('the cdk outputs file is not JSON');
  }
  const outputs = (parsed as Record<string, unknown> | null)?.[stack];
  if (!outputs || typeof outputs !== 'object') throw new Error(`the cdk outputs file has no stack "${stack}"`);
  const entries = Object.entries(outputs as Record<string, unknown>);
  const pick = (name: string) => entries.filter(([key]) => key === name || new RegExp(`${name}[0-9A-F]{8}$`).test(key));
  const api = pick('ApiUrl');
  if (api.length !== 1) throw new Error(`expected one ApiUrl output in stack "${stack}", found ${api.length} (outputs: ${entries.map(([k]) => k).join(', ') || 'none'})`);
  const apiUrl = api[0]?.[1];
  if (typeof apiUrl !== 'string' || !/^https:\/\/[^\s/]+/.test(apiUrl)) throw new Error(`the ApiUrl output is not an https URL: ${JSON.stringify(apiUrl)}`);
  const machine = pick('StateMachineArn')[0]?.[1];
  return { apiUrl: apiUrl.replace(/\/+$/, ''), ...(typeof machine === 'string' ? { stateMachineArn: machine } : {}) };
}

/** The region of an `https://<id>.execute-api.<region>.amazonaws.com` URL, if it is one. */
export function regionOfApiUrl(url: string): string | undefined {
  return /^https:\/\/[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/?$/.exec(url)?.[1];
}

interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Resolves credentials from the SDK's default chain; a RunRefused when there are none. */
async function resolveCredentials(profile: string | undefined): Promise<Credentials> {
  const { fromNodeProviderChain } = await import('@aws-sdk/credential-providers');
  try {
    return await fromNodeProviderChain(profile ? { profile } : {})();
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new RunRefused(
      `no AWS credentials found (${why}). Configure them as for the AWS CLI: AWS_PROFILE (or --profile), AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, SSO, or a role. Nothing was deployed.`,
    );
  }
}

/** The region from --region, the environment, or the profile's config; a RunRefused when none. */
async function resolveRegion(explicit: string | undefined): Promise<string> {
  if (explicit) return explicit;
  const { SFNClient } = await import('@aws-sdk/client-sfn');
  try {
    const region = await new SFNClient({}).config.region();
    if (region) return region;
  } catch {
    // Reported below.
  }
  throw new RunRefused('no AWS region: pass --region, or set AWS_REGION or a region in your profile. Nothing was deployed.');
}

/**
 * Checks the credentials with STS GetCallerIdentity (no permission needed),
 * signed with the SDK's own SigV4 signer: no STS client dependency.
 */
async function callerIdentity(credentials: Credentials, region: string): Promise<{ account: string; arn: string }> {
  const host = `sts.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}`;
  const body = 'Action=GetCallerIdentity&Version=2011-06-15';
  const signer = new SignatureV4({ service: 'sts', region, credentials, sha256: Sha256 });
  const signed = await signer.sign({
    method: 'POST',
    protocol: 'https:',
    hostname: host,
    path: '/',
    headers: { host, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body,
  });
  const headers = Object.fromEntries(Object.entries(signed.headers).filter(([name]) => name.toLowerCase() !== 'host'));
  let text: string;
  let status: number;
  try {
    const response = await fetch(`https://${host}/`, { method: 'POST', headers, body, signal: AbortSignal.timeout(15_000) });
    status = response.status;
    text = await response.text();
  } catch (error) {
    throw new RunRefused(`cannot reach STS in ${region} to check the credentials (${error instanceof Error ? error.message : String(error)}). Nothing was deployed.`);
  }
  const account = /<Account>([^<]+)<\/Account>/.exec(text)?.[1];
  const arn = /<Arn>([^<]+)<\/Arn>/.exec(text)?.[1];
  if (status !== 200 || !account || !arn) {
    const reason = /<Message>([^<]+)<\/Message>/.exec(text)?.[1] ?? `HTTP ${status}`;
    throw new RunRefused(`the AWS credentials were refused by STS GetCallerIdentity: ${reason}. Nothing was deployed.`);
  }
  return { account, arn };
}

const log = (message: string) => process.stderr.write(`test:aws: ${message}\n`);

/** Runs a command with inherited stdio; resolves with its exit code (signals count as failure). */
function run(command: string, args: string[], env: NodeJS.ProcessEnv, options: { detached?: boolean; onStart?: (child: ChildProcess) => void } = {}): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, env, stdio: 'inherit', detached: options.detached ?? false });
    options.onStart?.(child);
    child.on('error', (error) => {
      log(`${path.basename(command)} could not start: ${error.message}`);
      resolve(127);
    });
    child.on('exit', (code, signal) => { resolve(code ?? (signal ? 128 : 1)); });
  });
}

/** The whole run. Resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let options: RunOptions;
  let region: string;
  try {
    options = parseArgs(argv);
    if (options.help) {
      process.stdout.write(`${USAGE}\n`);
      return EXIT.ok;
    }
    const credentials = await resolveCredentials(options.profile);
    region = await resolveRegion(options.region);
    const identity = await callerIdentity(credentials, region);
    log(`account ${identity.account} as ${identity.arn}, region ${region}`);
  } catch (error) {
    if (error instanceof RunRefused) {
      log(error.message);
      return EXIT.refused;
    }
    throw error;
  }

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    ...(options.profile ? { AWS_PROFILE: options.profile } : {}),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  return deployTestDestroy(options.stage, region, env);
}

/** The programs the run drives; tests substitute stand-ins. */
export interface Tools {
  cdk: string;
  vitest: string;
}

export const defaultTools = (): Tools => ({
  cdk: path.join(REPO_ROOT, 'node_modules', '.bin', 'cdk'),
  vitest: path.join(REPO_ROOT, 'node_modules', '.bin', 'vitest'),
});

/**
 * Deploys the scratch stack, runs the scenarios against it, and destroys it
 * whatever happened, Ctrl-C and SIGTERM included. Resolves with the exit code.
 */
export async function deployTestDestroy(stage: string, region: string, env: NodeJS.ProcessEnv, tools: Tools = defaultTools()): Promise<number> {
  const stack = stackName(stage);
  const { cdk, vitest } = tools;
  const workDir = mkdtempSync(path.join(tmpdir(), 'fleet-test-aws-'));
  const outputsFile = path.join(workDir, 'outputs.json');

  // Ctrl-C reaches the deploy and test processes too (same process group);
  // SIGTERM is passed on. Either way the stack is destroyed afterwards, by a
  // process in its own group that a second Ctrl-C does not stop.
  let interrupted = false;
  /** A signal may arrive while a step is awaited: read the flag afresh. */
  const isInterrupted = (): boolean => interrupted;
  let current: ChildProcess | undefined;
  let destroying = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (destroying) {
      log(`${signal}: still destroying ${stack}; waiting for it to finish`);
      return;
    }
    if (!interrupted) log(`${signal}: stopping; ${stack} will be destroyed`);
    interrupted = true;
    current?.kill('SIGTERM');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const deployAndTest = async (): Promise<number> => {
    log(`deploying ${stack} (a scratch stack: destroyed at the end)`);
    const deployed = await run(cdk, cdkDeployArgs(stage, outputsFile), env, { onStart: (child) => (current = child) });
    current = undefined;
    if (isInterrupted()) return EXIT.interrupted;
    if (deployed !== 0) {
      log(`cdk deploy exited ${deployed}`);
      return EXIT.deployFailed;
    }
    const outputs = parseOutputs(readFileSync(outputsFile, 'utf8'), stack);
    log(`API ${outputs.apiUrl}; running the scenarios`);
    const testEnv = { ...env, FLEET_E2E_URL: outputs.apiUrl, FLEET_E2E_REGION: regionOfApiUrl(outputs.apiUrl) ?? region };
    const tested = await run(vitest, ['run', '--config', 'vitest.aws.config.ts'], testEnv, { onStart: (child) => (current = child) });
    current = undefined;
    if (isInterrupted()) return EXIT.interrupted;
    return tested === 0 ? EXIT.ok : EXIT.testsFailed;
  };

  let code: number = EXIT.deployFailed;
  let destroyed = 1;
  try {
    code = await deployAndTest();
  } catch (error) {
    log(`failed: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    destroying = true;
    log(`destroying ${stack}`);
    destroyed = await run(cdk, cdkDestroyArgs(stage), env, { detached: true });
    rmSync(workDir, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (destroyed !== 0) {
    log(`cdk destroy exited ${destroyed}: ${stack} may still exist in ${region}. Destroy it yourself: npx cdk ${cdkDestroyArgs(stage).join(' ')}`);
    return EXIT.destroyFailed;
  }
  log(`destroyed ${stack}`);
  return code;
}
