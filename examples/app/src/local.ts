/**
 * `npm start`: this app's stack, Fleet and the app's task types, on this
 * machine at http://127.0.0.1:3000, until Ctrl-C.
 */
import { App } from 'aws-cdk-lib';
import { startLocalFleet } from '@fleet-serverless/fleet/local';
import { ExampleStack, PROJECT_ROOT } from './stack';

const fleet = await startLocalFleet({
  stack: (app: App) => new ExampleStack(app, 'FleetExampleAppLocal'),
  projectRoot: PROJECT_ROOT,
  port: Number(process.env.PORT ?? 3000),
});
console.log(`Fleet (local) on ${fleet.url}`);
process.once('SIGINT', () => void fleet.close().then(() => process.exit(0)));
