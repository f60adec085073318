/**
 * The `word-count` task type, on its own worker function: counts the words
 * and lines of `data.text`. A task without text fails for good (no retry).
 */
import { createWorkerHandler, TaskPermanentError, type TaskHandler } from '@fleet-serverless/fleet/worker';

export interface WordCountTask {
  text: string;
}

export interface WordCount {
  words: number;
  lines: number;
}

// Task data arrives as JSON from whoever submitted it: check it before use.
export const wordCount: TaskHandler<unknown, WordCount> = (data) => {
  const { text } = (data ?? {}) as Partial<WordCountTask>;
  if (typeof text !== 'string') throw new TaskPermanentError('word-count: data.text must be a string');
  const words = text.split(/\s+/).filter(Boolean).length;
  return { words, lines: text === '' ? 0 : text.split('\n').length };
};

export const handler = createWorkerHandler({ 'word-count': wordCount });
