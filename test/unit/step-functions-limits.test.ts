/**
 * The local Step Functions service's side of the execution limits
 * (docs/local-mode-limits.md): StartExecution's 256 KiB input, the history
 * limit's failure (not redrivable, counted across a restart), and an Express
 * child's TIMED_OUT in DescribeMapRun.
 *
 * Pages:
 * - START: https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html
 *   (input: "Length constraints apply to the payload size, and are expressed as bytes in UTF-8 encoding. Maximum length of 262144.")
 * - QUOTAS: https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html
 * - REDRIVE: https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html
 *   (redriveStatus NOT_REDRIVABLE, redriveStatusReason "Execution history event limit exceeded.")
 * - MAPRUN_COUNTS: https://docs.aws.amazon.com/step-functions/latest/apireference/API_MapRunExecutionCounts.html
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExecutionJournal } from '../../infra/local/journal';
import { LocalStepFunctions, ServiceError, stepFunctionsOperations } from '../../infra/local/step-functions';
import { FakeInvoker, LAMBDA_INVOKE, MemoryObjects, STATE_MACHINE_ARN } from '../conformance/harness';

const ARN = (name: string) => `${STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:${name}`;
const HISTORY_LIMIT_CAUSE = 'The execution reached the maximum number of history events (25000).';

/** Count (a Task adding 1 to $.n) → More? (a Choice looping while n < 1,000,000): 7 events a round. */
const counter = JSON.stringify({
  StartAt: 'Count',
  States: {
    Count: { Type: 'Task', Resource: LAMBDA_INVOKE, Parameters: { 'n.$': '$.n' }, ResultSelector: { 'n.$': '$.n' }, Next: 'More?' },
    'More?': { Type: 'Choice', Choices: [{ Variable: '$.n', NumericLessThan: 1_000_000, Next: 'Count' }], Default: 'Done' },
    Done: { Type: 'Succeed' },
  },
});
const increment = (parameters: unknown) => ({ n: (parameters as { n: number }).n + 1 });

function service(invoker: FakeInvoker, definition: string, options: { journal?: ExecutionJournal; expressMaxDurationMs?: number } = {}): LocalStepFunctions {
  const sfn = new LocalStepFunctions({ invoker, objects: new MemoryObjects(), ...options });
  sfn.createStateMachine(STATE_MACHINE_ARN, definition);
  return sfn;
}

function serviceError(action: () => unknown): ServiceError {
  try {
    action();
  } catch (error) {
    if (error instanceof ServiceError) return error;
    throw error;
  }
  throw new Error('expected a ServiceError');
}

