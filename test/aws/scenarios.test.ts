/**
 * The end-to-end scenarios against a deployed stack, signed with SigV4. Run
 * only by `npm run test:aws` (test/aws/run.ts), which deploys the stack and
 * passes its API URL in FLEET_E2E_URL; `npm test` never includes test/aws.
 */
import { defineFleetScenarios } from '../e2e/scenarios';

const url = process.env.FLEET_E2E_URL;
const region = process.env.FLEET_E2E_REGION;
if (!url || !region) throw new Error('FLEET_E2E_URL and FLEET_E2E_REGION are not set: run this file through `npm run test:aws`, which deploys a stack for it');

defineFleetScenarios({
  name: 'AWS, SigV4',
  baseUrl: url,
  // Credentials from the SDK's default chain, as the runner checked them.
  auth: { type: 'sigv4', region },
  // A deployed fleet has no fault task types, real 1 s retry delays and no documented item order.
  capabilities: { faultTasks: false, scaledDelays: false, orderedDispatch: false },
  timing: {
    // Long enough that overlap and cancellation are visible across Lambda cold starts and Map Run launches.
    taskMs: 1_500,
    batchTimeoutMs: 5 * 60_000,
    pollMs: 1_000,
    testTimeoutMs: 10 * 60_000,
    // The worker's default FLEET_WORKER_LISTING_DELAY_MS.
    workerListingDelayMs: 2_000,
  },
});
