/**
 * The Map state, as Fleet uses it (a Distributed Map reading JSONL from S3,
 * MaxConcurrencyPath, ItemSelector with $$.Map.Item, ToleratedFailurePercentage,
 * ResultWriter), asserted from the AWS documentation.
 *
 * Pages:
 * - DISTRIBUTED: https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html
 * - INLINE: https://docs.aws.amazon.com/step-functions/latest/dg/state-map-inline.html
 * - ITEMREADER: https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html
 * - ITEMSELECTOR: https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemselector.html
 * - RESULTWRITER: https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html
 * - CONTEXT: https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html
 * - MAPRUN: https://docs.aws.amazon.com/step-functions/latest/dg/concepts-examine-map-run.html
 * - ERRORS: https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { MapRun } from '../../infra/local/asl/interpreter';
import { CONTEXT, delay, DISTRIBUTED, ERRORS, FakeInvoker, INLINE, ITEMREADER, ITEMSELECTOR, LAMBDA_INVOKE, MAPRUN, MemoryObjects, namedError, RESULTWRITER, run, STATE_MACHINE_ARN, useFakeClock } from './harness';

const BUCKET = 'tasks-bucket';

type Json = Record<string, unknown>;

/** One Task per child, calling the invoker with `parameters`. */
const processor = (mode: 'DISTRIBUTED' | 'INLINE', parameters: Json = { 'item.$': '$' }, task: Json = {}) => ({
  ProcessorConfig: mode === 'DISTRIBUTED' ? { Mode: 'DISTRIBUTED', ExecutionType: 'EXPRESS' } : { Mode: 'INLINE' },
  StartAt: 'Run task',
  States: { 'Run task': { Type: 'Task', Resource: LAMBDA_INVOKE, Parameters: parameters, End: true, ...task } },
});

/** Fleet's "Run tasks" shape: JSONL from S3 at $.tasksKey, MaxConcurrencyPath, ItemSelector. */
const distributedMap = (map: Json = {}, parameters?: Json, task?: Json) => ({
  StartAt: 'Run tasks',
  States: {
    'Run tasks': {
      Type: 'Map',
      Label: 'FleetTasks',
      ItemReader: { Resource: 'arn:aws:states:::s3:getObject', ReaderConfig: { InputType: 'JSONL' }, Parameters: { Bucket: BUCKET, 'Key.$': '$.tasksKey' } },
      ItemProcessor: processor('DISTRIBUTED', parameters, task),
      End: true,
      ...map,
    },
  },
});

const jsonl = (items: unknown[]) => `${items.map((item) => JSON.stringify(item)).join('\n')}\n`;

/** A child that takes `ms` of (fake) time, then returns its parameters; items with `fail` throw that error. */
const worker = (ms = 1000) =>
  new FakeInvoker(async (parameters) => {
    await delay(ms);
    const item = (parameters as { item?: { fail?: string } }).item;
    if (item?.fail) throw namedError(item.fail, `item failed with ${item.fail}`);
    return parameters;
  });

beforeEach(useFakeClock);
afterEach(() => {
  vi.useRealTimers();
});

