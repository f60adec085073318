/**
 * The emulators' signature check (infra/local/emulator-guard.ts) agrees with
 * the SDK's own SigV4 signer (@smithy/signature-v4) on every shape of request
 * the fleet sends, and refuses anything altered after signing. For S3 it also
 * checks presigned URLs (the SDK's own presigner, @aws-sdk/s3-request-presigner)
 * and refuses the uploads S3 refuses.
 * SigV4: https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
 * Presigned URLs: https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
 * Uploads: https://docs.aws.amazon.com/AmazonS3/latest/userguide/upload-objects.html
 * S3's error codes: https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import S3rver from 's3rver';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { guardServer, MAX_PRESIGNED_EXPIRES_SECONDS, MAX_SINGLE_PUT_BYTES, newLocalCredentials, requestVerifier, uploadRefusal, type GuardedService, type LocalCredentials } from '../../infra/local/emulator-guard';

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
    else expect(verifier.check({ ...(good.req as unknown as Record<string, unknown>), headers: { ...good.req.headers, 'x-amz-content-sha256': createHash('sha256').update('other').digest('hex') } } as unknown as http.IncomingMessage, undefined)).toBe('bad-signature');
    expect(verifier.check({ ...(good.req as unknown as Record<string, unknown>), url: `${good.req.url ?? '/'}x` } as unknown as http.IncomingMessage, good.body)).toBe('bad-signature');
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

/** An S3 client as the API would build one to presign; WHEN_REQUIRED, so no empty-body checksum is signed into a PUT URL. */
const presigner = (endpoint: string, signWith: LocalCredentials = credentials, checksums: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED' = 'WHEN_REQUIRED') =>
  new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: signWith, requestChecksumCalculation: checksums });

/** A presigned URL as the server sees it when a client uses it as-is. */
const using = (url: string, method: string, headers: Record<string, string> = {}) => {
  const parsed = new URL(url);
  return { method, url: `${parsed.pathname}${parsed.search}`, headers: { host: parsed.host, ...headers } } as unknown as http.IncomingMessage;
};

/** The same URL with one query parameter set to another value (or removed). */
const withParam = (url: string, name: string, value: string | undefined) => {
  const parsed = new URL(url);
  if (value === undefined) parsed.searchParams.delete(name);
  else parsed.searchParams.set(name, value);
  return parsed.toString();
};

