/**
 * Fleet's stateful resources: the table, the tasks bucket and its access-log
 * bucket, the dead-letter queue. Made in the Fleet construct's own scope, with
 * the ids they always had, so their logical IDs (and so the deployed table and
 * buckets) stay the same: a changed construct path would make CloudFormation
 * replace them, data and all. test/infra/logical-ids.test.ts pins them.
 */
import { Duration, Validations, type RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { TABLE_KEYS } from '../lambdas/adapters/table-layout';
import { checkTableProps, type FleetTableProps } from './fleet-overrides';

export interface FleetStorageProps {
  /** Days a finished batch's files are kept (the bucket's lifecycle follows FleetProps.retentionDays). */
  readonly retentionDays: number;
  readonly removalPolicy: RemovalPolicy;
  readonly tableProps?: FleetTableProps;
}

/** What createFleetStorage makes. */
export interface FleetStorage {
  readonly table: dynamodb.Table;
  readonly accessLogsBucket: s3.Bucket;
  readonly tasksBucket: s3.Bucket;
  readonly deadLetterQueue: sqs.Queue;
}

/** Makes Fleet's table, buckets and dead-letter queue in `fleet`'s scope (ids Table, AccessLogsBucket, TasksBucket, DeadLetterQueue). */
export function createFleetStorage(fleet: Construct, props: FleetStorageProps): FleetStorage {
  const { retentionDays, removalPolicy } = props;
  const tableKeys = {
    partitionKey: { name: TABLE_KEYS.partitionKey, type: dynamodb.AttributeType.STRING },
    sortKey: { name: TABLE_KEYS.sortKey, type: dynamodb.AttributeType.STRING },
    timeToLiveAttribute: TABLE_KEYS.ttlAttribute,
  };

  const table = new dynamodb.Table(fleet, 'Table', {
    // Load is bursty (a batch writes as fast as its workers run), so pay per request.
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    encryption: dynamodb.TableEncryption.AWS_MANAGED,
    removalPolicy,
    ...checkTableProps(props.tableProps, tableKeys),
    ...tableKeys,
  });
  table.addGlobalSecondaryIndex({
    indexName: TABLE_KEYS.byCreationIndex,
    partitionKey: { name: TABLE_KEYS.byCreationPartitionKey, type: dynamodb.AttributeType.STRING },
    sortKey: { name: TABLE_KEYS.byCreationSortKey, type: dynamodb.AttributeType.STRING },
  });
  table.addGlobalSecondaryIndex({
    indexName: TABLE_KEYS.activeIndex,
    partitionKey: { name: TABLE_KEYS.activePartitionKey, type: dynamodb.AttributeType.STRING },
    sortKey: { name: TABLE_KEYS.byCreationSortKey, type: dynamodb.AttributeType.STRING },
    // Only unfinished batches carry the key: live scaling reads just those.
    projectionType: dynamodb.ProjectionType.KEYS_ONLY,
  });

  const accessLogsBucket = new s3.Bucket(fleet, 'AccessLogsBucket', {
    // Server access logs can only be delivered to SSE-S3 buckets.
    encryption: s3.BucketEncryption.S3_MANAGED,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    lifecycleRules: [{ expiration: Duration.days(90) }],
    removalPolicy,
  });
  const tasksBucket = new s3.Bucket(fleet, 'TasksBucket', {
    encryption: s3.BucketEncryption.S3_MANAGED,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    serverAccessLogsBucket: accessLogsBucket,
    serverAccessLogsPrefix: 'tasks-bucket/',
    // Task files, results exports and Map Run outputs live as long as the batches they belong to;
    // an upload never submitted, a day; a multipart write that stopped midway, a day.
    lifecycleRules: [
      { expiration: Duration.days(retentionDays + 1), abortIncompleteMultipartUploadAfter: Duration.days(1) },
      { prefix: 'uploads/', expiration: Duration.days(1) },
    ],
    removalPolicy,
  });

  const deadLetterQueue = new sqs.Queue(fleet, 'DeadLetterQueue', {
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    // SQS's longest: operators have two weeks to look at a failed task.
    retentionPeriod: Duration.days(14),
    removalPolicy,
  });
  Validations.of(deadLetterQueue).acknowledge({
    id: 'AwsSolutions-SQS3',
    reason: 'This queue is itself a dead-letter queue: failed tasks are sent to it for operators to inspect, and nothing consumes it automatically.',
  });
  return { table, accessLogsBucket, tasksBucket, deadLetterQueue };
}