describe(`Inline Map (${INLINE})`, () => {
  it('MaxConcurrency bounds the iterations running at once; the output is the results in item order', async () => {
    const invoker = new FakeInvoker(async (parameters) => {
      const { item } = parameters as { item: number };
      await delay(1000 * (7 - item)); // later items finish first
      return item * 10;
    });
    const definition = { StartAt: 'Map', States: { Map: { Type: 'Map', ItemsPath: '$.items', MaxConcurrency: 2, ItemProcessor: processor('INLINE'), End: true } } };

    const outcome = await run(definition, { items: [1, 2, 3, 4, 5, 6] }, { invoker });

    expect(invoker.peak).toBe(2);
    expect(outcome).toEqual({ status: 'SUCCEEDED', output: [10, 20, 30, 40, 50, 60] });
  });

  // Guards a fixed deviation (infra/local/asl/interpreter.ts, runMap: any child failure
  // becomes States.ExceedToleratedFailureThreshold, inline or distributed).
  // An inline Map has no tolerated-failure threshold (one is refused at load):
  // in INLINE mode any failed iteration fails the Map state and stops the
  // others (INLINE page, ProcessorConfig), and the Map fails with that
  // iteration's error, which a Catch on the Map matches by name (the Amazon
  // States Language, Map State: an iteration that reaches a Fail state or has
  // an error fails the entire Map State). Fleet runs no inline Map.
  it('a failed iteration fails the inline Map with the iteration\'s own error name', async () => {
    const definition = {
      StartAt: 'Map',
      States: {
        Map: { Type: 'Map', ItemsPath: '$.items', ItemProcessor: processor('INLINE'), Catch: [{ ErrorEquals: ['ItemBroken'], Next: 'Caught' }], End: true },
        Caught: { Type: 'Succeed' },
      },
    };

    const outcome = await run(definition, { items: [{}, { fail: 'ItemBroken' }] }, { invoker: worker() });

    expect(outcome).toEqual({ status: 'SUCCEEDED', output: { Error: 'ItemBroken', Cause: 'item failed with ItemBroken' } });
  });
  // Guards a fixed deviation (infra/local/asl/interpreter.ts, runChild gives every
  // iteration its own execution name, ARN and start time, inline or not). An
  // inline Map starts no child executions: "In this mode, each iteration of
  // the Map state runs in the context of the workflow that contains the Map
  // state" (INLINE page), so $$.Execution is the execution's own. Fleet runs
  // no inline Map.
  it(`inside an inline Map iteration, $$.Execution.Id and $$.Execution.StartTime are the execution's own (${CONTEXT})`, async () => {
    const invoker = worker(0);
    const definition = {
      StartAt: 'Map',
      States: {
        Map: {
          Type: 'Map',
          ItemsPath: '$.items',
          ItemProcessor: processor('INLINE', { 'id.$': '$$.Execution.Id', 'startTime.$': '$$.Execution.StartTime' }),
          End: true,
        },
      },
    };
    const startTime = '2024-12-31T23:00:00.000Z';

    await run(definition, { items: [1] }, { invoker, startTime, executionName: 'parent' });

    expect(invoker.calls[0]?.parameters).toEqual({ id: `${STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:parent`, startTime });
  });
});

