/**
 * The dashboard's reads that must stay cheap, with DynamoDB mocked so the
 * calls themselves can be counted: a filtered results page reads a bounded
 * number of results (DynamoDB applies a FilterExpression after reading, and
 * `Limit` counts the items read, not the matches:
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.FilterExpression.html),
 * and the timeline's buckets from its per-minute snapshots, which the
 * admission reconciler's schedule takes every minute.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { DynamoBatchRepository, FILTERED_PAGE_SCAN } from '../../lambdas/adapters/batch-repository';
import { ValidationError } from '../../lambdas/domain/errors';
import { FleetService } from '../../lambdas/domain/fleet-service';
import type { BatchRepository, FleetActivity, TimelineSnapshot, TimelineStore, WorkflowStarter } from '../../lambdas/domain/ports';
import { parseTimelineMinutes, timelineOf } from '../../lambdas/domain/timeline';

const ddbClient = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }));
const ddb = mockClient(ddbClient);
afterEach(() => ddb.reset());

const result = (taskId: string, success: boolean) => ({ pk: 'p', sk: `RESULT#${taskId}`, taskId, success, duration: 1, timestamp: 1, attempts: 1, workerId: 'w' });

describe('a filtered results page', () => {
  it('stops once it has read FILTERED_PAGE_SCAN results, with a cursor to go on, even with no match', async () => {
    // Every query reads as many results as it may and none matches: a million results, no failure.
    let n = 0;
    ddb.on(QueryCommand).callsFake((input: { Limit?: number }) => {
      n += input.Limit ?? 0;
      return { Items: [], ScannedCount: input.Limit, LastEvaluatedKey: { pk: 'p', sk: `RESULT#t${n}` } };
    });
    const page = await new DynamoBatchRepository(ddbClient, 'T').listResults('b', 25, undefined, { success: false });
    expect(page.items).toEqual([]);
    expect(page.nextCursor).not.toBeNull();
    const calls = ddb.commandCalls(QueryCommand).map((call) => call.args[0].input);
    expect(calls.reduce((sum, input) => sum + (input.Limit ?? 0), 0)).toBe(FILTERED_PAGE_SCAN);
    expect(calls.every((input) => input.FilterExpression === '#ok = :ok' && input.ExpressionAttributeValues?.[':ok'] === false)).toBe(true);
  });

  it('returns at most `limit` matches and continues right after the last one returned', async () => {
    ddb.on(QueryCommand).resolvesOnce({ Items: [result('a', false), result('b', false), result('c', false)], ScannedCount: 200 }).resolves({ Items: [], ScannedCount: 0 });
    const repository = new DynamoBatchRepository(ddbClient, 'T');
    const page = await repository.listResults('b', 2, undefined, { success: false });
    expect(page.items.map((r) => r.taskId)).toEqual(['a', 'b']);
    await repository.listResults('b', 2, page.nextCursor ?? undefined, { success: false });
    const resumed = ddb.commandCalls(QueryCommand)[1]?.args[0].input;
    expect(resumed?.ExclusiveStartKey).toEqual({ pk: 'BATCH#b#S00', sk: 'RESULT#b' });
  });

  it('an unfiltered page reads exactly what it returns, as before', async () => {
    ddb.on(QueryCommand).resolves({ Items: [result('a', true)], LastEvaluatedKey: { pk: 'p', sk: 'RESULT#a' } });
    await new DynamoBatchRepository(ddbClient, 'T').listResults('b', 1, undefined);
    const input = ddb.commandCalls(QueryCommand)[0]?.args[0].input;
    expect(input?.Limit).toBe(1);
    expect(input?.FilterExpression).toBeUndefined();
  });
});

describe('timelineOf', () => {
  const at = 1_000 * 60_000 + 30_000; // half way through epoch minute 1000
  const snap = (minute: number, completedTasks: number, failedTasks: number) => ({ minute, takenAt: minute * 60_000, completedTasks, failedTasks });

  it('a bucket is the difference to the next snapshot; the current minute, to the totals now', () => {
    const timeline = timelineOf([snap(998, 10, 1), snap(999, 25, 3), snap(1000, 40, 3)], { at, completedTasks: 42, failedTasks: 5 }, 3);
    expect(timeline.buckets).toEqual([
      { start: 998 * 60_000, succeeded: 15, failed: 2 },
      { start: 999 * 60_000, succeeded: 15, failed: 0 },
      { start: 1000 * 60_000, succeeded: 2, failed: 2 },
    ]);
  });

  it('a minute without a snapshot, and the minute before it, are unknown (null), never guessed', () => {
    const timeline = timelineOf([snap(997, 0, 0), snap(999, 50, 0), snap(1000, 60, 0)], { at, completedTasks: 60, failedTasks: 0 }, 4);
    expect(timeline.buckets.map((b) => b.succeeded)).toEqual([null, null, 10, 0]);
  });

  it('a drop (retry-failed clearing failures) shows as 0, not below', () => {
    const timeline = timelineOf([snap(1000, 5, 9)], { at, completedTasks: 8, failedTasks: 4 }, 1);
    expect(timeline.buckets).toEqual([{ start: 1000 * 60_000, succeeded: 3, failed: 0 }]);
  });

  it('minutes: 1 to 60, default 60; anything else names the field', () => {
    expect(parseTimelineMinutes(undefined)).toBe(60);
    expect(parseTimelineMinutes('15')).toBe(15);
    for (const bad of ['0', '61', '1.5', 'abc', '-5']) {
      expect(() => parseTimelineMinutes(bad)).toThrow(ValidationError);
      expect(() => parseTimelineMinutes(bad)).toThrow(/^minutes:/);
    }
  });
});

describe('timeline snapshots', () => {
  /** FleetService over in-memory ports: totals that grow between calls, no running batch. */
  function serviceAt(clock: { now: number }, totals: { completedTasks: number; failedTasks: number }) {
    const stored = new Map<number, TimelineSnapshot>();
    const timeline: TimelineStore = {
      list: async (from, to) => [...stored.values()].filter((s) => s.minute >= from && s.minute <= to).sort((a, b) => a.minute - b.minute),
      put: async (snapshot) => {
        if (stored.has(snapshot.minute)) return false;
        stored.set(snapshot.minute, snapshot);
        return true;
      },
    };
    const activity = {
      readTotals: async () => ({ totalBatches: 1, totalTasks: 100, ...totals }),
      countWorkers: async () => 0,
      countedBatchIds: async () => new Set<string>(),
    } as unknown as FleetActivity;
    const repository = { listActiveBatchIds: async () => [] } as unknown as BatchRepository;
    const service = new FleetService({ repository, workflow: {} as WorkflowStarter, activity, timeline, now: () => clock.now });
    return { service, stored };
  }

  it('the reconciler takes one snapshot a minute, and the timeline reads it: no gap while nobody watched', async () => {
    const clock = { now: 5_000 * 60_000 + 1_000 };
    const totals = { completedTasks: 10, failedTasks: 1 };
    const { service, stored } = serviceAt(clock, totals);
    expect(await service.snapshotTimeline()).toBe(true);
    expect(await service.snapshotTimeline()).toBe(false);
    clock.now += 60_000;
    totals.completedTasks = 30;
    expect(await service.snapshotTimeline()).toBe(true);
    expect([...stored.keys()]).toEqual([5_000, 5_001]);

    clock.now += 20_000;
    totals.completedTasks = 35;
    totals.failedTasks = 3;
    const timeline = await service.getTimeline(3);
    expect(timeline.buckets).toEqual([
      { start: 4_999 * 60_000, succeeded: null, failed: null },
      { start: 5_000 * 60_000, succeeded: 20, failed: 0 },
      { start: 5_001 * 60_000, succeeded: 5, failed: 2 },
    ]);
  });
});
