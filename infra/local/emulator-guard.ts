/**
 * Only the fleet may talk to its local emulators.
 *
 * dynalite, s3rver and fauxqs accept any request on their port: any process on
 * the machine, and any web page (dynalite even answers every Origin with
 * `Access-Control-Allow-Origin: *`). On AWS every request is SigV4-signed with
 * credentials only the caller holds; locally the fleet makes up fresh ones at
 * each start (`newLocalCredentials`), gives them to the handlers the way it
 * gives them the endpoints (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), and
 * `guardServer` checks every request's signature before the emulator sees it.
 * A browser cannot sign with a secret it never saw, and a request that carries
 * an Origin (a page's) is refused outright, with no CORS header.
 *
 * Refusals use the error each service answers on AWS for the same request.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';

export interface LocalCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** Credentials for one run of the local fleet: never written anywhere, gone when it stops. */
export function newLocalCredentials(): LocalCredentials {
  // The shapes of AWS's own (20 upper-case characters; 40 characters of secret), so nothing downstream chokes on them.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const id = [...randomBytes(16)].map((byte) => alphabet[byte % 32]).join('');
  return { accessKeyId: `FLEE${id}`, secretAccessKey: randomBytes(30).toString('base64') };
}

export type GuardedService = 'dynamodb' | 's3' | 'sqs' | 'states';

/** Why a request is refused. */
export type Refusal = 'cross-origin' | 'unsigned' | 'unknown-key' | 'bad-signature';

