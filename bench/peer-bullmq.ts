/**
 * `npm run bench -- --peer bullmq`: the same scenarios on BullMQ with Redis
 * (Debian's `redis-server`, started and stopped here, no persistence), in
 * the same run as the fleet, measured the same way: from the moment the jobs
 * are sent to the moment the last result has been read, polling completion
 * every `pollMs`. A job sleeps its task's ms and fails its first `failTimes`
 * attempts, retried after a fixed 50 ms backoff.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, Worker, type Job } from 'bullmq';

export interface PeerTask {
  id: string;
  data: { ms: number; failTimes?: number };
}

export interface PeerRun {
  makespanMs: number;
  results: { taskId: string; attempts: number }[];
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => { resolve(typeof address === 'object' && address ? address.port : 0); });
    });
  });
}

export interface RedisServer {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** A throwaway redis-server on loopback: no RDB snapshots, no AOF. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.on('error', (error) => { reject(new Error(`cannot start redis-server (apt install redis-server): ${error.message}`)); });
    child.on('exit', (code) => { reject(new Error(`redis-server exited with ${code}: ${out.slice(-500)}`)); });
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('Ready to accept connections')) resolve();
    });
  });
  return {
    port,
    pid: child.pid ?? 0,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

let runs = 0;

export async function runOnBullmq(redisPort: number, tasks: readonly PeerTask[], concurrency: number, pollMs: number): Promise<PeerRun> {
  const connection = { host: '127.0.0.1', port: redisPort, maxRetriesPerRequest: null };
  const name = `bench-${process.pid}-${++runs}`;
  const queue = new Queue(name, { connection });
  const worker = new Worker(
    name,
    async (job: Job<PeerTask['data']>) => {
      if (job.data.ms > 0) await sleep(job.data.ms);
      // attemptsMade counts the attempts before this one.
      if (job.attemptsMade < (job.data.failTimes ?? 0)) throw new Error('planned failure');
      return { sleptMs: job.data.ms };
    },
    { connection, concurrency },
  );
  await worker.waitUntilReady();
  try {
    const started = performance.now();
    const BULK = 1000;
    for (let i = 0; i < tasks.length; i += BULK) {
      await queue.addBulk(
        tasks.slice(i, i + BULK).map((task) => ({
          name: 'sleep',
          data: task.data,
          opts: { jobId: task.id, attempts: 1 + (task.data.failTimes ?? 0), backoff: { type: 'fixed', delay: 50 }, removeOnComplete: false, removeOnFail: false },
        })),
      );
    }
    for (;;) {
      const counts = await queue.getJobCounts('completed', 'failed');
      if ((counts.completed ?? 0) + (counts.failed ?? 0) >= tasks.length) break;
      await sleep(pollMs);
    }
    const results: PeerRun['results'] = [];
    const PAGE = 1000;
    for (let start = 0; ; start += PAGE) {
      const jobs = await queue.getJobs(['completed', 'failed'], start, start + PAGE - 1, true);
      for (const job of jobs) results.push({ taskId: job.id ?? '', attempts: job.attemptsMade });
      if (jobs.length < PAGE) break;
    }
    return { makespanMs: performance.now() - started, results };
  } finally {
    await worker.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}
