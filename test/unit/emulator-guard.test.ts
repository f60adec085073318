/**
 * The emulators' signature check (infra/local/emulator-guard.ts) agrees with
 * the SDK's own SigV4 signer (@smithy/signature-v4) on every shape of request
 * the fleet sends, and refuses anything altered after signing.
 * SigV4: https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
 */
import { createHash } from 'node:crypto';
import type * as http from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import { describe, expect, it } from 'vitest';
import { newLocalCredentials, requestVerifier, type GuardedService } from '../../infra/local/emulator-guard';

const credentials = newLocalCredentials();

interface Shape {
  service: GuardedService;
  method: string;
  path: string;
  query?: Record<string, string | string[]>;
  headers: Record<string, string>;
  body?: string;
}

/** Signs a request as the SDK does, and returns it as the server sees it. */
async function signed(shape: Shape, signWith = credentials, at = new Date(), declareHash = true): Promise<{ req: http.IncomingMessage; body: Buffer }> {
  // declareHash: the SDK's clients send x-amz-content-sha256 for every service; SigV4 does not require it.
  const signer = new SignatureV4({ credentials: signWith, region: 'us-east-1', service: shape.service, sha256: Sha256, uriEscapePath: shape.service !== 's3', applyChecksum: declareHash });
  const body = Buffer.from(shape.body ?? '');
  const headers: Record<string, string> = { host: '127.0.0.1:4567', ...shape.headers };
  if (shape.service === 's3') headers['x-amz-content-sha256'] = createHash('sha256').update(body).digest('hex');
  const request = await signer.sign(
    { method: shape.method, protocol: 'http:', hostname: '127.0.0.1', port: 4567, path: shape.path, query: shape.query ?? {}, headers, body },
    { signingDate: at },
  );
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(shape.query ?? {})) for (const v of Array.isArray(value) ? value : [value]) search.append(key, v);
  const lowered: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) lowered[name.toLowerCase()] = value;
  const url = `${shape.path}${search.size ? `?${search.toString().replace(/\+/g, '%20')}` : ''}`;
  return { req: { method: shape.method, url, headers: lowered } as unknown as http.IncomingMessage, body };
}

const SHAPES: [string, Shape][] = [
  ['DynamoDB PutItem', { service: 'dynamodb', method: 'POST', path: '/', headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.PutItem' }, body: '{"TableName":"fleet","Item":{"pk":{"S":"ü é"}}}' }],
  ['Step Functions StartExecution', { service: 'states', method: 'POST', path: '/', headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AWSStepFunctions.StartExecution' }, body: '{"name":"b-1"}' }],
  ['SQS SendMessage', { service: 'sqs', method: 'POST', path: '/', headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.SendMessage' }, body: '{"MessageBody":"x  y"}' }],
  ['S3 GetObject of an odd key', { service: 's3', method: 'GET', path: '/fleet-tasks/batches/b%201/t%2Bx%21%28%29.jsonl', headers: {} }],
  ['S3 ListObjectsV2 with a query', { service: 's3', method: 'GET', path: '/fleet-tasks', query: { 'list-type': '2', prefix: 'batches/a b/', 'continuation-token': 'x/y+z=' }, headers: {} }],
  ['S3 PutObject with spaces in a header', { service: 's3', method: 'PUT', path: '/fleet-tasks/k', headers: { 'content-type': 'application/x-ndjson', 'x-amz-meta-note': '  two   spaces ' }, body: '{"id":"t1"}\n' }],
];

describe('requestVerifier', () => {
  it.each(SHAPES)('accepts %s signed by the SDK’s signer with this run’s credentials', async (_name, shape) => {
    const { req, body } = await signed(shape);
    expect(requestVerifier(shape.service, credentials).check(req, shape.service === 's3' ? undefined : body)).toBeUndefined();
  });

  it.each(SHAPES)('refuses %s with another secret, another key id, a changed body or path, or an old date', async (_name, shape) => {
    const verifier = requestVerifier(shape.service, credentials);
    const wrongSecret = await signed(shape, { accessKeyId: credentials.accessKeyId, secretAccessKey: 'another-secret' });
    expect(verifier.check(wrongSecret.req, wrongSecret.body)).toBe('bad-signature');
    const otherKey = await signed(shape, newLocalCredentials());
    expect(verifier.check(otherKey.req, otherKey.body)).toBe('unknown-key');
    const good = await signed(shape);
    if (shape.service !== 's3') expect(verifier.check(good.req, Buffer.concat([good.body, Buffer.from(' ')]))).toBe('bad-signature');
    else expect(verifier.check({ ...good.req, headers: { ...good.req.headers, 'x-amz-content-sha256': createHash('sha256').update('other').digest('hex') } } as unknown as http.IncomingMessage, undefined)).toBe('bad-signature');
    expect(verifier.check({ ...good.req, url: `${good.req.url ?? '/'}x` } as unknown as http.IncomingMessage, good.body)).toBe('bad-signature');
    const old = await signed(shape, credentials, new Date(Date.now() - 16 * 60_000));
    expect(verifier.check(old.req, old.body)).toBe('bad-signature');
    // Signed for another service: refused by this one.
    const elsewhere = await signed({ ...shape, service: shape.service === 'sqs' ? 'dynamodb' : 'sqs' });
    expect(verifier.check(elsewhere.req, elsewhere.body)).toBe('bad-signature');
  });

  it('checks a JSON request signed without x-amz-content-sha256 against its body', async () => {
    const [, shape] = SHAPES[0] ?? [];
    if (!shape) throw new Error('no shape');
    const { req, body } = await signed(shape, credentials, new Date(), false);
    expect(req.headers['x-amz-content-sha256']).toBeUndefined();
    const verifier = requestVerifier(shape.service, credentials);
    expect(verifier.check(req, body)).toBeUndefined();
    expect(verifier.check(req, Buffer.from(body.toString('utf8').replace('fleet', 'fleeT')))).toBe('bad-signature');
  });

  it('refuses an unsigned request, a malformed Authorization, an Origin and a preflight before reading any body', () => {
    const verifier = requestVerifier('dynamodb', credentials);
    const request = (headers: Record<string, string>, method = 'POST') => ({ method, url: '/', headers }) as unknown as http.IncomingMessage;
    expect(verifier.precheck(request({}))).toBe('unsigned');
    expect(verifier.precheck(request({ authorization: 'Bearer x' }))).toBe('unsigned');
    expect(verifier.precheck(request({ origin: 'https://evil.example' }))).toBe('cross-origin');
    expect(verifier.precheck(request({ 'access-control-request-method': 'POST' }, 'OPTIONS'))).toBe('cross-origin');
  });
});
