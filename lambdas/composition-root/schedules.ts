/** The scheduled functions' services: the autoscaler's and the admission reconciler's. */
import { dynamo } from '../adapters/clients';
import { DynamoTimelineStore } from '../adapters/timeline-store';
import { FleetService } from '../domain/fleet-service';
import { admission } from './admission';
import { batchRepository, fleetActivity, once, tableEnv } from './shared';

/** The autoscaler's: scaleWorkers re-shares the cap through the coordinator. */
export const scalingService = once(() => {
  const { coordinator, workflow } = admission();
  return new FleetService({ repository: batchRepository(), workflow, capacity: coordinator });
});

/** The reconciler's, only for the timeline's snapshot of the minute (GET /stats/timeline): this schedule runs every minute anyway. */
export const timelineService = once(() => {
  const { coordinator, workflow } = admission();
  return new FleetService({
    repository: batchRepository(),
    workflow,
    capacity: coordinator,
    activity: fleetActivity(),
    timeline: new DynamoTimelineStore(dynamo(), tableEnv().TABLE_NAME),
  });
});
