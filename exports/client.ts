/**
 * `<package>/client`: the typed client of a Fleet's HTTP API, its errors and its auth.
 *
 * ```ts
 * import { FleetClient } from '@fleet-serverless/fleet/client';
 * ```
 */
export * from '../client/index';