async function waitUntil(check: () => boolean): Promise<void> {
  for (let i = 0; i < 2_000 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(check()).toBe(true);
}

describe('StartExecution input (START)', () => {
  it('262,144 bytes of UTF-8 start; one more byte is a ValidationException naming input, and no execution exists', () => {
    const sfn = service(new FakeInvoker(), JSON.stringify({ StartAt: 'P', States: { P: { Type: 'Pass', End: true } } }));
    const of = (bytes: number) => JSON.stringify({ s: 'é'.repeat((bytes - 8) / 2) });
    expect(Buffer.byteLength(of(262_144))).toBe(262_144);

    sfn.startExecution(STATE_MACHINE_ARN, 'fits', of(262_144));
    const error = serviceError(() => sfn.startExecution(STATE_MACHINE_ARN, 'over', of(262_146)));

    expect(error.type).toBe('ValidationException');
    expect(error.message).toContain("'input'");
    expect(sfn.list().map((e) => e.name)).toEqual(['fits']);
  });
});

describe(`the history limit (QUOTAS)`, () => {
  it('fails the execution with States.Runtime at 24,999 events, and it is not redrivable (REDRIVE)', async () => {
    const invoker = new FakeInvoker(increment);
    const sfn = service(invoker, counter);
    const operations = stepFunctionsOperations(sfn);

    sfn.startExecution(STATE_MACHINE_ARN, 'loop', JSON.stringify({ n: 0 }));
    await sfn.idle();

    const execution = sfn.describeExecution(ARN('loop'));
    expect(execution).toMatchObject({ status: 'FAILED', error: 'States.Runtime', cause: HISTORY_LIMIT_CAUSE });
    // 1 + 7 × 3,571 = 24,998; TaskStateEntered is 24,999, and TaskScheduled would be 25,000: 3,571 calls.
    expect(invoker.calls).toHaveLength(3_571);
    expect(execution.history.events).toBe(24_999);
    expect(operations.DescribeExecution?.({ executionArn: ARN('loop') })).toMatchObject({
      redriveStatus: 'NOT_REDRIVABLE',
      redriveStatusReason: 'Execution history event limit exceeded.',
    });
    expect(serviceError(() => sfn.redriveExecution(ARN('loop'))).type).toBe('ExecutionNotRedrivable');
  });

  describe('across a restart', () => {
    let folder: string;
    beforeEach(() => {
      folder = mkdtempSync(path.join(tmpdir(), 'fleet-limits-'));
    });
    afterEach(() => { rmSync(folder, { recursive: true, force: true }); });

    it('a resumed execution goes on counting from the journal: the two processes together make the 3,571 calls one would', async () => {
      const file = path.join(folder, 'executions.jsonl');
      // The first process "dies" with its 1,000th call in flight.
      const first = new FakeInvoker((parameters) => ((parameters as { n: number }).n >= 999 ? new Promise(() => undefined) : increment(parameters)));
      service(first, counter, { journal: ExecutionJournal.open(file) }).startExecution(STATE_MACHINE_ARN, 'loop', JSON.stringify({ n: 0 }));
      await waitUntil(() => first.calls.length === 1_000);

      const second = new FakeInvoker(increment);
      const after = service(second, counter, { journal: ExecutionJournal.open(file) });
      expect(after.recover()).toBe(1);
      await after.idle();

      expect(after.describeExecution(ARN('loop'))).toMatchObject({ status: 'FAILED', error: 'States.Runtime', cause: HISTORY_LIMIT_CAUSE });
      // The 1,000th round starts again at Count, where the journal had 1 + 7 × 999 events.
      expect(second.calls).toHaveLength(3_571 - 999);
    });
  });
});

describe('an Express child that times out, in DescribeMapRun (MAPRUN_COUNTS)', () => {
  it('counts as timedOut, not failed, and fails the Map Run at the default threshold of 0', async () => {
    const definition = JSON.stringify({
      StartAt: 'Map',
      States: {
        Map: {
          Type: 'Map',
          Label: 'Tasks',
          ItemsPath: '$.items',
          ItemProcessor: {
            ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'EXPRESS' },
            StartAt: 'Work',
            States: { Work: { Type: 'Task', Resource: LAMBDA_INVOKE, Parameters: { 'item.$': '$' }, End: true } },
          },
          End: true,
        },
      },
    });
    const invoker = new FakeInvoker((parameters) => ((parameters as { item: number }).item === 1 ? new Promise(() => undefined) : parameters));
    const sfn = service(invoker, definition, { expressMaxDurationMs: 50 });
    const operations = stepFunctionsOperations(sfn);

    sfn.startExecution(STATE_MACHINE_ARN, 'batch', JSON.stringify({ items: [0, 1] }));
    await sfn.idle();

    const [mapRun] = sfn.listMapRuns(ARN('batch'));
    const described = operations.DescribeMapRun?.({ mapRunArn: mapRun?.arn }) as { status: string; executionCounts: Record<string, number> };
    expect(described.status).toBe('FAILED');
    expect(described.executionCounts).toMatchObject({ succeeded: 1, failed: 0, timedOut: 1, running: 0, total: 2 });
    expect(sfn.describeExecution(ARN('batch'))).toMatchObject({ status: 'FAILED', error: 'States.ExceedToleratedFailureThreshold' });
  });
});
