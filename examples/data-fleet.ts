/**
 * The seed's DataFleetManager: `process` tasks with the `clean` and
 * `validate` transformations, then its Common Usage Pattern (successful
 * results with their record counts, failures with their errors).
 *
 *   npm start                               # a local fleet, in another terminal
 *   npx tsx examples/data-fleet.ts          # FLEET_URL / FLEET_TOKEN point it elsewhere
 *
 * Local mode has no network, so each `sourceUrl` is a `data:` URL carrying
 * its records inline, where the seed fetched https://data.example.com/….
 * The last source holds a record with no email: `validate` fails it
 * permanently (no retry can fix bad data), so the batch ends `partial`.
 *
 * The seed's custom config (10 workers, a 5-minute timeout, 3 retries) would be
 * `fleet.updateConfig({...})`; it is fleet-wide and persists, so this example
 * leaves your fleet's config alone. The seed's error-reporting override of
 * executeTaskOnWorker is worker middleware (README, "Worker middleware").
 */
import { randomUUID } from 'node:crypto';
import { FleetClient, type Task } from '../client';
import type { DataResult, DataTask } from '../lambdas/tasks/example-fleets';

/** Embeds records in a `data:` URL: the stand-in for a file to download. */
const dataUrl = (records: unknown[]) => `data:application/json;base64,${Buffer.from(JSON.stringify(records)).toString('base64')}`;

const person = (i: number) => ({ id: i, name: `  Person ${i} `, email: `person${i}@example.com`, note: i % 3 === 0 ? '   ' : 'ok' });

const sources = [
  // Blank records among good ones: `clean` drops them.
  [person(1), person(2), { name: '  ', email: '' }, person(3)],
  Array.from({ length: 25 }, (_, i) => person(100 + i)),
  [person(7), {}, person(8), { note: '   ' }],
  // A record without an email: `validate` refuses it.
  [person(9), { id: 10, name: 'No Email' }],
];

const generateTaskId = () => `task-${randomUUID().slice(0, 8)}`;

const fleet = new FleetClient<DataTask, DataResult>();

const tasks: Task<DataTask>[] = sources.map((records, i) => ({
  id: generateTaskId(),
  type: 'process',
  data: { sourceUrl: dataUrl(records), transformations: ['clean', 'validate'] },
  priority: i === 0 ? 10 : 0,
}));

const batchId = await fleet.submitBatch(tasks);
console.log(`Batch submitted: ${batchId}`);

const status = await fleet.waitForBatch(batchId, {
  intervalMs: 250,
  onProgress: (s) => { console.log(`Progress: ${(s.progress * 100).toFixed(2)}%`); },
});
console.log(`Batch ${status.status}`);

if (status.status === 'completed' || status.status === 'partial') {
  const results = await fleet.getBatchResults(batchId);
  const successful = results.filter((r) => r.success);
  const failed = results.filter((r) => !r.success);

  console.log(`Successful: ${successful.length}`);
  console.log(`Failed: ${failed.length}`);

  for (const result of successful) {
    console.log(`Task ${result.taskId}: ${result.result?.recordsProcessed} records (${result.result?.recordsDropped} dropped by clean)`);
  }
  for (const result of failed) {
    console.error(`Task ${result.taskId} failed: ${result.error}`);
  }
  const total = successful.reduce((sum, r) => sum + (r.result?.recordsProcessed ?? 0), 0);
  console.log(`Records processed: ${total}`);
} else {
  process.exitCode = 1;
}
