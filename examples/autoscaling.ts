/**
 * The seed's AutoScalingFleetManager: maxConcurrentWorkers follows the
 * pending backlog. In Fleet it is a built-in policy, not a subclass:
 *
 *   // infra/fleet-config.ts (cdk deploy and npm start)
 *   const shared: FleetStageConfig = { autoscaling: { min: 1, max: 8 } };
 *
 * On AWS an EventBridge Scheduler schedule runs the autoscaler every minute;
 * under `npm start` a timer does. So that this runs in seconds, the script
 * starts its own local fleet (in memory) with that policy and runs the
 * autoscaler every FLEET_AUTOSCALE_INTERVAL_MS (250 ms here):
 *
 *   npx tsx examples/autoscaling.ts
 *
 * It submits a backlog of short `sleep` tasks to the idle fleet and prints
 * each change of the cap, as the seed logs "Scaled up to N workers".
 */
import { FleetClient, type Task } from '../client';
import { startLocalFleet } from '../infra/local/local-fleet';

const policy = { min: 1, max: 8 };
const local = await startLocalFleet({
  port: 0,
  inMemory: true,
  dashboard: false,
  fleetProps: { autoscaling: policy },
  autoscaleIntervalMs: Number(process.env.FLEET_AUTOSCALE_INTERVAL_MS ?? 250),
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

try {
  // This fleet has no token; ignore any FLEET_URL / FLEET_TOKEN meant for another one.
  const fleet = new FleetClient({ url: local.url, env: {} });
  let cap = (await fleet.getConfig()).maxConcurrentWorkers;
  const report = (next: number, backlog: number) => {
    if (next !== cap) console.log(`Scaled ${next > cap ? 'up' : 'down'} to ${next} workers (backlog: ${backlog} tasks)`);
    cap = next;
  };

  // The idle fleet settles at min.
  for (let i = 0; i < 200 && cap !== policy.min; i++) {
    await sleep(50);
    report((await fleet.getConfig()).maxConcurrentWorkers, 0);
  }
  console.log(`Idle fleet: ${cap} worker(s)`);

  const tasks: Task[] = Array.from({ length: 60 }, (_, i) => ({ id: `task-${i}`, type: 'sleep', data: { ms: 150 } }));
  const batchId = await fleet.submitBatch(tasks);
  console.log(`Batch submitted: ${batchId} (${tasks.length} tasks)`);

  let peak = cap;
  let status = await fleet.getBatchStatus(batchId);
  while (status.status === 'pending' || status.status === 'processing') {
    await sleep(100);
    status = await fleet.getBatchStatus(batchId);
    report((await fleet.getConfig()).maxConcurrentWorkers, status.totalTasks - status.completedTasks - status.failedTasks);
    peak = Math.max(peak, cap);
  }
  console.log(`Batch ${status.status}: ${status.completedTasks}/${status.totalTasks} completed`);

  // With the backlog gone, the next runs bring the cap back to min.
  for (let i = 0; i < 300 && cap !== policy.min; i++) {
    await sleep(50);
    report((await fleet.getConfig()).maxConcurrentWorkers, 0);
  }
  console.log(`Peak: ${peak} workers; now: ${cap} worker(s)`);

  if (status.status !== 'completed' || peak !== policy.max || cap !== policy.min) process.exitCode = 1;
} finally {
  await local.close();
}
