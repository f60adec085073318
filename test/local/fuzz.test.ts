/**
 * Bad input never hurts: over 10,000 generated requests (fast-check) against
 * the real local API. Malformed JSON, wrong types, huge strings, deep
 * nesting, unicode and lone surrogates, prototype-pollution keys, oversize
 * bodies, invalid ids in paths, forged and tampered cursors, random methods,
 * paths, query strings and headers.
 *
 * Every answer must be a 2xx, or a 4xx with `{"error": {"code", "message"}}`:
 * never a 5xx, never a dropped connection. Afterwards the stored data is what
 * it was, but for what accepted requests changed, and Object.prototype is clean.
 *
 * Most requests go through real HTTP (16 in flight); the rest call the API
 * function in-process through the local Lambda contract, which lets them
 * carry what an HTTP client cannot send (any unicode in headers and paths).
 * FUZZ_SEED reproduces a run; a failure prints the seed and the request.
 */
import * as http from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalFleet, type LocalFleet } from '../../infra/local/local-fleet';
import type { BatchStatus, FleetManagerConfig, TaskResult } from '../../lambdas/domain/types';
import { api, listAllBatches, readAllResults, waitForBatch } from './helpers';

const MAX_BODY_BYTES = 64 * 1024;
const MAX_TASKS = 20;
const IN_FLIGHT = 16;
const HTTP_RUNS = 320; // x 16 = 5,120 requests through HTTP
const IN_PROCESS_RUNS = 320; // x 16 = 5,120 requests through the API function
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Date.now() % 2 ** 31;

let fleet: LocalFleet | undefined;
let url = '';
let port = 0;
let apiArn = '';
let agent: http.Agent | undefined;

/** What the fleet holds before the fuzzing: it must hold the same after. */
interface Snapshot {
  batches: BatchStatus[];
  config: FleetManagerConfig;
  known: { status: BatchStatus; results: TaskResult[]; summary: unknown };
}
let before: Snapshot;
let knownBatchId = '';
/** Real cursors, to be replayed elsewhere and tampered with. */
const realCursors: string[] = [];

/** Changes the fuzzing was allowed to make: accepted submissions and config updates. */
const accepted = { batchIds: new Set<string>(), configs: [] as FleetManagerConfig[], counts: [] as number[] };
const sent = { http: 0, inProcess: 0 };
const statusCounts = new Map<number, number>();

// ------------------------------------------------------------ the requests

interface FuzzRequest {
  method: string;
  /** Path and query, as sent. */
  target: string;
  headers: Record<string, string>;
  body?: string;
  /** In-process only: send the body base64-encoded, as API Gateway does for binary media. */
  base64?: boolean;
}

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code));
const specialStrings = fc.constantFrom(
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '',
  ' ',
  '..',
  '../config',
  '%',
  '%00',
  '\u0000',
  '\u001f',
  '\u007f',
  'null',
  'undefined',
  'NaN',
  '-1',
  '1e309',
  '💥',
  'a\u0301',
  '\uFEFF',
  '\u202Eevil',
  'ＡＢＣ',
  '𝕏',
  '<script>alert(1)</script>',
  "' OR 1=1 --",
  '${jndi:ldap://x}',
  'BATCH#x#S00',
  'RESULT#x',
);
const weirdString = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.oneof(loneSurrogate, fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })), maxLength: 8 }) },
  { weight: 3, arbitrary: specialStrings },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 40_000 }).map((n) => 'x'.repeat(n)) },
);

