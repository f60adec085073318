// The local dashboard: polls the fleet's public JSON API (same origin) about
// once a second and renders it. Task ids, data, results and errors are
// untrusted, so everything is built with createElement and textContent, never
// innerHTML. No framework and no build step: this file is served as-is.

const POLL_MS = 1000;
const MAX_BACKOFF_MS = 10_000;
const RESULTS_PAGE = 25;
const BATCHES_STEP = 25;
const TOKEN_KEY = 'fleet.token';
const RUNNING = new Set(['pending', 'processing']);

// ---------------------------------------------------------------- the token
// The page cannot know FLEET_TOKEN: it comes from ?token= (then leaves the
// address bar and history) or from the form, and stays in this tab's
// sessionStorage.
let token = sessionStorage.getItem(TOKEN_KEY);
{
  const url = new URL(location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl !== null) {
    url.searchParams.delete('token');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
    if (fromUrl) {
      token = fromUrl;
      sessionStorage.setItem(TOKEN_KEY, token);
    }
  }
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path) {
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(path, { headers, cache: 'no-store' });
  const text = await response.text();
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    throw new ApiError(response.status, body?.error?.code ?? 'http_error', body?.error?.message ?? `HTTP ${response.status}`);
  }
  return body;
}

// ---------------------------------------------------------------- DOM helpers
const $ = (id) => document.getElementById(id);

/** An element with text children only: strings become text nodes, never markup. */
function el(tag, options = {}, ...children) {
  const node = document.createElement(tag);
  if (options.className) node.className = options.className;
  if (options.title) node.title = options.title;
  if (options.href) node.href = options.href;
  for (const [name, value] of Object.entries(options.attrs ?? {})) node.setAttribute(name, String(value));
  for (const [name, value] of Object.entries(options.data ?? {})) node.dataset[name] = String(value);
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ''));
  return node;
}

const number = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '–');
const time = (ms) => (ms ? new Date(ms).toLocaleTimeString('en-GB') : '–');

function duration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return Math.floor(s % 60) ? `${m} min ${Math.floor(s % 60)} s` : `${m} min`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

const shortId = (id) => (id.length > 13 ? `${id.slice(0, 8)}…` : id);
const badge = (status) => el('span', { className: `badge ${status}` }, status);
const batchHref = (batchId) => `#/batches/${encodeURIComponent(batchId)}`;

function cell(content, className) {
  return el('td', className ? { className } : {}, content);
}

