/** Batch rules: ordering, progress, final status, sharding. Pure functions. */
import { createHash } from 'node:crypto';
import type { BatchState, Task } from './types';

/**
 * Within a batch higher priority starts first; ties keep submission order
 * (Array.prototype.sort is stable), so a batch without priorities runs in order.
 */
/**
 * What a batch id is: 1-80 of [A-Za-z0-9_-], as it doubles as a Step
 * Functions execution name. It never holds a `#`, which the table's keys
 * (adapters/table-layout.ts) and the worker's IAM condition rely on.
 */
export const BATCH_ID_PATTERN = /^[A-Za-z0-9_-]{1,80}$/;

export function orderByPriority(tasks: readonly Task[]): Task[] {
  return [...tasks].sort((a, b) => (b.priority ?? 0) - (a.priority ?? 0));
}

export function progressOf(totalTasks: number, completedTasks: number, failedTasks: number): number {
  if (totalTasks <= 0) return 0;
  return Math.min(1, Math.max(0, (completedTasks + failedTasks) / totalTasks));
}

/**
 * The status a batch ends with once its tasks have run:
 * every task succeeded → completed, none did → failed, otherwise partial.
 */
export function finalStatusOf(totalTasks: number, completedTasks: number): BatchState {
  if (totalTasks > 0 && completedTasks >= totalTasks) return 'completed';
  if (completedTasks === 0) return 'failed';
  return 'partial';
}

/**
 * Results are spread over this many DynamoDB partition keys per batch, so no
 * partition takes every worker's write.
 */
export const RESULT_SHARDS = 32;

/** Stable result shard of a task id, 0..RESULT_SHARDS-1. */
export function shardOf(taskId: string): number {
  const digest = createHash('sha1').update(taskId).digest();
  return digest.readUInt32BE(0) % RESULT_SHARDS;
}

/**
 * A batch's progress is the sum of this many counter items. Each write goes
 * to one of them at random, so at 10,000 tasks/s each takes about
 * 10,000 / 128 ≈ 78 writes/s, far under DynamoDB's 1,000 writes/s per item.
 */
export const COUNTER_SHARDS = 128;

/** A counter shard to add to, 0..COUNTER_SHARDS-1: any will do, since only their sum counts. */
export function randomCounterShard(random: () => number = Math.random): number {
  return Math.min(COUNTER_SHARDS - 1, Math.floor(random() * COUNTER_SHARDS));
}