describe(`Distributed Map (${DISTRIBUTED})`, () => {
  it(`reads a JSONL object from S3, one child per line, and builds each child's input with ItemSelector, $$.Map.Item.Index and $$.Map.Item.Value (${ITEMREADER}, ${ITEMSELECTOR}, ${CONTEXT})`, async () => {
    const objects = new MemoryObjects().put(BUCKET, 'batches/b-1.jsonl', jsonl([{ id: 't-1' }, { id: 't-2' }, { id: 't-3' }]));
    const invoker = worker(0);
    const definition = distributedMap(
      { ItemSelector: { 'batchId.$': '$.batchId', 'task.$': '$$.Map.Item.Value', 'index.$': '$$.Map.Item.Index', 'settings.$': '$.settings', constant: 'c' } },
      { 'batchId.$': '$.batchId', 'task.$': '$.task', 'index.$': '$.index', 'settings.$': '$.settings', 'constant.$': '$.constant' },
    );

    const outcome = await run(definition, { batchId: 'b-1', tasksKey: 'batches/b-1.jsonl', settings: { retries: 3 } }, { invoker, objects });

    const expected = [0, 1, 2].map((index) => ({ batchId: 'b-1', task: { id: `t-${index + 1}` }, index, settings: { retries: 3 }, constant: 'c' }));
    expect(invoker.calls.map((c) => c.parameters)).toEqual(expected);
    expect(outcome).toEqual({ status: 'SUCCEEDED', output: expected });
  });

  it(`reads a JSON array with InputType JSON, and ReaderConfig.MaxItems limits the items (${ITEMREADER})`, async () => {
    const objects = new MemoryObjects().put(BUCKET, 'items.json', JSON.stringify(['a', 'b', 'c', 'd']));
    const invoker = worker(0);
    const definition = distributedMap({
      ItemReader: { Resource: 'arn:aws:states:::s3:getObject', ReaderConfig: { InputType: 'JSON', MaxItems: 2 }, Parameters: { Bucket: BUCKET, Key: 'items.json' } },
    });

    const outcome = await run(definition, {}, { invoker, objects });

    expect(outcome).toEqual({ status: 'SUCCEEDED', output: [{ item: 'a' }, { item: 'b' }] });
  });

  it(`an unreadable item source fails the Map with States.ItemReaderFailed, which a Catch on States.ALL handles (${ERRORS})`, async () => {
    const definition = distributedMap({ Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: 'Finish batch' }], End: undefined, Next: 'Finish batch' });
    (definition.States as Json)['Finish batch'] = { Type: 'Succeed' };

    const outcome = await run(definition, { tasksKey: 'missing.jsonl' }, { invoker: worker(0) });

    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { tasksKey: 'missing.jsonl', failure: { Error: 'States.ItemReaderFailed' } } });
  });

  it('MaxConcurrencyPath reads the concurrency from the state input: 3 children at most, all 9 run', async () => {
    const objects = new MemoryObjects().put(BUCKET, 'k', jsonl([1, 2, 3, 4, 5, 6, 7, 8, 9]));
    const invoker = worker(1000);

    const outcome = await run(distributedMap({ MaxConcurrencyPath: '$.maxConcurrency' }), { tasksKey: 'k', maxConcurrency: 3 }, { invoker, objects });

    expect(invoker.peak).toBe(3);
    expect(invoker.calls).toHaveLength(9);
    expect(invoker.calls.map((c) => c.at - (invoker.calls[0]?.at ?? 0))).toEqual([0, 0, 0, 1000, 1000, 1000, 2000, 2000, 2000]);
    expect(outcome.status).toBe('SUCCEEDED');
  });

  it('MaxConcurrency 0 (or none) places no limit below the 10,000 children a Distributed Map runs at once', async () => {
    const items = Array.from({ length: 200 }, (_, i) => i);
    const objects = new MemoryObjects().put(BUCKET, 'k', jsonl(items));
    const invoker = worker(1000);

    await run(distributedMap({ MaxConcurrency: 0 }), { tasksKey: 'k' }, { invoker, objects });

    expect(invoker.peak).toBe(200);
  });

  it(`a child execution's $$.Execution.StartTime is that child's own start (${CONTEXT})`, async () => {
    const objects = new MemoryObjects().put(BUCKET, 'k', jsonl(['a', 'b', 'c']));
    const invoker = worker(1000);
    const startTime = new Date().toISOString();

    await run(distributedMap({ MaxConcurrency: 1 }, { 'startTime.$': '$$.Execution.StartTime' }), { tasksKey: 'k' }, { invoker, objects, startTime });

    const started = Date.parse(startTime);
    expect(invoker.calls.map((c) => (c.parameters as { startTime: string }).startTime)).toEqual(
      [0, 1000, 2000].map((ms) => new Date(started + ms).toISOString()),
    );
  });

  // Guards a fixed deviation (infra/local/asl/interpreter.ts, runChild passes the
  // parent's stateMachineArn to every child). MAPRUN page: "Child workflow
  // executions of a Map Run emit metrics to CloudWatch. These metrics will
  // have a labelled State Machine ARN with the following format:
  // arn:{partition}:states:{region}:{account}:stateMachine:{stateMachineName}/{MapRunLabel or UUID}".
  // Fleet reads $$.StateMachine.Id only in the parent, so its own workflow is
  // unaffected.
  it(`a child execution's $$.StateMachine.Id is the Map Run's labelled state machine ARN (${MAPRUN})`, async () => {
    const objects = new MemoryObjects().put(BUCKET, 'k', jsonl(['a']));
    const invoker = worker(0);

    await run(distributedMap({}, { 'stateMachineArn.$': '$$.StateMachine.Id' }), { tasksKey: 'k' }, { invoker, objects });

    expect(invoker.calls[0]?.parameters).toEqual({ stateMachineArn: `${STATE_MACHINE_ARN}/FleetTasks` });
  });
});

