/**
 * The local stand-in for API Gateway's HTTP API: turns each request into the
 * payload format 2.0 event the deployed API Lambda receives, and its result
 * back into a response.
 */
import { randomUUID } from 'node:crypto';
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

export function serveHttpApi(options: {
  invoke: ApiInvoker;
  maxBodyBytes: number;
  routes?: LocalRoute[];
  publicRoutes?: PublicRoute[];
  token?: string;
}): http.Server {
  return http.createServer((req, res) => {
    if (options.publicRoutes?.some((route) => route(req, res))) return;
    const fail = (status: number, code: string, message: string) => {
      if (res.headersSent) return res.destroy();
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ error: { code, message } }));
    };
    if (options.token && req.headers.authorization !== `Bearer ${options.token}`) {
      return fail(401, 'unauthorized', 'send Authorization: Bearer <token>');
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > options.maxBodyBytes) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      void (async () => {
        if (tooLarge) return fail(413, 'payload_too_large', `body is larger than ${options.maxBodyBytes} bytes`);
        for (const route of options.routes ?? []) if (await route(req, res)) return;
        const result = await options.invoke(toApiEvent(req, Buffer.concat(chunks)));
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
}
