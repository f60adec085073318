/**
 * The app's stack: Fleet, composed like any construct, with the app's own
 * task types on their own functions, and a few overrides of Fleet's defaults.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { Fleet, type FleetProps } from '@fleet-serverless/fleet/construct';
import type { Construct } from 'constructs';

/** This project's folder: worker entries are relative to it, wherever the app runs from. */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const fleetProps: FleetProps = {
  projectRoot: PROJECT_ROOT,
  workers: {
    'word-count': { entry: 'src/workers/word-count.ts', memorySize: 256, timeout: Duration.minutes(1) },
    checksum: { entry: 'src/workers/checksum.ts' },
  },
  workerFunctionProps: { memorySize: 512, description: 'fleet-example-app worker' },
  removalPolicy: RemovalPolicy.DESTROY,
  retentionDays: 3,
};

export class ExampleStack extends Stack {
  readonly fleet: Fleet;

  constructor(scope: Construct, id: string, props: StackProps = {}) {
    super(scope, id, props);
    this.fleet = new Fleet(this, 'Fleet', fleetProps);
  }
}
