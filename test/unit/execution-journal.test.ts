/**
 * The local runner's execution journal: resuming a killed execution (its Map
 * Run skips the children that ended), replaying a torn file, compaction, and
 * RedriveExecution from the failed state.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ExecutionJournal, readJournal } from '../../infra/local/journal';
import { LocalStepFunctions } from '../../infra/local/step-functions';
import { FakeInvoker, LAMBDA_INVOKE, MemoryObjects, STATE_MACHINE_ARN, namedError } from '../conformance/harness';

let folder: string;
let file: string;
beforeEach(() => {
  folder = mkdtempSync(path.join(tmpdir(), 'fleet-journal-'));
  file = path.join(folder, 'executions.jsonl');
});
afterEach(() => { rmSync(folder, { recursive: true, force: true }); });

const ARN = (name: string) => `${STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:${name}`;

/** Prepare (a Task) → Run (a Distributed Map over $.items, 2 at a time) → Done. */
const definition = JSON.stringify({
  StartAt: 'Prepare',
  States: {
    Prepare: { Type: 'Task', Resource: LAMBDA_INVOKE, Parameters: { step: 'prepare', 'items.$': '$.items' }, ResultPath: null, Next: 'Run' },
    Run: {
      Type: 'Map',
      Label: 'Items',
      ItemsPath: '$.items',
      MaxConcurrency: 2,
      ItemProcessor: {
        ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'EXPRESS' },
        StartAt: 'Work',
        States: { Work: { Type: 'Task', Resource: LAMBDA_INVOKE, Parameters: { 'item.$': '$' }, End: true } },
      },
      Next: 'Done',
    },
    Done: { Type: 'Succeed' },
  },
});

function service(invoker: FakeInvoker, journal: ExecutionJournal): LocalStepFunctions {
  const sfn = new LocalStepFunctions({ invoker, objects: new MemoryObjects(), journal });
  sfn.createStateMachine(STATE_MACHINE_ARN, definition);
  return sfn;
}

const itemOf = (parameters: unknown) => (parameters as { item?: number }).item;

async function waitUntil(check: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(check()).toBe(true);
}

describe('execution journal: resuming after the process died', () => {
  it('resumes at the Map state, keeps the Map Run and its ended children, and runs only the others', async () => {
    // Arrange: children of items 0-3 end; 4 and 5 never do (the process "dies" with them in flight).
    const first = new FakeInvoker((parameters) => {
      const item = itemOf(parameters);
      return item !== undefined && item >= 4 ? new Promise(() => undefined) : parameters;
    });
    const before = service(first, ExecutionJournal.open(file));
    before.startExecution(STATE_MACHINE_ARN, 'batch', JSON.stringify({ items: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] }));
    await waitUntil(() => first.calls.filter((c) => itemOf(c.parameters) !== undefined).length === 6);
    const [mapRun] = before.listMapRuns(ARN('batch'));

    // Act: a new process over the same journal.
    const second = new FakeInvoker((parameters) => parameters);
    const after = service(second, ExecutionJournal.open(file));
    expect(after.recover()).toBe(1);
    await after.idle();

    // Assert
    const execution = after.describeExecution(ARN('batch'));
    expect(execution.status).toBe('SUCCEEDED');
    // Prepare is not run again; only items 4-9 are.
    expect(second.calls.map((c) => itemOf(c.parameters))).toEqual([4, 5, 6, 7, 8, 9]);
    const [resumed] = after.listMapRuns(ARN('batch'));
    expect(resumed?.arn).toBe(mapRun?.arn);
    expect(resumed?.counts).toMatchObject({ total: 10, succeeded: 10, failed: 0, pending: 0 });
    // The Map's output holds every child's, the journaled ones included.
    expect((JSON.parse(execution.output ?? '{}') as unknown[]).length).toBe(10);
    // The started date is the original one.
    expect(execution.startDate.getTime()).toBe(before.describeExecution(ARN('batch')).startDate.getTime());
  });

  it('drops a torn last line, refuses a damaged one before the end, and forgets finished executions when it compacts', async () => {
    // Arrange: one execution that succeeded, one still running, then a torn line.
    const sfn = service(new FakeInvoker((parameters) => parameters), ExecutionJournal.open(file));
    sfn.startExecution(STATE_MACHINE_ARN, 'done', JSON.stringify({ items: [1] }));
    await sfn.idle();
    appendFileSync(file, `${JSON.stringify({ e: 'start', x: 99, arn: ARN('open'), sm: STATE_MACHINE_ARN, name: 'open', input: '{"items":[]}', at: new Date().toISOString() })}\n`);
    appendFileSync(file, '{"e":"launch","x":99,"m"');

    // Act
    const journal = ExecutionJournal.open(file);

    // Assert
    expect(journal.running().map((e) => e.name)).toEqual(['open']);
    expect(readJournal(file).every((entry) => entry.x === 99)).toBe(true);
    writeFileSync(file, `not json\n${readFileSync(file, 'utf8')}`);
    expect(() => ExecutionJournal.open(file)).toThrow(/line 1 is not JSON/);
  });
});

