// The dashboard: polls the fleet's public JSON API (same origin: local mode,
// or `fleet dashboard` forwarding to a deployed fleet) about once a second,
// renders it, and steers the fleet through the same API, each action after a
// confirmation. Task ids, data, results and errors are untrusted, so
// everything is built with createElement and textContent, never innerHTML.
// No framework and no build step: this file is served as-is.

const POLL_MS = 1000;
const MAX_BACKOFF_MS = 10_000;
const RESULTS_PAGE = 25;
const BATCHES_STEP = 25;
const TOKEN_KEY = 'fleet.token';
const RUNNING = new Set(['pending', 'processing']);
const TIMELINE_EVERY_MS = 10_000;
const SVG = 'http://www.w3.org/2000/svg';

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

async function api(path, { method = 'GET', body } = {}) {
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, { method, headers, cache: 'no-store', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await response.text();
  let parsed;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    // Fleet's envelope, or API Gateway's own {"message"} (a refused signature, throttling).
    throw new ApiError(response.status, parsed?.error?.code ?? 'http_error', parsed?.error?.message ?? parsed?.message ?? `HTTP ${response.status}`);
  }
  return parsed;
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
const pad = (n, width = 2) => String(n).padStart(width, '0');
/** A full local date and time, to the millisecond; the title holds it in UTC (ISO 8601). */
function dateTime(ms) {
  if (!ms) return '–';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}
const dateCell = (ms) => el('td', ms ? { title: new Date(ms).toISOString(), className: 'date' } : { className: 'date' }, dateTime(ms));

function duration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return Math.floor(s % 60) ? `${m} min ${Math.floor(s % 60)} s` : `${m} min`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

const badge = (status) => el('span', { className: `badge ${status}` }, status);
const batchHref = (batchId) => `#/batches/${encodeURIComponent(batchId)}`;
const taskHref = (batchId, taskId) => `${batchHref(batchId)}/tasks/${encodeURIComponent(taskId)}`;

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
  batch: null, // the selected batch's status, as last read
  filter: '', // '', 'failed' or 'succeeded'
  prefix: '', // task id prefix the results are narrowed to
  task: null, // taskId in the task panel
  taskKey: null, // what the task panel was read for
  config: null, // as last read
  timelineAt: 0, // when the timeline was last read
};

/** Forgets the results pages read, so the next poll reads page 1 again (a new batch, filter or search). */
function resetResults() {
  state.cursors = [null];
  state.pageIndex = 0;
  state.resultsKey = null;
  state.nextCursor = null;
  $('results').replaceChildren();
}

function decoded(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return null;
  }
}

/** `#/batches/{batchId}` selects a batch; `#/batches/{batchId}/tasks/{taskId}` also one of its tasks. */
function selectFromHash() {
  const match = /^#\/batches\/([^/]+)(?:\/tasks\/(.+))?$/.exec(location.hash);
  const selected = match ? decoded(match[1]) : null;
  const task = match && match[2] !== undefined && selected !== null ? decoded(match[2]) : null;
  if (selected !== state.selected) {
    state.selected = selected;
    state.summary = null;
    state.batch = null;
    state.filter = '';
    state.prefix = '';
    $('result-filter').value = '';
    $('task-search').value = '';
    showMessage('action', null);
    resetResults();
  }
  if (task !== state.task) {
    state.task = task;
    state.taskKey = null;
  }
  $('batch-panel').hidden = selected === null;
  $('task-panel').hidden = task === null;
}

/** Shows `text` in the panel's error (kind 'error') or notice line, or hides both. */
function showMessage(panel, text, kind = 'error') {
  $(`${panel}-error`).hidden = !(text && kind === 'error');
  $(`${panel}-notice`).hidden = !(text && kind === 'notice');
  if (text) $(`${panel}-${kind}`).textContent = text;
}

// ---------------------------------------------------------------- rendering
function renderStats(stats) {
  for (const node of document.querySelectorAll('[data-stat]')) node.textContent = number(stats[node.dataset.stat]);
}

function renderConfig(config) {
  state.config = config;
  const show = {
    maxConcurrentWorkers: number(config.maxConcurrentWorkers),
    workerTimeout: duration(config.workerTimeout),
    retryFailedTasks: config.retryFailedTasks ? 'yes' : 'no',
    maxRetries: number(config.maxRetries),
    workerListing: config.workerListing ?? '–',
  };
  for (const node of document.querySelectorAll('[data-config]')) node.textContent = show[node.dataset.config] ?? '–';
}

