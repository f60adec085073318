/**
 * The `checksum` task type, on its own worker function: the SHA-256 of
 * `data.content`, with a middleware of this function only that refuses
 * content over a size limit before the handler runs.
 */
import { createHash } from 'node:crypto';
import { createWorkerHandler, TaskPermanentError, type TaskHandler, type TaskMiddleware } from '@fleet-serverless/fleet/worker';

export const MAX_CONTENT_CHARS = 10_000;

export interface ChecksumTask {
  content: string;
}

// limitSize (below) has checked data.content before this runs.
export const checksum: TaskHandler<unknown, { sha256: string; chars: number }> = (data, context) => ({
  sha256: createHash('sha256').update((data as ChecksumTask).content, 'utf8').digest('hex'),
  chars: (data as ChecksumTask).content.length,
  // The context names the task and its attempt, as on Lambda.
  ...(context.attempt > 0 ? { retried: context.attempt } : {}),
});

export const limitSize: TaskMiddleware = {
  name: 'limit-size',
  before(task) {
    const content = (task.data as { content?: unknown } | null)?.content;
    if (typeof content !== 'string') throw new TaskPermanentError('checksum: data.content must be a string');
    if (content.length > MAX_CONTENT_CHARS) throw new TaskPermanentError(`checksum: content is over ${MAX_CONTENT_CHARS} characters`);
  },
};

export const handler = createWorkerHandler({ checksum }, { middleware: [limitSize] });
