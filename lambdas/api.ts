/**
 * API Lambda behind the HTTP API's $default route: routes requests to
 * FleetService and maps errors to HTTP in one place.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { apiEnv, apiService, storageHealth } from './composition-root/api';
import { count, countFinishedBatch, instrumented, logger } from './adapters/observability';
import { LIMITS } from './domain/config';
import { FleetClientError, MethodNotAllowedError, NotFoundError, PayloadTooLargeError, ValidationError } from './domain/errors';
import { FLEET_METRICS } from './domain/metrics';
import { escapedStringBytes } from './domain/payload-size';
import { parseBatchId, parseIdempotencyKey, parseLimit, parseResultStatus, parseTaskIdParam, parseTaskIdPrefix } from './domain/schemas';
import { parseTimelineMinutes } from './domain/timeline';

// Built at cold start, so a misconfigured environment fails there, naming the variable.
const env = apiEnv();
const service = apiService();
const storage = storageHealth();

type Result = APIGatewayProxyStructuredResultV2;

const json = (statusCode: number, body: unknown): Result => ({
  statusCode,
  headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
  body: JSON.stringify(body),
});

const errorBody = (code: string, message: string, field?: string) => ({ error: { code, message, ...(field ? { field } : {}) } });

function readJsonBody(event: APIGatewayProxyEventV2): unknown {
  const raw = event.body ?? '';
  // Measured as the event carries it (escaped, or base64), since that is what
  // counts against Lambda's 6 MB: a body that fits raw may not fit escaped.
  const size = escapedStringBytes(raw);
  if (size > env.FLEET_MAX_BODY_BYTES) {
    throw new PayloadTooLargeError(
      `body is larger than ${env.FLEET_MAX_BODY_BYTES} bytes as the API event carries it (${size} bytes once JSON-escaped${event.isBase64Encoded ? ' and base64-encoded' : ''}); ` +
        `Lambda's synchronous payload limit is ${LIMITS.lambdaPayloadBytes} bytes for the whole event`,
    );
  }
  const text = event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  if (text.trim() === '') throw new ValidationError('body', 'is empty; send a JSON object');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ValidationError('body', 'is not valid JSON');
  }
}

type Handler = (event: APIGatewayProxyEventV2, params: string[]) => Promise<Result>;
interface Route {
  pattern: RegExp;
  methods: Record<string, Handler>;
}

const query = (event: APIGatewayProxyEventV2, name: string) => event.queryStringParameters?.[name];
/** A request header, by its lower-cased name; an event built by hand may carry no headers at all. */
const header = (event: { headers?: APIGatewayProxyEventV2['headers'] }, name: string) => event.headers?.[name];

