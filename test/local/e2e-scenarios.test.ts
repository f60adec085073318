/**
 * The end-to-end scenarios (test/e2e/scenarios.ts) against a local fleet
 * guarded by a bearer token: the same scenarios `npm run test:aws` runs
 * against a deployed stack with SigV4, here with local mode's capabilities
 * (fault task types, scaled retry and Wait delays, ordered dispatch).
 */
import { afterAll, beforeAll } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import { defineFleetScenarios } from '../e2e/scenarios';

const TOKEN = 'e2e-scenarios-token';
const WORKER_LISTING_DELAY_MS = 100;
let fleet: LocalFleet | undefined;

beforeAll(async () => {
  // Both are read by the handlers at cold start, i.e. when the fleet loads them.
  process.env.FLEET_ENABLE_FAULT_TASKS = '1';
  process.env.FLEET_WORKER_LISTING_DELAY_MS = String(WORKER_LISTING_DELAY_MS);
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1, token: TOKEN, dashboard: false });
});

afterAll(async () => {
  await fleet?.close();
  delete process.env.FLEET_ENABLE_FAULT_TASKS;
  delete process.env.FLEET_WORKER_LISTING_DELAY_MS;
});

defineFleetScenarios({
  name: 'local, bearer token',
  baseUrl: () => {
    if (!fleet) throw new Error('the local fleet did not start');
    return fleet.url;
  },
  auth: { type: 'bearer', token: TOKEN },
  capabilities: { faultTasks: true, scaledDelays: true, orderedDispatch: true },
  timing: { taskMs: 100, batchTimeoutMs: 300_000, pollMs: 20, testTimeoutMs: 600_000, workerListingDelayMs: WORKER_LISTING_DELAY_MS },
});
