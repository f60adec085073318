import { Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { Fleet, type FleetProps } from './fleet';

export interface FleetStackProps extends StackProps {
  fleet?: FleetProps;
}

/** The deployable stack: one Fleet. */
export class FleetStack extends Stack {
  readonly fleet: Fleet;

  constructor(scope: Construct, id: string, props: FleetStackProps = {}) {
    super(scope, id, props);
    this.fleet = new Fleet(this, 'Fleet', props.fleet);
  }
}
