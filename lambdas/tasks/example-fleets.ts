/**
 * The seed's two example fleets as task types Fleet ships, so the scripts in
 * examples/ run against any fleet:
 *
 * - `resize` (the ImageFleetManager): a STAND-IN transform. Fleet does not
 *   bundle an image library, and local mode has no network to fetch images
 *   from. It computes the target dimensions the resize would produce and a
 *   SHA-256 checksum naming the output; it touches no pixels.
 * - `process` (the DataFleetManager): reads records from a `data:` URL (the
 *   stand-in for a download), applies `clean` and `validate` in order, and
 *   returns the output as a `data:` URL with the count of records.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { TaskPermanentError } from '../domain/errors';
import type { TaskHandler } from '../domain/task-handler';

/** A stand-in source: every image is taken to be this size unless the URL says `?w=..&h=..`. */
const DEFAULT_SOURCE = { width: 1920, height: 1080 };

const imageTask = z.object({
  url: z.string().min(1),
  width: z.number().int().positive().max(16_384),
  /** Keep the aspect ratio unless given. */
  height: z.number().int().positive().max(16_384).optional(),
  format: z.enum(['jpeg', 'png', 'webp']).default('jpeg'),
});
export type ImageTask = z.input<typeof imageTask>;

export interface ProcessedImage {
  url: string;
  /** Where the stand-in says the output would be stored. */
  outputUrl: string;
  width: number;
  height: number;
  format: string;
  /** SHA-256 of the source URL and the output's parameters. */
  checksum: string;
  /** Always true: no pixels were touched. */
  standIn: true;
}

/** Reads a source size from the URL's `w` and `h` query parameters, if it has them. */
function sourceSize(url: string): { width: number; height: number } {
  try {
    const query = new URL(url).searchParams;
    const width = Number(query.get('w'));
    const height = Number(query.get('h'));
    if (Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0) return { width, height };
  } catch {
    // not a URL with a query: the default size
  }
  return DEFAULT_SOURCE;
}

function parse<T>(schema: z.ZodType<T>, type: string, data: unknown): T {
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new TaskPermanentError(`${type}: data.${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

/** Stand-in resize: target dimensions (aspect ratio kept, never upscaled) and a checksum. */
export const resize: TaskHandler<unknown, ProcessedImage> = (data) => {
  const task = parse(imageTask, 'resize', data);
  const source = sourceSize(task.url);
  const width = Math.min(task.width, source.width);
  const height = task.height ?? Math.max(1, Math.round((source.height * width) / source.width));
  const checksum = createHash('sha256').update(`${task.url}|${width}x${height}|${task.format}`).digest('hex');
  return {
    url: task.url,
    outputUrl: `memory://resized/${checksum.slice(0, 16)}.${task.format}`,
    width,
    height,
    format: task.format,
    checksum,
    standIn: true,
  };
};

const TRANSFORMATIONS = ['clean', 'validate'] as const;

const dataTask = z.object({
  sourceUrl: z.string().startsWith('data:', 'must be a data: URL (local examples have no network)'),
  transformations: z.array(z.enum(TRANSFORMATIONS)).default([]),
});
export type DataTask = z.input<typeof dataTask>;

export interface DataResult {
  outputUrl: string;
  recordsProcessed: number;
  /** Records `clean` dropped (empty ones). */
  recordsDropped: number;
}

/** What `validate` requires of each record. */
const recordSchema = z.object({
  id: z.union([z.string().min(1), z.number().int()]),
  name: z.string().min(1),
  email: z.email(),
});

/** Decodes a `data:` URL holding a JSON array of records (base64 or percent-encoded). */
function readDataUrl(url: string): unknown[] {
  const comma = url.indexOf(',');
  if (comma < 0) throw new TaskPermanentError('process: sourceUrl is not a valid data: URL');
  const meta = url.slice(5, comma);
  const payload = url.slice(comma + 1);
  let text: string;
  try {
    text = meta.endsWith(';base64') ? Buffer.from(payload, 'base64').toString('utf8') : decodeURIComponent(payload);
  } catch {
    throw new TaskPermanentError('process: sourceUrl cannot be decoded');
  }
  let records: unknown;
  try {
    records = JSON.parse(text) as unknown;
  } catch {
    throw new TaskPermanentError('process: source is not valid JSON');
  }
  if (!Array.isArray(records)) throw new TaskPermanentError('process: source must be a JSON array of records');
  return records as unknown[];
}

/** Trims every string field, then drops records left with no non-empty field. */
function clean(records: unknown[]): unknown[] {
  return records
    .map((record) => {
      if (record === null || typeof record !== 'object' || Array.isArray(record)) return record;
      const entries = Object.entries(record as Record<string, unknown>)
        .map(([key, value]) => [key, typeof value === 'string' ? value.trim() : value] as const)
        .filter(([, value]) => value !== '' && value !== null && value !== undefined);
      return Object.fromEntries(entries);
    })
    .filter((record) => record !== null && record !== undefined && !(typeof record === 'object' && Object.keys(record).length === 0));
}

/** Fails the task permanently at the first record that breaks the schema: a retry cannot fix bad data. */
function validate(records: unknown[]): unknown[] {
  records.forEach((record, index) => {
    const parsed = recordSchema.safeParse(record);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new TaskPermanentError(`process: validate: record ${index}: ${issue?.path.join('.') || '(record)'}: ${issue?.message ?? 'invalid'}`);
    }
  });
  return records;
}

/** Data fleet: read, apply each transformation in order, hand back the output. */
export const processData: TaskHandler<unknown, DataResult> = (data) => {
  const task = parse(dataTask, 'process', data);
  const source = readDataUrl(task.sourceUrl);
  let records = source;
  for (const name of task.transformations) records = name === 'clean' ? clean(records) : validate(records);
  return {
    outputUrl: `data:application/json;base64,${Buffer.from(JSON.stringify(records)).toString('base64')}`,
    recordsProcessed: records.length,
    recordsDropped: source.length - records.length,
  };
};
