/** The API's FleetService: every adapter of the HTTP routes. Only the API function loads this module. */
import { z } from 'zod';
import { dynamo, loadEnv, s3, s3ForPresigning, sfn } from '../adapters/clients';
import { DynamoBatchMaintenance } from '../adapters/batch-maintenance';
import { StepFunctionsFileJobs } from '../adapters/file-jobs';
import { S3FileStorage } from '../adapters/file-storage';
import { DynamoIdempotencyStore } from '../adapters/idempotency-store';
import { DynamoResultsExportStore } from '../adapters/results-export-store';
import { S3RetryTaskFiles } from '../adapters/retry-task-files';
import { DynamoStorageHealth } from '../adapters/storage-health';
import { DynamoTaskLookup } from '../adapters/task-lookup';
import { S3TaskStore } from '../adapters/task-store';
import { DynamoTimelineStore } from '../adapters/timeline-store';
import { DynamoUploadStore } from '../adapters/upload-store';
import { LIMITS } from '../domain/config';
import { FleetService } from '../domain/fleet-service';
import { admission } from './admission';
import { batchRepository, fleetActivity, once, retryStore, tableEnv } from './shared';

export const apiEnv = once(() =>
  loadEnv({
    TASKS_BUCKET: z.string().min(1),
    FILE_JOBS_STATE_MACHINE_ARN: z.string().min(1),
    /** Buckets a batch may name as s3://bucket/key, comma separated. */
    FLEET_TASKS_FILE_BUCKETS: z.string().default(''),
    FLEET_MAX_TASKS_PER_BATCH: z.coerce.number().int().positive().default(LIMITS.tasksPerBatch),
    FLEET_MAX_BODY_BYTES: z.coerce.number().int().positive().default(LIMITS.bodyBytes),
  }),
);

export const apiService = once(() => {
  const env = apiEnv();
  const { TABLE_NAME, FLEET_RETENTION_DAYS } = tableEnv();
  const taskStore = new S3TaskStore(s3(), env.TASKS_BUCKET);
  const { coordinator, workflow } = admission();
  return new FleetService({
    repository: batchRepository(),
    taskStore,
    workflow,
    capacity: coordinator,
    maintenance: new DynamoBatchMaintenance(dynamo(), TABLE_NAME),
    taskFiles: taskStore,
    retry: { store: retryStore(), taskFiles: new S3RetryTaskFiles(s3(), env.TASKS_BUCKET), workflow },
    activity: fleetActivity(),
    tasks: new DynamoTaskLookup(dynamo(), TABLE_NAME),
    timeline: new DynamoTimelineStore(dynamo(), TABLE_NAME),
    idempotency: new DynamoIdempotencyStore(dynamo(), TABLE_NAME),
    files: {
      storage: new S3FileStorage(s3(), env.TASKS_BUCKET, s3ForPresigning()),
      uploads: new DynamoUploadStore(dynamo(), TABLE_NAME),
      jobs: new StepFunctionsFileJobs(sfn(), env.FILE_JOBS_STATE_MACHINE_ARN),
      exports: new DynamoResultsExportStore(dynamo(), TABLE_NAME),
      allowedBuckets: env.FLEET_TASKS_FILE_BUCKETS.split(',').map((name) => name.trim()).filter(Boolean),
    },
    limits: { tasksPerBatch: env.FLEET_MAX_TASKS_PER_BATCH, taskBytes: LIMITS.taskBytes },
    retentionDays: FLEET_RETENTION_DAYS,
  });
});

/** GET /healthz's check of the table. */
export const storageHealth = once(() => new DynamoStorageHealth(dynamo(), tableEnv().TABLE_NAME));
