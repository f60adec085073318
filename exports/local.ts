/**
 * `<package>/local`: your stack's Fleet on your machine, with your task
 * handlers, against local DynamoDB, S3, SQS and Step Functions.
 *
 * ```ts
 * import { startLocalFleet } from '@fleet-serverless/fleet/local';
 * const fleet = await startLocalFleet({ fleetProps, inMemory: true, port: 0 });
 * ```
 */
export { startLocalFleet, type LocalFleet, type LocalFleetOptions } from '../infra/local/local-fleet';
export type { LocalRoute } from '../infra/local/http-api';
/** What startLocalFleet throws when another fleet runs on its data folder. */
export { DataFolderInUseError } from '../infra/local/data-folder-lock';
