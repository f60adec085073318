/**
 * The composition root: every handler's adapters and services are built here,
 * once per execution environment, and only when a handler asks for them.
 *
 * One module per function's needs (shared, admission, worker, lifecycle, api,
 * schedules, file-jobs), so a function's bundle (and its IAM policy, derived
 * from the modules it reaches: test/infra/iam-matches-code.test.ts) holds only
 * the adapters it uses: the worker never loads, let alone builds, the API's.
 */
import { z } from 'zod';
import { dynamo, loadEnv } from '../adapters/clients';
import { DynamoBatchRepository } from '../adapters/batch-repository';
import { DynamoFleetActivity } from '../adapters/fleet-activity';
import { count, countFinishedBatch, logger, recordWorkerDuration } from '../adapters/observability';
import { DynamoRetryStore } from '../adapters/retry-store';
import { installedWriteGrouping } from '../adapters/write-grouping';
import type { ExecutionNameOf, Log, RunMetrics } from '../domain/ports';

/** `build`'s value, built on the first call and kept for the environment's life. */
export function once<T>(build: () => T): () => T {
  let built: { value: T } | undefined;
  return () => (built ??= { value: build() }).value;
}

/** What every function reads: the table, and how long what it writes is kept. */
export const tableEnv = once(() =>
  loadEnv({
    TABLE_NAME: z.string().min(1),
    FLEET_RETENTION_DAYS: z.coerce.number().positive().default(7),
  }),
);

/**
 * Grouped writes, installed only by the local fleet (infra/local/write-grouping.ts),
 * the only process that is its table's only writer; on AWS every write is its own.
 */
export const batchRepository = once(() => new DynamoBatchRepository(dynamo(), tableEnv().TABLE_NAME, { grouping: installedWriteGrouping() }));
export const fleetActivity = once(() => new DynamoFleetActivity(dynamo(), tableEnv().TABLE_NAME, Date.now, { grouping: installedWriteGrouping() }));
export const retryStore = once(() => new DynamoRetryStore(dynamo(), tableEnv().TABLE_NAME));

/**
 * The name of a batch's current execution, for everything that stops,
 * describes or updates one: a retry-failed run's is `<batchId>-retry-<n>`.
 */
export const executionNameOf: ExecutionNameOf = (batchId) => retryStore().currentExecutionName(batchId);

/** Powertools' logger, as the domain's Log port. */
export const log: Log = {
  debug: (message, attributes = {}) => { logger.debug(message, attributes); },
  info: (message, attributes = {}) => { logger.info(message, attributes); },
  warn: (message, attributes = {}) => { logger.warn(message, attributes); },
  error: (message, attributes = {}) => { logger.error(message, attributes); },
};

/** Powertools' metrics, as the run leg's RunMetrics port. */
export const runMetrics: RunMetrics = {
  count: (name) => { count(name); },
  attemptDuration: recordWorkerDuration,
  batchFinished: countFinishedBatch,
};