/** Number texts, some of which JSON.stringify would never produce. */
const numberText = fc.oneof(
  fc.double().map((n) => JSON.stringify(n)),
  fc.integer().map(String),
  fc.constantFrom('0', '-0', '1e400', '-1e400', '1e-400', '0.1', '1.5', '123456789012345678901234567890', '9007199254740993', '1E3', '10000', '10001', '1000000'),
);
const scalarText = fc.oneof(
  numberText,
  weirdString.map((s) => JSON.stringify(s)),
  fc.constantFrom('true', 'false', 'null', '""', '[]', '{}'),
);
const keyText = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('__proto__', 'constructor', 'prototype', 'id', 'type', 'data', 'tasks', 'priority', 'timeout', 'count', 'maxRetries') },
  { weight: 2, arbitrary: weirdString },
);
/** JSON text built by hand, so `__proto__` keys really appear in it. */
const { jsonText } = fc.letrec<{ jsonText: string }>((tie) => ({
  jsonText: fc.oneof(
    { maxDepth: 4, depthSize: 'small' },
    scalarText,
    fc.array(tie('jsonText'), { maxLength: 4 }).map((items) => `[${items.join(',')}]`),
    fc.array(fc.tuple(keyText, tie('jsonText')), { maxLength: 4 }).map((entries) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
  ),
}));

const deepText = (depth: number, inner = '1') => fc.constantFrom('[', '{"a":').map((open) => `${open.repeat(depth)}${inner}${(open === '[' ? ']' : '}').repeat(depth)}`);
const depthArb = fc.constantFrom(30, 31, 32, 33, 64, 1_000, 10_000, 100_000);
const deepJson = depthArb.chain((depth) => deepText(depth));

/** A task: each field valid, absent or wrong; sometimes extra keys. */
const fieldText = (valid: fc.Arbitrary<string>) =>
  fc.oneof({ weight: 4, arbitrary: valid.map((v) => ({ v })) }, { weight: 1, arbitrary: fc.constant(undefined) }, { weight: 2, arbitrary: jsonText.map((v) => ({ v })) });
const taskText = fc
  .record({
    id: fieldText(fc.oneof(fc.nat(50).map((n) => JSON.stringify(`t${n}`)), weirdString.map((s) => JSON.stringify(s)))),
    type: fieldText(fc.oneof({ weight: 4, arbitrary: fc.constant('"echo"') }, { weight: 1, arbitrary: weirdString.map((s) => JSON.stringify(s)) })),
    data: fieldText(fc.oneof(jsonText, deepJson, fc.constant('{"__proto__":{"polluted":true}}'), fc.constant('{"constructor":{"prototype":{"polluted":true}}}'))),
    priority: fieldText(numberText),
    timeout: fieldText(numberText),
    extra: fc.option(fc.tuple(keyText, jsonText), { freq: 5 }),
  })
  .map(({ extra, ...fields }) => {
    const parts = Object.entries(fields).flatMap(([name, field]) => (field ? [`"${name}":${field.v}`] : []));
    if (extra) parts.push(`${JSON.stringify(extra[0])}:${extra[1]}`);
    return `{${parts.join(',')}}`;
  });
const submitBody = fc.oneof(
  { weight: 6, arbitrary: fc.array(taskText, { maxLength: 4 }).map((tasks) => `{"tasks":[${tasks.join(',')}]}`) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.array(taskText, { maxLength: 3 }), fc.option(numberText), fc.option(fc.tuple(keyText, jsonText)))
      .map(([tasks, priority, extra]) => `{"tasks":[${tasks.join(',')}]${priority === null ? '' : `,"priority":${priority}`}${extra ? `,${JSON.stringify(extra[0])}:${extra[1]}` : ''}}`),
  },
  // Valid on purpose, so accepted submissions (and Idempotency-Key repeats) happen too.
  { weight: 2, arbitrary: fc.nat(2).map((n) => JSON.stringify({ tasks: Array.from({ length: n + 1 }, (_, i) => ({ id: `ok-${i}`, type: 'echo', data: { i } })) })) },
  { weight: 1, arbitrary: fc.integer({ min: MAX_TASKS + 1, max: MAX_TASKS * 3 }).map((n) => JSON.stringify({ tasks: Array.from({ length: n }, (_, i) => ({ id: `${i}`, type: 'echo' })) })) },
  { weight: 1, arbitrary: depthArb.chain((depth) => deepText(depth, '{"id":"d","type":"echo"}')).map((tasks) => `{"tasks":[${tasks}]}`) },
  { weight: 1, arbitrary: depthArb.chain((depth) => deepText(depth)).map((deep) => `{"tasks":[{"id":"d","type":"echo","data":${deep}}]}`) },
  { weight: 1, arbitrary: deepJson },
);
const configBody = fc.oneof(
  fc
    .array(fc.tuple(fc.oneof(fc.constantFrom('maxConcurrentWorkers', 'workerTimeout', 'retryFailedTasks', 'maxRetries'), keyText), fc.oneof(scalarText, jsonText)), { maxLength: 3 })
    .map((entries) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
  fc.constant('{"__proto__":{"maxRetries":10}}'),
  fc.constant('{"constructor":{"prototype":{"polluted":true}}}'),
);
const scaleBody = fc.oneof(scalarText.map((count) => `{"count":${count}}`), jsonText);
const malformedBody = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 60 }),
  jsonText.chain((text) => fc.nat(Math.max(0, text.length - 1)).map((cut) => text.slice(0, cut))),
  jsonText.chain((text) => fc.tuple(fc.nat(text.length), fc.constantFrom('{', '}', '"', ',', ':', '\\', '\u0000')).map(([at, ch]) => text.slice(0, at) + ch + text.slice(at))),
  fc.constantFrom('{"tasks":[', '\uFEFF{"tasks":[]}', "{'tasks': []}", '{"tasks":[],}', 'NaN', 'undefined', '{"a":1}{"b":2}', '\u0000', ' \n\t '),
  fc.integer({ min: MAX_BODY_BYTES - 16, max: MAX_BODY_BYTES + 4096 }).map((n) => `{"tasks":[{"id":"big","type":"echo","data":"${'y'.repeat(n)}"}]}`),
);
const anyBody = fc.oneof({ weight: 4, arbitrary: submitBody }, configBody, scaleBody, { weight: 2, arbitrary: malformedBody }, jsonText);