describe('requestVerifier: presigned S3 URLs (SigV4 query-string authentication)', () => {
  const ENDPOINT = 'http://127.0.0.1:4567';
  const verifier = requestVerifier('s3', credentials);
  const putUrl = (expiresIn = 900, signWith = credentials) => getSignedUrl(presigner(ENDPOINT, signWith), new PutObjectCommand({ Bucket: 'fleet-tasks', Key: 'uploads/ü é/a b+c(1).jsonl' }), { expiresIn });
  const getUrl = () =>
    getSignedUrl(presigner(ENDPOINT), new GetObjectCommand({ Bucket: 'fleet-tasks', Key: 'exports/b-1.jsonl', ResponseContentDisposition: 'attachment; filename="b 1.jsonl"' }), { expiresIn: 3600 });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('accepts a PutObject URL (odd key) and a GetObject URL (response header override) signed by the SDK’s presigner', async () => {
    const put = await putUrl();
    expect(new URL(put).searchParams.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    expect(verifier.check(using(put, 'PUT', { 'content-length': '12' }), undefined)).toBeUndefined();
    expect(verifier.check(using(await getUrl(), 'GET'), undefined)).toBeUndefined();
  });

  it('refuses a URL altered after signing, signed with another secret or used for another method: SignatureDoesNotMatch', async () => {
    const put = await putUrl();
    expect(verifier.check(using(put.replace('a%20b', 'a%20c'), 'PUT'), undefined)).toBe('bad-signature');
    expect(verifier.check(using(`${put}&x-amz-acl=public-read`, 'PUT'), undefined)).toBe('bad-signature');
    expect(verifier.check(using(withParam(put, 'X-Amz-Expires', '899'), 'PUT'), undefined)).toBe('bad-signature');
    const signature = new URL(put).searchParams.get('X-Amz-Signature') ?? '';
    expect(verifier.check(using(withParam(put, 'X-Amz-Signature', `${signature.slice(0, -1)}${signature.endsWith('0') ? '1' : '0'}`), 'PUT'), undefined)).toBe('bad-signature');
    expect(verifier.check(using(put, 'GET'), undefined)).toBe('bad-signature');
    expect(verifier.check(using(put, 'PUT', { host: 'localhost:4567' }), undefined)).toBe('bad-signature');
    const otherSecret = await putUrl(900, { accessKeyId: credentials.accessKeyId, secretAccessKey: 'another-secret' });
    expect(verifier.check(using(otherSecret, 'PUT'), undefined)).toBe('bad-signature');
  });

  it('refuses a URL signed with another access key as InvalidAccessKeyId, before any signature is computed', async () => {
    const other = await putUrl(900, newLocalCredentials());
    expect(verifier.precheck(using(other, 'PUT'))).toBe('unknown-key');
    expect(verifier.check(using(other, 'PUT'), undefined)).toBe('unknown-key');
  });

  it('is valid until X-Amz-Date + X-Amz-Expires, to the second, and refused after that: AccessDenied "Request has expired"', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const signedAt = Date.UTC(2026, 0, 1, 12, 0, 0);
    vi.setSystemTime(signedAt);
    const put = await putUrl(60);
    expect(new URL(put).searchParams.get('X-Amz-Date')).toBe('20260101T120000Z');

    vi.setSystemTime(signedAt + 60_000);
    expect(verifier.check(using(put, 'PUT'), undefined)).toBeUndefined();
    vi.setSystemTime(signedAt + 60_001);
    expect(verifier.precheck(using(put, 'PUT'))).toBe('expired');
    expect(verifier.check(using(put, 'PUT'), undefined)).toBe('expired');
    // Long after the 15 minutes an Authorization header may be off, the URL still works within its expiry.
    vi.setSystemTime(signedAt);
    const dayLong = await putUrl(86_400);
    vi.setSystemTime(signedAt + 86_400_000 - 1000);
    expect(verifier.check(using(dayLong, 'PUT'), undefined)).toBeUndefined();
  });

  it('accepts X-Amz-Expires of 604800 (7 days) and refuses more with AuthorizationQueryParametersError, checked before the signature', async () => {
    const week = await putUrl(MAX_PRESIGNED_EXPIRES_SECONDS);
    expect(new URL(week).searchParams.get('X-Amz-Expires')).toBe('604800');
    expect(verifier.check(using(week, 'PUT'), undefined)).toBeUndefined();
    // The SDK will not sign more than a week, so the URL is altered: the range is refused before the signature is looked at.
    expect(verifier.check(using(withParam(week, 'X-Amz-Expires', '604801'), 'PUT'), undefined)).toBe('query-auth-expires-too-long');
    expect(verifier.check(using(withParam(week, 'X-Amz-Expires', '-1'), 'PUT'), undefined)).toBe('query-auth-expires-negative');
    expect(verifier.check(using(withParam(week, 'X-Amz-Expires', 'soon'), 'PUT'), undefined)).toBe('query-auth-expires-nan');
  });

  it('refuses a malformed query authentication as S3 does: a missing parameter, another algorithm, a bad date, two mechanisms at once', async () => {
    const put = await putUrl();
    for (const name of ['X-Amz-Credential', 'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders', 'X-Amz-Expires']) {
      expect(verifier.check(using(withParam(put, name, undefined), 'PUT'), undefined), name).toBe('query-auth-incomplete');
    }
    expect(verifier.check(using(withParam(put, 'X-Amz-Algorithm', 'AWS4-HMAC-SHA1'), 'PUT'), undefined)).toBe('query-auth-algorithm');
    expect(verifier.check(using(withParam(put, 'X-Amz-Date', '2026-01-01T12:00:00Z'), 'PUT'), undefined)).toBe('query-auth-date');
    const signedHeader = await signed({ service: 's3', method: 'PUT', path: '/fleet-tasks/k', headers: {} });
    expect(verifier.check(using(put, 'PUT', { authorization: String(signedHeader.req.headers.authorization) }), undefined)).toBe('two-auth-mechanisms');
  });

  it('still refuses a request that carries an Origin, however well signed: no web page reaches the emulators', async () => {
    const get = await getUrl();
    expect(verifier.precheck(using(get, 'GET', { origin: 'https://evil.example' }))).toBe('cross-origin');
    expect(verifier.check(using(get, 'GET', { origin: 'null' }), undefined)).toBe('cross-origin');
  });

  it('takes query authentication from S3 only: another service given a presigned-looking URL sees it unsigned', async () => {
    const put = await putUrl();
    expect(requestVerifier('dynamodb', credentials).check(using(put, 'POST'), Buffer.from('{}'))).toBe('unsigned');
  });
});

