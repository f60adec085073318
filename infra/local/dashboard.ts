/**
 * The local dashboard: the local stand-in for the Step Functions console,
 * served by `npm start` at `/`.
 *
 * Two static files, `dashboard/index.html` (inline CSS) and
 * `dashboard/dashboard.js` (a vanilla ES module), read once at start. The page
 * holds no data: it reads everything from the fleet's public JSON API, same
 * origin, with the bearer token when the fleet has one. That is why the assets
 * are served before the token check (a browser cannot put a header on a
 * navigation); the API calls the page makes are still checked.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type * as http from 'node:http';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DIST_DIR, FLEET_ROOT, RUNNING_FROM_DIST } from '../package-root';
import type { PublicRoute } from './http-api';

// The built package carries the page's files in dist/dashboard (npm run build copies them).
const ASSET_DIR = RUNNING_FROM_DIST ? path.join(FLEET_ROOT, DIST_DIR, 'dashboard') : path.join(path.dirname(fileURLToPath(import.meta.url)), 'dashboard');

interface Asset {
  body: Buffer;
  contentType: string;
}

/**
 * The page's Content-Security-Policy. Scripts come only from this origin (no
 * inline script, no eval); the inline stylesheet is allowed by its hash, so
 * injected markup could neither run script nor add styles.
 */
export function contentSecurityPolicy(html: string): string {
  if (/<script(?![^>]*\bsrc=)[^>]*>/i.test(html)) {
    throw new Error('dashboard/index.html has an inline <script>; the CSP allows scripts from files only');
  }
  const styleHashes = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map(
    ([, css]) => `'sha256-${createHash('sha256').update(css ?? '', 'utf8').digest('base64')}'`,
  );
  return [
    "default-src 'none'",
    "script-src 'self'",
    `style-src ${styleHashes.length ? styleHashes.join(' ') : "'none'"}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * The route serving the dashboard: GET or HEAD of `/`, `/index.html` and
 * `/dashboard.js`. Anything else falls through to the API.
 */
export function dashboardRoute(): PublicRoute {
  const html = readFileSync(path.join(ASSET_DIR, 'index.html'));
  const script = readFileSync(path.join(ASSET_DIR, 'dashboard.js'));
  const page: Asset = { body: html, contentType: 'text/html; charset=utf-8' };
  const assets = new Map<string, Asset>([
    ['/', page],
    ['/index.html', page],
    ['/dashboard.js', { body: script, contentType: 'text/javascript; charset=utf-8' }],
  ]);
  const headers = {
    'content-security-policy': contentSecurityPolicy(html.toString('utf8')),
    'x-content-type-options': 'nosniff',
    // The page may be opened with ?token=; never send that URL anywhere.
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-cache',
  };
  return (req: http.IncomingMessage, res: http.ServerResponse): boolean => {
    const method = (req.method ?? 'GET').toUpperCase();
    if (method !== 'GET' && method !== 'HEAD') return false;
    const asset = assets.get(new URL(req.url ?? '/', 'http://localhost').pathname);
    if (!asset) return false;
    res.writeHead(200, { ...headers, 'content-type': asset.contentType, 'content-length': asset.body.length });
    res.end(method === 'HEAD' ? undefined : asset.body);
    return true;
  };
}