function renderBatches(page, now) {
  const rows = page.batches.map((batch) =>
    el(
      'tr',
      { data: { batchId: batch.batchId }, className: batch.batchId === state.selected ? 'selected' : '' },
      cell(el('a', { href: batchHref(batch.batchId), title: batch.batchId, className: 'mono' }, batch.batchId)),
      cell(badge(batch.status), 'status'),
      cell(progressBar(batch)),
      cell(number(batch.completedTasks), 'num'),
      cell(number(batch.failedTasks), 'num'),
      cell(number(batch.totalTasks), 'num'),
      dateCell(batch.createdAt),
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
      cell(el('a', { href: batchHref(worker.batchId), title: worker.batchId, className: 'mono' }, worker.batchId)),
      cell(worker.taskId, 'mono task'),
      cell(duration(now - worker.spawnedAt), 'age'),
      dateCell(worker.spawnedAt),
    ),
  );
  if (!rows.length) rows.push(el('tr', {}, el('td', { className: 'empty', attrs: { colspan: 5 } }, 'No worker is running a long attempt.')));
  $('workers').replaceChildren(...rows);
}

function renderBatch(batch, summary, now) {
  state.batch = batch;
  $('batch-id').textContent = batch.batchId;
  $('batch-status').replaceChildren(badge(batch.status));
  $('batch-error').hidden = !batch.error;
  $('batch-error').textContent = batch.error ?? '';
  pairs($('batch-detail'), [
    ['Progress', progressBar(batch)],
    ['Tasks', `${number(batch.completedTasks)} succeeded, ${number(batch.failedTasks)} failed, ${number(batch.totalTasks)} in all`],
    ['Created', dateTime(batch.createdAt)],
    ['Started', dateTime(batch.startedAt)],
    ['Finished', dateTime(batch.completedAt)],
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
      cell(el('a', { href: taskHref(state.selected, result.taskId), className: 'mono', title: 'show this task' }, result.taskId), 'task'),
      cell(badge(result.success ? 'ok' : 'failed')),
      cell(el('span', { className: 'value mono', title: text }, text), result.success ? 'result' : 'error'),
      cell(number(result.attempts), 'num'),
      cell(duration(result.duration), 'num'),
      cell(result.workerId, 'mono'),
      dateCell(result.timestamp),
    );
  });
  const narrowed = state.filter || state.prefix;
  if (!rows.length) {
    const text = !narrowed ? 'No results recorded yet.' : page.nextCursor ? 'No match on this page: the filter read part of the batch; go on with Next.' : 'No result matches.';
    rows.push(el('tr', {}, el('td', { className: 'empty', attrs: { colspan: 7 } }, text)));
  }
  $('results').replaceChildren(...rows);
  state.nextCursor = page.nextCursor;
  $('prev-page').disabled = state.pageIndex === 0;
  $('next-page').disabled = !page.nextCursor;
  $('page-label').textContent = `page ${state.pageIndex + 1}${narrowed ? ' (filtered)' : ''}`;
}

function renderTask(detail) {
  const { task, result } = detail;
  $('task-id').textContent = detail.taskId;
  $('task-status').replaceChildren(badge(result ? (result.success ? 'ok' : 'failed') : 'pending'));
  $('task-error').hidden = true;
  pairs($('task-detail'), [
    ['Task id', el('span', { className: 'mono' }, detail.taskId)],
    ['Batch id', el('span', { className: 'mono' }, detail.batchId)],
    ['Type', task ? task.type : '– (no longer in the tasks file)'],
    ['Priority', task?.priority ?? 0],
    ['Timeout', task?.timeout === undefined ? 'the fleet\'s' : duration(task.timeout)],
    ['Attempts', number(result?.attempts)],
    ['Duration', duration(result?.duration)],
    ['Worker', el('span', { className: 'mono' }, result?.workerId ?? '–')],
    ['Recorded', dateTime(result?.timestamp)],
  ]);
  $('task-input').textContent = task ? JSON.stringify(task.data ?? null, null, 2) : '–';
  $('task-output').textContent = !result ? 'no result yet' : result.success ? JSON.stringify(result.result ?? null, null, 2) : (result.error ?? '');
  const rows = detail.failedAttempts.map((attempt) =>
    el(
      'tr',
      { data: { retry: attempt.retry } },
      cell(number(attempt.retry), 'num'),
      cell(el('span', { className: 'value mono', title: attempt.error ?? '' }, attempt.error ?? ''), 'error'),
      cell(number(attempt.attempts), 'num'),
      cell(duration(attempt.duration), 'num'),
      cell(attempt.workerId, 'mono'),
      dateCell(attempt.timestamp),
    ),
  );
  if (!rows.length) rows.push(el('tr', {}, el('td', { className: 'empty', attrs: { colspan: 6 } }, 'None: this task was never retried by retry-failed.')));
  $('task-attempts').replaceChildren(...rows);
}

