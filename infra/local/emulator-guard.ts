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
 * S3 also takes presigned URLs (SigV4 query-string authentication), which the
 * API hands to users for uploading task files and downloading exports: the
 * guard checks them as S3 does, expiry included, and refuses the uploads S3
 * refuses (no Content-Length; over 5 GiB in one PUT). A presigned URL is
 * still no way in for a web page: a request with an Origin is refused first.
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

/** Why a request is refused, by any service. */
export type CommonRefusal = 'cross-origin' | 'unsigned' | 'unknown-key' | 'bad-signature';

/**
 * Why an S3 request is refused, beyond the common reasons: a presigned URL's
 * query-string authentication that S3 would refuse, or an upload S3 would refuse.
 */
export type S3Refusal =
  | 'two-auth-mechanisms'
  | 'query-auth-algorithm'
  | 'query-auth-incomplete'
  | 'query-auth-date'
  | 'query-auth-expires-nan'
  | 'query-auth-expires-negative'
  | 'query-auth-expires-too-long'
  | 'expired'
  | 'missing-content-length'
  | 'entity-too-large'
  | 'bad-digest';

/** Why a request is refused. */
export type Refusal = CommonRefusal | S3Refusal;

/** What each service answers for each refusal: [HTTP status, error code, message]. */
const ANSWERS: Record<GuardedService, Record<CommonRefusal, [number, string, string]>> = {
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

/**
 * S3's own answers (codes from https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html;
 * the query-string messages are those S3 sends, as s3rver reproduces them).
 */
const S3_ANSWERS: Record<S3Refusal, [number, string, string]> = {
  'two-auth-mechanisms': [400, 'InvalidArgument', 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified'],
  'query-auth-algorithm': [400, 'AuthorizationQueryParametersError', 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"'],
  'query-auth-incomplete': [400, 'AuthorizationQueryParametersError', 'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.'],
  'query-auth-date': [400, 'AuthorizationQueryParametersError', 'X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd\'T\'HHmmss\'Z\'"'],
  'query-auth-expires-nan': [400, 'AuthorizationQueryParametersError', 'X-Amz-Expires should be a number'],
  'query-auth-expires-negative': [400, 'AuthorizationQueryParametersError', 'X-Amz-Expires must be non-negative'],
  'query-auth-expires-too-long': [400, 'AuthorizationQueryParametersError', 'X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds'],
  expired: [403, 'AccessDenied', 'Request has expired'],
  'missing-content-length': [411, 'MissingContentLength', 'You must provide the Content-Length HTTP header.'],
  'entity-too-large': [400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size'],
  'bad-digest': [400, 'BadDigest', 'The checksum you specified did not match the calculated checksum.'],
};

/**
 * Each additional checksum of an empty body. A presigned PutObject signed with
 * the SDK's default checksums (requestChecksumCalculation WHEN_SUPPORTED)
 * carries the CRC32 of the empty body it was signed with, so S3 refuses any
 * non-empty upload to it (aws-sdk-js-v3 issue 6994); the fix is to presign
 * with requestChecksumCalculation WHEN_REQUIRED.
 */
const EMPTY_BODY_CHECKSUMS: Record<string, string> = {
  'x-amz-checksum-crc32': 'AAAAAA==',
  'x-amz-checksum-crc32c': 'AAAAAA==',
  'x-amz-checksum-crc64nvme': 'AAAAAAAAAAA=',
  'x-amz-checksum-sha1': '2jmj7l5rSw0yVb/vlWAYkK/YBwk=',
  'x-amz-checksum-sha256': '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=',
};

/** The longest a presigned URL may live: 7 days (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html). */
export const MAX_PRESIGNED_EXPIRES_SECONDS = 604_800;

/** The largest object one PUT may upload: 5 GiB (https://docs.aws.amazon.com/AmazonS3/latest/userguide/upload-objects.html). */
export const MAX_SINGLE_PUT_BYTES = 5 * 1024 ** 3;

/** The parameters of SigV4 query-string authentication; their names are case-sensitive, as S3 reads them. */
const QUERY_AUTH_PARAMS = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders', 'X-Amz-Expires'] as const;
const CREDENTIAL = /^([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request$/;
const SIGNED_HEADERS = /^[a-z0-9_.-]+(;[a-z0-9_.-]+)*$/;
const SIGNATURE = /^[0-9a-f]{64}$/;

const AUTHORIZATION = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;_.-]+), ?Signature=([0-9a-f]{64})$/;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** An X-Amz-Date (already matched by AMZ_DATE) as epoch milliseconds. */
function signedAtMs(amzDate: string): number {
  const [, year, month, day, hour, minute, second] = AMZ_DATE.exec(amzDate) ?? [];
  return Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second));
}

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
  const knownKey = (accessKeyId: string) => {
    const id = Buffer.from(accessKeyId);
    return id.length === expectedId.length && timingSafeEqual(id, expectedId);
  };
  /** The signature over a canonical request, compared in constant time. */
  const signatureMatches = (canonicalRequest: string, amzDate: string, day: string, region: string, signature: string) => {
    const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${day}/${region}/${service}/aws4_request\n${sha256Hex(canonicalRequest)}`;
    const computed = createHmac('sha256', signingKey(day, region)).update(stringToSign, 'utf8').digest();
    return timingSafeEqual(computed, Buffer.from(signature, 'hex'));
  };
  /** The signed headers' canonical lines, or undefined when one of them is missing. */
  const headerLines = (req: http.IncomingMessage, signedHeaderList: string) => {
    const lines: string[] = [];
    for (const name of signedHeaderList.split(';')) {
      const value = req.headers[name];
      if (value === undefined) return undefined;
      lines.push(`${name}:${(Array.isArray(value) ? value.join(',') : value).trim().replace(/\s+/g, ' ')}`);
    }
    return lines;
  };
  const splitTarget = (req: http.IncomingMessage) => {
    const target = req.url ?? '/';
    const queryAt = target.indexOf('?');
    return queryAt === -1 ? { path: target, search: '' } : { path: target.slice(0, queryAt), search: target.slice(queryAt + 1) };
  };
  /** A presigned S3 request's query (SigV4 query-string authentication), or undefined for any other request. */
  const presignedQuery = (req: http.IncomingMessage): URLSearchParams | undefined => {
    if (service !== 's3') return undefined;
    const { search } = splitTarget(req);
    if (!search) return undefined;
    const query = new URLSearchParams(search);
    return query.has('X-Amz-Algorithm') ? query : undefined;
  };

  /**
   * What S3 decides from a presigned URL's parameters alone, in S3's order:
   * the mechanism, the algorithm, every parameter present, the date, the
   * expiry's range, the key, and the expiry itself.
   * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
   */
  const precheckPresigned = (req: http.IncomingMessage, query: URLSearchParams): Refusal | undefined => {
    if (req.headers.authorization !== undefined) return 'two-auth-mechanisms';
    if (query.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') return 'query-auth-algorithm';
    if (QUERY_AUTH_PARAMS.some((name) => query.getAll(name).length !== 1)) return 'query-auth-incomplete';
    if (!AMZ_DATE.test(query.get('X-Amz-Date') ?? '')) return 'query-auth-date';
    const expiresText = query.get('X-Amz-Expires') ?? '';
    if (!/^-?\d+$/.test(expiresText)) return 'query-auth-expires-nan';
    const expires = Number(expiresText);
    if (expires < 0) return 'query-auth-expires-negative';
    if (expires > MAX_PRESIGNED_EXPIRES_SECONDS) return 'query-auth-expires-too-long';
    const credential = CREDENTIAL.exec(query.get('X-Amz-Credential') ?? '');
    if (!credential) return 'bad-signature';
    if (!knownKey(credential[1] ?? '')) return 'unknown-key';
    // Valid from X-Amz-Date for X-Amz-Expires seconds; no skew is allowed past the end.
    if (Date.now() > signedAtMs(query.get('X-Amz-Date') ?? '') + expires * 1000) return 'expired';
    return undefined;
  };

  /**
   * The signature of a presigned request: the canonical query is every
   * parameter but X-Amz-Signature, and the payload is UNSIGNED-PAYLOAD unless
   * the URL signs a hash of its own (X-Amz-Content-Sha256).
   */
  const checkPresigned = (req: http.IncomingMessage, query: URLSearchParams): Refusal | undefined => {
    const early = precheckPresigned(req, query);
    if (early) return early;
    const [, , day, region, signedService] = CREDENTIAL.exec(query.get('X-Amz-Credential') ?? '') ?? [];
    const amzDate = query.get('X-Amz-Date') ?? '';
    const signedHeaderList = query.get('X-Amz-SignedHeaders') ?? '';
    const signature = query.get('X-Amz-Signature') ?? '';
    if (!day || !region || signedService !== service || !amzDate.startsWith(day)) return 'bad-signature';
    if (!SIGNED_HEADERS.test(signedHeaderList) || !signedHeaderList.split(';').includes('host') || !SIGNATURE.test(signature)) return 'bad-signature';
    const lines = headerLines(req, signedHeaderList);
    if (!lines) return 'bad-signature';
    const { path, search } = splitTarget(req);
    const canonicalRequest = [
      req.method ?? 'GET',
      canonicalPath(service, path),
      canonicalQuery(search),
      `${lines.join('\n')}\n`,
      signedHeaderList,
      query.get('X-Amz-Content-Sha256') ?? 'UNSIGNED-PAYLOAD',
    ].join('\n');
    return signatureMatches(canonicalRequest, amzDate, day, region, signature) ? undefined : 'bad-signature';
  };

  return {
    /** What can be decided from the request line and headers alone. */
    precheck(req: http.IncomingMessage): Refusal | undefined {
      // No legitimate caller of an emulator is a web page: the SDK sends no Origin, nor does a presigned URL's user.
      if (req.headers.origin !== undefined || req.method === 'OPTIONS') return 'cross-origin';
      const query = presignedQuery(req);
      if (query) return precheckPresigned(req, query);
      const authorization = req.headers.authorization;
      if (!authorization) return 'unsigned';
      const match = AUTHORIZATION.exec(authorization);
      if (!match) return 'unsigned';
      if (!knownKey(match[1] ?? '')) return 'unknown-key';
      return undefined;
    },
    /**
     * The full check: recomputes the signature over the signed headers and
     * the body's hash; without the body (S3, streamed), over the hash the
     * request declares in its signed x-amz-content-sha256 header, or, for a
     * presigned S3 URL, over its query and UNSIGNED-PAYLOAD.
     */
    check(req: http.IncomingMessage, body: Buffer | undefined): Refusal | undefined {
      const early = this.precheck(req);
      if (early) return early;
      const query = presignedQuery(req);
      if (query) return checkPresigned(req, query);
      const [, , day, region, signedService, signedHeaderList, signature] = AUTHORIZATION.exec(req.headers.authorization ?? '') ?? [];
      const amzDate = String(req.headers['x-amz-date'] ?? '');
      if (!AMZ_DATE.test(amzDate) || !day || !amzDate.startsWith(day) || signedService !== service || !region || !signedHeaderList || !signature) return 'bad-signature';
      // As AWS: a signature more than 15 minutes off is refused, so a captured request cannot be replayed later.
      if (Math.abs(Date.now() - signedAtMs(amzDate)) > 15 * 60_000) return 'bad-signature';
      const lines = headerLines(req, signedHeaderList);
      if (!lines) return 'bad-signature';
      // With the body at hand, its own hash; a declared one (signed, as S3 and some clients send it) must match it.
      const declaredHash = req.headers['x-amz-content-sha256'];
      const payloadHash = body ? sha256Hex(body) : typeof declaredHash === 'string' ? declaredHash : sha256Hex('');
      if (body && typeof declaredHash === 'string' && declaredHash !== payloadHash) return 'bad-signature';
      const { path, search } = splitTarget(req);
      const canonicalRequest = [
        req.method ?? 'GET',
        canonicalPath(service, path),
        search ? canonicalQuery(search) : '',
        `${lines.join('\n')}\n`,
        signedHeaderList,
        payloadHash,
      ].join('\n');
      return signatureMatches(canonicalRequest, amzDate, day, region, signature) ? undefined : 'bad-signature';
    },
  };
}

/**
 * What S3 refuses in an upload before reading it: a PUT without
 * Content-Length (chunked, unless in aws-chunked encoding, which declares its
 * decoded length), a single PUT over 5 GiB, and a declared checksum that is
 * the empty body's on a non-empty upload, or another on an empty one. Other
 * checksum mismatches are not caught: that needs the whole body, which streams
 * through to s3rver as it arrives.
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/upload-objects.html
 */
export function uploadRefusal(req: http.IncomingMessage): S3Refusal | undefined {
  if (req.method !== 'PUT') return undefined;
  const declared = (name: string) => {
    const value = req.headers[name];
    return typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : undefined;
  };
  const awsChunked = (req.headers['content-encoding'] ?? '')
    .split(',')
    .some((coding) => coding.trim().toLowerCase() === 'aws-chunked');
  const length = awsChunked ? declared('x-amz-decoded-content-length') : declared('content-length');
  if (length === undefined) return 'missing-content-length';
  if (length > MAX_SINGLE_PUT_BYTES) return 'entity-too-large';
  const target = req.url ?? '/';
  const query = new URLSearchParams(target.includes('?') ? target.slice(target.indexOf('?') + 1) : '');
  for (const [name, value] of [...query, ...Object.entries(req.headers)]) {
    const empty = EMPTY_BODY_CHECKSUMS[name.toLowerCase()];
    if (empty === undefined || typeof value !== 'string') continue;
    if ((length > 0) === (value === empty)) return 'bad-digest';
  }
  return undefined;
}

const isS3Refusal = (refusal: Refusal): refusal is S3Refusal => refusal in S3_ANSWERS;

/** Writes the service's own refusal; no CORS header, so a page's script cannot even read it. */
export function refuse(res: http.ServerResponse, service: GuardedService, refusal: Refusal): void {
  const [status, code, message] = isS3Refusal(refusal) ? S3_ANSWERS[refusal] : ANSWERS[service][refusal];
  if (service === 's3' || isS3Refusal(refusal)) {
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
 * their payload's hash in a signed header (x-amz-content-sha256), or are
 * presigned (UNSIGNED-PAYLOAD), so they stream through untouched once their
 * signature and declared length pass, and s3rver stores what arrives;
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
  if (service === 's3') {
    // A client that asks before sending its body (Expect: 100-continue, as curl does for a large
    // upload) gets S3's refusal instead of the go-ahead, so a refused file is never sent.
    server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const refusal = verifier.check(req, undefined) ?? uploadRefusal(req);
      if (!refusal) {
        res.writeContinue();
        server.emit('request', req, res);
        return;
      }
      // The body was never invited: close the connection rather than read it as the next request.
      res.shouldKeepAlive = false;
      refuse(res, service, refusal);
    });
  }
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const early = verifier.precheck(req);
    if (early) { deny(req, res, early); return; }
    if (service === 's3') {
      const refusal = verifier.check(req, undefined) ?? uploadRefusal(req);
      if (refusal) deny(req, res, refusal);
      else pass(req, res);
      return;
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
