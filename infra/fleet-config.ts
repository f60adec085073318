/**
 * The fleet's configuration, one per stage (in the manner of skuba's
 * infra/config.ts): the one place to configure the fleet, for `cdk deploy`
 * (infra/app.ts, `-c stage=<stage>`, default `dev`) and `npm start`
 * (infra/local/main.ts, the `local` stage) alike.
 *
 * A stage's config holds plain values, checked by a zod schema when it is
 * loaded: a wrong one fails `cdk synth` or `npm start` with a message naming
 * the stage and the field. They become the Fleet construct's props
 * (FleetProps), which the construct checks once more. CDK objects (override
 * props, an alarm topic) are for the construct in your own stack (README:
 * Use Fleet from your own project).
 *
 * For example (README: Per-type worker functions, Autoscaling):
 *
 *   workers: { thumbnail: { entry: 'examples/workers/thumbnail-worker.ts', memorySize: 2048 } },
 *   autoscaling: { min: 2, max: 50 },
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { z } from 'zod';
import { LIMITS } from '../lambdas/domain/config';
import { taskTypeSchema } from '../lambdas/domain/schemas';
import type { FleetProps } from './fleet-props';

/** The stages with a config of their own. */
export const FLEET_STAGES = ['local', 'dev', 'prod'] as const;
export type FleetStage = (typeof FLEET_STAGES)[number];

/**
 * `npm run test:aws` deploys throwaway stacks named after stages `e2e-<suffix>`
 * (test/aws/runner.ts): they run the `dev` config.
 */
const SCRATCH_STAGE = /^e2e-[A-Za-z0-9-]+$/;

const wholeNumber = (min: number, max: number = Number.MAX_SAFE_INTEGER) =>
  z
    .number()
    .int('must be a whole number')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);
const memorySize = wholeNumber(128, 10_240);

const workerSchema = z.strictObject({
  /** The handler module, relative to the project root (where cdk.json is). */
  entry: z.string().min(1, 'the path of the handler module is required'),
  handler: z.string().min(1).optional(),
  memorySize: memorySize.optional(),
  /** The Lambda timeout, in seconds (Lambda allows 1 to 900). */
  timeoutSeconds: wholeNumber(1, 900).optional(),
});

const autoscalingSchema = z
  .strictObject({
    min: wholeNumber(1, LIMITS.maxConcurrentWorkers),
    max: wholeNumber(1, LIMITS.maxConcurrentWorkers),
    tasksPerWorker: z.number().positive('must be positive').optional(),
    deadBand: z.number().min(0, 'must be from 0 to less than 1').lt(1, 'must be from 0 to less than 1').optional(),
  })
  .refine((policy) => policy.max >= policy.min, { error: 'must be at least min', path: ['max'] });

