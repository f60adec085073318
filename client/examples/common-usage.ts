/**
 * The seed's "Common Usage Pattern" with FleetClient: prepare tasks, submit a
 * batch, wait for it with progress, then split the results into successful
 * and failed.
 *
 *   npm start                                   # a local fleet, in another terminal
 *   npx tsx client/examples/common-usage.ts     # FLEET_URL / FLEET_TOKEN point it elsewhere
 *
 * The seed's `process` task type is played by the built-in `sleep` type: its
 * `value` comes back in the result, and `failTimes` makes an attempt fail so
 * the retries show. One task uses `fail`, to show the failure path.
 */
import { randomUUID } from 'node:crypto';
import { FleetClient, type Task } from '../index';

/** The stand-in for the seed's DataTask: a `sleep` that returns `value` as the records processed. */
interface ProcessTask {
  /** How long the stand-in transformation takes, in ms. */
  ms: number;
  /** Records processed, echoed back in the result. */
  value: number;
  /** Attempts that fail before one succeeds. */
  failTimes?: number;
}

/** A `fail` task: always fails with `message`. */
interface FailTask {
  message: string;
}

type DataTask = ProcessTask | FailTask;

interface DataResult {
  sleptMs: number;
  value: number;
}

const generateTaskId = () => `task-${randomUUID().slice(0, 8)}`;

// 1. Get a client. The seed's getAgentByName(env, 'FLEET_MANAGER', 'default')
//    becomes a client for FLEET_URL, or local mode on http://127.0.0.1:3000.
const fleet = new FleetClient<DataTask, DataResult>();

// 2. Prepare tasks.
const tasks: Task<DataTask>[] = [
  ...Array.from({ length: 8 }, (_, i) => ({
    id: generateTaskId(),
    type: 'sleep',
    data: { ms: 20 + i * 10, value: (i + 1) * 100, failTimes: i === 0 ? 1 : 0 },
    priority: i < 2 ? 10 : 0,
  })),
  { id: generateTaskId(), type: 'fail', data: { message: 'source file is not valid JSON' } },
];

// 3. Submit the batch.
const batchId = await fleet.submitBatch(tasks);
console.log(`Batch submitted: ${batchId}`);

// 4. Wait for completion. waitForBatch replaces the seed's polling loop;
//    Ctrl-C stops waiting (the batch runs on).
const stop = new AbortController();
process.once('SIGINT', () => { stop.abort(); });
const status = await fleet.waitForBatch(batchId, {
  intervalMs: 250,
  signal: stop.signal,
  onProgress: (s) => { console.log(`Progress: ${(s.progress * 100).toFixed(2)}% (${s.status})`); },
});
console.log(`Batch ${status.status}: ${status.completedTasks}/${status.totalTasks} completed, ${status.failedTasks} failed`);

// 5. Get the results.
if (status.status === 'completed' || status.status === 'partial') {
  const results = await fleet.getBatchResults(batchId);
  const successful = results.filter((r) => r.success);
  const failed = results.filter((r) => !r.success);

  console.log(`Successful: ${successful.length}`);
  console.log(`Failed: ${failed.length}`);

  // Process successful results.
  for (const result of successful) {
    console.log(`Task ${result.taskId}: ${result.result?.value} records (${result.attempts} attempt${result.attempts === 1 ? '' : 's'})`);
  }

  // Handle failures.
  for (const result of failed) {
    console.error(`Task ${result.taskId} failed: ${result.error}`);
  }
}
