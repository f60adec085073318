import { ConstructSelector, Mixins, RemovalPolicies, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { BucketAutoDeleteObjects } from 'aws-cdk-lib/aws-s3/mixins';
import type { Construct } from 'constructs';
import { Fleet, type FleetProps } from './fleet';

export interface FleetStackProps extends StackProps {
  fleet?: FleetProps;
  /**
   * A throwaway stack (`npm run test:aws`, context `scratch=true`): every
   * resource is deleted with the stack, and the buckets are emptied first
   * (autoDeleteObjects), so `cdk destroy` leaves nothing behind.
   * @default false (the table and buckets follow `fleet.removalPolicy`, RETAIN by default)
   */
  scratch?: boolean;
}

/** The deployable stack: one Fleet. */
export class FleetStack extends Stack {
  readonly fleet: Fleet;

  constructor(scope: Construct, id: string, props: FleetStackProps = {}) {
    super(scope, id, props);
    this.fleet = new Fleet(this, 'Fleet', props.scratch ? { ...props.fleet, removalPolicy: RemovalPolicy.DESTROY } : props.fleet);
    if (props.scratch) {
      // Also anything a future resource would retain by default.
      RemovalPolicies.of(this).destroy();
      Mixins.of(this.fleet, ConstructSelector.resourcesOfType('AWS::S3::Bucket')).apply(new BucketAutoDeleteObjects());
    }
  }
}
