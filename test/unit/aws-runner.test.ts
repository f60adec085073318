/**
 * `npm run test:aws` offline: its argument, stage and outputs parsing, its
 * refusal to run without credentials (before anything is deployed), and
 * that `npm test` never picks up test/aws.
 */
import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cdkDeployArgs, cdkDestroyArgs, defaultStage, EXIT, parseArgs, parseOutputs, regionOfApiUrl, REPO_ROOT, RunRefused } from '../aws/runner';

const exec = promisify(execFile);

describe('arguments and stage', () => {
  it('defaults to a fresh random scratch stage', () => {
    const a = parseArgs([]);
    const b = parseArgs([]);
    expect(a).toEqual({ stage: expect.stringMatching(/^e2e-[0-9a-f]{6}$/), help: false });
    expect(a.stage).not.toBe(b.stage);
    expect(defaultStage()).toMatch(/^e2e-[0-9a-f]{6}$/);
  });

  it('takes --stage, --region and --profile, as "--name value" or "--name=value"', () => {
    expect(parseArgs(['--stage', 'e2e-mine', '--region=eu-west-1', '--profile', 'sandbox'])).toEqual({
      stage: 'e2e-mine',
      region: 'eu-west-1',
      profile: 'sandbox',
      help: false,
    });
    expect(parseArgs(['--help'], () => 'e2e-x')).toEqual({ stage: 'e2e-x', help: true });
  });

  it('refuses any stage that is not a scratch stage, since the runner destroys what it deploys', () => {
    for (const stage of ['dev', 'prod', 'E2E-x', 'e2e-', 'e2e-x-', 'e2e_x', 'e2e-x y', `e2e-${'a'.repeat(40)}`]) {
      expect(() => parseArgs(['--stage', stage]), stage).toThrow(RunRefused);
      expect(() => parseArgs(['--stage', stage]), stage).toThrow(/not a scratch stage/);
    }
  });

  it('refuses unknown arguments, missing values and malformed regions', () => {
    expect(() => parseArgs(['--keep'])).toThrow(/unknown argument "--keep"/);
    expect(() => parseArgs(['--stage'])).toThrow(/--stage needs a value/);
    expect(() => parseArgs(['--stage', '--region', 'eu-west-1'])).toThrow(/--stage needs a value/);
    expect(() => parseArgs(['--region', 'europe'])).toThrow(/not an AWS region/);
  });

  it('deploys and destroys the same scratch stack: Fleet-<stage>, scratch context, no prompts', () => {
    expect(cdkDeployArgs('e2e-abc', '/tmp/out.json')).toEqual(
      expect.arrayContaining(['deploy', 'Fleet-e2e-abc', 'stage=e2e-abc', 'scratch=true', '--require-approval', 'never', '--outputs-file', '/tmp/out.json']),
    );
    const destroy = cdkDestroyArgs('e2e-abc');
    expect(destroy.slice(0, 2)).toEqual(['destroy', 'Fleet-e2e-abc']);
    expect(destroy).toEqual(expect.arrayContaining(['stage=e2e-abc', 'scratch=true', '--force']));
  });
});

