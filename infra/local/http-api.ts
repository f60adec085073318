/**
 * The local stand-in for API Gateway's HTTP API: turns each request into the
 * payload format 2.0 event the deployed API Lambda receives, and its result
 * back into a response.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

export type ApiInvoker = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

/** Extra routes served before the API (the dashboard, for instance). */
export type LocalRoute = (req: http.IncomingMessage, res: http.ServerResponse) => boolean | Promise<boolean>;

/**
 * A route served before the token check and before the body is read: static
 * assets holding no data, such as the dashboard page (a browser cannot put a
 * token on a navigation). Synchronous; returns true when it answered.
 */
export type PublicRoute = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;

const TEXT_TYPES = /^(application\/(json|x-ndjson|.*\+json)|text\/)/i;

export function toApiEvent(req: http.IncomingMessage, body: Buffer): APIGatewayProxyEventV2 {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams) query[name] = name in query ? `${query[name]},${value}` : value;
  const contentType = headers['content-type'] ?? '';
  const isText = body.length === 0 || contentType === '' || TEXT_TYPES.test(contentType);
  const method = (req.method ?? 'GET').toUpperCase();
  const now = Date.now();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'local',
      http: { method, path: url.pathname, protocol: `HTTP/${req.httpVersion}`, sourceIp: req.socket.remoteAddress ?? '127.0.0.1', userAgent: headers['user-agent'] ?? '' },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: new Date(now).toUTCString(),
      timeEpoch: now,
    },
    ...(body.length ? { body: isText ? body.toString('utf8') : body.toString('base64') } : {}),
    isBase64Encoded: !isText,
  };
}

/**
 * Whether an Authorization header carries the bearer token, compared in
 * constant time. Both sides are hashed first, so they have equal lengths and
 * not even the token's length leaks through timing.
 */
export function bearerTokenMatches(authorization: string | undefined, token: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();
  return timingSafeEqual(digest(authorization ?? ''), digest(`Bearer ${token}`));
}

/** The names every local fleet answers to; anything else in `Host` may be a DNS rebinding attack. */
export const LOOPBACK_HOST_NAMES: readonly string[] = ['localhost', '127.0.0.1', '[::1]'];

/** Methods whose body the API reads as JSON. */
const BODY_METHODS = new Set(['POST', 'PATCH', 'PUT']);

const JSON_MEDIA_TYPE = /^application\/json\s*(;|$)/i;

/** A request refused before it reaches the API, with the header that caused it. */
export interface Refusal {
  status: number;
  code: string;
  message: string;
  field: string;
}

/** A host name as `Host` carries it: lower case, an IPv6 address in brackets. */
export function normalizeHostName(name: string): string {
  const lower = name.trim().toLowerCase();
  return lower.includes(':') && !lower.startsWith('[') ? `[${lower}]` : lower;
}

/** The name part of a `Host` header (`name`, `name:port`, `[v6]`, `[v6]:port`), or undefined if it is none of these. */
function hostNameOf(host: string): string | undefined {
  const match = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(host.trim());
  return match?.[1] ? match[1].toLowerCase() : undefined;
}

/**
 * Refuses what a hostile web page could make the user's browser send to a
 * fleet on loopback, where, by default, no token guards it:
 * - DNS rebinding: a page whose own name now resolves to 127.0.0.1 reaches
 *   the fleet as "same origin", but its `Host` still names the page's site.
 *   Only loopback names and the names configured (`allowedHosts`) are served.
 * - Cross-site requests: a form or `fetch` from another site carries its
 *   `Origin`, and browsers mark it `Sec-Fetch-Site: cross-site` (or
 *   `same-site`, e.g. another port on localhost). Only the fleet's own
 *   origin is served; clients that are not browsers send neither header.
 * - "Simple" requests: a page may POST `text/plain` or form bodies to any
 *   site without asking first (no CORS preflight); a JSON body must say it
 *   is JSON, which a page can only do after a preflight this server never grants.
 *
 * These guard the local HTTP adapter only. On AWS, API Gateway's IAM (SigV4)
 * or JWT authorizer refuses every request a browser could forge, since a page
 * can neither sign a request nor read the user's token; this server stands in
 * for that on a developer's machine.
 */
