/**
 * The local dashboard in real headless Chromium (Debian's `chromium`, driven
 * by playwright-core; no Playwright browser download). One local fleet, with
 * a token, for the whole file; batches go in through the public API, and the
 * page must show them as the API reports them.
 *
 * FLEET_SCREENSHOT=1 also writes docs/dashboard.png (the README's picture);
 * CI leaves it unset so the tree stays clean.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import type { BatchStatus, FleetManagerConfig, FleetStatistics } from '../../lambdas/domain/types';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'dashboard-test-token';
const XSS = '<img src=x onerror=alert(1)>';
/** Generous: two cores, shared with other test runs. */
const WAIT_MS = 60_000;

let fleet: LocalFleet | undefined;
let context: BrowserContext | undefined;
let userDataDir: string | undefined;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`this test drives Debian's chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run does)`);
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1, token: TOKEN });
  userDataDir = mkdtempSync(path.join(tmpdir(), 'fleet-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
  });
});

afterAll(async () => {
  await context?.close();
  await fleet?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

function baseUrl(): string {
  if (!fleet) throw new Error('the fleet did not start');
  return fleet.url;
}

/** A request to the fleet's API, with the token unless told otherwise. */
async function request<T>(method: string, route: string, body?: unknown, token: string | null = TOKEN): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${baseUrl()}${route}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}

async function submit(tasks: { id: string; type: string; data: unknown }[]): Promise<string> {
  const submitted = await request<BatchStatus>('POST', '/batches', { tasks });
  expect(submitted.status).toBe(202);
  return submitted.body.batchId;
}

async function waitForBatchEnd(batchId: string): Promise<BatchStatus> {
  return eventually(
    async () => (await request<BatchStatus>('GET', `/batches/${batchId}`)).body,
    (batch) => batch.status !== 'pending' && batch.status !== 'processing',
    `batch ${batchId} to finish`,
  );
}

/** Reads until `done` holds, or fails naming what it waited for and what it last saw. */
async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await read();
    if (done(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`waited ${timeoutMs} ms for ${what}; last saw ${JSON.stringify(last)}`);
}

/**
 * The slice of the DOM the in-page functions below use. The project's tsconfig
 * has no DOM lib (all else runs on Node), and one here would let browser
 * globals type-check in the Lambda code too. The casts vanish at run time.
 */
interface PageElement {
  readonly textContent: string | null;
  readonly title: string;
  readonly dataset: Record<string, string | undefined>;
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement>;
}
interface InPage {
  document: PageElement;
}

/** The text of the first element matching `selector`, or null while there is none. */
function textOf(page: Page, selector: string): Promise<string | null> {
  return page.evaluate((sel) => (globalThis as unknown as InPage).document.querySelector(sel)?.textContent ?? null, selector);
}

function waitForText(page: Page, selector: string, expected: string | RegExp, what: string): Promise<string | null> {
  return eventually(
    () => textOf(page, selector),
    (text) => text !== null && (typeof expected === 'string' ? text === expected : expected.test(text)),
    what,
  );
}

interface Watched {
  page: Page;
  dialogs: string[];
  cspViolations: string[];
}

/** A new tab (so a fresh sessionStorage) that records dialogs and CSP violations. */
async function openDashboard(query = `?token=${TOKEN}`): Promise<Watched> {
  if (!context) throw new Error('chromium did not start');
  const page = await context.newPage();
  const watched: Watched = { page, dialogs: [], cspViolations: [] };
  page.on('dialog', (dialog) => {
    watched.dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) watched.cspViolations.push(message.text());
  });
  await page.goto(`${baseUrl()}/${query}`);
  return watched;
}

/** Task ids and result-or-error texts of the drill-down's current results page. */
function resultRows(page: Page): Promise<{ taskId: string; outcome: string; value: string }[]> {
  return page.evaluate(() =>
    [...(globalThis as unknown as InPage).document.querySelectorAll('#results tr[data-task-id]')].map((row) => ({
      taskId: row.dataset.taskId ?? '',
      outcome: row.querySelector('.badge')?.textContent ?? '',
      value: row.querySelector('.value')?.textContent ?? '',
    })),
  );
}

