/** Start and Finish batch: the batch's record, capacity and retry bookkeeping, and admission on the state machine that runs it. */
import { z } from 'zod';
import { dynamo, loadEnv, s3 } from '../adapters/clients';
import { DynamoCapacityStore } from '../adapters/capacity-store';
import { S3RetryTaskFiles } from '../adapters/retry-task-files';
import { BatchLifecycle } from '../domain/batch-lifecycle';
import { admissionOn } from './admission';
import { batchRepository, fleetActivity, log, once, retryStore, runMetrics, tableEnv } from './shared';

export const batchLifecycle = once(() => {
  const env = loadEnv({
    TASKS_BUCKET: z.string().min(1),
    FLEET_CHILD_EXECUTION_TYPE: z.enum(['EXPRESS', 'STANDARD']).default('EXPRESS'),
  });
  return new BatchLifecycle({
    repository: batchRepository(),
    capacity: new DynamoCapacityStore(dynamo(), tableEnv().TABLE_NAME),
    retry: { store: retryStore(), taskFiles: new S3RetryTaskFiles(s3(), env.TASKS_BUCKET) },
    retryStore: retryStore(),
    activity: fleetActivity(),
    release: (stateMachineArn, batchId) => admissionOn(stateMachineArn).coordinator.release(batchId),
    log,
    metrics: runMetrics,
    retentionDays: tableEnv().FLEET_RETENTION_DAYS,
    childExecutionType: env.FLEET_CHILD_EXECUTION_TYPE,
  });
});
