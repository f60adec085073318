/**
 * The client's auth: SigV4 by the AWS SDK's signer (checked against AWS's
 * published test vector and against the signer itself), bearer tokens, and
 * which auth a client picks when given none.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createAuthorizer, resolveAuth, type AwsCredentials } from '../../client';

// AWS's Signature Version 4 test suite credentials and time.
const EXAMPLE_CREDENTIALS: AwsCredentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const EXAMPLE_TIME = new Date('2015-08-30T12:36:00Z');
const AUTHORIZATION = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/;

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('SigV4', () => {
  it('reproduces the AWS test suite vector "get-vanilla"', async () => {
    // Arrange
    const authorize = createAuthorizer(
      { type: 'sigv4', region: 'us-east-1', service: 'service', credentials: EXAMPLE_CREDENTIALS },
      { now: () => EXAMPLE_TIME },
    );

    // Act
    const headers = await authorize({ method: 'GET', url: new URL('https://example.amazonaws.com/'), headers: {} });

    // Assert
    expect(headers).toEqual({
      'x-amz-date': '20150830T123600Z',
      authorization:
        'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    });
  });

  it('signs an API request for execute-api exactly as the SDK signer does: method, path, query, headers and body', async () => {
    // Arrange
    const credentials: AwsCredentials = { accessKeyId: 'AKIAFLEETTEST', secretAccessKey: 'fleet-secret' };
    const authorize = createAuthorizer({ type: 'sigv4', region: 'eu-west-1', credentials }, { now: () => EXAMPLE_TIME });
    const url = new URL('https://abc123.execute-api.eu-west-1.amazonaws.com/prod/batches/b%201/results?limit=10&cursor=x%2By');
    const body = JSON.stringify({ tasks: [{ id: 'a', type: 'echo', data: 1 }] });

    // Act
    const headers = await authorize({ method: 'POST', url, headers: { 'content-type': 'application/json', accept: 'application/json' }, body });

    // Assert: the structure
    const match = AUTHORIZATION.exec(headers.authorization ?? '');
    expect(match?.slice(1, 6)).toEqual(['AKIAFLEETTEST', '20150830', 'eu-west-1', 'execute-api', 'accept;content-type;host;x-amz-date']);
    expect(headers).not.toHaveProperty('host');
    expect(headers['content-type']).toBe('application/json');

    // Assert: the signer itself, given the same request, produces the same signature
    const reference = new SignatureV4({ service: 'execute-api', region: 'eu-west-1', credentials, sha256: Sha256, applyChecksum: false });
    const signed = await reference.sign(
      {
        method: 'POST',
        protocol: 'https:',
        hostname: url.hostname,
        path: '/prod/batches/b%201/results',
        query: { limit: '10', cursor: 'x+y' },
        headers: { host: url.host, 'content-type': 'application/json', accept: 'application/json' },
        body,
      },
      { signingDate: EXAMPLE_TIME },
    );
    expect(headers.authorization).toBe(signed.headers.authorization);
  });

  it('covers the body, the path and the query: changing any changes the signature', async () => {
    const authorize = createAuthorizer({ type: 'sigv4', region: 'eu-west-1', credentials: EXAMPLE_CREDENTIALS }, { now: () => EXAMPLE_TIME });
    const sign = async (url: string, body?: string) =>
      (await authorize({ method: 'POST', url: new URL(url), headers: {}, ...(body !== undefined ? { body } : {}) })).authorization;
    const base = await sign('https://a.example/batches?limit=1', '{"count":1}');
    expect(await sign('https://a.example/batches?limit=1', '{"count":1}')).toBe(base);
    expect(await sign('https://a.example/batches?limit=1', '{"count":2}')).not.toBe(base);
    expect(await sign('https://a.example/batches/x?limit=1', '{"count":1}')).not.toBe(base);
    expect(await sign('https://a.example/batches?limit=2', '{"count":1}')).not.toBe(base);
  });

  it('sends and signs the session token of temporary credentials, from a provider', async () => {
    const provider = vi.fn(async (): Promise<AwsCredentials> => ({ ...EXAMPLE_CREDENTIALS, sessionToken: 'session-token-1' }));
    const authorize = createAuthorizer({ type: 'sigv4', region: 'us-east-1', credentials: provider }, { now: () => EXAMPLE_TIME });

    const headers = await authorize({ method: 'GET', url: new URL('https://a.example/stats'), headers: {} });

    expect(provider).toHaveBeenCalled();
    expect(headers['x-amz-security-token']).toBe('session-token-1');
    expect(AUTHORIZATION.exec(headers.authorization ?? '')?.[5]).toBe('host;x-amz-date;x-amz-security-token');
  });

  it('defaults to the AWS SDK credential chain, which reads the environment first', async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIAFROMENV');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'secret-from-env');
    vi.stubEnv('AWS_SESSION_TOKEN', '');
    const authorize = createAuthorizer({ type: 'sigv4', region: 'ap-southeast-2' }, { now: () => EXAMPLE_TIME });

    const headers = await authorize({ method: 'GET', url: new URL('https://a.example/stats'), headers: {} });

    expect(AUTHORIZATION.exec(headers.authorization ?? '')?.slice(1, 5)).toEqual(['AKIAFROMENV', '20150830', 'ap-southeast-2', 'execute-api']);
  });

  it('refuses a missing region', () => {
    expect(() => createAuthorizer({ type: 'sigv4', region: '' })).toThrow(/region/);
  });
});

describe('bearer and none', () => {
  it('bearer adds Authorization: Bearer <token> and keeps the other headers', async () => {
    const authorize = createAuthorizer({ type: 'bearer', token: 's3cret' });
    expect(await authorize({ method: 'GET', url: new URL('http://127.0.0.1:3000/stats'), headers: { accept: 'application/json' } })).toEqual({
      accept: 'application/json',
      authorization: 'Bearer s3cret',
    });
    expect(() => createAuthorizer({ type: 'bearer', token: '' })).toThrow(/token/);
  });

  it('none sends the headers unchanged', async () => {
    const authorize = createAuthorizer({ type: 'none' });
    expect(await authorize({ method: 'GET', url: new URL('http://127.0.0.1:3000/stats'), headers: { accept: 'application/json' } })).toEqual({
      accept: 'application/json',
    });
  });
});

describe('resolveAuth: the auth a client uses when given none', () => {
  const local = new URL('http://127.0.0.1:3000');
  const deployed = new URL('https://abc123def4.execute-api.eu-central-1.amazonaws.com');

  it('an explicit auth wins', () => {
    expect(resolveAuth(deployed, { type: 'bearer', token: 't' }, { FLEET_TOKEN: 'env' })).toEqual({ type: 'bearer', token: 't' });
  });

  it('FLEET_TOKEN gives bearer', () => {
    expect(resolveAuth(local, undefined, { FLEET_TOKEN: 'env' })).toEqual({ type: 'bearer', token: 'env' });
  });

  it('an execute-api host gives SigV4 in its region', () => {
    expect(resolveAuth(deployed, undefined, {})).toEqual({ type: 'sigv4', region: 'eu-central-1' });
    expect(resolveAuth(new URL('https://x1.execute-api.cn-north-1.amazonaws.com.cn/prod'), undefined, {})).toEqual({ type: 'sigv4', region: 'cn-north-1' });
  });

  it('anything else gives none', () => {
    expect(resolveAuth(local, undefined, {})).toEqual({ type: 'none' });
    expect(resolveAuth(new URL('https://fleet.example.com'), undefined, {})).toEqual({ type: 'none' });
  });
});
