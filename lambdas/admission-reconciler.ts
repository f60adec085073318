/**
 * Admission reconciler Lambda: invoked every minute by an EventBridge
 * Scheduler schedule (locally, by a timer). Admission is driven by events
 * (a submit, a batch finishing, the cap changing); this is the safety net for
 * the ones that were lost: a pass interrupted by a crash or a throttle, an
 * execution stopped from the console, one that failed outside its tasks.
 */
import { instrumented, logger } from './adapters/observability';
import { admission } from './composition-root/admission';
import { timelineService } from './composition-root/schedules';
import { CapacityContendedError, type AdmissionResult } from './domain/capacity-coordinator';

// Built at cold start, so a misconfigured environment fails there, naming the variable.
const { coordinator } = admission();
const timeline = timelineService();

/** The minute's snapshot, unless a timeline read took it already; never in the way of admission. */
async function snapshotTimeline(): Promise<void> {
  try {
    await timeline.snapshotTimeline();
  } catch (error) {
    logger.warn('timeline snapshot: not taken this minute', { error: error instanceof Error ? error.message : String(error) });
  }
}

export const handler = instrumented(
  async (): Promise<AdmissionResult> => {
    // First, and whatever admission then does: the chart should not go blank because admission had a bad minute.
    await snapshotTimeline();
    let result: AdmissionResult;
    try {
      result = await coordinator.reconcile();
    } catch (error) {
      // Finishes and submits kept changing the allocations: they admit batches themselves; the next run looks again.
      if (!(error instanceof CapacityContendedError)) throw error;
      logger.warn('admission reconcile: the allocations kept changing under it; skipped until the next run');
      return { admitted: [], changed: {} };
    }
    if (result.admitted.length > 0) logger.info(`admission reconcile: admitted ${result.admitted.length} batch(es)`, { admitted: result.admitted });
    return result;
  },
  () => ({}),
);