/** Ids for paths: the known batch, a valid unknown one, and invalid ones. */
const idArb = () =>
  fc.oneof(
    { weight: 2, arbitrary: fc.constant(knownBatchId) },
    fc.uuid(),
    fc.stringMatching(/^[A-Za-z0-9_-]{1,80}$/),
    fc.integer({ min: 81, max: 3000 }).map((n) => 'a'.repeat(n)),
    { weight: 2, arbitrary: weirdString },
  );

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url');
const cursorArb = () =>
  fc.oneof(
    { weight: 2, arbitrary: fc.constantFrom(...realCursors) },
    // tampered: one character changed, cut short, or doubled
    fc.tuple(fc.constantFrom(...realCursors), fc.nat(), fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 })).map(([c, at, ch]) => c.slice(0, at % c.length) + ch + c.slice((at % c.length) + 1)),
    fc.tuple(fc.constantFrom(...realCursors), fc.nat()).map(([c, at]) => c.slice(0, at % c.length)),
    fc.constantFrom(...realCursors).map((c) => c + c),
    // forged: well-formed positions anywhere, with oversize and hostile keys
    fc.record({ s: fc.oneof(fc.integer({ min: -2, max: 40 }), jsonText), k: fc.option(fc.oneof(weirdString, fc.integer({ min: 900, max: 1600 }).map((n) => 'k'.repeat(n)))) }).map((c) => b64(JSON.stringify(c))),
    fc.record({ sk: fc.oneof(weirdString, fc.constant('')), id: fc.oneof(weirdString, fc.constant(''), fc.uuid(), fc.integer({ min: 900, max: 1600 }).map((n) => 'i'.repeat(n))) }).map((c) => b64(JSON.stringify(c))),
    jsonText.map(b64),
    fc.constantFrom('%', '==', '!!!', 'null', b64('null'), b64('[]'), b64('{"__proto__":{"s":0}}'), b64('{"s":0,"k":"x","__proto__":{"admin":true}}')),
    fc.integer({ min: 1500, max: 5000 }).map((n) => 'A'.repeat(n)),
    weirdString,
  );

const enc = (text: string) => {
  // encodeURIComponent throws on a lone surrogate; encode the UTF-8 bytes (U+FFFD for one).
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-_.~]/.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
};

