/** The file jobs' adapters: tasks files and results exports in the tasks bucket. */
import { z } from 'zod';
import { dynamo, loadEnv, s3 } from '../adapters/clients';
import { S3FileStorage } from '../adapters/file-storage';
import { DynamoResultsExportStore } from '../adapters/results-export-store';
import { LIMITS } from '../domain/config';
import { once, tableEnv } from './shared';

export const fileJobsEnv = once(() =>
  loadEnv({
    TASKS_BUCKET: z.string().min(1),
    FLEET_MAX_TASKS_PER_BATCH: z.coerce.number().int().positive().default(LIMITS.tasksPerBatch),
  }),
);

export const fileStorage = once(() => new S3FileStorage(s3(), fileJobsEnv().TASKS_BUCKET));
export const resultsExports = once(() => new DynamoResultsExportStore(dynamo(), tableEnv().TABLE_NAME));
