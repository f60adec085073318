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
import { SignatureV4 } from '@smithy/signature-v4';
import type { Checksum, SourceData } from '@smithy/types';

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

/** SHA-256 (keyed: HMAC) on Node's crypto, in the shape the signer takes. */
class NodeSha256 implements Checksum {
  private hash: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;
  constructor(private readonly secret?: SourceData) {
    this.hash = this.fresh();
  }
  private fresh() {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(this.secret));
  }
  update(data: Uint8Array): void {
    this.hash.update(data);
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
  reset(): void {
    this.hash = this.fresh();
  }
}

function toBuffer(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

const AUTHORIZATION = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;_.-]+), ?Signature=([0-9a-f]{64})$/;

/** Builds the checker for one service; `check` resolves to a refusal, or undefined when the request may pass. */
export function requestVerifier(service: GuardedService, credentials: LocalCredentials) {
  // S3 signs paths as they are sent; the other services' paths are escaped once more (the SDK's own settings).
  const signer = new SignatureV4({ credentials, region: 'any', service, sha256: NodeSha256, uriEscapePath: service !== 's3', applyChecksum: false });
  const expectedId = Buffer.from(credentials.accessKeyId);
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
    /** The full check: recomputes the signature over the signed headers and the body (or its declared hash, S3). */
    async check(req: http.IncomingMessage, body: Buffer | undefined): Promise<Refusal | undefined> {
      const early = this.precheck(req);
      if (early) return early;
      const [, , , region, signedService, signedHeaderList, signature] = AUTHORIZATION.exec(req.headers.authorization ?? '') ?? [];
      const date = String(req.headers['x-amz-date'] ?? '');
      const when = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date);
      if (!when || signedService !== service || !region || !signedHeaderList || !signature) return 'bad-signature';
      const signingDate = new Date(Date.UTC(+when[1]!, +when[2]! - 1, +when[3]!, +when[4]!, +when[5]!, +when[6]!));
      // As AWS: a signature older or newer than 15 minutes is refused (a captured request cannot be replayed later).
      if (Math.abs(Date.now() - signingDate.getTime()) > 15 * 60_000) return 'bad-signature';
      const headers: Record<string, string> = {};
      for (const name of signedHeaderList.split(';')) {
        const value = req.headers[name];
        if (value === undefined) return 'bad-signature';
        headers[name] = Array.isArray(value) ? value.join(',') : value;
      }
      const url = new URL(req.url ?? '/', 'http://localhost');
      const query: Record<string, string | string[]> = {};
      for (const [key, value] of url.searchParams) {
        const seen = query[key];
        query[key] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
      }
      const signed = await signer.sign(
        {
          method: req.method ?? 'GET',
          protocol: 'http:',
          hostname: 'localhost',
          path: url.pathname,
          query,
          headers,
          ...(headers['x-amz-content-sha256'] === undefined ? { body: body ?? Buffer.alloc(0) } : {}),
        },
        { signingDate, signingRegion: region, signingService: service },
      );
      const computed = /Signature=([0-9a-f]{64})$/.exec(String(signed.headers.authorization ?? ''))?.[1] ?? '';
      const given = Buffer.from(signature);
      return computed.length === given.length && timingSafeEqual(Buffer.from(computed), given) ? undefined : 'bad-signature';
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
 * their payload's hash in a signed header, so they stream through untouched;
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
    if (req.headers['x-amz-content-sha256'] !== undefined) {
      verifier.check(req, undefined).then(
        (refusal) => (refusal ? deny(req, res, refusal) : pass(req, res)),
        () => deny(req, res, 'bad-signature'),
      );
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
      verifier.check(req, body).then(
        (refusal) => (refusal ? refuse(res, service, refusal) : pass(replay(req, body), res)),
        () => refuse(res, service, 'bad-signature'),
      );
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