describe('the local dashboard', () => {
  it('serves its two files with content types and a strict CSP, without the token, and nothing else', async () => {
    const html = await fetch(`${baseUrl()}/`);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = html.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toMatch(/style-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).not.toContain('unsafe-inline');
    expect(html.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await html.text()).toContain('<script type="module" src="/dashboard.js"></script>');

    const script = await fetch(`${baseUrl()}/dashboard.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');

    // Only the page's files skip the token: the API, and unknown paths, still need it.
    expect((await request('GET', '/stats', undefined, null)).status).toBe(401);
    expect((await request('GET', '/dashboard.css', undefined, null)).status).toBe(401);
    expect((await request('POST', '/', {}, null)).status).toBe(401);
  });

  it('asks for the token when opened without one, and connects with it', async () => {
    const { page } = await openDashboard('');
    try {
      await page.locator('#auth').waitFor({ state: 'visible', timeout: WAIT_MS });
      await page.fill('#auth-token', 'not-the-token');
      await page.click('#auth button[type=submit]');
      await waitForText(page, '#auth-error', 'That token was refused.', 'the refusal of a wrong token');
      await page.fill('#auth-token', TOKEN);
      await page.click('#auth button[type=submit]');
      await waitForText(page, '#connection', /^live/, 'the page to go live');
      expect(await page.locator('#auth').isHidden()).toBe(true);
    } finally {
      await page.close();
    }
  });

  it('shows a batch reach 100% and partial, its results and errors page by page, and the fleet stats, all as text', async () => {
    const { page, dialogs, cspViolations } = await openDashboard();
    try {
      // The token left the address bar and went to this tab's sessionStorage.
      expect(page.url()).not.toContain('token=');
      await waitForText(page, '#connection', /^live/, 'the page to go live');

      const tasks = [
        ...Array.from({ length: 30 }, (_, i) => ({ id: `sleep-${String(i + 1).padStart(2, '0')}`, type: 'sleep', data: { ms: 50, value: i } })),
        { id: 'broken', type: 'fail', data: { message: `boom: ${XSS}` } },
        { id: XSS, type: 'echo', data: { html: XSS } },
      ];
      const batchId = await submit(tasks);
      const row = `#batches tr[data-batch-id="${batchId}"]`;

      await eventually(
        () =>
          page.evaluate(
            (sel) => (globalThis as unknown as InPage).document.querySelector(`${sel} [role=progressbar]`)?.getAttribute('aria-valuenow') ?? null,
            row,
          ),
        (value) => value === '100',
        'the progress bar to reach 100%',
      );
      await waitForText(page, `${row} .pct`, '100%', 'the 100% label');
      await waitForText(page, `${row} td.status`, 'partial', 'the status to become partial');
      const finished = await waitForBatchEnd(batchId);
      expect(finished).toMatchObject({ status: 'partial', completedTasks: 31, failedTasks: 1, totalTasks: 32 });

      // Drill down: 32 results over two pages of 25.
      await page.click(`${row} a`);
      await page.locator('#batch-panel').waitFor({ state: 'visible', timeout: WAIT_MS });
      await waitForText(page, '#batch-id', batchId, 'the drill-down to show the batch');
      await waitForText(page, '#page-label', 'page 1', 'the first results page');
      const firstPage = await eventually(() => resultRows(page), (rows) => rows.length === 25, 'a full first page of results');
      expect(await page.locator('#prev-page').isDisabled()).toBe(true);
      await page.click('#next-page');
      await waitForText(page, '#page-label', 'page 2', 'the second results page');
      const secondPage = await eventually(() => resultRows(page), (rows) => rows.length === 7, 'the second page of results');
      expect(await page.locator('#next-page').isDisabled()).toBe(true);

      const all = [...firstPage, ...secondPage];
      expect(new Set(all.map((r) => r.taskId))).toEqual(new Set(tasks.map((t) => t.id)));
      expect(all.find((r) => r.taskId === 'sleep-07')).toEqual({ taskId: 'sleep-07', outcome: 'ok', value: expect.stringContaining('"value":6') });
      expect(all.find((r) => r.taskId === 'broken')).toEqual({ taskId: 'broken', outcome: 'failed', value: `boom: ${XSS}` });
      // Untrusted text stays text: the task id, the echoed data and the error show the markup, and no element came of it.
      expect(all.find((r) => r.taskId === XSS)).toEqual({ taskId: XSS, outcome: 'ok', value: JSON.stringify({ html: XSS }) });
      expect(await page.locator('img').count()).toBe(0);
      expect(dialogs).toEqual([]);

      // The summary of the drill-down and the fleet's stats and config, as the API reports them.
      await waitForText(page, '#batch-summary dd', '32', 'the summary to count 32 results');
      const stats = (await request<FleetStatistics>('GET', '/stats')).body;
      expect(stats).toMatchObject({ totalBatches: 1, totalTasks: 32, completedTasks: 31, failedTasks: 1 });
      for (const [name, value] of Object.entries(stats)) {
        if (name !== 'activeWorkers') await waitForText(page, `[data-stat=${name}]`, String(value), `the ${name} stat`);
      }
      await waitForText(page, '[data-stat=activeWorkers]', /^\d+$/, 'the active workers stat');
      const config = (await request<FleetManagerConfig>('GET', '/config')).body;
      await waitForText(page, '[data-config=maxConcurrentWorkers]', String(config.maxConcurrentWorkers), 'the config panel');
      await waitForText(page, '[data-config=maxRetries]', String(config.maxRetries), 'the config panel');
      expect(cspViolations).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('lists a worker running a slow task, with its age', async () => {
    const { page, cspViolations } = await openDashboard();
    try {
      const batches = (await request<{ batches: BatchStatus[] }>('GET', '/batches')).body.batches;
      // Drill into the earlier batch for the screenshot, if there is one.
      if (batches[0]) await page.goto(`${baseUrl()}/#/batches/${batches[0].batchId}`);
      await waitForText(page, '#connection', /^live/, 'the page to go live');

      // Far longer than the worker registry's listing delay (README: Stats and workers), so a loaded machine still sees it.
      const batchId = await submit([
        { id: 'slow', type: 'sleep', data: { ms: 15_000 } },
        ...Array.from({ length: 3 }, (_, i) => ({ id: `quick-${i + 1}`, type: 'sleep', data: { ms: 20 } })),
      ]);
      const worker = await eventually(
        () =>
          page.evaluate(() => {
            const row = (globalThis as unknown as InPage).document.querySelector('#workers tr[data-worker-id]');
            return row
              ? { task: row.querySelector('td.task')?.textContent ?? '', age: row.querySelector('td.age')?.textContent ?? '', batch: row.querySelector('a')?.title ?? '' }
              : null;
          }),
        // Every running attempt is listed: once the 20 ms ones are over, the slow one is the first row.
        (seen) => seen?.task === 'slow',
        'a worker row',
      );
      expect(worker).toEqual({ task: 'slow', age: expect.stringMatching(/^\d+(\.\d)? (ms|s)$/), batch: batchId });
      await waitForText(page, '[data-stat=activeWorkers]', '1', 'the active workers stat');
      // The list shows a running batch's live progress (its record's counts are written only at its end).
      await waitForText(page, `#batches tr[data-batch-id="${batchId}"] td.status`, 'processing', 'the slow batch to show processing');
      await waitForText(page, `#batches tr[data-batch-id="${batchId}"] .pct`, '75%', 'the quick tasks to show in the progress bar');

      if (process.env.FLEET_SCREENSHOT === '1') {
        await page.screenshot({ path: path.join(REPO_ROOT, 'docs/dashboard.png'), fullPage: true });
      }

      expect((await waitForBatchEnd(batchId)).status).toBe('completed');
      await waitForText(page, '#workers td.empty', /No worker/, 'the worker to leave the list');
      expect(cspViolations).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
