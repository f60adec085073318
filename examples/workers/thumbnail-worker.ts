/**
 * A per-type worker function: the `thumbnail` task type runs here, on its own
 * Lambda function with its own memory and timeout, instead of on the default
 * worker. Configure it in the Fleet construct (infra/fleet-config.ts):
 *
 *   workers: { thumbnail: { entry: 'examples/workers/thumbnail-worker.ts', memorySize: 2048 } }
 *
 * `createWorkerHandler` gives it everything the default worker does: the
 * result recorded exactly once, each attempt's deadline, retries, the
 * dead-letter queue, and worker middleware (here the fleet's registered
 * hooks plus one of its own).
 *
 * STAND-IN TRANSFORM, like the `resize` type: it touches no pixels. It
 * computes the thumbnail's dimensions and a checksum naming it; a real one
 * would use an image library such as sharp, which this function could bundle
 * without weighing down the default worker.
 */
import { createHash } from 'node:crypto';
import { TaskPermanentError } from '../../lambdas/domain/errors';
import { taskMiddleware, type TaskHandler, type TaskMiddleware } from '../../lambdas/tasks';
import { createWorkerHandler } from '../../lambdas/worker';

/** Marks results as this function's: the default worker has no `thumbnail` type. */
export const THUMBNAIL_WORKER = 'thumbnail-worker';

/** The largest edge this function makes, enforced before the handler runs. */
export const MAX_THUMBNAIL_EDGE = 1024;

export interface ThumbnailTask {
  url: string;
  /** The longer edge of the thumbnail, in px. @default 128 */
  size?: number;
}

export interface Thumbnail {
  url: string;
  outputUrl: string;
  width: number;
  height: number;
  /** Which worker function made it. */
  worker: typeof THUMBNAIL_WORKER;
  /** Always true: no pixels were touched. */
  standIn: true;
}

function parseTask(data: unknown): Required<ThumbnailTask> {
  const d = (data ?? {}) as Partial<ThumbnailTask>;
  if (typeof d.url !== 'string' || d.url === '') throw new TaskPermanentError('thumbnail: data.url must be a non-empty string');
  const size = d.size ?? 128;
  if (!Number.isInteger(size) || size < 1) throw new TaskPermanentError('thumbnail: data.size must be a positive integer');
  return { url: d.url, size };
}

/** Stand-in thumbnail of a 1920x1080 source: the longer edge becomes `size`. */
export const thumbnail: TaskHandler<unknown, Thumbnail> = (data) => {
  const { url, size } = parseTask(data);
  const width = size;
  const height = Math.max(1, Math.round((1080 * size) / 1920));
  const checksum = createHash('sha256').update(`${url}|${width}x${height}`).digest('hex');
  return { url, outputUrl: `memory://thumbnails/${checksum.slice(0, 16)}.webp`, width, height, worker: THUMBNAIL_WORKER, standIn: true };
};

/**
 * Middleware of this function only (the seed's executeTaskOnWorker): refuses
 * an oversize thumbnail before the handler runs, as a permanent failure, so
 * it is not retried.
 */
export const limitEdge: TaskMiddleware = {
  name: 'limit-edge',
  before(task) {
    const size = (task.data as { size?: unknown } | null | undefined)?.size;
    if (typeof size === 'number' && size > MAX_THUMBNAIL_EDGE) {
      throw new TaskPermanentError(`thumbnail: size ${size} is over ${MAX_THUMBNAIL_EDGE} px (refused by the limit-edge middleware)`);
    }
  },
};

export const handler = createWorkerHandler({ thumbnail }, { middleware: [...taskMiddleware, limitEdge] });
