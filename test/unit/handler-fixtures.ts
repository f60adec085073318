/**
 * Shared set-up for unit tests: the environment and output capture for tests
 * that import Lambda handler modules (their SDK clients are mocked with
 * aws-sdk-client-mock, so nothing is reached), and domain fixtures.
 */
import { vi } from 'vitest';
import type { BatchRecord } from '../../lambdas/domain/ports';
import type { BatchState } from '../../lambdas/domain/types';

/** Sets what every handler module reads from the environment at import, plus `extra`. */
export function useHandlerEnvironment(extra: Record<string, string> = {}): void {
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'x',
    AWS_SECRET_ACCESS_KEY: 'x',
    TABLE_NAME: 'fleet',
    ...extra,
  });
}

/**
 * Captures what the process writes to stdout and stderr, line by line, until
 * the spies are restored (`vi.restoreAllMocks()`). Powertools writes its log
 * lines and metrics there, not through the global console.
 */
export function captureOutput(): string[] {
  const lines: string[] = [];
  const capture = (chunk: string | Uint8Array) => {
    lines.push(...String(chunk).split('\n').filter(Boolean));
    return true;
  };
  vi.spyOn(process.stdout, 'write').mockImplementation(capture);
  vi.spyOn(process.stderr, 'write').mockImplementation(capture);
  return lines;
}

/** A batch record as the repository stores it: started, with no results yet. */
export const batchRecord = (batchId: string, status: BatchState, totalTasks = 3): BatchRecord => ({
  batchId,
  status,
  totalTasks,
  createdAt: 1,
  startedAt: 2,
  completedAt: null,
  completedTasks: 0,
  failedTasks: 0,
  priority: 0,
  longestTaskTimeoutMs: 0,
  tasksKey: `batches/${batchId}/tasks.jsonl`,
});
