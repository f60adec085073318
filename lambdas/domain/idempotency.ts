/**
 * Idempotent submission: what identifies a key and a request body. Pure
 * functions; the claim itself is an IdempotencyStore's (ports.ts).
 */
import { createHash } from 'node:crypto';
import { stringifyJson } from './payload-size';
import type { FileSubmitRequest, SubmitRequest } from './schemas';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** The key as stored: a hash, so a key never appears in the table or its backups. */
export function hashIdempotencyKey(key: string): string {
  return sha256(key);
}

/**
 * JSON with object keys sorted at every level, so two bodies that differ
 * only in key order or whitespace are the same request. Only called on a
 * validated request, whose nesting is bounded (MAX_DATA_DEPTH).
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item === undefined ? null : item)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return stringifyJson(value) ?? 'null';
}

/**
 * The fingerprint compared when a key comes back: the validated request,
 * so a body that leaves `priority` out and one that sends its default 0 match.
 */
export function fingerprintSubmitRequest(request: SubmitRequest | FileSubmitRequest): string {
  if ('tasksFile' in request) return sha256(canonicalJson({ tasksFile: request.tasksFile, priority: request.priority }));
  return sha256(canonicalJson({ tasks: request.tasks, priority: request.priority }));
}