const routes: Route[] = [
  {
    pattern: /^\/healthz$/,
    methods: {
      // 503 names the dependency that is down; the reason itself stays in the log.
      GET: async () => {
        const health = await storage.check();
        if (health.reachable) return json(200, { ok: true });
        logger.warn('health check: the table is unreachable', { reason: health.reason });
        return json(503, {
          ok: false,
          unavailable: ['dynamodb'],
          ...errorBody('dependency_unavailable', 'the fleet cannot reach its storage (DynamoDB); batches and results cannot be read or written until it is back'),
        });
      },
    },
  },
  {
    pattern: /^\/batches$/,
    methods: {
      POST: async (event) => {
        // API Gateway lower-cases header names in payload format 2.0.
        const idempotencyKey = parseIdempotencyKey(header(event, 'idempotency-key'));
        if (idempotencyKey === undefined) {
          const status = await service.submitBatch(readJsonBody(event));
          count(FLEET_METRICS.batchesSubmitted);
          return json(202, status);
        }
        // 202 for the request that created the batch; 200 for a repeat, with the batch's status now.
        const { status, created } = await service.submitBatchOnce(readJsonBody(event), idempotencyKey);
        if (created) count(FLEET_METRICS.batchesSubmitted);
        return json(created ? 202 : 200, status);
      },
      GET: async (event) => {
        const page = await service.listBatches(parseLimit(query(event, 'limit'), 50), query(event, 'cursor') || undefined);
        return json(200, { batches: page.items, nextCursor: page.nextCursor });
      },
    },
  },
  {
    // Before /batches/{id}: "uploads" is not a batch id here.
    pattern: /^\/batches\/uploads$/,
    methods: { POST: async () => json(201, await service.createUpload()) },
  },
  {
    pattern: /^\/batches\/([^/]+)$/,
    methods: {
      GET: async (_event, [id]) => json(200, await service.getBatchStatus(parseBatchId(id))),
      DELETE: async (_event, [id]) => {
        await service.deleteBatch(parseBatchId(id));
        return json(200, { deleted: true });
      },
    },
  },
  {
    pattern: /^\/batches\/([^/]+)\/summary$/,
    methods: { GET: async (_event, [id]) => json(200, await service.getBatchSummary(parseBatchId(id))) },
  },
  {
    pattern: /^\/batches\/([^/]+)\/results$/,
    methods: {
      GET: async (event, [id]) => {
        const batchId = parseBatchId(id);
        const success = parseResultStatus(query(event, 'status'));
        const taskIdPrefix = parseTaskIdPrefix(query(event, 'taskIdPrefix'));
        const page = await service.getBatchResults(batchId, parseLimit(query(event, 'limit'), 100), query(event, 'cursor') || undefined, {
          ...(success !== undefined ? { success } : {}),
          ...(taskIdPrefix !== undefined ? { taskIdPrefix } : {}),
        });
        return json(200, { results: page.items, nextCursor: page.nextCursor });
      },
    },
  },
  {
    pattern: /^\/batches\/([^/]+)\/results\/export$/,
    methods: {
      // 200 with a URL once the file is built; 202 while it is (the first call starts it).
      GET: async (_event, [id]) => {
        const exported = await service.exportResults(parseBatchId(id));
        return json(exported.status === 'ready' ? 200 : 202, exported);
      },
    },
  },
  {
    // The task id is the rest of the path, percent-encoded: it may hold "/".
    pattern: /^\/batches\/([^/]+)\/tasks\/(.+)$/,
    methods: { GET: async (_event, [id, taskId]) => json(200, await service.getTask(parseBatchId(id), parseTaskIdParam(taskId, 'taskId'))) },
  },
  {
    pattern: /^\/batches\/([^/]+)\/retry-failed$/,
    methods: {
      // 202 when tasks run again (a new execution or a redrive); 200 when none had failed.
      POST: async (_event, [id]) => {
        const retried = await service.retryFailed(parseBatchId(id));
        return json(retried.mode === 'none' ? 200 : 202, retried);
      },
    },
  },
  {
    pattern: /^\/batches\/([^/]+)\/cancel$/,
    methods: {
      POST: async (_event, [id]) => {
        const cancelled = await service.cancelBatch(parseBatchId(id));
        // True only for the request that cancelled it; its execution is stopped, so finish never counts it.
        if (cancelled) countFinishedBatch('cancelled');
        return json(200, { cancelled });
      },
    },
  },
  {
    pattern: /^\/workers\/scale$/,
    methods: { POST: async (event) => json(200, await service.scaleWorkers(readJsonBody(event))) },
  },
  { pattern: /^\/workers$/, methods: { GET: async () => json(200, await service.getActiveWorkers()) } },
  { pattern: /^\/stats$/, methods: { GET: async () => json(200, await service.getStats()) } },
  { pattern: /^\/stats\/timeline$/, methods: { GET: async (event) => json(200, await service.getTimeline(parseTimelineMinutes(query(event, 'minutes')))) } },
  {
    pattern: /^\/config$/,
    methods: {
      GET: async () => json(200, await service.getConfig()),
      PATCH: async (event) => json(200, await service.updateConfig(readJsonBody(event))),
    },
  },
];

async function route(event: APIGatewayProxyEventV2): Promise<Result> {
  const method = event.requestContext.http.method.toUpperCase();
  const path = event.rawPath.length > 1 ? event.rawPath.replace(/\/+$/, '') : event.rawPath;
  for (const { pattern, methods } of routes) {
    const match = pattern.exec(path);
    if (!match) continue;
    const handler = methods[method];
    if (!handler) throw new MethodNotAllowedError(`${method} is not allowed on ${path}; use ${Object.keys(methods).join(', ')}`);
    const params = match.slice(1).map((part) => {
      try {
        return decodeURIComponent(part);
      } catch {
        throw new ValidationError('path', 'is not validly percent-encoded');
      }
    });
    // /batches/{id}/...: the request's log lines carry its batch id.
    if (path.startsWith('/batches/') && params[0] !== undefined) logger.appendKeys({ batchId: params[0] });
    return handler(event, params);
  }
  throw new NotFoundError(`no route for ${method} ${path}`);
}

// Keys come from the route (route()); metrics are flushed once per request.
export const handler = instrumented(async (event: APIGatewayProxyEventV2): Promise<Result> => {
  try {
    return await route(event);
  } catch (error) {
    if (error instanceof FleetClientError) {
      return json(error.status, errorBody(error.code, error.message, error instanceof ValidationError ? error.field : undefined));
    }
    // Never leak internals to a client; the log keeps them. The batch id is passed
    // here too: locally, concurrent requests share the logger's appended keys.
    const batchId = /^\/batches\/([^/]+)/.exec(event.rawPath)?.[1];
    const where = batchId === undefined ? {} : { batchId };
    if (error instanceof Error) logger.error('unhandled API error', { ...where, error });
    else logger.error('unhandled API error', { ...where, error: String(error) });
    return json(500, errorBody('internal_error', 'Fleet could not complete the request; it has been logged.'));
  }
}, () => ({}));