export function refusalOf(req: http.IncomingMessage, allowedHosts: ReadonlySet<string>): Refusal | undefined {
  const host = req.headers.host ?? '';
  const hostName = hostNameOf(host);
  if (!hostName || !allowedHosts.has(hostName)) {
    return {
      status: 421,
      code: 'misdirected_request',
      message: `Host "${host.slice(0, 100)}" is not a name this fleet answers to (${[...allowedHosts].join(', ')}); add it to FLEET_ALLOWED_HOSTS to allow it`,
      field: 'Host',
    };
  }
  const origin = req.headers.origin;
  if (origin !== undefined) {
    const port = req.socket.localPort;
    const own = new Set([`http://${host.trim().toLowerCase()}`, ...[...allowedHosts].map((name) => `http://${name}:${port}`)]);
    if (!own.has(origin.trim().toLowerCase())) {
      return { status: 403, code: 'forbidden', message: `Origin "${origin.slice(0, 100)}" is not this fleet's own origin: requests from other sites are refused`, field: 'Origin' };
    }
  }
  const site = req.headers['sec-fetch-site']?.trim().toLowerCase();
  if (site === 'cross-site' || site === 'same-site') {
    return { status: 403, code: 'forbidden', message: `Sec-Fetch-Site "${site}": requests from other sites are refused`, field: 'Sec-Fetch-Site' };
  }
  const method = (req.method ?? 'GET').toUpperCase();
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (BODY_METHODS.has(method) && hasBody && !JSON_MEDIA_TYPE.test(req.headers['content-type'] ?? '')) {
    return {
      status: 415,
      code: 'unsupported_media_type',
      message: `Content-Type must be application/json, got ${JSON.stringify((req.headers['content-type'] ?? '').slice(0, 100))}`,
      field: 'Content-Type',
    };
  }
  return undefined;
}

/** HTTP-level errors (before a request reaches the API): Node's parser rejected the request. */
const CLIENT_ERRORS: Record<string, [number, string, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'the request line or headers are too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'the request took too long to arrive'],
};

/**
 * API Gateway HTTP API's own limits, and its answers when they are hit:
 * a 10 MB request payload, a 30 s integration timeout (then 503), and a
 * Lambda integration that fails to invoke (e.g. the event is over Lambda's
 * 6 MB) gets 500. These answers come from API Gateway, not from Fleet, so
 * they carry its `{"message": ...}` body, not Fleet's error envelope.
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html
 * https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-troubleshooting-lambda.html
 */
export const API_GATEWAY_LIMITS = Object.freeze({
  payloadBytes: 10 * 1024 * 1024,
  integrationTimeoutMs: 30_000,
});

/** Writes one of API Gateway's own error responses. */
function apiGatewayError(res: http.ServerResponse, status: 413 | 500 | 503, message: string): void {
  if (res.headersSent) return void res.destroy();
  const body = JSON.stringify({ message });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'apigw-requestid': randomUUID() });
  res.end(body);
}

/** What API Gateway makes of one integration call: the function's result, a failed invoke, or a timeout. */
type IntegrationOutcome = { ok: true; result: APIGatewayProxyStructuredResultV2 } | { ok: false; reason: 'failed' | 'timeout'; error?: unknown };

