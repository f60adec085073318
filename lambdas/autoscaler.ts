/**
 * Autoscaler Lambda: invoked every minute by an EventBridge Scheduler
 * schedule (locally, by a timer) with the policy as its event. It reads the
 * backlog, decides (domain/autoscaling.ts) and applies a change through
 * FleetService.scaleWorkers, as `POST /workers/scale` does: the new cap is
 * stored and re-shared among running batches' Map Runs.
 */
import { z } from 'zod';
import { dynamo, loadEnv, sfn } from './adapters/clients';
import { DynamoBatchRepository } from './adapters/batch-repository';
import { admissionFor } from './adapters/admission';
import { instrumented, logger } from './adapters/observability';
import { autoscale, parseAutoscalingPolicy, type AutoscaleResult } from './domain/autoscaling';
import { FleetService } from './domain/fleet-service';

const env = loadEnv({
  TABLE_NAME: z.string().min(1),
  STATE_MACHINE_ARN: z.string().min(1),
});

const repository = new DynamoBatchRepository(dynamo(), env.TABLE_NAME);
const { coordinator, workflow } = admissionFor(sfn(), env.TABLE_NAME, env.STATE_MACHINE_ARN, repository);
const service = new FleetService({ repository, workflow, capacity: coordinator });

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
