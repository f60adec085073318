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
import { Writable } from 'node:stream';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../client/cli';
import { signalAndWait, startFleetProcess } from '../local/fleet-process';
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
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the JSON body's type: the one cast, here
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

/** Waits for the page's confirmation dialog, checks what it asks, and confirms or backs out. */
async function answerConfirm(page: Page, asks: RegExp, accept: boolean): Promise<void> {
  await page.locator('#confirm[open]').waitFor({ state: 'visible', timeout: WAIT_MS });
  expect(await textOf(page, '#confirm-message')).toMatch(asks);
  await page.click(accept ? '#confirm-ok' : '#confirm-cancel');
  await page.locator('#confirm').waitFor({ state: 'hidden', timeout: WAIT_MS });
}

/** Opens a batch's drill-down in a tab that is already live. */
async function openBatch(page: Page, batchId: string): Promise<void> {
  await page.goto(`${baseUrl()}/#/batches/${batchId}`);
  await waitForText(page, '#connection', /^live/, 'the page to go live');
  await waitForText(page, '#batch-id', batchId, 'the drill-down of the batch');
}

const FULL_DATE = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/;

describe('the dashboard steers the fleet', () => {
  it('cancels and deletes a batch, each after a confirmation; refusals (delete while running, retry once cancelled) show the API error', async () => {
    const { page, dialogs, cspViolations } = await openDashboard();
    try {
      await waitForText(page, '#connection', /^live/, 'the page to go live');
      const batchId = await submit([{ id: 'long', type: 'sleep', data: { ms: 20_000 } }]);
      await eventually(async () => (await request<BatchStatus>('GET', `/batches/${batchId}`)).body.status, (s) => s === 'processing', 'the batch to run');
      await openBatch(page, batchId);
      await waitForText(page, '#batch-status', 'processing', 'the processing badge');

      // Delete while it runs: the API refuses with 409, and the page says why.
      await page.click('#delete-batch');
      await answerConfirm(page, new RegExp(`Delete batch ${batchId}`), true);
      await waitForText(page, '#action-error', /^Refused \(HTTP 409, conflict\): .*only a finished batch can be deleted/, 'the refusal of the delete');

      // Backing out of the cancel changes nothing.
      await page.click('#cancel-batch');
      await answerConfirm(page, new RegExp(`Cancel batch ${batchId}\\?`), false);
      expect((await request<BatchStatus>('GET', `/batches/${batchId}`)).body.status).toBe('processing');

      await page.click('#cancel-batch');
      await answerConfirm(page, new RegExp(`Cancel batch ${batchId}\\?`), true);
      await waitForText(page, '#action-notice', `Cancelled batch ${batchId}.`, 'the cancel to be reported');
      expect((await request<BatchStatus>('GET', `/batches/${batchId}`)).body.status).toBe('cancelled');
      await waitForText(page, '#batch-status', 'cancelled', 'the cancelled badge');

      await page.click('#retry-batch');
      await answerConfirm(page, /Run the failed tasks/, true);
      await waitForText(page, '#action-error', /^Refused \(HTTP 409, conflict\): .*was cancelled/, 'the refusal of the retry');

      await page.click('#delete-batch');
      await answerConfirm(page, new RegExp(`Delete batch ${batchId}`), true);
      await page.locator('#batch-panel').waitFor({ state: 'hidden', timeout: WAIT_MS });
      await waitForText(page, '#config-notice', `Deleted batch ${batchId}.`, 'the delete to be reported');
      expect((await request('GET', `/batches/${batchId}`)).status).toBe(404);
      // The list follows on the page's next refresh, which the delete starts without waiting for it.
      await page.locator(`#batches tr[data-batch-id="${batchId}"]`).waitFor({ state: 'detached', timeout: WAIT_MS });
      expect(dialogs).toEqual([]);
      expect(cspViolations).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('retries failed tasks; filters failures, finds a task by id and shows its input and earlier failure, with full ids and dates', async () => {
    const { page, cspViolations } = await openDashboard();
    const config = (await request<FleetManagerConfig>('GET', '/config')).body;
    try {
      await request('PATCH', '/config', { maxRetries: 0 });
      const batchId = await submit([
        ...Array.from({ length: 4 }, (_, i) => ({ id: `ok-${i}`, type: 'echo', data: { i } })),
        { id: 'bad', type: 'fail', data: { message: 'nope' } },
      ]);
      expect((await waitForBatchEnd(batchId)).status).toBe('partial');
      await openBatch(page, batchId);

      await page.selectOption('#result-filter', 'failed');
      await eventually(() => resultRows(page), (rows) => rows.length === 1 && rows[0]?.taskId === 'bad', 'only the failure listed');
      await waitForText(page, '#page-label', 'page 1 (filtered)', 'the filtered page label');

      await page.click('#retry-batch');
      await answerConfirm(page, new RegExp(`Run the failed tasks of batch ${batchId} again \\(1 without a success\\)`), true);
      await waitForText(page, '#action-notice', new RegExp(`^Retrying 1 task\\(s\\) of ${batchId} \\(retry 1, execution ${batchId}-retry-1\\)`), 'the retry to be reported');
      expect((await waitForBatchEnd(batchId)).status).toBe('partial');

      // Search by id: the task itself opens, with its input, result and the failure the retry cleared.
      await page.fill('#task-search', 'bad');
      await page.click('#results-form button[type=submit]');
      await page.locator('#task-panel').waitFor({ state: 'visible', timeout: WAIT_MS });
      await waitForText(page, '#task-id', 'bad', 'the task panel');
      await eventually(() => textOf(page, '#task-input'), (text) => text !== null && JSON.parse(text).message === 'nope', 'the task input');
      await waitForText(page, '#task-output', 'nope', 'the task error');
      const attempts = await eventually(
        () =>
          page.evaluate(() =>
            [...(globalThis as unknown as InPage).document.querySelectorAll('#task-attempts tr[data-retry]')].map((row) => ({
              retry: row.dataset.retry,
              error: row.querySelector('.value')?.textContent,
              recorded: row.querySelector('td.date')?.textContent,
            })),
          ),
        (rows) => rows.length === 1,
        'the earlier failure',
      );
      expect(attempts[0]).toEqual({ retry: '1', error: 'nope', recorded: expect.stringMatching(FULL_DATE) });
      const detail = (await request<{ failedAttempts: { timestamp: number }[] }>('GET', `/batches/${batchId}/tasks/bad`)).body;
      expect(detail.failedAttempts).toHaveLength(1);

      // Full ids and dates: the batch row shows the whole id and its creation to the millisecond.
      const row = `#batches tr[data-batch-id="${batchId}"]`;
      await waitForText(page, `${row} a`, batchId, 'the full batch id');
      expect(await textOf(page, `${row} td.date`)).toMatch(FULL_DATE);

      // A prefix narrows the list without opening a task.
      await page.selectOption('#result-filter', '');
      await page.fill('#task-search', 'ok-');
      await page.click('#results-form button[type=submit]');
      await page.locator('#task-panel').waitFor({ state: 'hidden', timeout: WAIT_MS });
      const narrowed = await eventually(() => resultRows(page), (rows) => rows.length === 4, 'the four ok- tasks');
      expect(narrowed.map((r) => r.taskId).sort()).toEqual(['ok-0', 'ok-1', 'ok-2', 'ok-3']);

      // A result row opens its task.
      await page.click('#results tr[data-task-id="ok-2"] td.task a');
      await waitForText(page, '#task-id', 'ok-2', 'the task opened from its row');
      await eventually(() => textOf(page, '#task-input'), (text) => text !== null && JSON.parse(text).i === 2, 'its input');
      expect(cspViolations).toEqual([]);
    } finally {
      await request('PATCH', '/config', { maxRetries: config.maxRetries });
      await page.close();
    }
  });

  it('scales the fleet and edits its config after a confirmation; a refused value shows the API error naming the field', async () => {
    const { page, cspViolations } = await openDashboard();
    const before = (await request<FleetManagerConfig>('GET', '/config')).body;
    try {
      await waitForText(page, '#connection', /^live/, 'the page to go live');

      await page.fill('#scale-count', '0');
      await page.click('#scale-form button[type=submit]');
      await answerConfirm(page, /maxConcurrentWorkers to 0/, true);
      await waitForText(page, '#config-error', /^Refused \(HTTP 400, validation_error\): count: /, 'the refused scale');

      await page.fill('#scale-count', '12');
      await page.click('#scale-form button[type=submit]');
      await answerConfirm(page, /maxConcurrentWorkers to 12/, false);
      expect((await request<FleetManagerConfig>('GET', '/config')).body.maxConcurrentWorkers).toBe(before.maxConcurrentWorkers);

      await page.click('#scale-form button[type=submit]');
      await answerConfirm(page, /maxConcurrentWorkers to 12/, true);
      await waitForText(page, '#config-notice', /^Scaled to 12 workers/, 'the scale to be reported');
      expect((await request<FleetManagerConfig>('GET', '/config')).body.maxConcurrentWorkers).toBe(12);
      await waitForText(page, '[data-config=maxConcurrentWorkers]', '12', 'the config panel to follow');

      await page.click('#edit-config');
      await page.locator('#config-form').waitFor({ state: 'visible', timeout: WAIT_MS });
      expect(await page.inputValue('#cfg-maxConcurrentWorkers')).toBe('12');
      await page.fill('#cfg-maxRetries', '-1');
      await page.click('#config-form button[type=submit]');
      await answerConfirm(page, /maxRetries .* → -1/, true);
      await waitForText(page, '#config-error', /^Refused \(HTTP 400, validation_error\): maxRetries: /, 'the refused config');
      expect((await request<FleetManagerConfig>('GET', '/config')).body.maxRetries).toBe(before.maxRetries);

      await page.fill('#cfg-maxRetries', '2');
      await page.setChecked('#cfg-retryFailedTasks', !before.retryFailedTasks);
      await page.fill('#cfg-workerTimeout', '45000');
      expect(await page.inputValue('#cfg-workerListing')).toBe(before.workerListing);
      await page.selectOption('#cfg-workerListing', 'long-attempts');
      await page.click('#config-form button[type=submit]');
      await answerConfirm(page, /workerTimeout .* → 45000.*retryFailedTasks .*maxRetries .* → 2.*workerListing .* → "long-attempts"/, true);
      await waitForText(page, '#config-notice', 'Saved: workerTimeout, retryFailedTasks, maxRetries, workerListing.', 'the config change to be reported');
      expect((await request<FleetManagerConfig>('GET', '/config')).body).toEqual({
        maxConcurrentWorkers: 12,
        workerTimeout: 45_000,
        retryFailedTasks: !before.retryFailedTasks,
        maxRetries: 2,
        workerListing: 'long-attempts',
      });
      await waitForText(page, '[data-config=maxRetries]', '2', 'the config panel to follow');
      await waitForText(page, '[data-config=workerListing]', 'long-attempts', 'the config panel to follow');
      expect(cspViolations).toEqual([]);
    } finally {
      await request('PATCH', '/config', before);
      await page.close();
    }
  });

  it('charts the last hour from GET /stats/timeline: one bar a minute, as the API counts them', async () => {
    const minuteOf = (ms: number) => Math.floor(ms / 60_000) * 60_000;
    const before = minuteOf(Date.now());
    const { page, cspViolations } = await openDashboard();
    try {
      const bars = () =>
        page.evaluate(() =>
          [...(globalThis as unknown as InPage).document.querySelectorAll('#timeline-chart g[data-start]')].map((g) => ({
            start: Number(g.getAttribute('data-start')),
            succeeded: g.getAttribute('data-succeeded'),
            failed: g.getAttribute('data-failed'),
          })),
        );
      const shown = await eventually(bars, (list) => list.length === 60, 'sixty bars');
      // The last bar is the minute the page drew it in: a minute may turn while the page opens.
      const last = shown.at(-1)?.start ?? Number.NaN;
      expect(last).toBeGreaterThanOrEqual(before);
      expect(last).toBeLessThanOrEqual(minuteOf(Date.now()));
      expect(last % 60_000).toBe(0);
      // The page's sums and the API's agree (read again until no task finishes in between).
      const sums = await eventually(
        async () => {
          const api = (await request<{ buckets: { succeeded: number | null; failed: number | null }[] }>('GET', '/stats/timeline')).body.buckets;
          const apiSums = api.reduce<[number, number]>((s, b) => [s[0] + (b.succeeded ?? 0), s[1] + (b.failed ?? 0)], [0, 0]);
          await page.reload();
          await waitForText(page, '#timeline-total', /succeeded/, 'the timeline');
          const pageSums = await page.evaluate(() => {
            const total = (globalThis as unknown as InPage).document.querySelector('#timeline-total');
            return [Number(total?.dataset.succeeded), Number(total?.dataset.failed)] as [number, number];
          });
          return { apiSums, pageSums };
        },
        ({ apiSums, pageSums }) => apiSums[0] === pageSums[0] && apiSums[1] === pageSums[1],
        'the chart to match the API',
      );
      // The tasks of the tests before ran after the first read, so they are in the chart.
      expect(sums.pageSums[0]).toBeGreaterThan(30);
      expect(sums.pageSums[1]).toBeGreaterThan(0);
      expect(cspViolations).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describe('fleet dashboard in front of another fleet', () => {
  it('serves the same page on loopback and steers a token-guarded fleet through it', async () => {
    // A second fleet that needs a bearer token: it stands in for a deployed fleet's SigV4.
    const upstreamToken = 'second-fleet-token';
    // Its own process: two fleets in one process would share the handlers' module-scope clients, hence their tables.
    const dataDir = mkdtempSync(path.join(tmpdir(), 'fleet-two-'));
    const upstream = await startFleetProcess(dataDir, { FLEET_TOKEN: upstreamToken, FLEET_IN_MEMORY: '1' });
    const stop = new AbortController();
    const stdout = new Capture();
    const running = main(['dashboard', '--url', upstream.url, '--token', upstreamToken, '--json'], { stdout, stderr: new Capture(), stdin: process.stdin, env: {}, interrupt: stop.signal });
    let page: Page | undefined;
    const ownCap = (await request<FleetManagerConfig>('GET', '/config')).body.maxConcurrentWorkers;
    try {
      const line = await eventually(async () => stdout.text.split('\n').find((l) => l.startsWith('{')), (l) => l !== undefined, 'fleet dashboard to print its address');
      const proxy = JSON.parse(line ?? '{}') as { url: string };
      expect(new URL(proxy.url).hostname).toBe('127.0.0.1');
      const direct = async <T>(method: string, route: string, body?: unknown) => {
        const response = await fetch(`${upstream.url}${route}`, {
          method,
          headers: { authorization: `Bearer ${upstreamToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
        return (await response.json()) as T;
      };
      await direct('PATCH', '/config', { maxRetries: 0 });
      const { batchId } = await direct<{ batchId: string }>('POST', '/batches', {
        tasks: [
          { id: 'two-ok', type: 'echo', data: { fleet: 2 } },
          { id: 'two-bad', type: 'fail', data: { message: 'fleet two says no' } },
        ],
      });
      await eventually(() => direct<BatchStatus>('GET', `/batches/${batchId}`), (b) => b.status === 'partial', 'the second fleet’s batch to finish');

      // Without the session token the page asks for one: the address printed is the way in.
      if (!context) throw new Error('chromium did not start');
      page = await context.newPage();
      await page.goto(new URL(proxy.url).origin + '/');
      await page.locator('#auth').waitFor({ state: 'visible', timeout: WAIT_MS });

      await page.goto(proxy.url);
      await waitForText(page, '#connection', /^live/, 'the page to go live through the proxy');
      expect(page.url()).not.toContain('token=');
      await waitForText(page, `#batches tr[data-batch-id="${batchId}"] td.status`, 'partial', 'the second fleet’s batch');
      expect(await page.locator(`#batches tr[data-batch-id]`).count()).toBe(1);

      await page.click(`#batches tr[data-batch-id="${batchId}"] a`);
      await waitForText(page, '#batch-id', batchId, 'its drill-down');
      await page.fill('#task-search', 'two-bad');
      await page.click('#results-form button[type=submit]');
      await waitForText(page, '#task-output', 'fleet two says no', 'the task, read through the proxy');

      await page.fill('#scale-count', '5');
      await page.click('#scale-form button[type=submit]');
      await answerConfirm(page, /maxConcurrentWorkers to 5/, true);
      await waitForText(page, '#config-notice', /^Scaled to 5 workers/, 'the scale through the proxy');
      expect((await direct<FleetManagerConfig>('GET', '/config')).maxConcurrentWorkers).toBe(5);

      await page.click('#retry-batch');
      await answerConfirm(page, /Run the failed tasks/, true);
      await waitForText(page, '#action-notice', /^Retrying 1 task/, 'the retry through the proxy');
      await eventually(() => direct<BatchStatus>('GET', `/batches/${batchId}`), (b) => b.status === 'partial', 'the retried batch to finish');
      // The local fleet of this file saw none of it.
      expect((await request<FleetManagerConfig>('GET', '/config')).body.maxConcurrentWorkers).toBe(ownCap);
    } finally {
      await page?.close();
      stop.abort();
      expect(await running).toBe(0);
      await signalAndWait(upstream, 'SIGTERM');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString('utf8');
    done();
  }
}