const limitArb = fc.oneof(fc.constantFrom('0', '1', '2', '1000', '1001', '-1', '1.5', '1e3', 'abc', '', ' 5', '٣', '9999999999', '0x10'), fc.nat().map(String));
const queryArb = () =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant('') },
    {
      weight: 3,
      arbitrary: fc
        .array(
          fc.oneof(
            limitArb.map((v) => `limit=${enc(v)}`),
            cursorArb().map((v) => `cursor=${enc(v)}`),
            fc.tuple(keyText, weirdString).map(([k, v]) => `${enc(k)}=${enc(v)}`),
          ),
          { minLength: 1, maxLength: 4 },
        )
        .map((pairs) => `?${pairs.join('&')}`),
    },
    fc.constantFrom('?limit', '?limit=', '?cursor=%', '?cursor=%ZZ', '?limit=1&limit=2', '?&&&', '?=x', '?%', '?__proto__=1&constructor=2'),
  );

const pathArb = () =>
  fc.oneof(
    fc.constantFrom('/batches', '/batches/', '/workers', '/workers/scale', '/stats', '/config', '/healthz', '/', '//batches', '/batches//x', '/BATCHES', '/batches/%2F', '/batches/..%2Fconfig', '/%2e%2e/config', '/batches/%', '/batches/%E0%A4%A', '/batches/%00', '/batches/%C0%AF', '//[', '//a:b@c/batches', '/batches/x/results/', '/config/..'),
    idArb().map((id) => `/batches/${enc(id)}`),
    fc.tuple(idArb(), fc.constantFrom('results', 'summary', 'cancel', '', 'x', 'results/extra', 'retry-failed')).map(([id, tail]) => `/batches/${enc(id)}/${tail}`),
    fc.array(weirdString.map(enc), { maxLength: 5 }).map((segments) => `/${segments.join('/')}`),
  );

const methodArb = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'PUT', 'HEAD', 'OPTIONS') },
  { weight: 1, arbitrary: fc.constantFrom('TRACE', 'PROPFIND', 'MKCOL', 'PURGE', 'LINK', 'SEARCH', 'QUERY', 'FOO', 'GETS', 'get') },
);

const contentTypeArb = fc.oneof(
  fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'text/plain',
    'application/octet-stream',
    'multipart/form-data; boundary=x',
    'application/x-www-form-urlencoded',
    'application/merge-patch+json',
    'image/png',
  ),
  fc.string({ unit: 'grapheme-ascii', maxLength: 30 }),
);
/** What a Node HTTP client can put in a header value: tab, printable ASCII and Latin-1. */
const latin1Value = fc.string({ unit: fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0xa0, max: 0xff })).map((c) => String.fromCharCode(c)), maxLength: 140 });
const idempotencyKeyArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('fuzz-key-1', 'fuzz-key-2', 'fuzz-key-3') },
  fc.constantFrom('', ' ', 'k'.repeat(128), 'k'.repeat(129), 'clé', '\u00a0'),
  latin1Value,
);
const headersArb = fc
  .record({
    'content-type': fc.option(contentTypeArb, { freq: 4 }),
    'idempotency-key': fc.option(idempotencyKeyArb, { freq: 2 }),
    authorization: fc.option(fc.constantFrom('Bearer x', 'Basic Zm9vOmJhcg==', ''), { freq: 6 }),
    'x-fuzz': fc.option(latin1Value, { freq: 4 }),
    'content-encoding': fc.option(fc.constantFrom('gzip', 'br', 'identity'), { freq: 8 }),
  })
  .map((headers) => Object.fromEntries(Object.entries(headers).filter((entry): entry is [string, string] => entry[1] !== null)));

const jsonHeaders = headersArb.chain((headers) =>
  fc.option(fc.constantFrom('application/json', 'application/json; charset=utf-8'), { freq: 3 }).map((type) => (type === null ? headers : { ...headers, 'content-type': type })),
);
const mostly = (likely: string) => fc.oneof({ weight: 9, arbitrary: fc.constant(likely) }, methodArb);