/** What each service answers for each refusal: [HTTP status, error code, message]. */
const ANSWERS: Record<GuardedService, Record<Refusal, [number, string, string]>> = {
  // JSON 1.0 services (coral): https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
  dynamodb: {
    'cross-origin': [403, 'AccessDeniedException', 'cross-origin requests are refused by the local DynamoDB'],
    unsigned: [400, 'MissingAuthenticationTokenException', 'Request is missing Authentication Token'],
    'unknown-key': [400, 'UnrecognizedClientException', 'The security token included in the request is invalid.'],
    'bad-signature': [400, 'InvalidSignatureException', 'The request signature we calculated does not match the signature you provided.'],
  },
  states: {
    'cross-origin': [403, 'AccessDeniedException', 'cross-origin requests are refused by the local Step Functions'],
    unsigned: [400, 'MissingAuthenticationTokenException', 'Request is missing Authentication Token'],
    'unknown-key': [400, 'UnrecognizedClientException', 'The security token included in the request is invalid.'],
    'bad-signature': [400, 'InvalidSignatureException', 'The request signature we calculated does not match the signature you provided.'],
  },
  sqs: {
    'cross-origin': [403, 'AccessDenied', 'cross-origin requests are refused by the local SQS'],
    unsigned: [403, 'MissingAuthenticationToken', 'The request must contain either a valid (registered) AWS access key ID or X.509 certificate.'],
    'unknown-key': [403, 'InvalidClientTokenId', 'The security token included in the request is invalid.'],
    'bad-signature': [403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.'],
  },
  s3: {
    'cross-origin': [403, 'AccessDenied', 'Access Denied'],
    unsigned: [403, 'AccessDenied', 'Access Denied'],
    'unknown-key': [403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.'],
    'bad-signature': [403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.'],
  },
};

const AUTHORIZATION = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;_.-]+), ?Signature=([0-9a-f]{64})$/;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** RFC 3986 encoding, as SigV4 wants it (encodeURIComponent leaves !'()* alone). */
const escapeUri = (text: string) => encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const sha256Hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();

/**
 * The canonical path, as the SDK signs it: S3 signs the path as sent; the
 * other services normalise it and escape it once more.
 */
function canonicalPath(service: GuardedService, path: string): string {
  if (service === 's3') return path;
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const normalized = `${path.startsWith('/') ? '/' : ''}${segments.join('/')}${segments.length > 0 && path.endsWith('/') ? '/' : ''}`;
  return escapeUri(normalized).replace(/%2F/g, '/');
}

/** The canonical query: each key and value decoded, then RFC 3986-encoded, sorted by key, a key's values sorted too. */
function canonicalQuery(search: string): string {
  const byKey = new Map<string, string[]>();
  for (const [key, value] of new URLSearchParams(search)) {
    if (key.toLowerCase() === 'x-amz-signature') continue;
    const encoded = escapeUri(key);
    byKey.set(encoded, [...(byKey.get(encoded) ?? []), `${encoded}=${escapeUri(value)}`]);
  }
  return [...byKey.keys()]
    .sort()
    .map((key) => (byKey.get(key) ?? []).sort().join('&'))
    .join('&');
}

/**
 * Builds the checker for one service. It recomputes the request's SigV4
 * signature (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html)
 * with node:crypto: on the path of every DynamoDB request, so it must be cheap
 * (the signing key is derived once a day per region). test/unit/emulator-guard.test.ts
 * checks it against the SDK's own signer.
 */
export function requestVerifier(service: GuardedService, credentials: LocalCredentials) {
  const expectedId = Buffer.from(credentials.accessKeyId);
  const signingKeys = new Map<string, Buffer>();
  const signingKey = (day: string, region: string) => {
    const cacheKey = `${day}/${region}`;
    let key = signingKeys.get(cacheKey);
    if (!key) {
      key = hmac(hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, day), region), service), 'aws4_request');
      if (signingKeys.size > 16) signingKeys.clear();
      signingKeys.set(cacheKey, key);
    }
    return key;
  };
  return {
    /** What can be decided from the headers alone. */
    precheck(req: http.IncomingMessage): Refusal | undefined {
      // No legitimate caller of an emulator is a web page: the SDK sends no Origin.
      if (req.headers.origin !== undefined || req.method === 'OPTIONS') return 'cross-origin';
      const authorization = req.headers.authorization;
      if (!authorization) return 'unsigned';
      const match = AUTHORIZATION.exec(authorization);
      if (!match) return 'unsigned';
      const id = Buffer.from(match[1] ?? '');
      if (id.length !== expectedId.length || !timingSafeEqual(id, expectedId)) return 'unknown-key';
      return undefined;
    },
    /**
     * The full check: recomputes the signature over the signed headers and
     * the body's hash; without the body (S3, streamed), over the hash the
     * request declares in its signed x-amz-content-sha256 header.
     */
    check(req: http.IncomingMessage, body: Buffer | undefined): Refusal | undefined {
      const early = this.precheck(req);
      if (early) return early;
      const [, , day, region, signedService, signedHeaderList, signature] = AUTHORIZATION.exec(req.headers.authorization ?? '') ?? [];
      const amzDate = String(req.headers['x-amz-date'] ?? '');
      const when = AMZ_DATE.exec(amzDate);
      if (!when || !day || !amzDate.startsWith(day) || signedService !== service || !region || !signedHeaderList || !signature) return 'bad-signature';
      const signedAt = Date.UTC(Number(when[1]), Number(when[2]) - 1, Number(when[3]), Number(when[4]), Number(when[5]), Number(when[6]));
      // As AWS: a signature more than 15 minutes off is refused, so a captured request cannot be replayed later.
      if (Math.abs(Date.now() - signedAt) > 15 * 60_000) return 'bad-signature';
      const headerLines: string[] = [];
      for (const name of signedHeaderList.split(';')) {
        const value = req.headers[name];
        if (value === undefined) return 'bad-signature';
        headerLines.push(`${name}:${(Array.isArray(value) ? value.join(',') : value).trim().replace(/\s+/g, ' ')}`);
      }
      // With the body at hand, its own hash; a declared one (signed, as S3 and some clients send it) must match it.
      const declaredHash = req.headers['x-amz-content-sha256'];
      const payloadHash = body ? sha256Hex(body) : typeof declaredHash === 'string' ? declaredHash : sha256Hex('');
      if (body && typeof declaredHash === 'string' && declaredHash !== payloadHash) return 'bad-signature';
      const target = req.url ?? '/';
      const queryAt = target.indexOf('?');
      const canonicalRequest = [
        req.method ?? 'GET',
        canonicalPath(service, queryAt === -1 ? target : target.slice(0, queryAt)),
        queryAt === -1 ? '' : canonicalQuery(target.slice(queryAt + 1)),
        `${headerLines.join('\n')}\n`,
        signedHeaderList,
        payloadHash,
      ].join('\n');
      const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${day}/${region}/${service}/aws4_request\n${sha256Hex(canonicalRequest)}`;
      const computed = createHmac('sha256', signingKey(day, region)).update(stringToSign, 'utf8').digest();
      return timingSafeEqual(computed, Buffer.from(signature, 'hex')) ? undefined : 'bad-signature';
    },
  };
}

/** Writes the service's own refusal; no CORS header, so a page's script cannot even read it. */
export function refuse(res: http.ServerResponse, service: GuardedService, refusal: Refusal): void {
  const [status, code, message] = ANSWERS[service][refusal];
  if (service === 's3') {
    res.writeHead(status, { 'content-type': 'application/xml' });
    res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
    return;
  }
  // SQS's JSON protocol names the query-protocol code in a header too; the SDK reads either.
  const extra: Record<string, string> = service === 'sqs' ? { 'x-amzn-query-error': `${code};Sender` } : {};
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', ...extra });
  res.end(JSON.stringify({ __type: service === 'sqs' ? code : `com.amazon.coral.service#${code}`, message }));
}

/** The largest body checked in memory before it reaches a JSON service (DynamoDB's own request limit is 16 MB). */
const MAX_SIGNED_BODY = 16 * 1024 * 1024;

/**
 * Puts the check in front of every `request` listener `server` has now (the
 * emulator's own). Call it before the server listens. S3 requests declare
 * their payload's hash in a signed header (x-amz-content-sha256), so they
 * stream through untouched, and s3rver stores what arrives;
 * the JSON services' bodies are read first (they are small), checked, and
 * handed on as a request the emulator reads as usual.
 */
export function guardServer(server: http.Server, options: { service: GuardedService; credentials: LocalCredentials }): void {
  const { service } = options;
  const listeners = server.listeners('request') as http.RequestListener[];
  server.removeAllListeners('request');
  const verifier = requestVerifier(service, options.credentials);
  const pass = (req: http.IncomingMessage, res: http.ServerResponse) => {
    for (const listener of listeners) listener.call(server, req, res);
  };
  const deny = (req: http.IncomingMessage, res: http.ServerResponse, refusal: Refusal) => {
    // Read the rest of the body, so the connection stays usable.
    req.resume();
    refuse(res, service, refusal);
  };
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const early = verifier.precheck(req);
    if (early) return deny(req, res, early);
    if (service === 's3') {
      const refusal = verifier.check(req, undefined);
      return refusal ? deny(req, res, refusal) : pass(req, res);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_SIGNED_BODY) chunks.push(chunk);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (size > MAX_SIGNED_BODY) {
        res.writeHead(413);
        return void res.end();
      }
      const body = Buffer.concat(chunks);
      const refusal = verifier.check(req, body);
      if (refusal) refuse(res, service, refusal);
      else pass(replay(req, body), res);
    });
  });
}

/** A request the emulator reads as if it had just arrived: the same line, headers and socket, with the body already read. */
function replay(req: http.IncomingMessage, body: Buffer): http.IncomingMessage {
  const copy = new http.IncomingMessage(req.socket);
  copy.method = req.method;
  copy.url = req.url;
  copy.headers = req.headers;
  copy.rawHeaders = req.rawHeaders;
  copy.httpVersion = req.httpVersion;
  copy.httpVersionMajor = req.httpVersionMajor;
  copy.httpVersionMinor = req.httpVersionMinor;
  copy.complete = true;
  if (body.length) copy.push(body);
  copy.push(null);
  return copy;
}
