/**
 * A batch of any size: tasks written to a JSON Lines file, submitted as a
 * file (streamed from disk), followed to its end, then every result
 * downloaded as one JSON Lines file and read line by line. Memory stays
 * flat at every step, however many tasks.
 *
 *   npm start                                            # a local fleet, in another terminal
 *   npx tsx client/examples/big-batch.ts [tasks]         # default 100000; FLEET_URL / FLEET_TOKEN point it elsewhere
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { FleetClient, type TaskResult } from '../index';

interface SleepResult {
  sleptMs: number;
  value?: number;
}

const count = Number(process.argv[2] ?? 100_000);
if (!Number.isInteger(count) || count < 1) throw new TypeError(`tasks must be a positive integer (got "${process.argv[2]}")`);

const dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-big-batch-'));
try {
  // 1. Write the tasks file, one task a line, respecting the stream's backpressure.
  const tasksFile = path.join(dir, 'tasks.jsonl');
  const out = createWriteStream(tasksFile);
  for (let i = 0; i < count; i++) {
    if (!out.write(`${JSON.stringify({ id: `task-${i}`, type: 'sleep', data: { ms: 0, value: i } })}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');

  // 2. Submit it as a file: uploaded to S3 from disk, validated by the fleet in the background.
  const fleet = new FleetClient<unknown, SleepResult>();
  let shown = -1;
  const batchId = await fleet.submitTasksFile(tasksFile, {
    onUploadProgress: (sent, total) => {
      const tenth = Math.floor((sent / total) * 10);
      if (tenth > shown) console.log(`Uploaded ${((sent / total) * 100).toFixed(0)}% of ${total} bytes`);
      shown = tenth;
    },
  });
  console.log(`Batch submitted: ${batchId}`);

  // 3. Follow it: the file is validated first, then the tasks run.
  const status = await fleet.waitForBatch(batchId, {
    intervalMs: 500,
    onProgress: (s) => { console.log(s.tasksFile?.state === 'validating' ? `Validating: ${s.tasksFile.linesRead} lines read` : `Progress: ${(s.progress * 100).toFixed(2)}% (${s.status})`); },
  });
  console.log(`Batch ${status.status}: ${status.completedTasks}/${status.totalTasks} completed, ${status.failedTasks} failed`);
  for (const error of status.validationErrors ?? []) console.error(`Line ${error.line}: ${error.field ? `${error.field}: ` : ''}${error.message}`);
  if (status.status !== 'completed' && status.status !== 'partial') process.exit(1);

  // 4. Every result as one file, read a line at a time.
  const resultsFile = path.join(dir, 'results.jsonl');
  const downloaded = await fleet.downloadResults(batchId, resultsFile, { intervalMs: 500 });
  console.log(`Downloaded ${downloaded.results} results (${downloaded.bytes} bytes)`);
  let succeeded = 0;
  let failed = 0;
  for await (const line of createInterface({ input: createReadStream(resultsFile), crlfDelay: Infinity })) {
    const result = JSON.parse(line) as TaskResult<SleepResult>;
    if (result.success) succeeded++;
    else failed++;
  }
  console.log(`Results read: ${succeeded} succeeded, ${failed} failed`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