/** Bars of tasks finished per minute: succeeded below, failed stacked on top; a minute not observed is a grey stub. */
function renderTimeline(timeline) {
  const svg = $('timeline-chart');
  const width = 600;
  const height = 140;
  const top = 12;
  const bottom = 14;
  const buckets = timeline.buckets;
  const peak = Math.max(1, ...buckets.map((b) => (b.succeeded ?? 0) + (b.failed ?? 0)));
  const slot = width / Math.max(1, buckets.length);
  const scale = (height - top - bottom) / peak;
  const node = (tag, attrs, text) => {
    const n = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) n.setAttribute(name, String(value));
    if (text !== undefined) n.textContent = text;
    return n;
  };
  const base = height - bottom;
  const children = [node('line', { class: 'axis', x1: 0, y1: base, x2: width, y2: base })];
  let succeeded = 0;
  let failed = 0;
  buckets.forEach((bucket, i) => {
    const x = i * slot + 1;
    const w = Math.max(1, slot - 2);
    const at = new Date(bucket.start);
    const label = `${pad(at.getHours())}:${pad(at.getMinutes())}`;
    const group = node('g', {
      'data-start': bucket.start,
      'data-succeeded': bucket.succeeded ?? '',
      'data-failed': bucket.failed ?? '',
    });
    if (bucket.succeeded === null || bucket.failed === null) {
      group.append(node('rect', { class: 'gap', x, y: base - 2, width: w, height: 2 }, undefined), node('title', {}, `${label}: not observed`));
    } else {
      succeeded += bucket.succeeded;
      failed += bucket.failed;
      const okHeight = bucket.succeeded * scale;
      const failedHeight = bucket.failed * scale;
      group.append(
        node('rect', { class: 'ok', x, y: base - okHeight, width: w, height: okHeight }),
        node('rect', { class: 'failed', x, y: base - okHeight - failedHeight, width: w, height: failedHeight }),
        node('title', {}, `${label}: ${bucket.succeeded} succeeded, ${bucket.failed} failed`),
      );
    }
    children.push(group);
    if (i % 10 === 0 || i === buckets.length - 1) children.push(node('text', { x: Math.min(x, width - 28), y: height - 2 }, label));
  });
  children.push(node('text', { x: 2, y: 10 }, `${number(peak)} / min`));
  svg.replaceChildren(...children);
  $('timeline-total').textContent = `${number(succeeded)} succeeded, ${number(failed)} failed in the last ${buckets.length} minutes`;
  $('timeline-total').dataset.succeeded = String(succeeded);
  $('timeline-total').dataset.failed = String(failed);
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
  const key = `${batchId} ${cursor} ${batch.status} ${batch.completedTasks} ${batch.failedTasks} ${state.filter} ${state.prefix}`;
  const stale = RUNNING.has(batch.status) || state.resultsKey !== key;
  const query = new URLSearchParams({ limit: String(RESULTS_PAGE) });
  if (cursor) query.set('cursor', cursor);
  if (state.filter) query.set('status', state.filter);
  if (state.prefix) query.set('taskIdPrefix', state.prefix);
  const taskId = state.task;
  const taskKey = `${batchId} ${taskId} ${batch.status} ${batch.completedTasks} ${batch.failedTasks}`;
  const [summary, page, task] = await Promise.all([
    stale || !state.summary ? api(`${base}/summary`) : state.summary,
    // A search the API refuses (400) is shown, not retried as an outage.
    stale ? api(`${base}/results?${query}`).catch((error) => (error instanceof ApiError && error.status === 400 ? { results: [], nextCursor: null, refused: error.message } : Promise.reject(error))) : null,
    taskId !== null && state.taskKey !== taskKey ? api(`${base}/tasks/${encodeURIComponent(taskId)}`).catch((error) => error) : null,
  ]);
  if (state.selected !== batchId) return; // the user moved on meanwhile
  state.summary = summary;
  renderBatch(batch, summary, now);
  if (page) {
    renderResults(page);
    if (page.refused) showMessage('action', `Refused: ${page.refused}`);
    state.resultsKey = key;
  }
  if (task && state.task === taskId) {
    state.taskKey = taskKey;
    if (task instanceof ApiError) {
      $('task-id').textContent = taskId;
      $('task-status').replaceChildren();
      $('task-error').hidden = false;
      $('task-error').textContent = task.status === 404 ? `No task ${taskId} in this batch.` : task.message;
      $('task-detail').replaceChildren();
      $('task-input').textContent = '';
      $('task-output').textContent = '';
      $('task-attempts').replaceChildren();
    } else if (task instanceof Error) {
      throw task;
    } else {
      renderTask(task);
    }
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
  // The timeline changes by the minute: read it every few polls (each read may write the minute's snapshot).
  const timelineDue = Date.now() - state.timelineAt >= TIMELINE_EVERY_MS;
  const [batches, stats, workers, config, timeline] = await Promise.all([
    listBatches(),
    api('/stats'),
    api('/workers'),
    api('/config'),
    timelineDue ? api('/stats/timeline') : null,
    loadSelected(Date.now()),
  ]);
  const now = Date.now();
  renderBatches(batches, now);
  renderStats(stats);
  renderWorkers(workers.workers, now);
  renderConfig(config);
  if (timeline) {
    state.timelineAt = now;
    renderTimeline(timeline);
  }
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

// ---------------------------------------------------------------- actions
// Every change to the fleet is confirmed first, in a modal dialog of the
// page's own (not window.confirm, which a browser may suppress), and its
// outcome is shown: the API's own message when it refuses.

/** Resolves true when the user confirms `message`, false when they back out (Cancel, Escape). */
function confirmAction(message, label) {
  const dialog = $('confirm');
  $('confirm-message').textContent = message;
  $('confirm-ok').textContent = label;
  return new Promise((resolve) => {
    const done = (answer) => {
      $('confirm-ok').removeEventListener('click', ok);
      $('confirm-cancel').removeEventListener('click', cancel);
      dialog.removeEventListener('cancel', cancel);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const ok = () => done(true);
    const cancel = (event) => {
      event.preventDefault();
      done(false);
    };
    $('confirm-ok').addEventListener('click', ok);
    $('confirm-cancel').addEventListener('click', cancel);
    dialog.addEventListener('cancel', cancel);
    dialog.showModal();
    $('confirm-cancel').focus();
  });
}

/**
 * Confirms, calls the API, and shows what came of it in `panel`'s notice or
 * error line: `done(answer)` words a success, or throws to word a refusal
 * the API answered with 200. Resolves with the answer, or undefined when it
 * was refused or backed out of.
 */
async function act(panel, button, { message, label, method, path, body, done }) {
  if (!(await confirmAction(message, label))) return undefined;
  button.disabled = true;
  showMessage(panel, null);
  try {
    const answer = await api(path, { method, ...(body !== undefined ? { body } : {}) });
    showMessage(panel, done(answer), 'notice');
    return answer;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      askForToken('That token was refused.');
      return undefined;
    }
    showMessage(panel, error instanceof ApiError ? `Refused (HTTP ${error.status}, ${error.code}): ${error.message}` : `Failed: ${error.message}`);
    return undefined;
  } finally {
    button.disabled = false;
    refresh();
  }
}

const selectedPath = (suffix = '') => `/batches/${encodeURIComponent(state.selected)}${suffix}`;

$('cancel-batch').addEventListener('click', async () => {
  const batchId = state.selected;
  if (batchId === null) return;
  await act('action', $('cancel-batch'), {
    message: `Cancel batch ${batchId}? No new task of it starts; running tasks finish and are recorded.`,
    label: 'Cancel batch',
    method: 'POST',
    path: selectedPath('/cancel'),
    // The API answers 200 {cancelled: false} for a batch that had already finished: that is a refusal too.
    done: (answer) => {
      if (!answer.cancelled) throw new ApiError(200, 'not_cancelled', `batch ${batchId} was not cancelled: it had already finished`);
      return `Cancelled batch ${batchId}.`;
    },
  });
});

$('retry-batch').addEventListener('click', async () => {
  const batchId = state.selected;
  if (batchId === null) return;
  const failed = state.batch ? state.batch.totalTasks - state.batch.completedTasks : null;
  await act('action', $('retry-batch'), {
    message: `Run the failed tasks of batch ${batchId} again${failed !== null ? ` (${number(failed)} without a success)` : ''}? Their current failures move to each task's history.`,
    label: 'Retry failed tasks',
    method: 'POST',
    path: selectedPath('/retry-failed'),
    done: (answer) =>
      answer.mode === 'none'
        ? `Nothing to retry: every task of ${batchId} succeeded.`
        : `Retrying ${number(answer.retriedTasks)} task(s) of ${batchId} (${answer.mode === 'redrive' ? 'redriven' : `retry ${answer.retry}, execution ${answer.executionName}`}).`,
  });
});

$('delete-batch').addEventListener('click', async () => {
  const batchId = state.selected;
  if (batchId === null) return;
  const deleted = await act('action', $('delete-batch'), {
    message: `Delete batch ${batchId} now, with its results and tasks file? This cannot be undone.`,
    label: 'Delete batch',
    method: 'DELETE',
    path: selectedPath(),
    done: () => `Deleted batch ${batchId}.`,
  });
  if (deleted && state.selected === batchId) {
    history.pushState(null, '', location.pathname + location.search);
    selectFromHash();
    showMessage('config', `Deleted batch ${batchId}.`, 'notice');
  }
});

/** A form value as the API should see it: a number when it is one, else the text, so the API names what is wrong. */
function numeric(text) {
  const n = Number(text);
  return text.trim() !== '' && Number.isFinite(n) ? n : text;
}

$('scale-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const count = numeric($('scale-count').value);
  await act('config', $('scale-form').querySelector('button[type=submit]'), {
    message: `Set the fleet's maxConcurrentWorkers to ${JSON.stringify(count)}? Running batches follow at once.`,
    label: 'Scale',
    method: 'POST',
    path: '/workers/scale',
    body: { count },
    done: (answer) => `Scaled to ${number(answer.maxConcurrentWorkers)} workers (${number(answer.runningBatchesUpdated)} running batch(es) updated).`,
  });
});

