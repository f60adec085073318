import { describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError } from '../../lambdas/domain/errors';
import { FleetService } from '../../lambdas/domain/fleet-service';
import type { BatchMaintenance, BatchRecord, BatchRepository, TaskFileRemover, TaskStore, WorkflowStarter } from '../../lambdas/domain/ports';
import type { BatchState, TaskResult } from '../../lambdas/domain/types';
import { batchRecord } from './handler-fixtures';

const record = (batchId: string, status: BatchState) => batchRecord(batchId, status);

const result = (taskId: string, success: boolean, duration: number): TaskResult => ({
  taskId,
  success,
  duration,
  timestamp: 0,
  attempts: 1,
  workerId: 'w',
});

/** A FleetService over in-memory ports that logs what reached them. */
function serviceWith(batches: BatchRecord[], results: TaskResult[] = []) {
  const calls: string[] = [];
  const repository = {
    getBatch: async (id: string) => batches.find((b) => b.batchId === id),
    listResults: async (id: string, limit: number, cursor: string | undefined) => {
      calls.push(`listResults ${id} ${limit} ${cursor ?? '-'}`);
      const start = cursor ? Number(cursor) : 0;
      return { items: results.slice(start, start + 2), nextCursor: start + 2 < results.length ? String(start + 2) : null };
    },
  } as unknown as BatchRepository;
  const maintenance: BatchMaintenance = {
    deleteBatchItems: async (id) => {
      calls.push(`deleteBatchItems ${id}`);
      return 1;
    },
  };
  const taskFiles: TaskFileRemover = {
    deleteTasks: async (key) => {
      calls.push(`deleteTasks ${key}`);
    },
  };
  const service = new FleetService({
    repository,
    taskStore: {} as TaskStore,
    workflow: {} as WorkflowStarter,
    maintenance,
    taskFiles,
  });
  return { service, calls };
}

describe('FleetService.deleteBatch', () => {
  it.each(['completed', 'partial', 'failed', 'cancelled'] as const)('deletes a %s batch: its items, then its tasks file', async (status) => {
    // Arrange
    const { service, calls } = serviceWith([record('b1', status)]);

    // Act
    await service.deleteBatch('b1');

    // Assert
    expect(calls).toEqual(['deleteBatchItems b1', 'deleteTasks batches/b1/tasks.jsonl']);
  });

  it.each(['pending', 'processing'] as const)('refuses a %s batch with a ConflictError saying to cancel it first, and deletes nothing', async (status) => {
    const { service, calls } = serviceWith([record('b1', status)]);

    const attempt = service.deleteBatch('b1');

    await expect(attempt).rejects.toBeInstanceOf(ConflictError);
    await expect(attempt).rejects.toThrow(`batch b1 is ${status}: only a finished batch can be deleted; cancel it first`);
    expect(calls).toEqual([]);
  });

  it('answers NotFoundError for an unknown batch', async () => {
    const { service, calls } = serviceWith([]);

    await expect(service.deleteBatch('nope')).rejects.toBeInstanceOf(NotFoundError);
    expect(calls).toEqual([]);
  });

  it('fails clearly when built without the maintenance ports', async () => {
    const service = new FleetService({ repository: {} as BatchRepository, taskStore: {} as TaskStore, workflow: {} as WorkflowStarter });

    await expect(service.deleteBatch('b1')).rejects.toThrow('deleteBatch needs both');
  });
});

describe('FleetService.getBatchSummary', () => {
  it('summarizes every page of results, 1,000 at a time', async () => {
    // Arrange: 5 results, served 2 a page by the fake
    const results = [result('a', true, 40), result('b', false, 10), result('c', true, 30), result('d', true, 20), result('e', true, 50)];
    const { service, calls } = serviceWith([record('b1', 'completed')], results);

    // Act
    const summary = await service.getBatchSummary('b1');

    // Assert
    expect(summary).toEqual({
      batchId: 'b1',
      totalResults: 5,
      successCount: 4,
      failureCount: 1,
      averageDuration: 30,
      p50Duration: 30,
      p95Duration: 50,
    });
    expect(calls).toEqual(['listResults b1 1000 -', 'listResults b1 1000 2', 'listResults b1 1000 4']);
  });

  it('answers NotFoundError for an unknown batch without reading results', async () => {
    const { service, calls } = serviceWith([]);

    await expect(service.getBatchSummary('nope')).rejects.toBeInstanceOf(NotFoundError);
    expect(calls).toEqual([]);
  });
});
