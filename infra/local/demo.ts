/**
 * `npm run demo`: submits a sample batch to a running fleet (`npm start`)
 * and shows its progress, following the seed's Common Usage Pattern:
 * submit, poll progress, read results.
 *
 * It finds the fleet `npm start` runs with the same PORT (default 3000) on
 * loopback; FLEET_URL points it anywhere else, and wins over PORT.
 */
import cliProgress from 'cli-progress';

const url = (process.env.FLEET_URL || `http://127.0.0.1:${process.env.PORT || 3000}`).replace(/\/$/, '');
const headers: Record<string, string> = { 'content-type': 'application/json' };
if (process.env.FLEET_TOKEN) headers.authorization = `Bearer ${process.env.FLEET_TOKEN}`;

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    console.error(`No fleet answers at ${url}. Start one with \`npm start\` in another terminal.`);
    process.exit(2);
  }
  const json = (await response.json()) as T & { error?: { message: string } };
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${json.error?.message ?? ''}`);
  return json;
}

interface Status {
  status: string;
  totalTasks: number;
  completedTasks: number;
  failedTasks: number;
  progress: number;
}

// 200 tasks: mostly short sleeps, some that fail once and recover, a few that always fail.
const tasks = Array.from({ length: 200 }, (_, i) => {
  if (i % 50 === 49) return { id: `task-${i}`, type: 'fail', data: { message: `sample failure ${i}` } };
  return { id: `task-${i}`, type: 'sleep', data: { ms: 100 + (i % 7) * 40, failTimes: i % 10 === 0 ? 1 : 0, value: i }, priority: i < 20 ? 10 : 0 };
});

const { batchId } = await call<{ batchId: string }>('POST', '/batches', { tasks });
console.log(`Batch submitted: ${batchId}`);
const bar = new cliProgress.SingleBar(
  { format: ' {bar} {percentage}% | {value}/{total} done | {failed} failed | {status}', hideCursor: true },
  cliProgress.Presets.shades_classic,
);
bar.start(tasks.length, 0, { failed: 0, status: 'pending' });
let status: Status;
do {
  await new Promise((resolve) => setTimeout(resolve, 250));
  status = await call<Status>('GET', `/batches/${batchId}`);
  bar.update(status.completedTasks + status.failedTasks, { failed: status.failedTasks, status: status.status });
} while (status.status === 'pending' || status.status === 'processing');
bar.stop();

interface Result {
  taskId: string;
  success: boolean;
  error?: string;
  attempts: number;
}
const results: Result[] = [];
let cursor: string | null = null;
do {
  const page: { results: Result[]; nextCursor: string | null } = await call('GET', `/batches/${batchId}/results?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
  results.push(...page.results);
  cursor = page.nextCursor;
} while (cursor);

const failed = results.filter((r) => !r.success);
console.log(`Status: ${status.status}`);
console.log(`Successful: ${results.length - failed.length}`);
console.log(`Failed: ${failed.length}`);
console.log(`Retried and recovered: ${results.filter((r) => r.success && r.attempts > 1).length}`);
for (const result of failed) console.log(`  ${result.taskId} failed after ${result.attempts} attempts: ${result.error}`);
