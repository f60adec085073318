/**
 * Powertools for AWS Lambda, one of each per execution environment:
 *
 * - `logger`: JSON log lines with the Lambda context (request id, cold start)
 *   and, per invocation, the batch and task ids as keys (`instrumented`).
 * - `metrics`: CloudWatch embedded metric format (EMF) in the Fleet
 *   namespace, flushed once per invocation (lambdas/domain/metrics.ts lists them).
 * - `tracer`: X-Ray subsegments for the AWS clients built in clients.ts.
 *
 * They read their settings from the POWERTOOLS_* variables the Fleet
 * construct sets (infra/fleet-observability.ts). Local mode switches metrics
 * and tracing off and logs WARN and above only (infra/local/local-fleet.ts).
 */
import './xray-mode'; // first: it decides how aws-xray-sdk-core loads
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type { Context } from 'aws-lambda';
import { FLEET_METRICS, STATUS_DIMENSION } from '../domain/metrics';

/** Metrics that tell whether they publish: when off (local mode), Fleet skips even storing them, a few µs per task. */
class FleetMetrics extends Metrics {
  get enabled(): boolean {
    return !this.isDisabled();
  }
}

export const logger = new Logger();
export const metrics = new FleetMetrics();
export const tracer = new Tracer();

/** The ids a handler's log lines carry; an id the event lacks is left out. */
export interface LogKeys {
  batchId?: string;
  taskId?: string;
}

/**
 * Wraps a handler so each invocation's log lines carry its ids and the Lambda
 * context, and its metrics are flushed once, when it ends (also on a throw).
 * The ids are cleared afterwards, so the next invocation in the same
 * environment never logs the previous one's.
 *
 * Local mode runs invocations concurrently in one process, where appended
 * keys are shared: log lines that must name their task locally too (WARN and
 * above, all local mode prints) pass the ids explicitly as well.
 */
export function instrumented<E, R>(handler: (event: E) => Promise<R>, keysOf: (event: E) => LogKeys): (event: E, context?: Context) => Promise<R> {
  return async (event, context) => {
    if (context) logger.addContext(context);
    // An id left undefined is left out of the lines.
    logger.appendKeys({ ...keysOf(event) });
    try {
      return await handler(event);
    } finally {
      logger.resetKeys();
      // Without the check Powertools warns "No application metrics to publish" on every such invocation.
      if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
    }
  };
}

/** Counts `value` of one of Fleet's count metrics, flushed when the invocation ends. */
export function count(name: Exclude<(typeof FLEET_METRICS)[keyof typeof FLEET_METRICS], 'WorkerDuration' | 'BatchesFinished'>, value = 1): void {
  if (metrics.enabled) metrics.addMetric(name, MetricUnit.Count, value);
}

/** How long one task attempt's handler ran. */
export function recordWorkerDuration(ms: number): void {
  if (metrics.enabled) metrics.addMetric(FLEET_METRICS.workerDuration, MetricUnit.Milliseconds, ms);
}

/**
 * Counts a batch reaching its final status. Published at once, on its own:
 * its `status` dimension must not attach to the invocation's other metrics.
 */
export function countFinishedBatch(status: string): void {
  if (!metrics.enabled) return;
  metrics.singleMetric().addDimension(STATUS_DIMENSION, status).addMetric(FLEET_METRICS.batchesFinished, MetricUnit.Count, 1);
}
