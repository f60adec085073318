/**
 * The seed's Coordinator getSummary(): workers report results, and the
 * coordinator answers with aggregated analytics. In Fleet every worker
 * records its result in the batch, and GET /batches/{id}/summary
 * (`FleetClient.getBatchSummary`) is the coordinator's answer.
 *
 *   npm start                                   # a local fleet, in another terminal
 *   npx tsx examples/coordinator-summary.ts     # FLEET_URL / FLEET_TOKEN point it elsewhere
 *
 * The batch mixes `sleep` tasks of different lengths (one that fails its
 * first attempt and is retried) with two that always `fail`, so the summary
 * has durations to average and a success rate under 100%.
 */
import { FleetClient, type Task } from '../client';

const fleet = new FleetClient();

const tasks: Task[] = [
  ...Array.from({ length: 10 }, (_, i) => ({ id: `sleep-${i}`, type: 'sleep', data: { ms: 10 + i * 5, failTimes: i === 0 ? 1 : 0 } })),
  { id: 'fail-1', type: 'fail', data: { message: 'worker reported an error' } },
  { id: 'fail-2', type: 'fail', data: { message: 'worker reported another error' } },
];

const batchId = await fleet.submitBatch(tasks);
console.log(`Batch submitted: ${batchId}`);
const status = await fleet.waitForBatch(batchId, { intervalMs: 250 });
console.log(`Batch ${status.status}`);

const summary = await fleet.getBatchSummary(batchId);
const rate = summary.totalResults > 0 ? (summary.successCount / summary.totalResults) * 100 : 0;
const ms = (value: number | null) => (value === null ? 'n/a' : `${value.toFixed(1)}ms`);
console.log(`
  Total Results: ${summary.totalResults}
  Success Rate: ${rate.toFixed(2)}%
  Avg Duration: ${ms(summary.averageDuration)}
  p50 Duration: ${ms(summary.p50Duration)}
  p95 Duration: ${ms(summary.p95Duration)}
`);

if (summary.totalResults !== tasks.length) process.exitCode = 1;
