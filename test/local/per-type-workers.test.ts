/**
 * Per-type worker functions, end to end against the local fleet: a batch
 * mixing `thumbnail` tasks (served by examples/workers/thumbnail-worker.ts,
 * its own function) and built-in `echo` tasks (the default worker) completes,
 * each task invoked on the function its type routes to. The per-type worker
 * keeps Fleet's worker behaviour: its own middleware, exactly-once results and
 * the dead-letter queue.
 */
import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { LOCAL_REGION } from '../../infra/local/template';
import type { BatchStatus } from '../../lambdas/domain/types';
import { api, readAllResults, waitForBatch } from './helpers';

const THUMBNAIL_ENTRY = 'examples/workers/thumbnail-worker.ts';

let fleet: LocalFleet;
/** From the worker module, imported once the fleet has set the environment its cold start reads. */
let MAX_THUMBNAIL_EDGE: number;
let THUMBNAIL_WORKER: string;
let arns: { thumbnail: string; worker: string };
/** Which function each task attempt was invoked on: task id → function ARNs. */
const invokedOn = new Map<string, string[]>();

beforeAll(async () => {
  fleet = await startLocalFleet({
    port: 0,
    inMemory: true,
    retryUnitMs: 1,
    fleetProps: { workers: { thumbnail: { entry: THUMBNAIL_ENTRY, memorySize: 2048 } } },
  });
  ({ MAX_THUMBNAIL_EDGE, THUMBNAIL_WORKER } = await import('../../examples/workers/thumbnail-worker'));
  const byEntry = (entry: string) => fleet.resources.functions.find((fn) => fn.entry === entry)?.arn;
  const thumbnail = byEntry(THUMBNAIL_ENTRY);
  const worker = byEntry('lambdas/worker.ts');
  if (!thumbnail || !worker) throw new Error(`the local template lacks a worker: ${fleet.resources.functions.map((fn) => fn.entry).join(', ')}`);
  arns = { thumbnail, worker };
  // Observe every invocation the state machine makes, on whichever function.
  const invoke = fleet.lambda.invokeFunction.bind(fleet.lambda);
  fleet.lambda.invokeFunction = async (functionName: string, payload: unknown) => {
    const taskId = (payload as { task?: { id?: string }; action?: string } | null)?.task?.id;
    if (taskId !== undefined && (payload as { action?: string }).action === undefined) invokedOn.set(taskId, [...(invokedOn.get(taskId) ?? []), functionName]);
    return invoke(functionName, payload);
  };
});
afterAll(async () => {
  await (fleet as LocalFleet | undefined)?.close();
});

describe('per-type workers (FleetProps.workers), locally', () => {
  it('the local template runs the configured module, with its own timeout', () => {
    const fn = fleet.resources.functions.find((f) => f.entry === THUMBNAIL_ENTRY);
    expect(fn).toMatchObject({ handler: 'handler', timeoutSeconds: 900 });
    expect(fn?.environment).toMatchObject({ FLEET_DLQ_URL: expect.any(String), TABLE_NAME: expect.any(String) });
  });

  it('routes each task to its type’s function; the custom type’s results come from the custom worker', async () => {
    const tasks = [
      { id: 'thumb-1', type: 'thumbnail', data: { url: 'https://images.example.com/a.jpg', size: 128 } },
      { id: 'echo-1', type: 'echo', data: { hello: 'default worker' } },
      { id: 'thumb-2', type: 'thumbnail', data: { url: 'https://images.example.com/b.jpg', size: 256 } },
      { id: 'echo-2', type: 'echo', data: { n: 2 } },
      { id: 'thumb-3', type: 'thumbnail', data: { url: 'https://images.example.com/c.jpg' } },
      { id: 'echo-3', type: 'echo', data: [1, 2, 3] },
    ];
    const submitted = await api<BatchStatus>(fleet.url, 'POST', '/batches', { tasks });
    expect(submitted.status).toBe(202);

    const status = await waitForBatch(fleet.url, submitted.body.batchId);
    expect(status).toMatchObject({ status: 'completed', completedTasks: 6, failedTasks: 0 });
    const { results } = await readAllResults(fleet.url, submitted.body.batchId);
    const byId = new Map(results.map((r) => [r.taskId, r]));
    expect(byId.size).toBe(6);

    // Only the thumbnail worker has the `thumbnail` type, and says so in its result.
    for (const [id, size] of [['thumb-1', 128], ['thumb-2', 256], ['thumb-3', 128]] as const) {
      expect(byId.get(id), id).toMatchObject({ success: true, attempts: 1, result: { worker: THUMBNAIL_WORKER, width: size, standIn: true } });
    }
    // echo (the default worker's) returns its data unchanged.
    for (const task of tasks.filter((t) => t.type === 'echo')) expect(byId.get(task.id)).toMatchObject({ success: true, result: task.data });
    // And each task was invoked on its own type's function, and never on the other.
    for (const task of tasks) {
      const expected = task.type === 'thumbnail' ? arns.thumbnail : arns.worker;
      expect(invokedOn.get(task.id), task.id).toEqual([expected]);
    }
  });

  it("runs the per-type worker's middleware, and its final failures reach the dead-letter queue", async () => {
    const submitted = await api<BatchStatus>(fleet.url, 'POST', '/batches', {
      tasks: [
        { id: 'too-big', type: 'thumbnail', data: { url: 'https://images.example.com/huge.jpg', size: MAX_THUMBNAIL_EDGE + 1 } },
        { id: 'fine', type: 'thumbnail', data: { url: 'https://images.example.com/ok.jpg', size: MAX_THUMBNAIL_EDGE } },
      ],
    });
    const batchId = submitted.body.batchId;
    expect(await waitForBatch(fleet.url, batchId)).toMatchObject({ status: 'partial', completedTasks: 1, failedTasks: 1 });
    const { results } = await readAllResults(fleet.url, batchId);
    const refused = results.find((r) => r.taskId === 'too-big');
    // Refused before the handler ran, permanently: one attempt, no retry.
    expect(refused).toMatchObject({ success: false, attempts: 1 });
    expect(refused?.error).toContain('refused by the limit-edge middleware');
    expect(results.find((r) => r.taskId === 'fine')).toMatchObject({ success: true, result: { width: MAX_THUMBNAIL_EDGE } });
    expect(invokedOn.get('too-big')).toEqual([arns.thumbnail]);

    const queue = fleet.resources.queues.find((q) => q.logicalId.startsWith('FleetDeadLetterQueue'));
    if (!queue) throw new Error('the template has no dead-letter queue');
    const sqs = new SQSClient({ region: LOCAL_REGION, endpoint: fleet.endpoints.sqs, credentials: fleet.credentials });
    try {
      const messages: Message[] = [];
      for (let round = 0; round < 10 && messages.length === 0; round++) {
        const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
        for (const message of Messages) {
          messages.push(message);
          await sqs.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: message.ReceiptHandle }));
        }
      }
      const bodies = messages.map((m) => JSON.parse(m.Body ?? '{}') as { batchId: string; taskId: string; taskType: string; error: string });
      expect(bodies).toEqual([expect.objectContaining({ batchId, taskId: 'too-big', taskType: 'thumbnail', error: refused?.error })]);
    } finally {
      sqs.destroy();
    }
  });
});
