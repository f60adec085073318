/**
 * A batch's progress counters scale with its size (domain/batch.ts
 * counterShardsFor): every writer of a count must use the batch's own
 * layout, or a count would land on a counter nobody sums. Finish batch
 * recounts from the results when the counters fall short, so the final
 * status alone would hide such a write: this test sums the counters
 * themselves, after each writer has run (a task's own worker, the Catch
 * path's Record failure, and retry-failed's clearing of failed results).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StatesError } from '../../infra/local/asl/interpreter';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { batchKey, counterKey } from '../../lambdas/adapters/table-layout';
import { counterShardsFor } from '../../lambdas/domain/batch';
import type { BatchStatus, WorkerEvent } from '../../lambdas/domain/types';
import { api, waitForBatch } from './helpers';

let fleet: LocalFleet;
let ddb: DynamoDBDocumentClient;
let table: string;

beforeAll(async () => {
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1 });
  table = fleet.resources.tables[0]!.name;
  // The fleet put its endpoint and local credentials in process.env, as the handlers read them.
  const credentials = { accessKeyId: process.env.AWS_ACCESS_KEY_ID!, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY! };
  ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1', endpoint: process.env.AWS_ENDPOINT_URL_DYNAMODB, credentials }));
});
afterAll(async () => {
  (ddb as DynamoDBDocumentClient | undefined)?.destroy();
  await (fleet as LocalFleet | undefined)?.close();
});

const TASKS = 600;
const failing = (i: number) => i % 7 === 0;
const crashing = (i: number) => !failing(i) && i % 11 === 0;

async function counterSums(batchId: string, shards: number): Promise<{ completed: number; failed: number }> {
  let completed = 0;
  let failed = 0;
  for (let shard = 0; shard < shards; shard++) {
    const { Item } = await ddb.send(new GetCommand({ TableName: table, Key: counterKey(batchId, shard), ConsistentRead: true }));
    completed += (Item?.completed as number | undefined) ?? 0;
    failed += (Item?.failed as number | undefined) ?? 0;
  }
  return { completed, failed };
}

describe('a batch counted on its own counter layout', () => {
  it('keeps every count of a 600-task batch on its 3 counters, through Record failure and retry-failed', async () => {
    expect((await api(fleet.url, 'PATCH', '/config', { maxRetries: 0 })).status).toBe(200);
    const crashedIds = new Set(Array.from({ length: TASKS }, (_, i) => i).filter(crashing).map((i) => `t${i}`));
    let crashesInjected = 0;
    // The attempt's Lambda ends without an answer: the Map's Catch runs Record failure for it.
    fleet.lambda.invokeFault = (_fn, payload) => {
      const event = payload as Partial<WorkerEvent> & { action?: string };
      if (event.action !== undefined || !event.task || !crashedIds.has(event.task.id)) return undefined;
      crashesInjected++;
      return new StatesError('Sandbox.Timedout', JSON.stringify({ errorMessage: 'Task timed out after 3.00 seconds' }));
    };
    const tasks = Array.from({ length: TASKS }, (_, i) => ({ id: `t${i}`, type: failing(i) ? 'fail' : 'echo', data: { i } }));
    const submitted = await api<BatchStatus>(fleet.url, 'POST', '/batches', { tasks });
    expect(submitted.status).toBe(202);
    const { batchId } = submitted.body;
    const failures = tasks.filter((_, i) => failing(i)).length;

    const first = await waitForBatch(fleet.url, batchId);
    fleet.lambda.invokeFault = undefined;
    expect(crashesInjected).toBe(crashedIds.size);
    expect(first).toMatchObject({ status: 'partial', completedTasks: TASKS - failures - crashedIds.size, failedTasks: failures + crashedIds.size });

    // Assert: the record names its layout, and the counters it names hold every count.
    const shards = counterShardsFor(TASKS);
    expect(shards).toBe(3);
    const { Item: record } = await ddb.send(new GetCommand({ TableName: table, Key: batchKey(batchId), ConsistentRead: true }));
    expect(record?.counterShards).toBe(shards);
    expect(await counterSums(batchId, shards)).toEqual({ completed: first.completedTasks, failed: first.failedTasks });
    // Nothing was written past the layout.
    expect(await counterSums(batchId, 128)).toEqual(await counterSums(batchId, shards));

    // Act: the crashed tasks succeed this time; the failing ones fail again.
    expect((await api(fleet.url, 'POST', `/batches/${batchId}/retry-failed`)).status).toBe(202);
    const second = await waitForBatch(fleet.url, batchId);

    // Assert: retry-failed's clears (−1 failed each) and the new outcomes are on the same counters.
    expect(second).toMatchObject({ status: 'partial', completedTasks: TASKS - failures, failedTasks: failures });
    expect(await counterSums(batchId, shards)).toEqual({ completed: TASKS - failures, failed: failures });
    expect(await counterSums(batchId, 128)).toEqual(await counterSums(batchId, shards));
  });
});
