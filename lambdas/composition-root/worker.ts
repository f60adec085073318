/** The worker's service: the table's results and registry, the dead-letter queue, and nothing of the API's. */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { loadEnv, sqs } from '../adapters/clients';
import { SqsDeadLetterQueue } from '../adapters/dead-letter-queue';
import { isStorageUnavailable } from '../adapters/storage-errors';
import { WORKER_LISTING_DELAY_MS, WORKER_LISTING_MODES } from '../domain/fleet-activity';
import { WorkerService } from '../domain/worker-service';
import { batchRepository, fleetActivity, log, once, runMetrics, tableEnv } from './shared';

export const workerEnv = once(() =>
  loadEnv({
    /** In `long-attempts` listing mode: how long an attempt runs before GET /workers lists it. */
    FLEET_WORKER_LISTING_DELAY_MS: z.coerce.number().int().nonnegative().default(WORKER_LISTING_DELAY_MS),
    /** FleetProps.workerListing: for a batch whose settings do not say (one started before the setting existed). */
    FLEET_WORKER_LISTING: z.enum(WORKER_LISTING_MODES).default('every-attempt'),
    /** The Fleet construct always sets it; without it (e.g. a unit test) no dead-letter message is sent. */
    FLEET_DLQ_URL: z.string().min(1).optional(),
  }),
);

export const workerService = once(() => {
  const env = workerEnv();
  return new WorkerService({
    results: batchRepository(),
    activity: fleetActivity(),
    ...(env.FLEET_DLQ_URL ? { deadLetters: new SqsDeadLetterQueue(sqs(), env.FLEET_DLQ_URL) } : {}),
    isStorageUnavailable,
    log,
    metrics: runMetrics,
    retentionDays: tableEnv().FLEET_RETENTION_DAYS,
    workerListing: env.FLEET_WORKER_LISTING,
    workerListingDelayMs: env.FLEET_WORKER_LISTING_DELAY_MS,
    // One id per execution environment: the seed's worker id.
    environmentId: randomUUID().slice(0, 8),
  });
});
