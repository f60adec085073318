/**
 * infra/local/settings.ts: startLocalFleet's options over the FLEET_*
 * variables, and `npm start`'s environment, parsed at start; a wrong setting
 * fails naming it, before any emulator runs.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalSettingsError, parseLocalFleetSettings, parseMainSettings } from '../../infra/local/settings';

describe('startLocalFleet settings', () => {
  it('defaults every setting as LocalFleetOptions documents', () => {
    // Act
    const settings = parseLocalFleetSettings({ projectRoot: '/project' }, {});

    // Assert
    expect(settings).toEqual({
      host: '127.0.0.1',
      token: undefined,
      port: 3000,
      projectRoot: path.resolve('/project'),
      dataDir: path.resolve('/project', '.fleet-data'),
      inMemory: false,
      retryUnitMs: 1000,
      expressMaxDurationMs: undefined,
      maxTasksPerBatch: undefined,
      maxBodyBytes: undefined,
      apiIntegrationTimeoutMs: undefined,
      liftApiLimits: false,
      lambdaConcurrencyLimit: undefined,
      retentionDays: undefined,
      sweepIntervalMs: 600_000,
      autoscaleIntervalMs: undefined,
      logLevel: 'WARN',
      dashboard: true,
      allowedHosts: [],
      faults: undefined,
    });
  });

  it('takes each FLEET_* variable when its option is not given, and the option over it', () => {
    // Arrange
    const env = {
      FLEET_LAMBDA_CONCURRENCY: '50',
      FLEET_RETENTION_DAYS: '0.5',
      FLEET_SWEEP_INTERVAL_MS: '0',
      FLEET_AUTOSCALE_INTERVAL_MS: '200',
      FLEET_ALLOWED_HOSTS: ' one.test , two.test',
      FLEET_FAULTS: 'lambda=0.5,seed=7',
      FLEET_LOG_LEVEL: 'debug',
    };

    // Act
    const fromEnv = parseLocalFleetSettings({}, env);
    const fromOptions = parseLocalFleetSettings({ lambdaConcurrencyLimit: 3, retentionDays: 2, sweepIntervalMs: 10, autoscaleIntervalMs: 0, allowedHosts: ['three.test'], faults: '' }, env);

    // Assert
    expect(fromEnv).toMatchObject({ lambdaConcurrencyLimit: 50, retentionDays: 0.5, sweepIntervalMs: 0, autoscaleIntervalMs: 200, allowedHosts: ['one.test', 'two.test'], logLevel: 'DEBUG' });
    expect(fromEnv.faults).toEqual({ rates: { lambda: 0.5 }, seed: 7 });
    expect(fromOptions).toMatchObject({ lambdaConcurrencyLimit: 3, retentionDays: 2, sweepIntervalMs: 10, autoscaleIntervalMs: 0, allowedHosts: ['three.test'] });
    // An empty option stands (faults: '' turns FLEET_FAULTS off), as `??` did before.
    expect(fromOptions.faults).toBeUndefined();
  });

  it('serves a non-loopback host by its own name too, and only with a token', () => {
    // Act
    const settings = parseLocalFleetSettings({ host: '0.0.0.0', token: 't0ken' }, {});

    // Assert
    expect(settings.allowedHosts).toEqual(['0.0.0.0']);
    expect(() => parseLocalFleetSettings({ host: '0.0.0.0' }, {})).toThrow('refusing to listen on 0.0.0.0 without a token: set FLEET_TOKEN, or bind 127.0.0.1');
  });

  it.each([
    ['FLEET_LAMBDA_CONCURRENCY', {}, { FLEET_LAMBDA_CONCURRENCY: 'lots' }, /lambdaConcurrencyLimit \/ FLEET_LAMBDA_CONCURRENCY: must be a whole number of at least 1/],
    ['lambdaConcurrencyLimit', { lambdaConcurrencyLimit: 0 }, {}, /lambdaConcurrencyLimit \/ FLEET_LAMBDA_CONCURRENCY/],
    ['FLEET_RETENTION_DAYS', {}, { FLEET_RETENTION_DAYS: '-1' }, /retentionDays \/ FLEET_RETENTION_DAYS: must be a positive number/],
    ['FLEET_SWEEP_INTERVAL_MS', {}, { FLEET_SWEEP_INTERVAL_MS: '10m' }, /sweepIntervalMs \/ FLEET_SWEEP_INTERVAL_MS: must be a number of milliseconds/],
    ['FLEET_AUTOSCALE_INTERVAL_MS', {}, { FLEET_AUTOSCALE_INTERVAL_MS: '-5' }, /autoscaleIntervalMs \/ FLEET_AUTOSCALE_INTERVAL_MS/],
    ['FLEET_LOG_LEVEL', {}, { FLEET_LOG_LEVEL: 'LOUD' }, /FLEET_LOG_LEVEL: must be one of/],
    ['port', { port: 70_000 }, {}, /port \/ PORT: must be a whole number from 0 to 65535/],
    ['retryUnitMs', { retryUnitMs: -1 }, {}, /retryUnitMs: must be a number of milliseconds/],
    ['maxTasksPerBatch', { maxTasksPerBatch: 2.5 }, {}, /maxTasksPerBatch: must be a whole number/],
    ['FLEET_FAULTS', {}, { FLEET_FAULTS: 'lambda' }, /FLEET_FAULTS: "lambda" is not key=value/],
    ['FLEET_ALLOWED_HOSTS', {}, { FLEET_ALLOWED_HOSTS: 'http://fleet.test:3000/' }, /allowedHosts \/ FLEET_ALLOWED_HOSTS: "http:\/\/fleet.test:3000\/" is not a host name/],
  ])('refuses a wrong %s, naming it', (_name, options, env, message) => {
    // Act
    const parse = () => parseLocalFleetSettings(options, env);

    // Assert
    expect(parse).toThrow(LocalSettingsError);
    expect(parse).toThrow(message);
  });
});

describe('npm start settings (infra/local/main.ts)', () => {
  it('defaults as the header of main.ts says', () => {
    // Act / Assert
    expect(parseMainSettings({})).toEqual({
      port: 3000,
      host: '127.0.0.1',
      token: undefined,
      dataDir: undefined,
      inMemory: false,
      retryUnitMs: undefined,
      maxTasksPerBatch: undefined,
      drainMs: 10_000,
    });
  });

  it('reads every variable', () => {
    // Arrange
    const env = {
      PORT: '0',
      HOST: '::1',
      FLEET_TOKEN: 'secret',
      FLEET_DATA_DIR: 'data',
      FLEET_IN_MEMORY: '1',
      FLEET_RETRY_UNIT_MS: '1',
      FLEET_MAX_TASKS_PER_BATCH: '500',
      FLEET_DRAIN_MS: '250',
    };

    // Act / Assert
    expect(parseMainSettings(env)).toEqual({ port: 0, host: '::1', token: 'secret', dataDir: 'data', inMemory: true, retryUnitMs: 1, maxTasksPerBatch: 500, drainMs: 250 });
    // An empty FLEET_TOKEN is no token, as before.
    expect(parseMainSettings({ FLEET_TOKEN: '' }).token).toBeUndefined();
  });

  it.each([
    ['PORT', { PORT: 'http' }, /PORT: must be a whole number from 0 to 65535/],
    ['FLEET_IN_MEMORY', { FLEET_IN_MEMORY: 'yes' }, /FLEET_IN_MEMORY: must be 1 \(in memory\) or 0/],
    ['FLEET_RETRY_UNIT_MS', { FLEET_RETRY_UNIT_MS: 'fast' }, /FLEET_RETRY_UNIT_MS: must be a number of milliseconds/],
    ['FLEET_MAX_TASKS_PER_BATCH', { FLEET_MAX_TASKS_PER_BATCH: '0' }, /FLEET_MAX_TASKS_PER_BATCH: must be a whole number of at least 1/],
    ['FLEET_DRAIN_MS', { FLEET_DRAIN_MS: '-1' }, /FLEET_DRAIN_MS: must be a number of milliseconds/],
  ])('refuses a wrong %s, naming it', (_name, env, message) => {
    // Act / Assert
    expect(() => parseMainSettings(env)).toThrow(LocalSettingsError);
    expect(() => parseMainSettings(env)).toThrow(message);
  });
});