/** Requests aimed at each route, with the rest left to chance. */
const scenarios = () => [
  // submitBatch: the body and the Idempotency-Key are what vary
  { weight: 8, arbitrary: fc.record({ method: mostly('POST'), path: fc.constantFrom('/batches', '/batches/'), query: fc.constant(''), headers: jsonHeaders, body: fc.oneof({ weight: 3, arbitrary: submitBody }, malformedBody) }) },
  { weight: 2, arbitrary: fc.record({ method: mostly('PATCH'), path: fc.constant('/config'), query: fc.constant(''), headers: jsonHeaders, body: fc.oneof(configBody, malformedBody) }) },
  { weight: 1, arbitrary: fc.record({ method: mostly('POST'), path: fc.constant('/workers/scale'), query: fc.constant(''), headers: jsonHeaders, body: fc.oneof(scaleBody, malformedBody) }) },
  // reads: ids, limits and cursors
  {
    weight: 4,
    arbitrary: fc.record({
      method: mostly('GET'),
      path: fc.oneof(fc.constant('/batches'), idArb().chain((id) => fc.constantFrom('', '/results', '/summary').map((tail) => `/batches/${enc(id)}${tail}`))),
      query: queryArb(),
      headers: headersArb,
      body: fc.constant(null),
    }),
  },
  // cancel and delete on odd ids
  {
    weight: 1,
    arbitrary: fc.record({
      method: fc.constantFrom('POST', 'DELETE'),
      path: idArb().chain((id) => fc.constantFrom('', '/cancel').map((tail) => `/batches/${enc(id)}${tail}`)),
      query: queryArb(),
      headers: headersArb,
      body: fc.option(anyBody, { freq: 3 }),
    }),
  },
  // anything at all
  { weight: 4, arbitrary: fc.record({ method: methodArb, path: pathArb(), query: queryArb(), headers: headersArb, body: fc.option(anyBody, { freq: 4 }) }) },
];

const httpRequestArb = (): fc.Arbitrary<FuzzRequest> =>
  fc.oneof(...scenarios()).map(({ method, path, query, headers, body }) => {
    return { method, target: spareKnownBatch(method, path + query), headers, ...(body === null || method === 'GET' || method === 'HEAD' ? {} : { body }) };
  });

/**
 * The known batch must stay as it is, so requests that could rightly change
 * it (DELETE, retry-failed, any method but a read) aim at a valid id that
 * exists nowhere instead. Reads of it are left alone.
 */
const spareKnownBatch = (method: string, target: string) =>
  !['GET', 'HEAD'].includes(method.toUpperCase()) && target.includes(knownBatchId) ? target.replaceAll(knownBatchId, 'no-such-batch') : target;

/** In-process: anything in the path, headers and body, since no HTTP client sits in between. */
const inProcessRequestArb = (): fc.Arbitrary<FuzzRequest> =>
  fc
    .record({
      http: httpRequestArb(),
      rawPath: fc.option(weirdString.map((s) => `/batches/${s}`), { freq: 4 }),
      method: fc.option(fc.oneof(fc.constantFrom('get', 'post', 'Patch', 'delete'), weirdString), { freq: 6 }),
      key: fc.option(weirdString, { freq: 3 }),
      base64: fc.boolean(),
      bodyExtra: fc.option(fc.string({ unit: fc.oneof(loneSurrogate, fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })), maxLength: 20 }), { freq: 3 }),
    })
    .map(({ http: request, rawPath, method, key, base64, bodyExtra }) => ({
      ...request,
      method: method ?? request.method,
      target: spareKnownBatch(method ?? request.method, rawPath ?? request.target),
      headers: key === null ? request.headers : { ...request.headers, 'idempotency-key': key },
      ...(bodyExtra !== null && request.body !== undefined ? { body: `{"tasks":[{"id":${JSON.stringify(bodyExtra)},"type":"echo","data":${JSON.stringify(bodyExtra)}}]}` } : {}),
      base64,
    }));

// ------------------------------------------------------------ sending and checking

interface Answer {
  status: number;
  text: string;
  contentType: string;
}

