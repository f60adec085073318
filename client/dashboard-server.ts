/**
 * `fleet dashboard`: the dashboard page for any fleet, deployed or local,
 * served on this machine's loopback and steering the fleet through it.
 *
 * The page is the very one local mode serves (infra/local/dashboard). Its
 * API calls come to this server, which forwards each to the fleet's API
 * signed as the user (SigV4 with their AWS credentials, or a bearer token):
 * the browser never holds AWS credentials, and the fleet's API needs no CORS.
 *
 * Nothing is exposed: the server binds 127.0.0.1 only, and runs the local
 * API's own guards (http-api.ts refusalOf): another `Host` (DNS rebinding),
 * another `Origin` or `Sec-Fetch-Site` (a hostile page) and non-JSON bodies
 * are refused before anything is forwarded. And since the server lends the
 * user's credentials to whoever reaches it, even another local user must
 * not: every API call must carry a random session token, which the printed
 * URL hands to the page (`?token=`, then kept in the tab's sessionStorage).
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { dashboardRoute } from '../infra/local/dashboard';
import { serveHttpApi } from '../infra/local/http-api';
import { createAuthorizer, resolveAuth, type FleetAuth } from './auth';

export interface DashboardServerOptions {
  /** The fleet's API base URL; a path prefix (an API Gateway stage) is kept. */
  url: string;
  /** How calls to the fleet are authorized. @default as FleetClient: FLEET_TOKEN, else SigV4 for an execute-api host, else none */
  auth?: FleetAuth;
  /** The loopback port to serve on. @default 0 (a free port) */
  port?: number;
  /** The token the page must present. @default 32 random bytes, hex */
  sessionToken?: string;
  /** Per forwarded call, in ms: under the local API's 30 s integration timeout. @default 29000 */
  timeoutMs?: number;
  fetch?: typeof fetch;
  env?: NodeJS.ProcessEnv;
}

export interface DashboardServer {
  /** Where the page is, with its session token: open this. */
  url: string;
  /** The server's origin, without the token. */
  origin: string;
  port: number;
  sessionToken: string;
  /** The fleet the calls go to. */
  upstream: string;
  close(): Promise<void>;
}

/** Request headers passed on to the fleet; everything else (cookies, the session token) stays here. */
const FORWARDED_REQUEST_HEADERS = ['accept', 'content-type', 'idempotency-key'];

export async function serveDashboard(options: DashboardServerOptions): Promise<DashboardServer> {
  const base = new URL(options.url);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError(`the fleet URL must be http or https, got ${options.url}`);
  base.pathname = base.pathname.replace(/\/+$/, '');
  base.search = '';
  base.hash = '';
  const prefix = base.pathname === '/' ? '' : base.pathname;
  const authorize = createAuthorizer(resolveAuth(base, options.auth, options.env ?? process.env));
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const timeoutMs = options.timeoutMs ?? 29_000;
  const sessionToken = options.sessionToken ?? randomBytes(32).toString('hex');
  const upstream = base.href.replace(/\/+$/, '');

  const forward = async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    const method = event.requestContext.http.method;
    const url = new URL(base.href);
    url.pathname = `${prefix}${event.rawPath}`;
    url.search = event.rawQueryString ? `?${event.rawQueryString}` : '';
    const headers: Record<string, string> = {};
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const value = event.headers[name];
      if (value !== undefined) headers[name] = value;
    }
    const body = event.body === undefined ? undefined : event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
    const label = `${method} ${event.rawPath}`;
    try {
      const signed = await authorize({ method, url, headers, ...(body !== undefined ? { body } : {}) });
      const response = await fetchImpl(url, { method, headers: signed, body, signal: AbortSignal.timeout(timeoutMs) });
      return {
        statusCode: response.status,
        headers: { 'content-type': response.headers.get('content-type') ?? 'application/json; charset=utf-8', 'cache-control': 'no-store' },
        body: await response.text(),
      };
    } catch (error) {
      const reason = error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
      return {
        statusCode: 502,
        headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
        body: JSON.stringify({ error: { code: 'bad_gateway', message: `${label}: the dashboard could not reach ${upstream} (${reason})` } }),
      };
    }
  };

  const server = serveHttpApi({ invoke: forward, publicRoutes: [dashboardRoute()], token: sessionToken });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // Loopback only, whatever the machine's interfaces.
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}/?token=${sessionToken}`,
    origin,
    port,
    sessionToken,
    upstream,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => { resolve(); });
        server.closeAllConnections();
      }),
  };
}
