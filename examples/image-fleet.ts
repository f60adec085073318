/**
 * The seed's ImageFleetManager: a batch of `resize` tasks.
 *
 *   npm start                               # a local fleet, in another terminal
 *   npx tsx examples/image-fleet.ts         # FLEET_URL / FLEET_TOKEN point it elsewhere
 *
 * STAND-IN TRANSFORM: the `resize` task type Fleet ships
 * (lambdas/tasks/example-fleets.ts) touches no pixels. It computes the
 * dimensions the resize would produce and a checksum naming the output. A
 * real fleet would put an image library such as sharp in its own `resize`
 * handler; Fleet does not bundle one (native binaries per Lambda platform),
 * and local mode has no network to fetch images from.
 */
import { FleetClient, type Task } from '../client';
import type { ImageTask, ProcessedImage } from '../lambdas/tasks/example-fleets';

const fleet = new FleetClient<ImageTask, ProcessedImage>();

// The seed's three tasks; `?w=&h=` gives the stand-in the source's size (else 1920x1080).
const tasks: Task<ImageTask>[] = [
  { id: 'task-1', type: 'resize', data: { url: 'https://images.example.com/a.jpg?w=4000&h=3000', width: 800 } },
  { id: 'task-2', type: 'resize', data: { url: 'https://images.example.com/b.jpg', width: 1024, format: 'webp' } },
  { id: 'task-3', type: 'resize', data: { url: 'https://images.example.com/c.png?w=640&h=640', width: 640, format: 'png' } },
];

const batchId = await fleet.submitBatch(tasks);
console.log(`Batch submitted: ${batchId}`);

const status = await fleet.waitForBatch(batchId, {
  intervalMs: 250,
  onProgress: (s) => { console.log(`Progress: ${(s.progress * 100).toFixed(2)}%`); },
});
console.log(`Completed: ${status.completedTasks}/${status.totalTasks}`);
console.log(`Failed: ${status.failedTasks}`);

const results = await fleet.getBatchResults(batchId);
for (const r of [...results].sort((a, b) => a.taskId.localeCompare(b.taskId))) {
  if (r.success && r.result) {
    const image = r.result;
    console.log(`${r.taskId}: ${image.width}x${image.height} ${image.format} -> ${image.outputUrl} (sha256 ${image.checksum.slice(0, 12)}…, stand-in)`);
  } else {
    console.error(`${r.taskId} failed: ${r.error}`);
  }
}

// Every resize here should succeed: anything else is worth a non-zero exit.
if (status.status !== 'completed') process.exitCode = 1;