describe('uploadRefusal: the uploads S3 refuses before reading them', () => {
  const put = (headers: Record<string, string>, url = '/fleet-tasks/k') => ({ method: 'PUT', url, headers }) as unknown as http.IncomingMessage;

  it('a PUT without Content-Length is MissingContentLength (411), unless aws-chunked declares its decoded length', () => {
    expect(uploadRefusal(put({ 'transfer-encoding': 'chunked' }))).toBe('missing-content-length');
    expect(uploadRefusal(put({}))).toBe('missing-content-length');
    expect(uploadRefusal(put({ 'content-length': 'abc' }))).toBe('missing-content-length');
    expect(uploadRefusal(put({ 'content-length': '0' }))).toBeUndefined();
    expect(uploadRefusal(put({ 'content-encoding': 'aws-chunked', 'transfer-encoding': 'chunked', 'x-amz-decoded-content-length': '12' }))).toBeUndefined();
    expect(uploadRefusal(put({ 'content-encoding': 'aws-chunked', 'transfer-encoding': 'chunked' }))).toBe('missing-content-length');
    expect(uploadRefusal({ method: 'GET', url: '/fleet-tasks/k', headers: {} } as unknown as http.IncomingMessage)).toBeUndefined();
  });

  it('a single PUT of 5 GiB passes and one byte more is EntityTooLarge, by Content-Length or by aws-chunked decoded length', () => {
    expect(MAX_SINGLE_PUT_BYTES).toBe(5_368_709_120);
    expect(uploadRefusal(put({ 'content-length': String(MAX_SINGLE_PUT_BYTES) }))).toBeUndefined();
    expect(uploadRefusal(put({ 'content-length': String(MAX_SINGLE_PUT_BYTES + 1) }))).toBe('entity-too-large');
    expect(uploadRefusal(put({ 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(MAX_SINGLE_PUT_BYTES + 1) }))).toBe('entity-too-large');
  });

  it('a PUT URL presigned with the SDK’s default checksums carries the empty body’s CRC32 and cannot take a non-empty file: BadDigest', async () => {
    // aws-sdk-js-v3 issue 6994: with requestChecksumCalculation WHEN_SUPPORTED, the presigner signs crc32("") into the URL.
    const url = await getSignedUrl(presigner('http://127.0.0.1:4567', credentials, 'WHEN_SUPPORTED'), new PutObjectCommand({ Bucket: 'fleet-tasks', Key: 'k' }));
    expect(new URL(url).searchParams.get('x-amz-checksum-crc32')).toBe('AAAAAA==');
    const target = (u: string) => `${new URL(u).pathname}${new URL(u).search}`;
    expect(uploadRefusal(put({ 'content-length': '12' }, target(url)))).toBe('bad-digest');
    expect(uploadRefusal(put({ 'content-length': '0' }, target(url)))).toBeUndefined();
    // A checksum header the SDK computed over the real body passes; a non-empty body's on an empty upload does not.
    expect(uploadRefusal(put({ 'content-length': '3', 'x-amz-checksum-crc32': 'NSRBwg==' }))).toBeUndefined();
    expect(uploadRefusal(put({ 'content-length': '0', 'x-amz-checksum-crc32': 'NSRBwg==' }))).toBe('bad-digest');
  });
});

