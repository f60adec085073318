/**
 * Local EventBridge Scheduler: runs the template's schedules (the
 * autoscaler's) on timers, invoking their target functions in this process
 * with the target's input, as Scheduler invokes them on AWS.
 *
 * One difference: a run still going when the next is due makes that next one
 * skip (on AWS the two would overlap). Each run reads the fleet afresh, so a
 * skipped run loses nothing.
 */
import type { LocalSchedule } from './template';

export interface ScheduleRunner {
  /** Stops the timers and waits for runs in progress. */
  stop(): Promise<void>;
}

/**
 * @param intervalMs overrides every schedule's rate (tests run the autoscaler fast); 0 disables them all
 */
export function startSchedules(
  schedules: readonly LocalSchedule[],
  invoke: (functionArn: string, event: unknown) => Promise<unknown>,
  intervalMs?: number,
): ScheduleRunner {
  if (intervalMs !== undefined && !(intervalMs >= 0)) throw new Error(`the schedule interval must be a number of ms (0 disables), got ${intervalMs}`);
  const timers: NodeJS.Timeout[] = [];
  const running = new Set<Promise<void>>();
  for (const schedule of intervalMs === 0 ? [] : schedules) {
    let busy = false;
    const run = () => {
      if (busy) return;
      busy = true;
      const done = invoke(schedule.targetArn, schedule.input).then(
        () => undefined,
        (error: unknown) => { console.error(JSON.stringify({ level: 'ERROR', message: `schedule ${schedule.logicalId}: its target failed`, error: String(error) })); },
      );
      const tracked = done.finally(() => {
        busy = false;
        running.delete(tracked);
      });
      running.add(tracked);
    };
    const timer = setInterval(run, intervalMs ?? schedule.intervalMs);
    timer.unref();
    timers.push(timer);
  }
  return {
    async stop() {
      for (const timer of timers) clearInterval(timer);
      await Promise.all([...running]);
    },
  };
}
