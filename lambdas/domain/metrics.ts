/**
 * Fleet's CloudWatch metrics: the names the Lambdas emit (through Powertools,
 * lambdas/adapters/observability.ts) and the dashboard and alarms read
 * (infra/fleet-observability.ts). One list, so the two cannot drift apart.
 *
 * Every metric carries the `service` dimension (one value per Fleet, so two
 * Fleets in one account keep their numbers apart). BatchesFinished adds
 * `status`. Nothing else: never a batch or task id, which would make a new
 * CloudWatch metric per batch.
 */

/** The CloudWatch namespace of Fleet's own metrics. */
export const METRICS_NAMESPACE = 'Fleet';

/** The extra dimension of BatchesFinished: the batch's final status. */
export const STATUS_DIMENSION = 'status';

export const FLEET_METRICS = {
  /** Batches accepted by POST /batches (a repeat of an idempotent request is not counted again). Count. */
  batchesSubmitted: 'BatchesSubmitted',
  /** Batches that reached a final status, by `status` (completed, partial, failed, cancelled). Count. */
  batchesFinished: 'BatchesFinished',
  /** Tasks whose final result is a success; a duplicate delivery is not counted. Count. */
  tasksSucceeded: 'TasksSucceeded',
  /** Tasks that failed for good (retries exhausted, a permanent error, a timeout backstop or a crash). Count. */
  tasksFailed: 'TasksFailed',
  /** Attempts after a task's first, i.e. retries run. Count. */
  taskRetries: 'TaskRetries',
  /** How long one attempt's handler ran, in ms (every attempt, whatever its outcome). */
  workerDuration: 'WorkerDuration',
} as const;