function sendHttp(request: FuzzRequest): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: request.method, path: request.target, headers: request.headers, agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), contentType: res.headers['content-type'] ?? '' }); });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(request.body);
  });
}

async function sendInProcess(request: FuzzRequest): Promise<Answer> {
  const [rawPath = '/', rawQuery = ''] = request.target.split(/\?(.*)/s);
  const query: Record<string, string> = {};
  for (const pair of rawQuery.split('&')) {
    if (!pair) continue;
    const [name = '', value = ''] = pair.split(/=(.*)/s);
    const decode = (part: string) => {
      try {
        return decodeURIComponent(part);
      } catch {
        return part;
      }
    };
    query[decode(name)] = decode(value);
  }
  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString: rawQuery,
    headers: request.headers,
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: '000000000000',
      apiId: 'fuzz',
      domainName: 'localhost',
      domainPrefix: 'fuzz',
      http: { method: request.method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'fuzz' },
      requestId: 'fuzz',
      routeKey: '$default',
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    ...(request.body !== undefined ? { body: request.base64 ? Buffer.from(request.body, 'utf8').toString('base64') : request.body } : {}),
    isBase64Encoded: Boolean(request.base64 && request.body !== undefined),
  };
  const result = (await fleet?.lambda.invokeFunction(apiArn, event)) as APIGatewayProxyStructuredResultV2;
  return { status: result.statusCode ?? 0, text: result.body ?? '', contentType: String(result.headers?.['content-type'] ?? '') };
}

const short = (text: string, max = 300) => (text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text);
const describeRequest = (r: FuzzRequest) =>
  `${r.method} ${short(JSON.stringify(r.target), 200)} headers=${short(JSON.stringify(r.headers), 200)} body=${r.body === undefined ? '-' : short(JSON.stringify(r.body))}${r.base64 ? ' (base64)' : ''}`;

/** Checks one answer; returns what is wrong with it, or undefined. Also records accepted changes. */
function check(request: FuzzRequest, answer: Answer): string | undefined {
  statusCounts.set(answer.status, (statusCounts.get(answer.status) ?? 0) + 1);
  const ok = (answer.status >= 200 && answer.status < 300) || (answer.status >= 400 && answer.status < 500);
  if (!ok) return `status ${answer.status}: ${short(answer.text)}`;
  if (request.method.toUpperCase() === 'HEAD') return undefined; // no body on HEAD
  // The local dashboard's page and script, served before the API.
  if (answer.status === 200 && request.method.toUpperCase() === 'GET' && /^text\/(html|javascript)/.test(answer.contentType)) return undefined;
  if (!answer.contentType.startsWith("application/json")) return `status ${answer.status}, content-type ${answer.contentType}: ${short(answer.text)}`;
  let body: unknown;
  try {
    body = JSON.parse(answer.text);
  } catch {
    return `body is not JSON: ${short(answer.text)}`;
  }
  if (answer.status >= 400) {
    const error = (body as { error?: { code?: unknown; message?: unknown; field?: unknown } }).error;
    if (!error || typeof error.code !== 'string' || !error.code || typeof error.message !== 'string' || !error.message) {
      return `4xx without {"error":{"code","message"}}: ${short(answer.text)}`;
    }
    const extra = Object.keys(body as object).filter((k) => k !== 'error');
    const extraInError = Object.keys(error).filter((k) => !['code', 'message', 'field'].includes(k));
    if (extra.length || extraInError.length) return `error envelope has extra keys ${[...extra, ...extraInError].join(', ')}`;
    if (/\n\s+at |node_modules|ConditionalCheckFailed|dynamodb/i.test(error.message)) return `error message leaks internals: ${short(error.message)}`;
    return undefined;
  }
  // Known by the answer's shape, not the path: the server resolves dot segments, %2e and trailing slashes.
  const method = request.method.toUpperCase();
  const fields = typeof body === 'object' && body !== null ? body : {};
  if (method === 'POST' && 'batchId' in fields && 'totalTasks' in fields) accepted.batchIds.add((body as BatchStatus).batchId);
  if (method === 'PATCH' && 'workerTimeout' in fields) accepted.configs.push(body as FleetManagerConfig);
  if (method === 'POST' && 'runningBatchesUpdated' in fields) accepted.counts.push((body as { maxConcurrentWorkers: number }).maxConcurrentWorkers);
  return undefined;
}