describe('RedriveExecution', () => {
  it('runs a FAILED execution again from the state that failed, with that state’s input; earlier states do not run again', async () => {
    // Arrange: the Map's children succeed; Finish-like "Done" is preceded by a Task that fails once.
    const machine = JSON.stringify({
      StartAt: 'Prepare',
      States: {
        Prepare: { Type: 'Task', Resource: LAMBDA_INVOKE, Parameters: { step: 'prepare' }, ResultPath: '$.prepared', Next: 'Finish' },
        Finish: { Type: 'Task', Resource: LAMBDA_INVOKE, Parameters: { step: 'finish', 'prepared.$': '$.prepared' }, End: true },
      },
    });
    let failFinish = true;
    const invoker = new FakeInvoker((parameters) => {
      const step = (parameters as { step: string }).step;
      if (step === 'finish' && failFinish) {
        failFinish = false;
        throw namedError('Fleet.Broken');
      }
      return { step };
    });
    const sfn = new LocalStepFunctions({ invoker, objects: new MemoryObjects(), journal: ExecutionJournal.open(file) });
    sfn.createStateMachine(STATE_MACHINE_ARN, machine);
    sfn.startExecution(STATE_MACHINE_ARN, 'b', '{}');
    await sfn.idle();
    expect(sfn.describeExecution(ARN('b'))).toMatchObject({ status: 'FAILED', error: 'Fleet.Broken' });
    expect(() => sfn.redriveExecution(ARN('nope'))).toThrow(/Does Not Exist/);

    // Act: redriven after a restart, from the journal.
    const again = new LocalStepFunctions({ invoker, objects: new MemoryObjects(), journal: ExecutionJournal.open(file) });
    again.createStateMachine(STATE_MACHINE_ARN, machine);
    expect(again.recover()).toBe(0);
    again.redriveExecution(ARN('b'));
    await again.idle();

    // Assert
    expect(again.describeExecution(ARN('b'))).toMatchObject({ status: 'SUCCEEDED', redriveCount: 1, output: JSON.stringify({ step: 'finish' }) });
    expect(invoker.calls.map((c) => (c.parameters as { step: string }).step)).toEqual(['prepare', 'finish', 'finish']);
    expect(invoker.calls[2]?.parameters).toEqual({ step: 'finish', prepared: { step: 'prepare' } });
    // A succeeded execution cannot be redriven.
    expect(() => again.redriveExecution(ARN('b'))).toThrow(/only FAILED and TIMED_OUT/);
  });
});

describe('memory of a long-running local Step Functions', () => {
  afterEach(() => vi.useRealTimers());

  it('forgets executions (and their Map Runs) that ended over 14 days ago, and keeps recent ones', async () => {
    // Arrange: one execution ends on day 0, another on day 10 (only Date is faked: timers run).
    const day0 = Date.parse('2026-01-01T00:00:00Z');
    vi.useFakeTimers({ toFake: ['Date'], now: day0 });
    const sfn = service(new FakeInvoker(), ExecutionJournal.inMemory());
    const old = sfn.startExecution(STATE_MACHINE_ARN, 'old', JSON.stringify({ items: [1, 2] }));
    await waitUntil(() => sfn.describeExecution(old.executionArn).status === 'SUCCEEDED');
    const oldMapRun = sfn.listMapRuns(old.executionArn)[0]?.arn ?? '';
    expect(sfn.describeMapRun(oldMapRun).status).toBe('SUCCEEDED');
    vi.setSystemTime(day0 + 10 * 86_400_000);
    const recent = sfn.startExecution(STATE_MACHINE_ARN, 'recent', JSON.stringify({ items: [3] }));
    await waitUntil(() => sfn.describeExecution(recent.executionArn).status === 'SUCCEEDED');

    // Act: on day 15, a new execution starts.
    vi.setSystemTime(day0 + 15 * 86_400_000);
    sfn.startExecution(STATE_MACHINE_ARN, 'new', JSON.stringify({ items: [] }));

    // Assert
    expect(() => sfn.describeExecution(old.executionArn)).toThrow(/Execution Does Not Exist/);
    expect(() => sfn.describeMapRun(oldMapRun)).toThrow();
    expect(sfn.describeExecution(recent.executionArn).status).toBe('SUCCEEDED');
  });
});
