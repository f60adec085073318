#!/usr/bin/env node
/** The CDK app (cdk.json's "app"): `npx cdk synth` / `npx cdk deploy` (`-c stage=prod`; default dev). */
import { App } from 'aws-cdk-lib';
import { deployEnvironment, fleetPropsFor } from './fleet-config';
import { FleetStack } from './fleet-stack';

const app = new App();
const stage = (app.node.tryGetContext('stage') as string | undefined) ?? 'dev';
// `-c scratch=true`: a throwaway stack that `cdk destroy` removes whole (npm run test:aws).
const scratch = String(app.node.tryGetContext('scratch') ?? 'false') === 'true';
const env = deployEnvironment(process.env);
new FleetStack(app, `Fleet-${stage}`, {
  description: 'Fleet: a serverless fleet manager on Step Functions Distributed Map',
  fleet: fleetPropsFor(stage),
  scratch,
  // Environment-agnostic unless an account is pinned: deploys wherever the CLI points.
  ...(env ? { env } : {}),
});