describe('the outputs file', () => {
  const url = 'https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com';
  const file = (outputs: Record<string, unknown>) => JSON.stringify({ 'Fleet-e2e-abc': outputs });

  it('reads the API URL and state machine from the Fleet construct outputs', () => {
    const text = file({ FleetApiUrl1A2B3C4D: `${url}/`, FleetStateMachineArn9F8E7D6C: 'arn:aws:states:eu-west-1:123456789012:stateMachine:X' });
    expect(parseOutputs(text, 'Fleet-e2e-abc')).toEqual({ apiUrl: url, stateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:X' });
    expect(regionOfApiUrl(url)).toBe('eu-west-1');
    expect(regionOfApiUrl('http://127.0.0.1:3000')).toBeUndefined();
  });

  it('fails clearly on another stack, no ApiUrl, two of them, or a value that is not https', () => {
    expect(() => parseOutputs(file({ FleetApiUrl1A2B3C4D: url }), 'Fleet-e2e-other')).toThrow(/no stack "Fleet-e2e-other"/);
    expect(() => parseOutputs(file({ Other: 'x' }), 'Fleet-e2e-abc')).toThrow(/found 0 \(outputs: Other\)/);
    expect(() => parseOutputs(file({ AApiUrl1A2B3C4D: url, BApiUrl1A2B3C4D: url }), 'Fleet-e2e-abc')).toThrow(/found 2/);
    expect(() => parseOutputs(file({ FleetApiUrl1A2B3C4D: 'http://x' }), 'Fleet-e2e-abc')).toThrow(/not an https URL/);
    expect(() => parseOutputs('{', 'Fleet-e2e-abc')).toThrow(/not JSON/);
  });
});

describe('running the script', () => {
  const home = mkdtempSync(path.join(tmpdir(), 'fleet-no-aws-'));
  afterAll(() => { rmSync(home, { recursive: true, force: true }); });

  const runScript = (args: string[], env: NodeJS.ProcessEnv) =>
    exec(process.execPath, ['--import', 'tsx', 'test/aws/run.ts', ...args], { cwd: REPO_ROOT, env, timeout: 60_000 }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (reason: unknown) => {
        const error = reason as { code?: number; stdout: string; stderr: string };
        return { code: error.code, stdout: error.stdout, stderr: error.stderr };
      },
    );

  it('refuses to run without AWS credentials, with a clear message, before deploying anything', async () => {
    // An empty environment: no AWS variables, a home without ~/.aws, and no instance metadata to ask.
    const { code, stdout, stderr } = await runScript(['--stage', 'e2e-nocreds'], {
      HOME: home,
      AWS_CONFIG_FILE: path.join(home, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    expect(code).toBe(EXIT.refused);
    expect(stderr).toMatch(/no AWS credentials found/);
    expect(stderr).toMatch(/Nothing was deployed/);
    expect(`${stdout}${stderr}`).not.toMatch(/deploying|Fleet-e2e-nocreds/);
  });

  it('refuses a non-scratch stage with exit 2, and prints its usage with --help', async () => {
    const refused = await runScript(['--stage', 'prod'], { HOME: home });
    expect(refused.code).toBe(EXIT.refused);
    expect(refused.stderr).toMatch(/"prod" is not a scratch stage/);
    const help = await runScript(['--help'], { HOME: home });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: npm run test:aws/);
  });
});

describe('npm test leaves test/aws out', () => {
  const listFiles = async (config: string) => {
    const { stdout } = await exec(path.join(REPO_ROOT, 'node_modules', '.bin', 'vitest'), ['list', '--filesOnly', '--json', '--config', config], { cwd: REPO_ROOT });
    return (JSON.parse(stdout) as { file: string }[]).map(({ file }) => path.relative(REPO_ROOT, file));
  };

  it("vitest.config.ts (npm test) collects no file under test/aws; vitest.aws.config.ts collects only those", async () => {
    const npmTest = await listFiles('vitest.config.ts');
    expect(npmTest).toContain('test/local/e2e-scenarios.test.ts');
    expect(npmTest).toContain('test/unit/aws-runner.test.ts');
    expect(npmTest.filter((file) => file.startsWith('test/aws/'))).toEqual([]);
    expect(await listFiles('vitest.aws.config.ts')).toEqual(['test/aws/scenarios.test.ts']);
  });
});

describe('deploy, test, destroy (stand-ins for cdk and vitest)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleet-aws-run-'));
  afterAll(() => { rmSync(dir, { recursive: true, force: true }); });
  const apiUrl = 'https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com';

  // Each stand-in appends its command line to FAKE_LOG and behaves as FAKE_DEPLOY / FAKE_TESTS / FAKE_DESTROY say.
  const standIn = (name: string, body: string) => {
    const file = path.join(dir, name);
    writeFileSync(
      file,
      `#!${process.execPath}
const { appendFileSync, writeFileSync } = require('node:fs');
const args = process.argv.slice(2);
appendFileSync(process.env.FAKE_LOG, ${JSON.stringify(name)} + ' ' + args.join(' ') + '\\n');
${body}
`,
    );
    chmodSync(file, 0o755);
    return file;
  };
  const cdk = standIn(
    'cdk',
    `if (args[0] === 'deploy') {
  if (process.env.FAKE_DEPLOY === 'fail') process.exit(1);
  writeFileSync(args[args.indexOf('--outputs-file') + 1], JSON.stringify({ [args[1]]: { FleetApiUrl1A2B3C4D: ${JSON.stringify(apiUrl)} } }));
}
if (args[0] === 'destroy') process.exit(Number(process.env.FAKE_DESTROY ?? 0));`,
  );
  const vitest = standIn(
    'vitest',
    `appendFileSync(process.env.FAKE_LOG, 'url ' + process.env.FLEET_E2E_URL + ' ' + process.env.FLEET_E2E_REGION + '\\n');
if (process.env.FAKE_TESTS === 'hang') setInterval(() => undefined, 1000);
else process.exit(process.env.FAKE_TESTS === 'fail' ? 1 : 0);`,
  );
  // A driver that runs deployTestDestroy with the stand-ins, as run.ts runs it with the real tools.
  const driver = path.join(dir, 'driver.mts');
  writeFileSync(
    driver,
    `import { deployTestDestroy } from ${JSON.stringify(pathToFileURL(path.join(REPO_ROOT, 'test/aws/runner.ts')).href)};
process.exitCode = await deployTestDestroy('e2e-fake', 'eu-west-1', process.env, { cdk: ${JSON.stringify(cdk)}, vitest: ${JSON.stringify(vitest)} });
`,
  );

  let runs = 0;
  /** Runs the driver; `whenLogged` lets the test act (e.g. send a signal) once a line appears in the log. */
  function drive(env: Record<string, string>, whenLogged?: { line: RegExp; act: (pid: number) => void }) {
    const log = path.join(dir, `log-${++runs}`);
    writeFileSync(log, '');
    return new Promise<{ code: number | null; log: string[]; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', driver], { cwd: REPO_ROOT, env: { ...process.env, ...env, FAKE_LOG: log }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk) => (stderr += String(chunk)));
      const timer = whenLogged
        ? setInterval(() => {
            if (whenLogged.line.test(readFileSync(log, 'utf8'))) {
              clearInterval(timer);
              whenLogged.act(child.pid as number);
            }
          }, 20)
        : undefined;
      child.on('exit', (code) => {
        if (timer) clearInterval(timer);
        // The destroy runs detached; it has ended when the driver exits, since the driver waits for it.
        resolve({ code, log: readFileSync(log, 'utf8').trim().split('\n'), stderr });
      });
    });
  }

  it('deploys the scratch stack, runs the scenarios against its ApiUrl and region, then destroys it: exit 0', async () => {
    const { code, log, stderr } = await drive({ FAKE_TESTS: 'pass' });
    expect(code).toBe(EXIT.ok);
    expect(log[0]).toMatch(/^cdk deploy Fleet-e2e-fake -c stage=e2e-fake -c scratch=true --require-approval never --outputs-file \S+outputs\.json/);
    expect(log[1]).toBe('vitest run --config vitest.aws.config.ts');
    expect(log[2]).toBe(`url ${apiUrl} eu-west-1`);
    expect(log[3]).toBe('cdk destroy Fleet-e2e-fake -c stage=e2e-fake -c scratch=true --force');
    expect(log).toHaveLength(4);
    expect(stderr).toMatch(/destroyed Fleet-e2e-fake/);
  });

  it('destroys the stack when a scenario fails (exit 1) and when the deploy fails (exit 3, no scenarios run)', async () => {
    const failed = await drive({ FAKE_TESTS: 'fail' });
    expect(failed.code).toBe(EXIT.testsFailed);
    expect(failed.log.at(-1)).toMatch(/^cdk destroy Fleet-e2e-fake /);

    const undeployed = await drive({ FAKE_DEPLOY: 'fail' });
    expect(undeployed.code).toBe(EXIT.deployFailed);
    expect(undeployed.log.map((line) => line.split(' ').slice(0, 2).join(' '))).toEqual(['cdk deploy', 'cdk destroy']);
  });

  it('on Ctrl-C during the scenarios, stops them and still destroys the stack: exit 130', async () => {
    const { code, log, stderr } = await drive({ FAKE_TESTS: 'hang' }, { line: /^url /m, act: (pid) => process.kill(pid, 'SIGINT') });
    expect(code).toBe(EXIT.interrupted);
    expect(log.at(-1)).toMatch(/^cdk destroy Fleet-e2e-fake /);
    expect(stderr).toMatch(/SIGINT: stopping; Fleet-e2e-fake will be destroyed/);
  });

  it('says so, with the command to run, when the destroy fails: exit 4', async () => {
    const { code, stderr } = await drive({ FAKE_TESTS: 'pass', FAKE_DESTROY: '1' });
    expect(code).toBe(EXIT.destroyFailed);
    expect(stderr).toMatch(/Fleet-e2e-fake may still exist in eu-west-1\. Destroy it yourself: npx cdk destroy Fleet-e2e-fake -c stage=e2e-fake -c scratch=true --force/);
  });
});
