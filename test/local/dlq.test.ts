/**
 * The dead-letter queue, end to end against the local fleet: a task that
 * failed for good is announced on the template's SQS queue (fauxqs locally),
 * and an SQS outage never costs the task its result.
 */
import { DeleteMessageCommand, DeleteQueueCommand, ReceiveMessageCommand, SQSClient, type Message } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { LOCAL_REGION } from '../../infra/local/template';
import type { DeadLetteredTask } from '../../lambdas/domain/ports';
import type { BatchStatus } from '../../lambdas/domain/types';
import { api, readAllResults, waitForBatch } from './helpers';

let fleet: LocalFleet;
let sqs: SQSClient;
let queueUrl: string;

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1 });
  const queue = fleet.resources.queues.find((q) => q.logicalId.startsWith('FleetDeadLetterQueue'));
  if (!queue) throw new Error(`the template has no dead-letter queue: ${fleet.resources.queues.map((q) => q.logicalId).join(', ')}`);
  queueUrl = queue.url;
  sqs = new SQSClient({ region: LOCAL_REGION, endpoint: fleet.endpoints.sqs, credentials: fleet.credentials });
});
afterAll(async () => {
  (sqs as SQSClient | undefined)?.destroy();
  await (fleet as LocalFleet | undefined)?.close();
});

/** Receives until `count` messages arrived, or until a receive comes back empty after that. */
async function receiveAll(count: number): Promise<Message[]> {
  const messages: Message[] = [];
  for (let round = 0; round < 20 && messages.length < count; round++) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'] }),
    );
    for (const message of Messages) {
      messages.push(message);
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
    }
  }
  // Nothing more than expected is waiting.
  const { Messages: extra = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
  return [...messages, ...extra];
}

describe('dead-letter queue', () => {
  it('receives one message per task that failed for good: batchId, taskId, last error and attempts', async () => {
    expect((await api(fleet.url, 'PATCH', '/config', { maxRetries: 2 })).status).toBe(200);
    const submitted = await api<BatchStatus>(fleet.url, 'POST', '/batches', {
      tasks: [
        { id: 'ok', type: 'echo', data: { fine: true } },
        { id: 'flaky', type: 'sleep', data: { ms: 1, failTimes: 1 } },
        { id: 'bad', type: 'fail', data: { message: 'the disk is full' } },
        { id: 'worse', type: 'no-such-type', data: {} },
      ],
    });
    const batchId = submitted.body.batchId;
    expect(await waitForBatch(fleet.url, batchId)).toMatchObject({ status: 'partial', completedTasks: 2, failedTasks: 2 });

    const messages = await receiveAll(2);
    const bodies = messages.map((m) => JSON.parse(m.Body ?? '{}') as DeadLetteredTask).sort((a, b) => a.taskId.localeCompare(b.taskId));
    expect(bodies).toHaveLength(2);
    const { results } = await readAllResults(fleet.url, batchId);
    const resultOf = (taskId: string) => results.find((r) => r.taskId === taskId);
    // A retryable failure: the last error, after every attempt (1 + maxRetries).
    expect(bodies[0]).toEqual({
      batchId,
      taskId: 'bad',
      taskType: 'fail',
      error: 'the disk is full',
      attempts: 3,
      workerId: resultOf('bad')?.workerId,
      failedAt: resultOf('bad')?.timestamp,
    });
    // A permanent failure: at once, after one attempt.
    expect(bodies[1]).toMatchObject({ batchId, taskId: 'worse', taskType: 'no-such-type', attempts: 1 });
    expect(bodies[1]?.error).toContain('no-such-type');
    expect(messages.every((m) => m.MessageAttributes?.batchId?.StringValue === batchId)).toBe(true);
    // No task data travels: only ids and the failure.
    expect(messages.some((m) => (m.Body ?? '').includes('the disk is full') && (m.Body ?? '').includes('"data"'))).toBe(false);
  });

  it('keeps the task result when SQS fails: the result is recorded first, the failed send is only logged', async () => {
    // The fault: the queue is gone, so every SendMessage fails.
    await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl }));
    // Powertools Logger writes its JSON lines to stderr (ERROR), not through the global console.
    const logged = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const submitted = await api<BatchStatus>(fleet.url, 'POST', '/batches', {
      tasks: [
        { id: 'a', type: 'fail', data: { message: 'nobody will hear of this' } },
        { id: 'b', type: 'echo', data: 1 },
      ],
    });
    const batchId = submitted.body.batchId;
    expect(await waitForBatch(fleet.url, batchId)).toMatchObject({ status: 'partial', completedTasks: 1, failedTasks: 1 });
    const { results } = await readAllResults(fleet.url, batchId);
    expect(results.find((r) => r.taskId === 'a')).toMatchObject({ success: false, error: 'nobody will hear of this', attempts: 3 });
    const sendFailures = logged.mock.calls.map(([line]) => String(line)).filter((line) => line.includes('dead-letter queue: send failed'));
    logged.mockRestore();
    expect(sendFailures).toHaveLength(1);
    expect(sendFailures[0]).toContain(batchId);
    // Ids only in the log, never the task's data or error.
    expect(sendFailures[0]).not.toContain('nobody will hear of this');
  });
});