async function runGroup(requests: FuzzRequest[], send: (r: FuzzRequest) => Promise<Answer>): Promise<void> {
  const problems: string[] = [];
  await Promise.all(
    requests.map(async (request) => {
      let answer: Answer;
      try {
        answer = await send(request);
      } catch (error) {
        problems.push(`${describeRequest(request)}\n  → no answer: ${String(error)}`);
        return;
      }
      const problem = check(request, answer);
      if (problem) problems.push(`${describeRequest(request)}\n  → ${problem}`);
    }),
  );
  if (problems.length) throw new Error(problems.join('\n'));
}

/** Runs a property and fails with the seed and the offending requests only (fast-check would print 16 whole requests). */
async function fuzz(arb: fc.Arbitrary<FuzzRequest>, runs: number, send: (r: FuzzRequest) => Promise<Answer>, seedOffset: number): Promise<void> {
  const details = await fc.check(
    fc.asyncProperty(fc.array(arb, { minLength: IN_FLIGHT, maxLength: IN_FLIGHT }), (requests) => runGroup(requests, send)),
    { numRuns: runs, seed: SEED + seedOffset, endOnFailure: true },
  );
  if (details.failed) {
    const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    throw new Error(`fuzzing failed (FUZZ_SEED=${SEED}, run ${details.numRuns}):\n${short(error, 6000)}`);
  }
}

async function snapshot(): Promise<Snapshot> {
  const config = await api<FleetManagerConfig>(url, 'GET', '/config');
  const status = await api<BatchStatus>(url, 'GET', `/batches/${knownBatchId}`);
  const summary = await api(url, 'GET', `/batches/${knownBatchId}/summary`);
  const { results } = await readAllResults(url, knownBatchId, 2);
  const { batches } = await listAllBatches(url);
  return {
    batches: batches.filter((b) => !accepted.batchIds.has(b.batchId)),
    config: config.body,
    known: { status: status.body, results: [...results].sort((a, b) => a.taskId.localeCompare(b.taskId)), summary: summary.body },
  };
}

// ------------------------------------------------------------ the test

beforeAll(async () => {
  // The API function reads its body limit at load: small, so oversize bodies stay cheap to send.
  process.env.FLEET_MAX_BODY_BYTES = String(MAX_BODY_BYTES);
  fleet = await startLocalFleet({ port: 0, inMemory: true, retryUnitMs: 1, maxBodyBytes: MAX_BODY_BYTES, maxTasksPerBatch: MAX_TASKS });
  url = fleet.url;
  port = Number(new URL(url).port);
  apiArn = fleet.resources.functions.find((fn) => fn.entry === 'lambdas/api.ts')?.arn ?? '';
  agent = new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT });

  // A finished batch whose data must come through untouched, unicode included.
  const tasks = [
    { id: 'plain', type: 'echo', data: { n: 1 } },
    { id: 'ünïcödé-✓', type: 'echo', data: { text: 'héllo wörld 💥 𝕏 ＡＢＣ a\u0301', rtl: '\u202Eevil' } },
    { id: 'keys', type: 'echo', data: { constructor: { prototype: { polluted: true } }, prototype: 1, toString: 'x' } },
    { id: 'nested', type: 'echo', data: JSON.parse(`${'['.repeat(31)}1${']'.repeat(31)}`) as unknown },
    { id: 'fails', type: 'fail', data: { message: 'on purpose' } },
  ];
  const submitted = await api<BatchStatus>(url, 'POST', '/batches', { tasks });
  expect(submitted.status, submitted.text).toBe(202);
  knownBatchId = submitted.body.batchId;
  await waitForBatch(url, knownBatchId, 60_000);
  const page = await api<{ nextCursor: string | null }>(url, 'GET', `/batches/${knownBatchId}/results?limit=1`);
  const page2 = await api<{ nextCursor: string | null }>(url, 'GET', `/batches/${knownBatchId}/results?limit=3`);
  // Two more batches, so GET /batches pages too.
  for (let i = 0; i < 2; i++) {
    const other = await api<BatchStatus>(url, 'POST', '/batches', { tasks: [{ id: `other-${i}`, type: 'echo', data: i }] });
    await waitForBatch(url, other.body.batchId);
  }
  const list = await api<{ nextCursor: string | null }>(url, 'GET', '/batches?limit=1');
  realCursors.push(...[page.body.nextCursor, page2.body.nextCursor, list.body.nextCursor].filter((c): c is string => typeof c === 'string'));
  expect(realCursors).toHaveLength(3);
  const config = await api(url, 'PATCH', '/config', { maxConcurrentWorkers: 50 });
  expect(config.status, config.text).toBe(200);
  before = await snapshot();
  // The echoes came back as sent: nothing was lost on the way in or out.
  expect(before.known.results.find((r) => r.taskId === 'ünïcödé-✓')?.result).toEqual(tasks[1]?.data);
  expect(before.known.results.find((r) => r.taskId === 'keys')?.result).toEqual(tasks[2]?.data);
  expect(before.known.results.find((r) => r.taskId === 'nested')?.result).toEqual(tasks[3]?.data);
});