describe('presigned URLs end to end: guardServer in front of a real s3rver, as the local fleet runs it', () => {
  let s3rver: S3rver;
  let endpoint = '';
  let directory = '';
  const account = (createRequire(import.meta.url)('s3rver/lib/models/account') as { DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void; revokeAccessKey(id: string): void } }).DUMMY_ACCOUNT;
  const BUCKET = 'fleet-tasks';

  beforeAll(async () => {
    directory = mkdtempSync(path.join(tmpdir(), 'fleet-guard-'));
    account.createKeyPair(credentials.accessKeyId, credentials.secretAccessKey);
    s3rver = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory });
    const address = (await s3rver.run());
    guardServer((s3rver as unknown as { httpServer: http.Server }).httpServer, { service: 's3', credentials });
    endpoint = `http://127.0.0.1:${address.port}`;
    await presigner(endpoint).send(new CreateBucketCommand({ Bucket: BUCKET }));
  });

  afterAll(async () => {
    await s3rver.close();
    account.revokeAccessKey(credentials.accessKeyId);
    rmSync(directory, { recursive: true, force: true });
  });

  /** S3's XML error code, or undefined for a success. */
  const errorCode = (body: string) => /<Code>([^<]+)<\/Code>/.exec(body)?.[1];
  const stored = async (key: string) => presigner(endpoint).send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })).then(() => true, (error: unknown) => ((error as Error).name === 'NotFound' ? false : Promise.reject(error)));
  const putTo = (key: string, options: { expiresIn?: number; signingDate?: Date; checksums?: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED' } = {}) =>
    getSignedUrl(presigner(endpoint, credentials, options.checksums), new PutObjectCommand({ Bucket: BUCKET, Key: key }), { expiresIn: options.expiresIn ?? 900, ...(options.signingDate ? { signingDate: options.signingDate } : {}) });

  /** A raw PUT: headers as given, then `body` (or nothing), answered before or after the body. */
  const rawPut = (url: string, headers: Record<string, string>, body?: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = http.request(url, { method: 'PUT', headers }, (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => {
          request.destroy();
          resolve({ status: response.statusCode ?? 0, body: text });
        });
      });
      request.on('error', (error: NodeJS.ErrnoException) => { if (error.code !== 'ECONNRESET') reject(error); });
      if (body === undefined) request.flushHeaders();
      else request.end(body);
    });

  it('a file PUT to its presigned URL as-is (Content-Length, no other header) is stored with an ETag, and a presigned GET returns it', async () => {
    const file = '{"id":"t1","type":"sleep","data":{"ms":0}}\n{"id":"t2","type":"sleep","data":{"ms":0}}\n';
    const put = await fetch(await putTo('uploads/u 1+x.jsonl'), { method: 'PUT', body: file });
    expect(put.status).toBe(200);
    expect(put.headers.get('etag')).toBe(`"${createHash('md5').update(file).digest('hex')}"`);
    const get = await fetch(await getSignedUrl(presigner(endpoint), new GetObjectCommand({ Bucket: BUCKET, Key: 'uploads/u 1+x.jsonl' }), { expiresIn: 60 }));
    expect(get.status).toBe(200);
    expect(await get.text()).toBe(file);
  });

  it('an expired URL is refused with 403 AccessDenied "Request has expired", and nothing is stored', async () => {
    const url = await putTo('uploads/late.jsonl', { expiresIn: 60, signingDate: new Date(Date.now() - 61_000) });
    const response = await fetch(url, { method: 'PUT', body: '{"id":"t1"}\n' });
    const body = await response.text();
    expect(response.status).toBe(403);
    expect(errorCode(body)).toBe('AccessDenied');
    expect(body).toContain('Request has expired');
    expect(await stored('uploads/late.jsonl')).toBe(false);
  });

  it('a tampered URL is refused with 403 SignatureDoesNotMatch; one living over a week with 400 AuthorizationQueryParametersError', async () => {
    const url = await putTo('uploads/a.jsonl');
    const tampered = await fetch(url.replace('uploads/a.jsonl', 'uploads/b.jsonl'), { method: 'PUT', body: 'x' });
    expect(tampered.status).toBe(403);
    expect(errorCode(await tampered.text())).toBe('SignatureDoesNotMatch');
    const tooLong = await fetch(withParam(url, 'X-Amz-Expires', '604801'), { method: 'PUT', body: 'x' });
    expect(tooLong.status).toBe(400);
    expect(errorCode(await tooLong.text())).toBe('AuthorizationQueryParametersError');
    expect(await stored('uploads/b.jsonl')).toBe(false);
  });

  it('a chunked PUT without Content-Length is refused with 411 MissingContentLength, and one declaring over 5 GiB with 400 EntityTooLarge, before any byte is stored', async () => {
    const chunked = await rawPut(await putTo('uploads/chunked.jsonl'), { 'transfer-encoding': 'chunked' }, '{"id":"t1"}\n');
    expect(chunked.status).toBe(411);
    expect(errorCode(chunked.body)).toBe('MissingContentLength');
    // Only the headers are sent: the guard answers from them, as S3 does, without waiting for 5 GiB.
    const huge = await rawPut(await putTo('uploads/huge.jsonl'), { 'content-length': String(MAX_SINGLE_PUT_BYTES + 1) });
    expect(huge.status).toBe(400);
    expect(errorCode(huge.body)).toBe('EntityTooLarge');
    expect(await stored('uploads/chunked.jsonl')).toBe(false);
    expect(await stored('uploads/huge.jsonl')).toBe(false);
  });

  /** A PUT that sends `body` only once the server answers 100 Continue (Expect: 100-continue, as curl does for big files). */
  const putOnContinue = (url: string, body: string) =>
    new Promise<{ status: number; body: string; continued: boolean }>((resolve, reject) => {
      let continued = false;
      const request = http.request(url, { method: 'PUT', headers: { expect: '100-continue', 'content-length': String(Buffer.byteLength(body)) } }, (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => {
          request.destroy();
          resolve({ status: response.statusCode ?? 0, body: text, continued });
        });
      });
      request.on('continue', () => {
        continued = true;
        request.end(body);
      });
      request.on('error', (error: NodeJS.ErrnoException) => { if (error.code !== 'ECONNRESET') reject(error); });
      request.flushHeaders();
    });

  it('a client that waits for 100 Continue is told to send a valid upload, and gets a refusal instead of the go-ahead for an expired one', async () => {
    const file = '{"id":"t1"}\n';
    const valid = await putOnContinue(await putTo('uploads/continue.jsonl'), file);
    expect(valid).toMatchObject({ status: 200, continued: true });
    const expired = await putOnContinue(await putTo('uploads/continue-late.jsonl', { expiresIn: 60, signingDate: new Date(Date.now() - 61_000) }), file);
    expect(expired).toMatchObject({ status: 403, continued: false });
    expect(errorCode(expired.body)).toBe('AccessDenied');
    expect(await stored('uploads/continue.jsonl')).toBe(true);
    expect(await stored('uploads/continue-late.jsonl')).toBe(false);
  });

  it('a URL presigned with the default checksums (CRC32 of an empty body) is refused for a real file with 400 BadDigest', async () => {
    const response = await fetch(await putTo('uploads/checksum.jsonl', { checksums: 'WHEN_SUPPORTED' }), { method: 'PUT', body: '{"id":"t1"}\n' });
    expect(response.status).toBe(400);
    expect(errorCode(await response.text())).toBe('BadDigest');
    expect(await stored('uploads/checksum.jsonl')).toBe(false);
  });

  it('a valid URL used with an Origin header (a web page) is refused with 403 AccessDenied and no CORS header', async () => {
    const url = await getSignedUrl(presigner(endpoint), new GetObjectCommand({ Bucket: BUCKET, Key: 'uploads/u 1+x.jsonl' }), { expiresIn: 60 });
    const response = await fetch(url, { headers: { origin: 'https://evil.example' } });
    expect(response.status).toBe(403);
    expect(errorCode(await response.text())).toBe('AccessDenied');
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });
});
