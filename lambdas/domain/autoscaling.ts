/**
 * Autoscaling, as in the seed's AutoScalingFleetManager: on a schedule,
 * maxConcurrentWorkers follows the backlog (tasks of unfinished batches not
 * yet finished), within `[min, max]`.
 *
 * - Scale out at once to what the backlog can use: a waiting task is work a
 *   worker could be doing.
 * - Scale in only once the backlog would leave a good part of the workers
 *   idle (the dead band), so a backlog that drains task by task does not
 *   move the cap on every run. An empty backlog always returns to `min`.
 *
 * Pure: the autoscaler Lambda (lambdas/autoscaler.ts) reads the batches and
 * applies the decision through FleetService.scaleWorkers, the path of
 * `POST /workers/scale`, so running batches get UpdateMapRun.
 */
import { z } from 'zod';
import { LIMITS } from './config';
import { mapConcurrently } from './fleet-activity';
import type { BatchStatus, FleetManagerConfig } from './types';

export interface AutoscalingPolicy {
  /** Fewest workers: the cap never goes below it. */
  min: number;
  /** Most workers: the cap never goes above it. */
  max: number;
  /** Unfinished tasks (waiting or running) per worker the policy aims for. */
  tasksPerWorker: number;
  /**
   * Scale in only when the backlog needs at most `(1 - deadBand)` of the
   * current workers. 0 follows the backlog exactly; 0.5 waits until half
   * would be idle.
   */
  deadBand: number;
}

/** The seed scales out once more than two tasks wait per worker. */
export const DEFAULT_TASKS_PER_WORKER = 2;
/** The seed scales in once the backlog would keep fewer than half the workers busy. */
export const DEFAULT_DEAD_BAND = 0.5;

const policySchema = z
  .strictObject({
    min: z.number().int('must be an integer').min(1, 'must be at least 1').max(LIMITS.maxConcurrentWorkers),
    max: z.number().int('must be an integer').min(1, 'must be at least 1').max(LIMITS.maxConcurrentWorkers, `must be at most ${LIMITS.maxConcurrentWorkers}`),
    tasksPerWorker: z.number().positive('must be positive').default(DEFAULT_TASKS_PER_WORKER),
    deadBand: z.number().min(0, 'must be from 0 to less than 1').lt(1, 'must be from 0 to less than 1').default(DEFAULT_DEAD_BAND),
  })
  .refine((p) => p.max >= p.min, { error: 'max must be at least min', path: ['max'] });

/**
 * Reads a policy (the Fleet construct's `autoscaling` prop, or the schedule's
 * input), filling in the defaults. Throws an Error naming the bad field.
 */
export function parseAutoscalingPolicy(input: unknown): AutoscalingPolicy {
  const parsed = policySchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`autoscaling: ${issue?.path.join('.') || '(policy)'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

/** Tasks of the given batches not finished yet; finished batches count none. */
export function backlogOf(batches: readonly Pick<BatchStatus, 'status' | 'totalTasks' | 'completedTasks' | 'failedTasks'>[]): number {
  return batches
    .filter((b) => b.status === 'pending' || b.status === 'processing')
    .reduce((sum, b) => sum + Math.max(0, b.totalTasks - b.completedTasks - b.failedTasks), 0);
}

export type ScalingAction = 'scale-out' | 'scale-in' | 'hold';

export interface ScalingDecision {
  action: ScalingAction;
  /** The cap to set: `current` when holding. */
  desired: number;
  /** Workers the backlog alone could use, before clamping. */
  needed: number;
}

/** The cap for `backlog` waiting tasks, given the cap now. */
export function decideWorkers(policy: AutoscalingPolicy, backlog: number, current: number): ScalingDecision {
  const needed = Math.ceil(Math.max(0, backlog) / policy.tasksPerWorker);
  const target = Math.min(policy.max, Math.max(policy.min, needed));
  if (target > current) return { action: 'scale-out', desired: target, needed };
  const pastDeadBand = needed <= current * (1 - policy.deadBand);
  if (target < current && pastDeadBand) return { action: 'scale-in', desired: target, needed };
  // Above max (set by hand, or the policy changed): down to max at least, even inside the dead band.
  if (current > policy.max) return { action: 'scale-in', desired: policy.max, needed };
  return { action: 'hold', desired: current, needed };
}

/** What the autoscaler reads and the one way it changes the fleet. */
export interface AutoscaleDeps {
  repository: {
    listActiveBatchIds(): Promise<string[]>;
    getStatus(batchId: string): Promise<BatchStatus | undefined>;
    getConfig(): Promise<FleetManagerConfig>;
  };
  /** Sets maxConcurrentWorkers and applies it to running batches (FleetService.scaleWorkers). */
  scaleWorkers(count: number): Promise<unknown>;
}

export interface AutoscaleResult extends ScalingDecision {
  backlog: number;
  /** maxConcurrentWorkers before this run. */
  previous: number;
}

/**
 * One run of the policy: the backlog from the unfinished batches' counters
 * (no per-task reads), the decision, and the change if there is one.
 */
export async function autoscale(deps: AutoscaleDeps, policy: AutoscalingPolicy): Promise<AutoscaleResult> {
  const [batchIds, config] = await Promise.all([deps.repository.listActiveBatchIds(), deps.repository.getConfig()]);
  const statuses = await mapConcurrently(batchIds, 8, (batchId) => deps.repository.getStatus(batchId));
  const backlog = backlogOf(statuses.filter((s): s is BatchStatus => s !== undefined));
  const previous = config.maxConcurrentWorkers;
  const decision = decideWorkers(policy, backlog, previous);
  if (decision.action !== 'hold') await deps.scaleWorkers(decision.desired);
  return { ...decision, backlog, previous };
}