describe(`ToleratedFailurePercentage (${DISTRIBUTED}#maprun-fail-threshold, ${ERRORS})`, () => {
  const items = (failing: number[], count = 4) => jsonl(Array.from({ length: count }, (_, i) => (failing.includes(i) ? { i, fail: 'Lost' } : { i })));

  it('0: the first failed child fails the Map with States.ExceedToleratedFailureThreshold, and no further child starts', async () => {
    const objects = new MemoryObjects().put(BUCKET, 'k', items([1]));
    const invoker = worker(1000);

    const outcome = await run(distributedMap({ ToleratedFailurePercentage: 0, MaxConcurrency: 1 }), { tasksKey: 'k' }, { invoker, objects });

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'States.ExceedToleratedFailureThreshold' });
    expect(invoker.calls.map((c) => (c.parameters as { item: { i: number } }).item.i)).toEqual([0, 1]);
  });

  it('100: failed children are tolerated and the Map succeeds (Fleet\'s setting)', async () => {
    const objects = new MemoryObjects().put(BUCKET, 'k', items([0, 2]));
    const invoker = worker(1000);

    const outcome = await run(distributedMap({ ToleratedFailurePercentage: 100 }), { tasksKey: 'k' }, { invoker, objects });

    expect(outcome.status).toBe('SUCCEEDED');
    expect(invoker.calls).toHaveLength(4);
  });

  it('50 is "the maximum percentage of failed items": 2 of 4 failing is tolerated, 3 of 4 is not', async () => {
    const two = new MemoryObjects().put(BUCKET, 'k', items([0, 1]));
    const three = new MemoryObjects().put(BUCKET, 'k', items([0, 1, 2]));
    const definition = distributedMap({ ToleratedFailurePercentage: 50 });

    const tolerated = await run(definition, { tasksKey: 'k' }, { invoker: worker(), objects: two });
    const exceeded = await run(definition, { tasksKey: 'k' }, { invoker: worker(), objects: three });

    expect(tolerated.status).toBe('SUCCEEDED');
    expect(exceeded).toMatchObject({ status: 'FAILED', error: 'States.ExceedToleratedFailureThreshold' });
  });

  it('the Map\'s failure is caught by a Catch on States.ALL with ResultPath $.failure (Fleet\'s "Run tasks" → "Finish batch")', async () => {
    const objects = new MemoryObjects().put(BUCKET, 'k', items([3]));
    const definition = distributedMap({
      ToleratedFailurePercentage: 0,
      End: undefined,
      Next: 'Finish batch',
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: 'Finish batch' }],
    });
    (definition.States as Json)['Finish batch'] = { Type: 'Succeed' };

    const outcome = await run(definition, { tasksKey: 'k', batchId: 'b' }, { invoker: worker(), objects });

    expect(outcome).toMatchObject({
      status: 'SUCCEEDED',
      output: { tasksKey: 'k', batchId: 'b', failure: { Error: 'States.ExceedToleratedFailureThreshold', Cause: expect.any(String) } },
    });
  });
});

