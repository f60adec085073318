/**
 * The Fleet construct's props: the one place to configure the fleet, for
 * `cdk deploy` (infra/app.ts) and `npm start` (infra/local/main.ts) alike,
 * so local mode runs the configuration that deploys.
 *
 * For example (README: Per-type worker functions, Autoscaling):
 *
 *   workers: { thumbnail: { entry: 'examples/workers/thumbnail-worker.ts', memorySize: 2048 } },
 *   autoscaling: { min: 2, max: 50 },
 */
import type { FleetProps } from './fleet';

export const fleetProps: FleetProps = {};
