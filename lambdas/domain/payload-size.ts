/**
 * Sizes as Lambda measures them. A synchronous invoke carries JSON both ways,
 * capped at 6 MB each (LIMITS.lambdaPayloadBytes), and what the API sends or
 * receives travels inside it as a JSON string: every quote, backslash and
 * control character is escaped there, so a body full of quotes grows by up
 * to a half (or far more for control characters) on its way to the handler.
 */

const encoder = new TextEncoder();

/** JSON.stringify's result, typed as it is at runtime: undefined for a value JSON cannot hold (undefined, a function, a symbol). */
export const stringifyJson = (value: unknown): string | undefined => JSON.stringify(value);

/** UTF-8 bytes of a string. */
export function utf8Bytes(text: string): number {
  return encoder.encode(text).length;
}

/** Bytes a string takes once escaped as a JSON string's contents (without its quotes). */
export function escapedStringBytes(text: string): number {
  return utf8Bytes(JSON.stringify(text)) - 2;
}

/**
 * Bytes a value's JSON takes inside another JSON string, e.g. one result in
 * the `body` of the API function's response.
 */
export function escapedJsonBytes(value: unknown): number {
  return escapedStringBytes(stringifyJson(value) ?? 'null');
}