/** A bar split into succeeded and failed shares; widths go through the CSSOM, which the CSP allows. */
function progressBar(batch) {
  const total = batch.totalTasks || 1;
  const pct = Math.round((batch.progress ?? 0) * 100);
  const done = el('span', { className: 'done' });
  const failed = el('span', { className: 'failed' });
  done.style.width = `${(100 * batch.completedTasks) / total}%`;
  failed.style.width = `${(100 * batch.failedTasks) / total}%`;
  const bar = el('span', {
    className: 'bar',
    attrs: { role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': pct, 'aria-label': `progress of batch ${batch.batchId}` },
  }, done, failed);
  return el('span', { className: 'progress' }, bar, el('span', { className: 'pct' }, `${pct}%`));
}

function batchDuration(batch, now) {
  const start = batch.startedAt ?? batch.createdAt;
  return duration((batch.completedAt ?? now) - start);
}

function pairs(target, entries) {
  target.replaceChildren(...entries.flatMap(([label, value]) => [el('dt', {}, label), el('dd', {}, value)]));
}

// ---------------------------------------------------------------- state
const state = {
  batchLimit: BATCHES_STEP,
  selected: null, // batchId in the drill-down
  cursors: [null], // cursors of the results pages seen, for Previous
  pageIndex: 0,
  resultsKey: null, // what the shown results page was read for
  nextCursor: null,
  summary: null, // of the selected batch, kept once it has finished
};

function selectFromHash() {
  const match = /^#\/batches\/(.+)$/.exec(location.hash);
  let selected = null;
  if (match) {
    try {
      selected = decodeURIComponent(match[1]);
    } catch {
      selected = null;
    }
  }
  if (selected !== state.selected) {
    state.selected = selected;
    state.cursors = [null];
    state.pageIndex = 0;
    state.resultsKey = null;
    state.nextCursor = null;
    state.summary = null;
    $('results').replaceChildren();
  }
  $('batch-panel').hidden = selected === null;
}

// ---------------------------------------------------------------- rendering
function renderStats(stats) {
  for (const node of document.querySelectorAll('[data-stat]')) node.textContent = number(stats[node.dataset.stat]);
}

function renderConfig(config) {
  const show = {
    maxConcurrentWorkers: number(config.maxConcurrentWorkers),
    workerTimeout: duration(config.workerTimeout),
    retryFailedTasks: config.retryFailedTasks ? 'yes' : 'no',
    maxRetries: number(config.maxRetries),
  };
  for (const node of document.querySelectorAll('[data-config]')) node.textContent = show[node.dataset.config] ?? '–';
}

function renderBatches(page, now) {
  const rows = page.batches.map((batch) =>
    el(
      'tr',
      { data: { batchId: batch.batchId }, className: batch.batchId === state.selected ? 'selected' : '' },
      cell(el('a', { href: batchHref(batch.batchId), title: batch.batchId, className: 'mono' }, shortId(batch.batchId))),
      cell(badge(batch.status), 'status'),
      cell(progressBar(batch)),
      cell(number(batch.completedTasks), 'num'),
      cell(number(batch.failedTasks), 'num'),
      cell(number(batch.totalTasks), 'num'),
      cell(time(batch.createdAt)),
      cell(batchDuration(batch, now)),
    ),
  );
  if (!rows.length) {
    rows.push(el('tr', {}, el('td', { className: 'empty', attrs: { colspan: 8 } }, 'No batches yet. Submit one with POST /batches (see the README).')));
  }
  $('batches').replaceChildren(...rows);
  $('more-batches').hidden = !page.nextCursor;
}

function renderWorkers(workers, now) {
  const rows = workers.map((worker) =>
    el(
      'tr',
      { data: { workerId: worker.id } },
      cell(worker.id, 'mono'),
      cell(el('a', { href: batchHref(worker.batchId), title: worker.batchId, className: 'mono' }, shortId(worker.batchId))),
      cell(worker.taskId, 'mono task'),
      cell(duration(now - worker.spawnedAt), 'age'),
      cell(time(worker.spawnedAt)),
    ),
  );
  if (!rows.length) rows.push(el('tr', {}, el('td', { className: 'empty', attrs: { colspan: 5 } }, 'No worker is running a long attempt.')));
  $('workers').replaceChildren(...rows);
}

function renderBatch(batch, summary, now) {
  $('batch-id').textContent = batch.batchId;
  $('batch-status').replaceChildren(badge(batch.status));
  $('batch-error').hidden = !batch.error;
  $('batch-error').textContent = batch.error ?? '';
  pairs($('batch-detail'), [
    ['Progress', progressBar(batch)],
    ['Tasks', `${number(batch.completedTasks)} succeeded, ${number(batch.failedTasks)} failed, ${number(batch.totalTasks)} in all`],
    ['Created', time(batch.createdAt)],
    ['Started', time(batch.startedAt)],
    ['Finished', time(batch.completedAt)],
    ['Duration', batchDuration(batch, now)],
  ]);
  pairs($('batch-summary'), [
    ['Results recorded', number(summary?.totalResults)],
    ['Average duration', duration(summary?.averageDuration)],
    ['p50 duration', duration(summary?.p50Duration)],
    ['p95 duration', duration(summary?.p95Duration)],
  ]);
}

function renderResults(page) {
  const rows = page.results.map((result) => {
    const text = result.success ? JSON.stringify(result.result ?? null) : (result.error ?? '');
    return el(
      'tr',
      { data: { taskId: result.taskId }, className: result.success ? 'ok-row' : 'failed-row' },
      cell(result.taskId, 'mono task'),
      cell(badge(result.success ? 'ok' : 'failed')),
      cell(el('span', { className: 'value mono', title: text }, text), result.success ? 'result' : 'error'),
      cell(number(result.attempts), 'num'),
      cell(duration(result.duration), 'num'),
      cell(result.workerId, 'mono'),
      cell(time(result.timestamp)),
    );
  });
  if (!rows.length) rows.push(el('tr', {}, el('td', { className: 'empty', attrs: { colspan: 7 } }, 'No results recorded yet.')));
  $('results').replaceChildren(...rows);
  state.nextCursor = page.nextCursor;
  $('prev-page').disabled = state.pageIndex === 0;
  $('next-page').disabled = !page.nextCursor;
  $('page-label').textContent = `page ${state.pageIndex + 1}`;
}

// ---------------------------------------------------------------- polling
async function loadSelected(now) {
  const batchId = state.selected;
  if (batchId === null) return;
  const base = `/batches/${encodeURIComponent(batchId)}`;
  let batch;
  try {
    batch = await api(base);
  } catch (error) {
    if (error.status !== 404) throw error;
    $('batch-id').textContent = batchId;
    $('batch-status').replaceChildren();
    $('batch-error').hidden = false;
    $('batch-error').textContent = 'No such batch: it may have been deleted or expired.';
    return;
  }
  // A finished batch no longer changes: read its page once, and again only on paging.
  const cursor = state.cursors[state.pageIndex];
  const key = `${batchId} ${cursor} ${batch.status}`;
  const stale = RUNNING.has(batch.status) || state.resultsKey !== key;
  const [summary, page] = await Promise.all([
    stale || !state.summary ? api(`${base}/summary`) : state.summary,
    stale ? api(`${base}/results?limit=${RESULTS_PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`) : null,
  ]);
  if (state.selected !== batchId) return; // the user moved on meanwhile
  state.summary = summary;
  renderBatch(batch, summary, now);
  if (page) {
    renderResults(page);
    state.resultsKey = key;
  }
}

/**
 * GET /batches lists the batch records, whose counts are written when a batch
 * finishes; a running batch's live counts come from GET /batches/{id}.
 */
async function listBatches() {
  const page = await api(`/batches?limit=${state.batchLimit}`);
  page.batches = await Promise.all(
    page.batches.map((batch) =>
      RUNNING.has(batch.status)
        ? api(`/batches/${encodeURIComponent(batch.batchId)}`).catch((error) => {
            if (error.status === 404) return batch;
            throw error;
          })
        : batch,
    ),
  );
  return page;
}

async function tick() {
  const [batches, stats, workers, config] = await Promise.all([
    listBatches(),
    api('/stats'),
    api('/workers'),
    api('/config'),
    loadSelected(Date.now()),
  ]);
  const now = Date.now();
  renderBatches(batches, now);
  renderStats(stats);
  renderWorkers(workers.workers, now);
  renderConfig(config);
}

function setConnection(kind, text) {
  const node = $('connection');
  node.className = `connection ${kind}`;
  node.textContent = text;
}

let running = false;
let again = false;
let timer;
let failures = 0;

/** Polls now; if a poll is under way, once more right after it. */
function refresh() {
  if (running) {
    again = true;
    return;
  }
  clearTimeout(timer);
  void poll();
}

async function poll() {
  running = true;
  let delay = POLL_MS;
  try {
    await tick();
    failures = 0;
    setConnection('live', `live · updated ${time(Date.now())}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      running = false;
      askForToken(token ? 'That token was refused.' : '');
      return;
    }
    failures += 1;
    delay = Math.min(POLL_MS * 2 ** failures, MAX_BACKOFF_MS);
    setConnection('down', `cannot reach the fleet (${error.message}); retrying`);
  }
  running = false;
  if (again) {
    again = false;
    return poll();
  }
  // A hidden tab still updates, slowly.
  timer = setTimeout(poll, document.hidden ? Math.max(delay, 5 * POLL_MS) : delay);
}

function askForToken(message) {
  setConnection('down', 'the fleet needs its token');
  $('auth').hidden = false;
  $('auth-error').textContent = message;
  $('auth-token').focus();
}

// ---------------------------------------------------------------- wiring
$('auth').addEventListener('submit', (event) => {
  event.preventDefault();
  token = $('auth-token').value;
  sessionStorage.setItem(TOKEN_KEY, token);
  $('auth-token').value = '';
  $('auth').hidden = true;
  refresh();
});
$('more-batches').addEventListener('click', () => {
  state.batchLimit = Math.min(state.batchLimit + BATCHES_STEP, 1000);
  refresh();
});
$('close-batch').addEventListener('click', () => {
  history.pushState(null, '', location.pathname + location.search);
  selectFromHash();
});
$('next-page').addEventListener('click', () => {
  if (!state.nextCursor) return;
  state.cursors[state.pageIndex + 1] = state.nextCursor;
  state.pageIndex += 1;
  refresh();
});
$('prev-page').addEventListener('click', () => {
  if (state.pageIndex === 0) return;
  state.pageIndex -= 1;
  refresh();
});
window.addEventListener('hashchange', () => {
  selectFromHash();
  refresh();
});
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) refresh();
});

selectFromHash();
refresh();
