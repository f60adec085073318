/**
 * Issue 4, AWS observability: the batch metrics. The API counts
 * BatchesSubmitted once per batch created and BatchesFinished{status=cancelled}
 * once per cancel; Finish batch counts BatchesFinished{status} only when its
 * conditional write finished the batch. Log lines carry the batch id. The
 * domain and the adapters are stubbed (the API's FleetService, Finish batch's
 * ports as fakes): only what the handlers emit is tested.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { BatchStatus } from '../../lambdas/domain/types';
import { batchRecord, captureOutput, useHandlerEnvironment } from './handler-fixtures';
import { lifecycleDeps } from './run-leg-fakes';

const SERVICE = 'Unit/Fleet';
type ApiHandler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;
let api: ApiHandler;
let createLifecycleHandlers: typeof import('../../lambdas/batch-lifecycle').createLifecycleHandlers;
let BatchLifecycle: typeof import('../../lambdas/domain/batch-lifecycle').BatchLifecycle;
let shared: typeof import('../../lambdas/composition-root/shared');
let FleetService: typeof import('../../lambdas/domain/fleet-service').FleetService;

beforeAll(async () => {
  useHandlerEnvironment({
    TASKS_BUCKET: 'fleet-tasks',
    STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:111122223333:stateMachine:Fleet',
    FILE_JOBS_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:111122223333:stateMachine:FleetFileJobs',
    POWERTOOLS_SERVICE_NAME: SERVICE,
    POWERTOOLS_METRICS_NAMESPACE: 'Fleet',
    POWERTOOLS_METRICS_DISABLED: 'false',
    POWERTOOLS_LOG_LEVEL: 'INFO',
  });
  ({ handler: api } = (await import('../../lambdas/api')));
  ({ createLifecycleHandlers } = await import('../../lambdas/batch-lifecycle'));
  ({ BatchLifecycle } = await import('../../lambdas/domain/batch-lifecycle'));
  shared = await import('../../lambdas/composition-root/shared');
  ({ FleetService } = await import('../../lambdas/domain/fleet-service'));
});

let written: string[] = [];
beforeEach(() => {
  written = captureOutput();
});
afterEach(() => {
  vi.restoreAllMocks();
});

interface Emf {
  _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] };
  [key: string]: unknown;
}
const jsonLines = () => written.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
const emfBlobs = () => jsonLines().filter((line): line is Emf => '_aws' in line);
/** Each metric data point as {name, value, dimensions}. */
const points = () =>
  emfBlobs().flatMap((blob) =>
    blob._aws.CloudWatchMetrics.flatMap((directive) =>
      directive.Metrics.map(({ Name }) => ({
        name: Name,
        value: blob[Name],
        dimensions: Object.fromEntries((directive.Dimensions[0] ?? []).map((key) => [key, blob[key]])),
      })),
    ),
  );

const request = (method: string, rawPath: string, headers: Record<string, string> = {}): APIGatewayProxyEventV2 =>
  ({
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString: '',
    headers,
    body: method === 'POST' ? JSON.stringify({ tasks: [{ id: 't', type: 'echo', data: {} }] }) : undefined,
    isBase64Encoded: false,
    requestContext: { http: { method, path: rawPath } },
  }) as unknown as APIGatewayProxyEventV2;

const status = { batchId: 'batch-1', status: 'pending', totalTasks: 1, completedTasks: 0, failedTasks: 0, progress: 0 } as unknown as BatchStatus;

describe('API: batches submitted and cancelled', () => {
  it('POST /batches counts one BatchesSubmitted', async () => {
    vi.spyOn(FleetService.prototype, 'submitBatch').mockResolvedValue(status);

    expect((await api(request('POST', '/batches'))).statusCode).toBe(202);

    expect(points()).toEqual([{ name: 'BatchesSubmitted', value: 1, dimensions: { service: SERVICE } }]);
  });

  it('an idempotent POST counts the batch when it creates it, not on a repeat', async () => {
    const once = vi.spyOn(FleetService.prototype, 'submitBatchOnce');
    once.mockResolvedValueOnce({ status, created: true }).mockResolvedValueOnce({ status, created: false });

    expect((await api(request('POST', '/batches', { 'idempotency-key': 'order-42' }))).statusCode).toBe(202);
    expect((await api(request('POST', '/batches', { 'idempotency-key': 'order-42' }))).statusCode).toBe(200);

    expect(points().filter((p) => p.name === 'BatchesSubmitted')).toHaveLength(1);
  });

  it('a refused submission counts nothing', async () => {
    vi.spyOn(FleetService.prototype, 'submitBatch').mockRejectedValue(new Error('table unavailable'));

    expect((await api(request('POST', '/batches'))).statusCode).toBe(500);

    expect(points()).toEqual([]);
  });

  it('a cancel counts BatchesFinished{status=cancelled} once: only the request that cancelled the batch', async () => {
    vi.spyOn(FleetService.prototype, 'cancelBatch').mockResolvedValueOnce(true).mockResolvedValueOnce(false);

    await api(request('POST', '/batches/batch-1/cancel'));
    await api(request('POST', '/batches/batch-1/cancel'));

    expect(points()).toEqual([{ name: 'BatchesFinished', value: 1, dimensions: { service: SERVICE, status: 'cancelled' } }]);
  });

  it("a route with a batch id logs with it; the next request's lines do not carry it", async () => {
    vi.spyOn(FleetService.prototype, 'getBatchStatus').mockRejectedValue(new Error('boom'));
    vi.spyOn(FleetService.prototype, 'getStats').mockRejectedValue(new Error('boom again'));

    await api(request('GET', '/batches/batch-7'));
    await api(request('GET', '/stats'));

    const errors = jsonLines().filter((line) => line.message === 'unhandled API error');
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatchObject({ level: 'ERROR', batchId: 'batch-7', service: SERVICE });
    expect(errors[1]).not.toHaveProperty('batchId');
  });
});

describe('Finish batch: batches finished, by final status', () => {
  /** The Finish batch handler over a BatchLifecycle of fakes, with the real logger and metrics (what is asserted). */
  const finishWith = async (applied: boolean) => {
    const { deps, store } = lifecycleDeps({ log: shared.log, metrics: shared.runMetrics });
    store.record = batchRecord('batch-2', 'processing', 4);
    store.counts = { completedTasks: 3, failedTasks: 1 };
    store.applies = applied;
    const lifecycle = new BatchLifecycle(deps);
    const { finish } = createLifecycleHandlers(() => lifecycle);
    return finish({ state: { batchId: 'batch-2' }, stateMachineArn: 'arn:aws:states:us-east-1:111122223333:stateMachine:Fleet' });
  };

  it('counts BatchesFinished once, with the status it set, when its write finished the batch', async () => {
    await expect(finishWith(true)).resolves.toEqual({ batchId: 'batch-2', status: 'partial' });

    expect(points()).toEqual([{ name: 'BatchesFinished', value: 1, dimensions: { service: SERVICE, status: 'partial' } }]);
    // Its one INFO line carries the batch id as a key.
    expect(jsonLines().filter((line) => line.message === 'batch finished')).toEqual([
      expect.objectContaining({ level: 'INFO', batchId: 'batch-2', status: 'partial', completedTasks: 3, failedTasks: 1 }),
    ]);
  });

  it('counts nothing when the batch was already finished (a retried finish, or a cancel first)', async () => {
    await finishWith(false);

    expect(points()).toEqual([]);
    expect(jsonLines().filter((line) => line.message === 'batch finished')).toEqual([]);
  });
});
