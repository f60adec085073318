/**
 * The local fleet's settings, parsed once at start, as the handlers parse
 * their environment (lambdas/adapters/clients.ts, loadEnv): startLocalFleet's
 * options over the FLEET_* variables they default to, and `npm start`'s
 * variables (infra/local/main.ts). A wrong one fails the start with a message
 * naming it (the option, the variable, or both when either could have set it),
 * before any emulator runs.
 */
import * as path from 'node:path';
import { z } from 'zod';
import { parseFaults, type FaultProfile } from './faults';
import type { LocalFleetOptions } from './local-fleet';

/** Names the API answers to without a token: loopback's. */
export const LOOPBACK: ReadonlySet<string> = new Set(['127.0.0.1', '::1', 'localhost']);

/** Thrown for a wrong setting; the message names it. */
export class LocalSettingsError extends Error {
  override readonly name = 'LocalSettingsError';
}

type Env = Readonly<Record<string, string | undefined>>;

/** A number from an option, else from a variable (unset or empty: absent). */
const numberFrom = (option: number | undefined, variable: string | undefined) =>
  option ?? (variable === undefined || variable.trim() === '' ? undefined : Number(variable));

const whole = (min: number, max: number = Number.MAX_SAFE_INTEGER) => {
  const message = max === Number.MAX_SAFE_INTEGER ? `must be a whole number of at least ${min}` : `must be a whole number from ${min} to ${max}`;
  return z.number({ error: message }).int(message).min(min, message).max(max, message);
};
const milliseconds = z.number({ error: 'must be a number of milliseconds, 0 or more' }).min(0, 'must be a number of milliseconds, 0 or more');
const positive = z.number({ error: 'must be a positive number' }).positive('must be a positive number');
const portNumber = whole(0, 65_535);
/** Powertools Logger's levels, in any case. */
const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL', 'SILENT'] as const;

/** Names an issue by the option and, when one stands behind it, the variable. */
const LABELS: Record<string, string> = {
  port: 'port / PORT',
  lambdaConcurrencyLimit: 'lambdaConcurrencyLimit / FLEET_LAMBDA_CONCURRENCY',
  retentionDays: 'retentionDays / FLEET_RETENTION_DAYS',
  sweepIntervalMs: 'sweepIntervalMs / FLEET_SWEEP_INTERVAL_MS',
  autoscaleIntervalMs: 'autoscaleIntervalMs / FLEET_AUTOSCALE_INTERVAL_MS',
  logLevel: 'FLEET_LOG_LEVEL',
};

function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, labels: Record<string, string>): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const key = issue.path.join('.');
    return `${labels[String(issue.path[0])] ?? key}: ${issue.message}`;
  });
  throw new LocalSettingsError(`local fleet misconfigured: ${problems.join('; ')}`);
}

const settingsSchema = z.object({
  host: z.string().min(1, 'must be a host name or address'),
  token: z
    .string()
    .optional()
    .transform((token) => token || undefined),
  port: portNumber,
  projectRoot: z.string(),
  dataDir: z.string(),
  inMemory: z.boolean(),
  retryUnitMs: milliseconds,
  expressMaxDurationMs: positive.optional(),
  maxTasksPerBatch: whole(1).optional(),
  maxBodyBytes: whole(1).optional(),
  apiIntegrationTimeoutMs: positive.optional(),
  liftApiLimits: z.boolean(),
  lambdaConcurrencyLimit: whole(1).optional(),
  retentionDays: positive.optional(),
  sweepIntervalMs: milliseconds,
  autoscaleIntervalMs: milliseconds.optional(),
  logLevel: z.preprocess((level) => (typeof level === 'string' ? level.toUpperCase() : level), z.enum(LOG_LEVELS, `must be one of ${LOG_LEVELS.join(', ')}`)),
  dashboard: z.boolean(),
});

/** startLocalFleet's settings, resolved and checked. */
export type LocalFleetSettings = z.output<typeof settingsSchema> & {
  /** Host names served besides loopback's (and `host`, when it is not loopback). */
  allowedHosts: string[];
  faults: FaultProfile | undefined;
};

/** The plain options startLocalFleet's settings come from: its own options (documented there), and the fleet's project root. */
export type LocalFleetSettingsInput = Pick<
  LocalFleetOptions,
  | 'projectRoot'
  | 'port'
  | 'host'
  | 'token'
  | 'allowedHosts'
  | 'dataDir'
  | 'inMemory'
  | 'retryUnitMs'
  | 'expressMaxDurationMs'
  | 'maxTasksPerBatch'
  | 'maxBodyBytes'
  | 'apiIntegrationTimeoutMs'
  | 'liftApiLimits'
  | 'lambdaConcurrencyLimit'
  | 'faults'
  | 'retentionDays'
  | 'sweepIntervalMs'
  | 'autoscaleIntervalMs'
  | 'dashboard'
> & { fleetProjectRoot?: string | undefined };

/**
 * The names the API answers to besides loopback's: those configured, and the
 * address it listens on when that is not loopback (only allowed with a token).
 * A malformed name fails the start, naming it.
 */
function allowedHostsOf(configured: readonly string[], host: string): string[] {
  const names = configured.map((name) => name.trim()).filter((name) => name !== '');
  for (const name of names) {
    if (!/^(\[?[0-9a-f:.]+\]?|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)$/i.test(name)) {
      throw new LocalSettingsError(`allowedHosts / FLEET_ALLOWED_HOSTS: "${name}" is not a host name (give names without scheme, port or path)`);
    }
  }
  return LOOPBACK.has(host) ? names : [...names, host];
}

