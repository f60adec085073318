/**
 * The one place AWS clients are built. Endpoints come from the SDK's standard
 * `AWS_ENDPOINT_URL_<SERVICE>` variables, so local mode only changes the
 * environment. Clients live at module scope and are reused across invocations.
 * Each is captured by the Tracer: with tracing on, every request becomes an
 * X-Ray subsegment; off (local mode, tests), the client is returned as is.
 */
import { Agent } from 'node:http';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { tracer } from './observability';

let documentClient: DynamoDBDocumentClient | undefined;
let s3Client: S3Client | undefined;
let s3PresignClient: S3Client | undefined;
let sfnClient: SFNClient | undefined;
let sqsClient: SQSClient | undefined;

/**
 * Sockets per client when the process runs many functions at once (local
 * mode sets FLEET_SDK_MAX_SOCKETS); on AWS a Lambda environment sends one
 * request at a time and the SDK's default (50) stands.
 */
function requestHandler(): { httpAgent: Agent } | undefined {
  const maxSockets = Number(process.env.FLEET_SDK_MAX_SOCKETS);
  return Number.isInteger(maxSockets) && maxSockets > 0 ? { httpAgent: new Agent({ keepAlive: true, maxSockets }) } : undefined;
}

export function dynamo(): DynamoDBDocumentClient {
  documentClient ??= DynamoDBDocumentClient.from(tracer.captureAWSv3Client(new DynamoDBClient({ requestHandler: requestHandler() })), {
    // convertClassInstanceToMap: the marshaller tells a plain object by its
    // `constructor.name`, so a task's JSON result with its own "constructor"
    // key (say {"constructor": "Ford"}) would otherwise be refused as a class
    // instance, failing a task that succeeded. Everything stored is plain JSON.
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: true },
  });
  return documentClient;
}

export function s3(): S3Client {
  // A local S3 endpoint serves buckets by path, not by virtual host.
  s3Client ??= tracer.captureAWSv3Client(new S3Client({ forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL_S3) }));
  return s3Client;
}

/**
 * For presigned URLs only. With the SDK's default (checksums WHEN_SUPPORTED),
 * a presigned PutObject carries the CRC32 of an empty body
 * (x-amz-checksum-crc32=AAAAAA==), and S3 refuses the real file with BadDigest:
 * https://github.com/aws/aws-sdk-js-v3/issues/6810. WHEN_REQUIRED leaves it out.
 */
export function s3ForPresigning(): S3Client {
  s3PresignClient ??= new S3Client({ forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL_S3), requestChecksumCalculation: 'WHEN_REQUIRED' });
  return s3PresignClient;
}

export function sfn(): SFNClient {
  // UpdateMapRun and DescribeMapRun refill at about 1 request/s: adaptive mode
  // rate-limits on the client once Step Functions throttles, and retries.
  sfnClient ??= tracer.captureAWSv3Client(new SFNClient({ retryMode: 'adaptive', maxAttempts: 6 }));
  return sfnClient;
}

export function sqs(): SQSClient {
  // Requests go to the configured endpoint (AWS_ENDPOINT_URL_SQS locally), not
  // to the host named in a QueueUrl: on AWS the two are the same regional endpoint.
  sqsClient ??= tracer.captureAWSv3Client(new SQSClient({ useQueueUrlAsEndpoint: false }));
  return sqsClient;
}

/**
 * Parses the variables a handler needs, once, at cold start. A missing one
 * fails loudly with its name instead of surfacing later as `undefined`.
 */
export function loadEnv<T extends z.ZodRawShape>(shape: T): z.infer<z.ZodObject<T>> {
  const parsed = z.object(shape).safeParse(process.env);
  if (!parsed.success) {
    const names = parsed.error.issues.map((issue) => issue.path.join('.')).join(', ');
    throw new Error(`Fleet is misconfigured: missing or invalid environment variable(s): ${names}`);
  }
  return parsed.data;
}
