/**
 * A small HTTP proxy in front of a local service endpoint (DynamoDB, S3) that
 * answers some requests, at the injector's rate, with the transient error
 * AWS itself sends: the same status, headers and body, so the handlers' real
 * SDK clients parse it into the named exception and retry it as they would
 * on AWS. Nothing in the deployed handlers knows about it; only the endpoint
 * they are given changes.
 */
import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FaultInjector } from './faults';

/** One error as it travels on the wire. */
export interface WireError {
  /** The exception name the SDK gives it. */
  name: string;
  status: number;
  headers: Record<string, string>;
  body: string;
}

const DYNAMODB_PREFIX = 'com.amazonaws.dynamodb.v20120810#';

/**
 * DynamoDB's transient errors (awsJson1_0: `__type` names the exception).
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
 */
export const DYNAMODB_FAULTS: readonly WireError[] = [
  dynamoError('ThrottlingException', 400, 'Rate of requests exceeds the allowed throughput.'),
  dynamoError(
    'ProvisionedThroughputExceededException',
    400,
    'The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.',
  ),
  dynamoError('InternalServerError', 500, 'Internal server error'),
];

function dynamoError(name: string, status: number, message: string): WireError {
  return {
    name,
    status,
    headers: { 'content-type': 'application/x-amz-json-1.0' },
    body: JSON.stringify({ __type: `${DYNAMODB_PREFIX}${name}`, message }),
  };
}

/**
 * S3's transient errors (REST-XML: an <Error> document with its <Code>).
 * https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
 */
export const S3_FAULTS: readonly WireError[] = [
  s3Error('SlowDown', 503, 'Please reduce your request rate.'),
  s3Error('InternalError', 500, 'We encountered an internal error. Please try again.'),
];

function s3Error(code: string, status: number, message: string): WireError {
  return {
    name: code,
    status,
    headers: { 'content-type': 'application/xml' },
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>LOCALFAULT</RequestId><HostId>local</HostId></Error>`,
  };
}

export interface FaultProxy {
  endpoint: string;
  close(): Promise<void>;
}

/** Starts a proxy on 127.0.0.1 that forwards to `target` and injects `service`'s faults. */
export async function startFaultProxy(options: {
  target: string;
  service: 'dynamodb' | 's3';
  injector: FaultInjector;
  /** The errors to choose from. @default the service's (DYNAMODB_FAULTS or S3_FAULTS) */
  errors?: readonly WireError[];
}): Promise<FaultProxy> {
  const target = new URL(options.target);
  const errors = options.errors ?? (options.service === 'dynamodb' ? DYNAMODB_FAULTS : S3_FAULTS);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const server = http.createServer((req, res) => {
    const fault = options.injector.decide(options.service, errors);
    if (fault) {
      // The request is read whole first, as a real endpoint would, so the client's socket stays usable.
      req.resume();
      req.on('end', () => {
        const requestId = randomUUID();
        const idHeaders = options.service === 'dynamodb' ? { 'x-amzn-requestid': requestId } : { 'x-amz-request-id': requestId, 'x-amz-id-2': 'local' };
        const body = req.method === 'HEAD' ? '' : fault.body;
        res.writeHead(fault.status, { ...fault.headers, ...idHeaders, 'content-length': String(Buffer.byteLength(body)) });
        res.end(body);
      });
      return;
    }
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        agent.destroy();
        server.close(() => { resolve(); });
      }),
  };
}