async function invokeIntegration(invoke: ApiInvoker, event: APIGatewayProxyEventV2, timeoutMs: number): Promise<IntegrationOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<IntegrationOutcome>((resolve) => {
    timer = setTimeout(() => { resolve({ ok: false, reason: 'timeout' }); }, timeoutMs);
  });
  try {
    return await Promise.race([
      invoke(event).then(
        (result): IntegrationOutcome => ({ ok: true, result }),
        (error: unknown): IntegrationOutcome => ({ ok: false, reason: 'failed', error }),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function serveHttpApi(options: {
  invoke: ApiInvoker;
  /** API Gateway's request payload quota. @default API_GATEWAY_LIMITS.payloadBytes (10 MB) */
  maxBodyBytes?: number;
  /** API Gateway's integration timeout. @default API_GATEWAY_LIMITS.integrationTimeoutMs (30 s) */
  integrationTimeoutMs?: number;
  routes?: LocalRoute[];
  publicRoutes?: PublicRoute[];
  token?: string;
  /**
   * Names served besides loopback's (refusalOf), as `Host` carries them without the port.
   * @default [] (only localhost, 127.0.0.1 and [::1])
   */
  allowedHosts?: readonly string[];
}): http.Server {
  const allowedHosts = new Set([...LOOPBACK_HOST_NAMES, ...(options.allowedHosts ?? []).map(normalizeHostName)]);
  const maxBodyBytes = options.maxBodyBytes ?? API_GATEWAY_LIMITS.payloadBytes;
  const integrationTimeoutMs = options.integrationTimeoutMs ?? API_GATEWAY_LIMITS.integrationTimeoutMs;
  const server = http.createServer((req, res) => {
    const fail = (status: number, code: string, message: string, field?: string) => {
      if (res.headersSent) return res.destroy();
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ error: { code, message, ...(field ? { field } : {}) } }));
    };
    // First, even before the dashboard's files: a rebinding page must not even get those.
    const refusal = refusalOf(req, allowedHosts);
    if (refusal) return fail(refusal.status, refusal.code, refusal.message, refusal.field);
    try {
      if (options.publicRoutes?.some((route) => route(req, res))) return;
    } catch {
      // A route that cannot parse the request target (e.g. "//[") must answer, not take the process down.
      return fail(400, 'bad_request', 'the request target is not a valid URL');
    }
    if (options.token && !bearerTokenMatches(req.headers.authorization, options.token)) {
      res.setHeader('www-authenticate', 'Bearer');
      return fail(401, 'unauthorized', 'send Authorization: Bearer <token>');
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      void (async () => {
        if (tooLarge) { apiGatewayError(res, 413, 'Request Entity Too Large'); return; }
        for (const route of options.routes ?? []) if (await route(req, res)) return;
        let event: APIGatewayProxyEventV2;
        try {
          event = toApiEvent(req, Buffer.concat(chunks));
        } catch {
          // e.g. a request target like "//[" that is no URL at all; API Gateway answers 400 too.
          return fail(400, 'bad_request', 'the request target is not a valid URL');
        }
        const outcome = await invokeIntegration(options.invoke, event, integrationTimeoutMs);
        if (!outcome.ok) {
          if (outcome.reason === 'timeout') { apiGatewayError(res, 503, 'Service Unavailable'); return; }
          console.error('local API: the Lambda integration failed', outcome.error);
          apiGatewayError(res, 500, 'Internal Server Error'); return;
        }
        const { result } = outcome;
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(result.headers ?? {})) headers[name] = String(value);
        res.writeHead(result.statusCode ?? 200, headers);
        res.end(result.body === undefined ? undefined : result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body);
      })().catch((error: unknown) => {
        console.error('local API error', error);
        fail(502, 'bad_gateway', 'the API function failed; see the fleet log');
      });
    });
  });
  // A request Node's parser refuses (an unknown method, a malformed or oversize
  // header) gets the same JSON error envelope as every other error, not Node's bare 400.
  server.on('clientError', (error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket) => {
    if (error.code === 'ECONNRESET' || !socket.writable) return socket.destroy();
    const [status, reason, message] = CLIENT_ERRORS[error.code ?? ''] ?? [400, 'Bad Request', 'the request is not valid HTTP/1.1'];
    // An answer to HEAD carries no body, or the client would read it as a stray response.
    const body = error.rawPacket?.subarray(0, 5).toString('latin1') === 'HEAD ' ? '' : JSON.stringify({ error: { code: 'bad_request', message } });
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  return server;
}
