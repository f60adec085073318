#!/usr/bin/env node
/** The CDK app (cdk.json): `npx cdk synth`, `npx cdk deploy`. */
import { App } from 'aws-cdk-lib';
import { ExampleStack } from '../src/stack';

const app = new App();
new ExampleStack(app, 'FleetExampleApp');
