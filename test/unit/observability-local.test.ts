/**
 * Issue 4, AWS observability, as local mode runs it (infra/local/local-fleet.ts
 * sets these variables): metrics and tracing off, WARN level. The worker then
 * prints nothing for a task, successful or not, and stores no metric.
 */
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RecordFailureEvent, WorkerEvent, WorkerOutput } from '../../lambdas/domain/types';
import { captureOutput, useHandlerEnvironment } from './handler-fixtures';

const ddb = mockClient(DynamoDBDocumentClient);
mockClient(SQSClient);
let handler: (event: WorkerEvent | RecordFailureEvent) => Promise<WorkerOutput>;
let observability: typeof import('../../lambdas/adapters/observability');

beforeAll(async () => {
  useHandlerEnvironment({
    POWERTOOLS_SERVICE_NAME: 'FleetLocal/Fleet',
    POWERTOOLS_METRICS_NAMESPACE: 'Fleet',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_TRACE_ENABLED: 'false',
    POWERTOOLS_LOG_LEVEL: 'WARN',
  });
  ({ handler } = await import('../../lambdas/worker'));
  observability = await import('../../lambdas/adapters/observability');
});
// A retry first reads its batch (lambdas/worker.ts): a batch that is not cancelled.
beforeEach(() => {
  ddb.on(GetCommand).resolves({});
});
afterEach(() => {
  ddb.reset();
  vi.restoreAllMocks();
});

const settings = { workerTimeout: 5_000, maxRetries: 1, retryFailedTasks: true, attemptTimeoutSeconds: 15, executionBudgetMs: null };

describe('observability in local mode', () => {
  it('prints nothing and stores no metric for tasks that succeed, retry and fail', async () => {
    ddb.on(PutCommand).resolves({});
    ddb.on(UpdateCommand).resolves({});
    const written = captureOutput();
    const storing = vi.spyOn(observability.metrics, 'addMetric');

    await handler({ batchId: 'b', task: { id: 'ok', type: 'echo', data: 1 }, settings, attempt: 0 });
    await expect(handler({ batchId: 'b', task: { id: 'bad', type: 'fail', data: {} }, settings, attempt: 0 })).rejects.toMatchObject({ name: 'TaskAttemptFailed' });
    await expect(handler({ batchId: 'b', task: { id: 'bad', type: 'fail', data: {} }, settings, attempt: 1 })).rejects.toMatchObject({ name: 'TaskFailed' });

    expect(written).toEqual([]);
    expect(storing).not.toHaveBeenCalled();
    expect(observability.metrics.enabled).toBe(false);
    expect(observability.tracer.isTracingEnabled()).toBe(false);
  });

  it('loads the X-Ray SDK in manual mode, so it installs no process-wide async hook', () => {
    expect(process.env.AWS_XRAY_MANUAL_MODE).toBe('true');
  });
});