/** What one stage's config may hold: FleetProps' plain-valued fields, with the same meaning and defaults. */
export const fleetStageConfigSchema = z.strictObject({
  /** FleetProps.workers, with the timeout in seconds. */
  workers: z.record(taskTypeSchema, workerSchema).optional(),
  autoscaling: autoscalingSchema.optional(),
  retentionDays: wholeNumber(1).optional(),
  workerMemorySize: memorySize.optional(),
  maxTasksPerBatch: wholeNumber(1).optional(),
  /** FleetProps.removalPolicy of the table, buckets and queue. @default 'retain' */
  removalPolicy: z.enum(['retain', 'destroy']).optional(),
  /** FleetProps.childExecutionType. @default 'EXPRESS' */
  childExecutionType: z.enum(['EXPRESS', 'STANDARD']).optional(),
  /** FleetProps.stateMachineLogLevel. @default 'ERROR' */
  stateMachineLogLevel: z.enum(['ALL', 'ERROR', 'FATAL', 'OFF']).optional(),
  environment: z.record(z.string(), z.string()).optional(),
  authorization: z
    .union([
      z.literal('iam'),
      z.strictObject({ jwt: z.strictObject({ issuer: z.url('must be a URL'), audience: z.array(z.string().min(1)).min(1, 'needs at least one audience') }) }),
    ])
    .optional(),
  throttle: z.strictObject({ rateLimit: z.number().positive('must be positive').optional(), burstLimit: wholeNumber(0).optional() }).optional(),
  tracing: z.boolean().optional(),
  logLevel: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']).optional(),
  failureRateAlarmThreshold: z.number().min(0, 'must be from 0 to below 100').lt(100, 'must be from 0 to below 100').optional(),
  tasksFileBuckets: z.array(z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name')).optional(),
  workerListing: z.enum(['every-attempt', 'long-attempts']).optional(),
});

/** One stage's config, as written below. */
export type FleetStageConfig = z.input<typeof fleetStageConfigSchema>;

/**
 * What every stage shares. Local mode runs the same as the deployed stages
 * unless a stage says otherwise, so `npm start` runs the configuration that deploys.
 */
const shared: FleetStageConfig = {};

/** Each stage's config: edit these. */
export const STAGE_CONFIGS: Readonly<Record<FleetStage, FleetStageConfig>> = {
  local: { ...shared },
  dev: { ...shared },
  prod: { ...shared },
};

/** Thrown when a stage name or its config is wrong; the message names the stage and each wrong field. */
export class FleetConfigError extends Error {
  override readonly name = 'FleetConfigError';
}

/** The config stage a stack's stage runs: its own, or `dev` for a scratch stage (`e2e-...`). */
export function configStageOf(stage: string): FleetStage {
  if ((FLEET_STAGES as readonly string[]).includes(stage)) return stage as FleetStage;
  if (SCRATCH_STAGE.test(stage)) return 'dev';
  throw new FleetConfigError(`Fleet config: stage "${stage}" is not one of ${FLEET_STAGES.join(', ')} (or a scratch stage e2e-<suffix>)`);
}

/** A stage's config, checked. */
export function parseStageConfig(stage: FleetStage, config: unknown): z.output<typeof fleetStageConfigSchema> {
  const parsed = fleetStageConfigSchema.safeParse(config);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(config)'}: ${issue.message}`);
    throw new FleetConfigError(`Fleet config, stage "${stage}": ${problems.join('; ')}`);
  }
  return parsed.data;
}

/** A checked stage config as the Fleet construct's props. */
export function toFleetProps(config: z.output<typeof fleetStageConfigSchema>): FleetProps {
  const { workers, removalPolicy, childExecutionType, stateMachineLogLevel, ...plain } = config;
  return {
    ...plain,
    ...(workers
      ? {
          workers: Object.fromEntries(
            Object.entries(workers).map(([type, { timeoutSeconds, ...worker }]) => [
              type,
              { ...worker, ...(timeoutSeconds !== undefined ? { timeout: Duration.seconds(timeoutSeconds) } : {}) },
            ]),
          ),
        }
      : {}),
    ...(removalPolicy ? { removalPolicy: removalPolicy === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN } : {}),
    ...(childExecutionType ? { childExecutionType: sfn.StateMachineType[childExecutionType] } : {}),
    ...(stateMachineLogLevel ? { stateMachineLogLevel: sfn.LogLevel[stateMachineLogLevel] } : {}),
  };
}

/**
 * The Fleet construct's props for a stage (`local`, `dev`, `prod`, or a
 * scratch `e2e-...`), from `configs` (STAGE_CONFIGS unless a test gives its own).
 * @throws FleetConfigError naming the stage and each wrong field
 */
export function fleetPropsFor(stage: string, configs: Readonly<Record<FleetStage, unknown>> = STAGE_CONFIGS): FleetProps {
  const configStage = configStageOf(stage);
  return toFleetProps(parseStageConfig(configStage, configs[configStage]));
}

/**
 * Where `cdk deploy` deploys: environment-agnostic (wherever the CLI points)
 * unless FLEET_ACCOUNT pins an account, with FLEET_REGION its region.
 * @throws FleetConfigError naming the variable
 */
export function deployEnvironment(env: Readonly<Record<string, string | undefined>>): { account: string; region?: string } | undefined {
  const parsed = z
    .object({
      FLEET_ACCOUNT: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id').optional(),
      FLEET_REGION: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'must be an AWS region such as eu-west-1').optional(),
    })
    .safeParse({ FLEET_ACCOUNT: env.FLEET_ACCOUNT || undefined, FLEET_REGION: env.FLEET_REGION || undefined });
  if (!parsed.success) {
    throw new FleetConfigError(`Fleet config: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
  }
  const { FLEET_ACCOUNT: account, FLEET_REGION: region } = parsed.data;
  return account ? { account, ...(region ? { region } : {}) } : undefined;
}