afterAll(async () => {
  agent?.destroy();
  await fleet?.close();
  delete process.env.FLEET_MAX_BODY_BYTES;
});

describe('the API under generated bad input', () => {
  it(`answers ${HTTP_RUNS * IN_FLIGHT} requests through HTTP with a 2xx or an enveloped 4xx, never a 5xx`, async () => {
    await fuzz(httpRequestArb(), HTTP_RUNS, async (request) => {
      sent.http++;
      return sendHttp(request);
    }, 0);
    expect(sent.http).toBeGreaterThanOrEqual(HTTP_RUNS * IN_FLIGHT);
  });

  it(`answers ${IN_PROCESS_RUNS * IN_FLIGHT} requests in-process (any unicode in paths, headers and bodies) the same way`, async () => {
    await fuzz(inProcessRequestArb(), IN_PROCESS_RUNS, async (request) => {
      sent.inProcess++;
      return sendInProcess(request);
    }, 1);
    expect(sent.inProcess).toBeGreaterThanOrEqual(IN_PROCESS_RUNS * IN_FLIGHT);
  });

  it('sent at least 10,000 requests in all, and saw both successes and rejections', () => {
    expect(sent.http + sent.inProcess).toBeGreaterThanOrEqual(10_000);
    const codes = [...statusCounts.keys()];
    expect(codes.some((c) => c >= 200 && c < 300)).toBe(true);
    for (const code of [400, 404, 405, 409, 413]) expect(statusCounts.get(code) ?? 0, `no ${code} seen: ${JSON.stringify([...statusCounts])}`).toBeGreaterThan(0);
  });

  it('left the stored data as it was, but for what accepted requests changed', async () => {
    const after = await snapshot();

    expect(after.known).toEqual(before.known);
    expect(after.batches).toEqual(before.batches);
    // The config is the one before, or what some accepted PATCH or scale set.
    for (const field of Object.keys(before.config) as (keyof FleetManagerConfig)[]) {
      const allowed = new Set<unknown>([before.config[field], ...accepted.configs.map((c) => c[field])]);
      if (field === 'maxConcurrentWorkers') for (const count of accepted.counts) allowed.add(count);
      expect(allowed.has(after.config[field]), `config.${field} = ${String(after.config[field])}`).toBe(true);
    }
  });

  it('left Object.prototype unpolluted and the fleet serving', async () => {
    expect(Object.keys(Object.prototype)).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await api(url, 'GET', '/healthz')).status).toBe(200);
    const submitted = await api<BatchStatus>(url, 'POST', '/batches', { tasks: [{ id: 'after', type: 'echo', data: 'still here' }] });
    expect(submitted.status).toBe(202);
    expect((await waitForBatch(url, submitted.body.batchId, 60_000)).status).toBe('completed');
  });
});
