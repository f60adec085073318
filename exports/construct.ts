/**
 * `<package>/construct`: the Fleet L3 construct for your own CDK stack.
 *
 * ```ts
 * import { Fleet } from '@fleet-serverless/fleet/construct';
 * new Fleet(this, 'Fleet', { workers: { thumbnail: { entry: 'src/workers/thumbnail.ts' } } });
 * ```
 */
export {
  DEFAULT_API_THROTTLE,
  Fleet,
  FleetPropsError,
  LOCAL_ENTRY_METADATA,
  type FleetApiAuthorization,
  type FleetAutoscalingProps,
  type FleetFunctionProps,
  type FleetProps,
  type FleetStateMachineProps,
  type FleetTableProps,
  type FleetWorkerProps,
  type LocalEntryMetadata,
} from '../infra/fleet';
export { FleetStack, type FleetStackProps } from '../infra/fleet-stack';
export type { FleetLogLevel } from '../infra/fleet-observability';
