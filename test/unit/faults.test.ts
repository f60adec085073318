/**
 * Transient-fault injection (infra/local/faults.ts, infra/local/fault-proxy.ts):
 * the FLEET_FAULTS format, the seeded decisions, and each injected error as
 * it travels on the wire, parsed by the real SDK client into the exception
 * AWS would raise.
 *
 * Pages:
 * - DYNAMODB_ERRORS: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
 * - S3_ERRORS: https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
 * - SFN_ERRORS: https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DYNAMODB_FAULTS, S3_FAULTS, startFaultProxy, type FaultProxy } from '../../infra/local/fault-proxy';
import { FaultInjector, faultInjectorFrom, formatFaults, parseFaults } from '../../infra/local/faults';

const DYNAMODB_ERRORS = 'https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html';
const S3_ERRORS = 'https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html';
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };

describe('the FLEET_FAULTS format', () => {
  it('reads a rate per service and the seed', () => {
    expect(parseFaults('lambda=0.02, dynamodb=0.01,s3=0.01,sfn=0.02,seed=42')).toEqual({
      rates: { lambda: 0.02, dynamodb: 0.01, s3: 0.01, sfn: 0.02 },
      seed: 42,
    });
  });

  it('picks a seed when none is given, and writes it back so the run replays', () => {
    const profile = parseFaults('dynamodb=0.5', () => 1234);
    expect(profile).toEqual({ rates: { dynamodb: 0.5 }, seed: 1234 });
    expect(formatFaults(profile)).toBe('dynamodb=0.5,seed=1234');
    const lines: string[] = [];
    faultInjectorFrom('dynamodb=0.5,seed=1234', (line) => lines.push(line));
    expect(lines).toEqual(['fleet: injecting transient AWS faults; replay with FLEET_FAULTS="dynamodb=0.5,seed=1234"']);
  });

  it.each([
    ['lambda', /not key=value/],
    ['queue=0.1', /unknown service "queue"/],
    ['s3=1.5', /s3 must be a rate from 0 to 1/],
    ['sfn=', /sfn must be a rate/],
    ['seed=-1', /seed must be a whole number/],
  ])('refuses %s, naming what is wrong', (spec, message) => {
    expect(() => parseFaults(spec)).toThrow(message);
  });

  it('no rate above zero means no injector at all', () => {
    expect(faultInjectorFrom('lambda=0,seed=1', () => undefined)).toBeUndefined();
    expect(faultInjectorFrom('', () => undefined)).toBeUndefined();
  });
});

describe('seeded decisions', () => {
  const decisions = (seed: number, n: number) => {
    const injector = new FaultInjector({ rates: { dynamodb: 0.1 }, seed });
    return Array.from({ length: n }, () => injector.decide('dynamodb', ['A', 'B', 'C']) ?? '-').join('');
  };

  it('the same seed gives the same faults, in the same places, with the same errors', () => {
    expect(decisions(42, 2000)).toBe(decisions(42, 2000));
    expect(decisions(42, 2000)).not.toBe(decisions(43, 2000));
  });

  it('injects at the given rate, and picks every error', () => {
    const sequence = decisions(7, 20_000);
    const faults = sequence.replaceAll('-', '');
    // 10% of 20,000 is 2,000; a seeded run is one fixed sample, well inside ±15%.
    expect(faults.length).toBeGreaterThan(1700);
    expect(faults.length).toBeLessThan(2300);
    for (const error of 'ABC') expect(faults.split(error).length - 1).toBeGreaterThan(500);
  });

  it('a service without a rate is never failed, and one service\'s traffic does not shift another\'s decisions', () => {
    const alone = new FaultInjector({ rates: { s3: 0.2 }, seed: 5 });
    const mixed = new FaultInjector({ rates: { s3: 0.2, sfn: 0.5 }, seed: 5 });
    const s3Alone: string[] = [];
    const s3Mixed: string[] = [];
    for (let i = 0; i < 500; i++) {
      expect(alone.decide('lambda', ['x'])).toBeUndefined();
      s3Alone.push(alone.decide('s3', ['x']) ?? '-');
      mixed.decide('sfn', ['y']);
      s3Mixed.push(mixed.decide('s3', ['x']) ?? '-');
    }
    expect(s3Mixed).toEqual(s3Alone);
    expect(alone.injected.lambda).toBe(0);
    expect(alone.injected.s3).toBe(s3Alone.filter((d) => d === 'x').length);
  });
});

describe('faults on the wire, as the real SDK clients read them', () => {
  let upstream: http.Server;
  let upstreamUrl: string;
  let upstreamRequests = 0;
  const proxies: FaultProxy[] = [];

  beforeAll(async () => {
    // A stand-in service: a valid empty GetItem answer, and an S3 object.
    upstream = http.createServer((req, res) => {
      upstreamRequests++;
      req.resume();
      req.on('end', () => {
        if (req.headers['x-amz-target']) {
          res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
          res.end('{}');
        } else {
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' });
          res.end('hello');
        }
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await new Promise<void>((resolve) => upstream.close(() => { resolve(); }));
  });

  const proxy = async (service: 'dynamodb' | 's3', rate: number, errors?: readonly (typeof DYNAMODB_FAULTS)[number][]) => {
    const injector = new FaultInjector({ rates: { [service]: rate }, seed: 1 });
    const started = await startFaultProxy({ target: upstreamUrl, service, injector, ...(errors ? { errors } : {}) });
    proxies.push(started);
    return { endpoint: started.endpoint, injector };
  };

  it.each(DYNAMODB_FAULTS.map((fault) => [fault.name, fault.status, fault]))(
    `DynamoDB ${DYNAMODB_ERRORS}: %s (HTTP %i) reaches the client as that exception`,
    async (name, status, fault) => {
      const { endpoint } = await proxy('dynamodb', 1, [fault]);
      const client = new DynamoDBClient({ region: 'us-east-1', endpoint, credentials, maxAttempts: 1 });
      const error = await client.send(new GetItemCommand({ TableName: 't', Key: { pk: { S: 'a' } } })).then(
        () => undefined,
        (e: unknown) => e as { name: string; $metadata: { httpStatusCode?: number } },
      );
      client.destroy();
      expect(error?.name).toBe(name);
      expect(error?.$metadata.httpStatusCode).toBe(status);
    },
  );

  it.each(S3_FAULTS.map((fault) => [fault.name, fault.status, fault]))(`S3 ${S3_ERRORS}: %s (HTTP %i) reaches the client as that exception`, async (name, status, fault) => {
    const { endpoint } = await proxy('s3', 1, [fault]);
    const client = new S3Client({ region: 'us-east-1', endpoint, credentials, forcePathStyle: true, maxAttempts: 1 });
    const error = await client.send(new GetObjectCommand({ Bucket: 'b', Key: 'k' })).then(
      () => undefined,
      (e: unknown) => e as { name: string; $metadata: { httpStatusCode?: number } },
    );
    client.destroy();
    expect(error?.name).toBe(name);
    expect(error?.$metadata.httpStatusCode).toBe(status);
  });

  it('requests not failed go through untouched, and the SDK\'s own retries get past the injected faults', async () => {
    const { endpoint, injector } = await proxy('dynamodb', 0.3);
    const client = new DynamoDBClient({ region: 'us-east-1', endpoint, credentials, maxAttempts: 10 });
    const before = upstreamRequests;
    for (let i = 0; i < 10; i++) {
      await expect(client.send(new GetItemCommand({ TableName: 't', Key: { pk: { S: `k${i}` } } }))).resolves.toMatchObject({ $metadata: { httpStatusCode: 200 } });
    }
    client.destroy();
    // Each request reached the service exactly once: the faults were answered by the proxy alone.
    expect(upstreamRequests - before).toBe(10);
    expect(injector.injected.dynamodb).toBeGreaterThan(0);
  });
});