/**
 * startLocalFleet's settings: each option, else the FLEET_* variable it
 * defaults to, else its default (LocalFleetOptions documents each).
 * @throws LocalSettingsError naming the option or variable
 */
export function parseLocalFleetSettings(options: LocalFleetSettingsInput, env: Env = process.env): LocalFleetSettings {
  const host = options.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host) && !options.token) {
    throw new LocalSettingsError(`refusing to listen on ${host} without a token: set FLEET_TOKEN, or bind 127.0.0.1`);
  }
  const projectRoot = path.resolve(options.projectRoot ?? options.fleetProjectRoot ?? process.cwd());
  const settings = parseOrThrow(
    settingsSchema,
    {
      host,
      token: options.token,
      port: options.port ?? 3000,
      projectRoot,
      dataDir: path.resolve(projectRoot, options.dataDir ?? '.fleet-data'),
      inMemory: options.inMemory ?? false,
      retryUnitMs: options.retryUnitMs ?? 1000,
      expressMaxDurationMs: options.expressMaxDurationMs,
      maxTasksPerBatch: options.maxTasksPerBatch,
      maxBodyBytes: options.maxBodyBytes,
      apiIntegrationTimeoutMs: options.apiIntegrationTimeoutMs,
      liftApiLimits: options.liftApiLimits ?? false,
      lambdaConcurrencyLimit: numberFrom(options.lambdaConcurrencyLimit, env.FLEET_LAMBDA_CONCURRENCY),
      retentionDays: numberFrom(options.retentionDays, env.FLEET_RETENTION_DAYS),
      sweepIntervalMs: numberFrom(options.sweepIntervalMs, env.FLEET_SWEEP_INTERVAL_MS) ?? 600_000,
      autoscaleIntervalMs: numberFrom(options.autoscaleIntervalMs, env.FLEET_AUTOSCALE_INTERVAL_MS),
      logLevel: env.FLEET_LOG_LEVEL || 'WARN',
      dashboard: options.dashboard ?? true,
    },
    LABELS,
  );
  // Checked here, so a wrong rate fails before any emulator starts (parseFaults names FLEET_FAULTS and the key).
  const spec = options.faults ?? env.FLEET_FAULTS;
  let faults: FaultProfile | undefined;
  try {
    faults = spec === undefined || spec === '' ? undefined : typeof spec === 'string' ? parseFaults(spec) : spec;
  } catch (error) {
    throw new LocalSettingsError((error as Error).message);
  }
  return { ...settings, allowedHosts: allowedHostsOf(options.allowedHosts ?? (env.FLEET_ALLOWED_HOSTS ?? '').split(','), host), faults };
}

/** What `npm start` reads from its environment (infra/local/main.ts's header lists them). */
export interface MainSettings {
  port: number;
  host: string;
  token: string | undefined;
  dataDir: string | undefined;
  inMemory: boolean;
  retryUnitMs: number | undefined;
  maxTasksPerBatch: number | undefined;
  /** How long SIGTERM/SIGINT lets running tasks finish. */
  drainMs: number;
}

const optionalNumber = (schema: z.ZodType<number, number>) =>
  z
    .string()
    .optional()
    .transform((value) => (value === undefined || value.trim() === '' ? undefined : Number(value)))
    .pipe(schema.optional());

const mainEnvSchema = z.object({
  PORT: optionalNumber(portNumber).transform((port) => port ?? 3000),
  HOST: z.string().optional().transform((host) => host || '127.0.0.1'),
  FLEET_TOKEN: z.string().optional().transform((token) => token || undefined),
  FLEET_DATA_DIR: z.string().optional().transform((dir) => dir || undefined),
  FLEET_IN_MEMORY: z.enum(['', '0', '1'], 'must be 1 (in memory) or 0').optional().transform((value) => value === '1'),
  FLEET_RETRY_UNIT_MS: optionalNumber(milliseconds),
  FLEET_MAX_TASKS_PER_BATCH: optionalNumber(whole(1)),
  FLEET_DRAIN_MS: optionalNumber(milliseconds).transform((ms) => ms ?? 10_000),
});

/**
 * `npm start`'s settings from its environment: PORT, HOST, FLEET_TOKEN,
 * FLEET_DATA_DIR, FLEET_IN_MEMORY, FLEET_RETRY_UNIT_MS,
 * FLEET_MAX_TASKS_PER_BATCH, FLEET_DRAIN_MS (the fleet's own FLEET_*
 * variables are read by parseLocalFleetSettings).
 * @throws LocalSettingsError naming the variable
 */
export function parseMainSettings(env: Env = process.env): MainSettings {
  const parsed = parseOrThrow(mainEnvSchema, env, {});
  return {
    port: parsed.PORT,
    host: parsed.HOST,
    token: parsed.FLEET_TOKEN,
    dataDir: parsed.FLEET_DATA_DIR,
    inMemory: parsed.FLEET_IN_MEMORY,
    retryUnitMs: parsed.FLEET_RETRY_UNIT_MS,
    maxTasksPerBatch: parsed.FLEET_MAX_TASKS_PER_BATCH,
    drainMs: parsed.FLEET_DRAIN_MS,
  };
}