const CONFIG_FIELDS = ['maxConcurrentWorkers', 'workerTimeout', 'retryFailedTasks', 'maxRetries', 'workerListing'];

function fillConfigForm() {
  const config = state.config ?? {};
  for (const name of CONFIG_FIELDS) {
    const input = $(`cfg-${name}`);
    if (input.type === 'checkbox') input.checked = Boolean(config[name]);
    else input.value = config[name] ?? '';
  }
}

$('edit-config').addEventListener('click', () => {
  fillConfigForm();
  $('config-form').hidden = false;
});
$('config-cancel').addEventListener('click', () => {
  $('config-form').hidden = true;
});
$('config-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const current = state.config ?? {};
  const patch = {};
  for (const name of CONFIG_FIELDS) {
    const input = $(`cfg-${name}`);
    const value = input.type === 'checkbox' ? input.checked : input.tagName === 'SELECT' ? input.value : numeric(input.value);
    if (value !== current[name]) patch[name] = value;
  }
  const changes = Object.entries(patch);
  if (!changes.length) {
    showMessage('config', 'Nothing changed.', 'notice');
    return;
  }
  const answer = await act('config', $('config-form').querySelector('button[type=submit]'), {
    message: `Change the fleet's config: ${changes.map(([name, value]) => `${name} ${JSON.stringify(current[name])} → ${JSON.stringify(value)}`).join(', ')}?`,
    label: 'Save config',
    method: 'PATCH',
    path: '/config',
    body: patch,
    done: () => `Saved: ${changes.map(([name]) => name).join(', ')}.`,
  });
  if (answer) {
    renderConfig(answer);
    $('config-form').hidden = true;
  }
});

// ---------------------------------------------------------------- finding tasks
$('result-filter').addEventListener('change', () => {
  state.filter = $('result-filter').value;
  resetResults();
  refresh();
});
// Narrows the results to ids starting with the text, and opens the task of exactly that id, if there is one.
$('results-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const batchId = state.selected;
  if (batchId === null) return;
  const text = $('task-search').value;
  state.filter = $('result-filter').value;
  state.prefix = text;
  resetResults();
  let exact = false;
  if (text) {
    try {
      await api(`/batches/${encodeURIComponent(batchId)}/tasks/${encodeURIComponent(text)}`);
      exact = true;
    } catch (error) {
      // 404: no task of exactly that id; 400: no task could have it. The narrowed list says the rest.
      if (!(error instanceof ApiError) || (error.status !== 404 && error.status !== 400)) showMessage('action', `Search failed: ${error.message}`);
    }
  }
  if (state.selected === batchId) {
    history.pushState(null, '', exact ? taskHref(batchId, text) : batchHref(batchId));
    selectFromHash();
  }
  refresh();
});
$('close-task').addEventListener('click', () => {
  if (state.selected === null) return;
  history.pushState(null, '', batchHref(state.selected));
  selectFromHash();
});

selectFromHash();
refresh();
