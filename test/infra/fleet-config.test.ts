/**
 * infra/fleet-config.ts: one zod-checked config per stage, turned into the
 * Fleet construct's props; a wrong stage or field fails naming it.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { describe, expect, it } from 'vitest';
import { configStageOf, deployEnvironment, FLEET_STAGES, FleetConfigError, fleetPropsFor, STAGE_CONFIGS, type FleetStageConfig } from '../../infra/fleet-config';
import { synth } from './synth';

const withStage = (stage: 'local' | 'dev' | 'prod', config: unknown) => ({ ...STAGE_CONFIGS, [stage]: config });

describe('fleet config: stages', () => {
  it('has a valid config for local, dev and prod', () => {
    // Arrange / Act
    const props = FLEET_STAGES.map((stage) => fleetPropsFor(stage));

    // Assert
    expect(FLEET_STAGES).toEqual(['local', 'dev', 'prod']);
    expect(props).toHaveLength(3);
    for (const p of props) expect(p).toBeTypeOf('object');
  });

  it("runs a scratch stage (e2e-<suffix>, npm run test:aws) with dev's config", () => {
    // Arrange
    const configs = withStage('dev', { retentionDays: 3 });

    // Act
    const props = fleetPropsFor('e2e-1a2b3c', configs);

    // Assert
    expect(configStageOf('e2e-1a2b3c')).toBe('dev');
    expect(props.retentionDays).toBe(3);
  });

  it('refuses an unknown stage, naming it', () => {
    // Act / Assert
    expect(() => fleetPropsFor('staging')).toThrow(FleetConfigError);
    expect(() => fleetPropsFor('staging')).toThrow(/stage "staging" is not one of local, dev, prod/);
  });

  it("synthesizes dev's config as the stack without props (what deployed before stages had configs)", () => {
    // Arrange
    const json = (props?: Parameters<typeof synth>[1]) => JSON.stringify(synth('ConfigDev', props).template.toJSON());

    // Act / Assert
    expect(json(fleetPropsFor('dev'))).toBe(json(undefined));
  });
});

describe('fleet config: fields', () => {
  it('turns plain values into the construct props (seconds into a Duration, names into CDK enums)', () => {
    // Arrange
    const config: FleetStageConfig = {
      workers: { thumbnail: { entry: 'examples/workers/thumbnail-worker.ts', memorySize: 2048, timeoutSeconds: 180 } },
      autoscaling: { min: 2, max: 50 },
      removalPolicy: 'destroy',
      childExecutionType: 'STANDARD',
      stateMachineLogLevel: 'ALL',
      authorization: { jwt: { issuer: 'https://issuer.example.com', audience: ['fleet'] } },
      tasksFileBuckets: ['my-data-bucket'],
      logLevel: 'DEBUG',
    };

    // Act
    const props = fleetPropsFor('prod', withStage('prod', config));

    // Assert
    expect(props.workers?.thumbnail).toEqual({ entry: 'examples/workers/thumbnail-worker.ts', memorySize: 2048, timeout: Duration.seconds(180) });
    expect(props.workers?.thumbnail?.timeout?.toSeconds()).toBe(180);
    expect(props.autoscaling).toEqual({ min: 2, max: 50 });
    expect(props.removalPolicy).toBe(RemovalPolicy.DESTROY);
    expect(props.childExecutionType).toBe(sfn.StateMachineType.STANDARD);
    expect(props.stateMachineLogLevel).toBe(sfn.LogLevel.ALL);
    expect(props.authorization).toEqual({ jwt: { issuer: 'https://issuer.example.com', audience: ['fleet'] } });
    expect(props.tasksFileBuckets).toEqual(['my-data-bucket']);
    expect(props.logLevel).toBe('DEBUG');
  });

  it.each([
    ['autoscaling.max', { autoscaling: { min: 5, max: 2 } }, /autoscaling\.max: must be at least min/],
    ['workers.<type>.timeoutSeconds', { workers: { thumbnail: { entry: 'w.ts', timeoutSeconds: 901 } } }, /workers\.thumbnail\.timeoutSeconds: must be at most 900/],
    ['workers.<type>.entry', { workers: { thumbnail: { entry: '' } } }, /workers\.thumbnail\.entry: the path of the handler module is required/],
    ['a worker type', { workers: { '1bad': { entry: 'w.ts' } } }, /workers\.1bad/],
    ['workerMemorySize', { workerMemorySize: 64 }, /workerMemorySize: must be at least 128/],
    ['retentionDays', { retentionDays: 1.5 }, /retentionDays: must be a whole number/],
    ['tasksFileBuckets', { tasksFileBuckets: ['Not_A_Bucket'] }, /tasksFileBuckets\.0: must be an S3 bucket name/],
    ['authorization.jwt.issuer', { authorization: { jwt: { issuer: 'nope', audience: ['a'] } } }, /authorization/],
    ['removalPolicy', { removalPolicy: 'keep' }, /removalPolicy/],
    ['an unknown field', { retentionDay: 3 }, /retentionDay/],
  ])('refuses a wrong %s, naming the stage and the field', (_field, config, message) => {
    // Act
    const load = () => fleetPropsFor('dev', withStage('dev', config));

    // Assert
    expect(load).toThrow(FleetConfigError);
    expect(load).toThrow(/^Fleet config, stage "dev": /);
    expect(load).toThrow(message);
  });
});

describe('fleet config: deploy environment', () => {
  it('is environment-agnostic unless FLEET_ACCOUNT pins an account', () => {
    // Act / Assert
    expect(deployEnvironment({})).toBeUndefined();
    expect(deployEnvironment({ FLEET_ACCOUNT: '', FLEET_REGION: '' })).toBeUndefined();
    expect(deployEnvironment({ FLEET_ACCOUNT: '123456789012' })).toEqual({ account: '123456789012' });
    expect(deployEnvironment({ FLEET_ACCOUNT: '123456789012', FLEET_REGION: 'eu-west-1' })).toEqual({ account: '123456789012', region: 'eu-west-1' });
  });

  it('refuses a malformed FLEET_ACCOUNT or FLEET_REGION, naming it', () => {
    // Act / Assert
    expect(() => deployEnvironment({ FLEET_ACCOUNT: '1234' })).toThrow(/FLEET_ACCOUNT: must be a 12-digit AWS account id/);
    expect(() => deployEnvironment({ FLEET_ACCOUNT: '123456789012', FLEET_REGION: 'Europe' })).toThrow(/FLEET_REGION: must be an AWS region/);
  });
});