describe(`ResultWriter (${RESULTWRITER})`, () => {
  const writer = (config: Json = { OutputType: 'JSONL', Transformation: 'COMPACT' }) => ({
    ResultWriter: { Resource: 'arn:aws:states:::s3:putObject', Parameters: { Bucket: BUCKET, Prefix: 'map-runs' }, WriterConfig: config },
  });
  const childTask = { ResultSelector: { 'taskId.$': '$.Payload.item.id', 'success.$': '$.Payload.ok' } };
  const echo = () =>
    new FakeInvoker((parameters) => {
      const item = (parameters as { item: { id: string; fail?: string } }).item;
      if (item.fail) throw namedError(item.fail);
      return { Payload: { item, ok: true }, StatusCode: 200 };
    });

  interface Manifest {
    DestinationBucket: string;
    MapRunArn: string;
    ResultFiles: Record<'SUCCEEDED' | 'FAILED' | 'PENDING', { Key: string; Size: number }[]>;
  }

  const manifestOf = (objects: MemoryObjects, output: unknown): { manifest: Manifest; succeeded: string } => {
    const details = (output as { mapRun: { ResultWriterDetails: { Bucket: string; Key: string } } }).mapRun.ResultWriterDetails;
    const manifest = JSON.parse(objects.get(details.Bucket, details.Key) ?? 'null') as Manifest;
    const file = manifest.ResultFiles.SUCCEEDED[0];
    return { manifest, succeeded: file ? (objects.get(BUCKET, file.Key) ?? '') : '' };
  };

  it('the Map\'s result is {MapRunArn, ResultWriterDetails: {Bucket, Key}}; the manifest lists SUCCEEDED_0 with the child outputs, COMPACT, one JSON line each', async () => {
    const objects = new MemoryObjects().put(BUCKET, 'k', jsonl([{ id: 't-1' }, { id: 't-2' }]));
    const mapRuns: MapRun[] = [];
    const definition = distributedMap({ ...writer(), ResultPath: '$.mapRun', ToleratedFailurePercentage: 100 }, { 'item.$': '$' }, childTask);

    const outcome = await run(definition, { tasksKey: 'k', batchId: 'b' }, { invoker: echo(), objects, mapRuns });

    const arn = mapRuns[0]?.arn ?? '';
    const mapRunId = arn.slice(arn.lastIndexOf(':') + 1);
    expect(arn).toMatch(/^arn:aws:states:us-east-1:000000000000:mapRun:.*FleetTasks:[0-9a-f-]{36}$/);
    expect(outcome).toEqual({
      status: 'SUCCEEDED',
      output: { tasksKey: 'k', batchId: 'b', mapRun: { MapRunArn: arn, ResultWriterDetails: { Bucket: BUCKET, Key: `map-runs/${mapRunId}/manifest.json` } } },
    });
    const { manifest, succeeded } = manifestOf(objects, outcome.status === 'SUCCEEDED' ? outcome.output : null);
    expect(manifest).toEqual({
      DestinationBucket: BUCKET,
      MapRunArn: arn,
      ResultFiles: { SUCCEEDED: [{ Key: `map-runs/${mapRunId}/SUCCEEDED_0.json`, Size: Buffer.byteLength(succeeded) }], FAILED: [], PENDING: [] },
    });
    expect(succeeded.split('\n').map((line) => JSON.parse(line) as unknown)).toEqual([
      { taskId: 't-1', success: true },
      { taskId: 't-2', success: true },
    ]);
  });

  // Guards a fixed deviation (infra/local/asl/interpreter.ts, writeResults writes every
  // output slot to SUCCEEDED_0.json, the failed child's as an empty JSONL line,
  // and always lists FAILED: []). AWS writes results by status, to
  // SUCCEEDED_n, FAILED_n and PENDING_n files that manifest.json lists, and a
  // failed child's result is written unchanged, as with Transformation NONE
  // (RESULTWRITER page, the note under WriterConfig.Transformation). Fleet
  // tolerates 100% of failed children and does not read the result files today.
  it('with failures tolerated, SUCCEEDED_0 holds only the succeeded children, and the manifest lists a FAILED file', async () => {
    const objects = new MemoryObjects().put(BUCKET, 'k', jsonl([{ id: 't-1' }, { id: 't-2', fail: 'Lost' }, { id: 't-3' }]));
    const definition = distributedMap({ ...writer(), ResultPath: '$.mapRun', ToleratedFailurePercentage: 100 }, { 'item.$': '$' }, childTask);

    const outcome = await run(definition, { tasksKey: 'k' }, { invoker: echo(), objects });

    const { manifest, succeeded } = manifestOf(objects, outcome.status === 'SUCCEEDED' ? outcome.output : null);
    expect(succeeded.trim().split('\n')).toEqual([JSON.stringify({ taskId: 't-1', success: true }), JSON.stringify({ taskId: 't-3', success: true })]);
    expect(manifest.ResultFiles.FAILED).toHaveLength(1);
  });

  // Guards a fixed deviation (interpreter.ts, writeResults ignores WriterConfig.Transformation;
  // definition.ts accepts NONE). "NONE - returns the output of the child
  // workflow executions unchanged, in addition to the workflow metadata.
  // Default when exporting the child workflow execution results to Amazon S3
  // and WriterConfig is not specified." Fleet itself uses COMPACT.
  it('Transformation NONE writes each child\'s output with its execution metadata (Status, Output as a JSON string)', async () => {
    const objects = new MemoryObjects().put(BUCKET, 'k', jsonl([{ id: 't-1' }]));
    const definition = distributedMap({ ...writer({ OutputType: 'JSON', Transformation: 'NONE' }), ResultPath: '$.mapRun' }, { 'item.$': '$' }, childTask);

    const outcome = await run(definition, { tasksKey: 'k' }, { invoker: echo(), objects });

    const { succeeded } = manifestOf(objects, outcome.status === 'SUCCEEDED' ? outcome.output : null);
    const [record] = JSON.parse(succeeded) as { Status: string; Output: string }[];
    expect(record?.Status).toBe('SUCCEEDED');
    expect(JSON.parse(record?.Output ?? 'null')).toEqual({ taskId: 't-1', success: true });
  });

  // Guards a fixed deviation (interpreter.ts, writeResults: Size: body.length counts
  // UTF-16 code units). The manifest's Size is the S3 object's size, in bytes.
  it('the manifest\'s Size is the result file\'s size in bytes (non-ASCII output)', async () => {
    const objects = new MemoryObjects().put(BUCKET, 'k', jsonl([{ id: 'tâche-é' }]));
    const definition = distributedMap({ ...writer(), ResultPath: '$.mapRun' }, { 'item.$': '$' }, childTask);

    const outcome = await run(definition, { tasksKey: 'k' }, { invoker: echo(), objects });

    const { manifest, succeeded } = manifestOf(objects, outcome.status === 'SUCCEEDED' ? outcome.output : null);
    expect(manifest.ResultFiles.SUCCEEDED[0]?.Size).toBe(Buffer.byteLength(succeeded, 'utf8'));
  });
});
