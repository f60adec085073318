/**
 * The Fleet construct's props: the one place to configure the fleet, for
 * `cdk deploy` (infra/app.ts) and `npm start` (infra/local/main.ts) alike,
 * so local mode runs the configuration that deploys.
 *
 * Per-type worker functions, for example (README: Per-type workers):
 *
 *   workers: { thumbnail: { entry: 'examples/workers/thumbnail-worker.ts', memorySize: 2048 } },
 */
import type { FleetProps } from './fleet';

export const fleetProps: FleetProps = {};
