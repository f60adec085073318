/**
 * Autoscaler Lambda: invoked every minute by an EventBridge Scheduler
 * schedule (locally, by a timer) with the policy as its event. It reads the
 * backlog, decides (domain/autoscaling.ts) and applies a change through
 * FleetService.scaleWorkers, as `POST /workers/scale` does: the new cap is
 * stored and re-shared among running batches' Map Runs.
 */
import { instrumented, logger } from './adapters/observability';
import { scalingService } from './composition-root/schedules';
import { batchRepository } from './composition-root/shared';
import { autoscale, parseAutoscalingPolicy, type AutoscaleResult } from './domain/autoscaling';

// Built at cold start, so a misconfigured environment fails there, naming the variable.
const repository = batchRepository();
const service = scalingService();

/** The event is the schedule's input: the policy, `{min, max, tasksPerWorker?, deadBand?}`. */
export const handler = instrumented(
  async (event: unknown): Promise<AutoscaleResult> => {
    const policy = parseAutoscalingPolicy(event);
    const result = await autoscale({ repository, scaleWorkers: (count) => service.scaleWorkers({ count }) }, policy);
    if (result.action !== 'hold') logger.info(`autoscaling: ${result.action} from ${result.previous} to ${result.desired} workers`, { backlog: result.backlog });
    return result;
  },
  () => ({}),
);
