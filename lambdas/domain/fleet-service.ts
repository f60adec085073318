/**
 * The seed's callable methods, on ports. The API handler maps HTTP to these;
 * nothing here knows about HTTP or AWS.
 */
import { randomUUID } from 'node:crypto';
import { orderByPriority } from './batch';
import { LIMITS } from './config';
import { NotFoundError } from './errors';
import type { BatchRepository, Page, TaskStore, WorkflowStarter } from './ports';
import { parseConfigPatch, parseSubmitRequest, type SubmitLimits } from './schemas';
import type { BatchStatus, FleetManagerConfig, TaskResult } from './types';

export interface FleetServiceDeps {
  repository: BatchRepository;
  taskStore: TaskStore;
  workflow: WorkflowStarter;
  limits?: SubmitLimits;
  now?: () => number;
  newBatchId?: () => string;
}

export class FleetService {
  private readonly now: () => number;
  private readonly newBatchId: () => string;
  private readonly limits: SubmitLimits;

  constructor(private readonly deps: FleetServiceDeps) {
    this.now = deps.now ?? Date.now;
    this.newBatchId = deps.newBatchId ?? randomUUID;
    this.limits = deps.limits ?? LIMITS;
  }

  /** Validates, stores the tasks in run order, records the batch and starts its execution. */
  async submitBatch(body: unknown): Promise<BatchStatus> {
    const request = parseSubmitRequest(body, this.limits);
    const batchId = this.newBatchId();
    const ordered = orderByPriority(request.tasks);
    const { bucket, key } = await this.deps.taskStore.putTasks(batchId, ordered);
    const createdAt = this.now();
    const record = {
      batchId,
      status: 'pending' as const,
      totalTasks: ordered.length,
      createdAt,
      startedAt: null,
      completedAt: null,
      completedTasks: 0,
      failedTasks: 0,
      priority: request.priority,
      longestTaskTimeoutMs: ordered.reduce((longest, task) => Math.max(longest, task.timeout ?? 0), 0),
      tasksKey: key,
    };
    await this.deps.repository.createBatch(record);
    await this.deps.workflow.startBatch({ batchId, tasksBucket: bucket, tasksKey: key });
    return {
      batchId,
      status: 'pending',
      totalTasks: record.totalTasks,
      completedTasks: 0,
      failedTasks: 0,
      progress: 0,
      createdAt,
      startedAt: null,
      completedAt: null,
    };
  }

  async getBatchStatus(batchId: string): Promise<BatchStatus> {
    const status = await this.deps.repository.getStatus(batchId);
    if (!status) throw new NotFoundError(`batch ${batchId} not found`);
    return status;
  }

  async getBatchResults(batchId: string, limit: number, cursor: string | undefined): Promise<Page<TaskResult>> {
    const batch = await this.deps.repository.getBatch(batchId);
    if (!batch) throw new NotFoundError(`batch ${batchId} not found`);
    return this.deps.repository.listResults(batchId, limit, cursor);
  }

  listBatches(limit: number, cursor: string | undefined): Promise<Page<BatchStatus>> {
    return this.deps.repository.listBatches(limit, cursor);
  }

  getConfig(): Promise<FleetManagerConfig> {
    return this.deps.repository.getConfig();
  }

  /** A partial update: fields left out keep their values. */
  async updateConfig(body: unknown): Promise<FleetManagerConfig> {
    const patch = parseConfigPatch(body);
    const next = { ...(await this.deps.repository.getConfig()), ...patch };
    await this.deps.repository.putConfig(next);
    return next;
  }
}
