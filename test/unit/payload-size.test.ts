/**
 * Sizes as Lambda counts them (lambdas/domain/payload-size.ts): a synchronous
 * payload is serialized JSON, capped at 6 MB, and a body or a result travels
 * inside it as a JSON string, escaped.
 *
 * Pages:
 * - LAMBDA_QUOTAS: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
 * - PAYLOAD_V2: https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
 */
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../lambdas/domain/config';
import { escapedJsonBytes, escapedStringBytes, utf8Bytes } from '../../lambdas/domain/payload-size';

const LAMBDA_QUOTAS = 'https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html';
const PAYLOAD_V2 = 'https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html';

describe(`escaped sizes (${LAMBDA_QUOTAS}, ${PAYLOAD_V2})`, () => {
  it('counts UTF-8 bytes, not characters', () => {
    expect(utf8Bytes('é✓𝕏')).toBe(2 + 3 + 4);
  });

  it('a string grows by its escapes: a quote or backslash doubles, a control character takes six bytes', () => {
    expect(escapedStringBytes('plain')).toBe(5);
    expect(escapedStringBytes('"\\')).toBe(4);
    expect(escapedStringBytes('\u0001')).toBe(6);
    expect(escapedStringBytes('\n')).toBe(2);
    // The exact size the event gives the string, between its quotes.
    const body = JSON.stringify({ data: '"'.repeat(100) });
    expect(escapedStringBytes(body)).toBe(Buffer.byteLength(JSON.stringify({ body })) - Buffer.byteLength('{"body":""}'));
  });

  it('a value escapes twice: once as JSON, once inside the string that carries it', () => {
    expect(escapedJsonBytes({ q: '"' })).toBe(Buffer.byteLength(JSON.stringify(JSON.stringify({ q: '"' }))) - 2);
    expect(escapedJsonBytes('"')).toBe(8);
  });

  it('the limits: 6 MB for Lambda, and Fleet\'s own body and page budgets below it', () => {
    expect(LIMITS.lambdaPayloadBytes).toBe(6_291_456);
    expect(LIMITS.bodyInPayloadBytes).toBeLessThan(LIMITS.lambdaPayloadBytes);
    expect(LIMITS.bodyBytes).toBeLessThanOrEqual(LIMITS.bodyInPayloadBytes);
  });
});
