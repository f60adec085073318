/**
 * The Distributed Map's ItemReader limits for a file in S3, enforced by the
 * local runner with AWS's error, States.ItemReaderFailed ("A Map state failed
 * to read all items as specified by the ItemReader field", ERRORS), which a
 * Catch on States.ALL handles:
 *
 * - ITEMREADER: "Step Functions supports 10 GB as the maximum size of an
 *   individual file in Amazon S3." Checked from the object's size
 *   (HeadObject's ContentLength) before any byte of it is read; taken as
 *   10,000,000,000 bytes, the stricter reading of "GB".
 * - ITEMREADER: "The execution input used to start a child workflow execution
 *   can't exceed 256 KiB. However, Step Functions supports reading an item of
 *   up to 8 MB from a text delimited file, JSON, or JSON Lines file if you then
 *   apply the optional ItemSelector field to reduce the item's size." Taken as
 *   8,000,000 bytes of UTF-8 per line.
 * - ITEMREADER: MaxItems runs "up to 100,000,000"; that range is refused at
 *   load (load-refusal.test.ts). No page documents a cap on the number of
 *   items a file may hold, so none is enforced.
 *
 * Pages:
 * - ITEMREADER: https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html
 * - ERRORS: https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
 * - QUOTAS: https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ITEM_READER_MAX_ITEM_BYTES, ITEM_READER_MAX_OBJECT_BYTES, LOCAL_ITEM_READER_MAX_OBJECT_BYTES } from '../../infra/local/asl/interpreter';
import { ERRORS, FakeInvoker, ITEMREADER, LAMBDA_INVOKE, MemoryObjects, QUOTAS, run, useFakeClock } from './harness';

const BUCKET = 'tasks-bucket';

type Json = Record<string, unknown>;

/** Fleet's "Run tasks" shape: JSONL from S3 at $.tasksKey, one Lambda task per child, a Catch that records the Map's error. */
const distributedMap = (map: Json = {}, reader: Json = {}): Json => ({
  StartAt: 'Run tasks',
  States: {
    'Run tasks': {
      Type: 'Map',
      Label: 'FleetTasks',
      ItemReader: { Resource: 'arn:aws:states:::s3:getObject', ReaderConfig: { InputType: 'JSONL' }, Parameters: { Bucket: BUCKET, 'Key.$': '$.tasksKey' }, ...reader },
      ItemProcessor: {
        ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'EXPRESS' },
        StartAt: 'Run task',
        States: { 'Run task': { Type: 'Task', Resource: LAMBDA_INVOKE, Parameters: { 'item.$': '$' }, End: true } },
      },
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: 'Finish batch' }],
      Next: 'Finish batch',
      ...map,
    },
    'Finish batch': { Type: 'Succeed' },
  },
});

/** A JSON Lines line of exactly `bytes` bytes of UTF-8: {"id":"…","pad":"xxx…"}. */
const lineOf = (bytes: number, id: string) => {
  const empty = JSON.stringify({ id, pad: '' });
  return JSON.stringify({ id, pad: 'x'.repeat(bytes - empty.length) });
};

beforeEach(useFakeClock);
afterEach(() => {
  vi.useRealTimers();
});

describe(`an ItemReader reads a file of up to 10 GB: larger fails the Map with States.ItemReaderFailed, from its size alone (${ITEMREADER})`, () => {
  it('10,000,000,001 bytes fail before any of it is read or any child runs, and a Catch on States.ALL handles it', async () => {
    const objects = new MemoryObjects();
    objects.reportedSizes.set(`${BUCKET}/huge.jsonl`, ITEM_READER_MAX_OBJECT_BYTES + 1);
    const invoker = new FakeInvoker();

    const outcome = await run(distributedMap(), { tasksKey: 'huge.jsonl' }, { invoker, objects });

    expect(ITEM_READER_MAX_OBJECT_BYTES).toBe(10_000_000_000);
    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { failure: { Error: 'States.ItemReaderFailed' } } });
    expect((outcome as { output: { failure: { Cause: string } } }).output.failure.Cause).toContain('10000000001 bytes');
    expect(objects.reads).toEqual([]);
    expect(invoker.calls).toHaveLength(0);
  });

  it('without a Catch, the execution fails with States.ItemReaderFailed', async () => {
    const objects = new MemoryObjects();
    objects.reportedSizes.set(`${BUCKET}/huge.jsonl`, 12 * 1024 ** 3);

    const outcome = await run(distributedMap({ Catch: undefined, Next: undefined, End: true }), { tasksKey: 'huge.jsonl' }, { objects });

    expect(outcome).toMatchObject({ status: 'FAILED', error: 'States.ItemReaderFailed' });
  });

  it('a file AWS would read but local mode cannot hold in one string fails with States.ItemReaderFailed naming the local limit, never a crash', async () => {
    const objects = new MemoryObjects();
    objects.reportedSizes.set(`${BUCKET}/big.jsonl`, LOCAL_ITEM_READER_MAX_OBJECT_BYTES + 1);

    const outcome = await run(distributedMap(), { tasksKey: 'big.jsonl' }, { objects });

    expect(LOCAL_ITEM_READER_MAX_OBJECT_BYTES).toBeLessThan(ITEM_READER_MAX_OBJECT_BYTES);
    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { failure: { Error: 'States.ItemReaderFailed' } } });
    expect((outcome as { output: { failure: { Cause: string } } }).output.failure.Cause).toContain('local mode');
    expect(objects.reads).toEqual([]);
  });

  it('an object that does not exist fails the same way, from its size look-up', async () => {
    const objects = new MemoryObjects();

    const outcome = await run(distributedMap(), { tasksKey: 'missing.jsonl' }, { objects });

    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { failure: { Error: 'States.ItemReaderFailed' } } });
    expect(objects.reads).toEqual([]);
  });
});

describe(`an ItemReader reads items of up to 8 MB; a child's input must still fit 256 KiB after ItemSelector (${ITEMREADER}, ${QUOTAS})`, () => {
  it('a line of 8,000,000 bytes is read, and an ItemSelector reducing it to its id runs the child', async () => {
    const objects = new MemoryObjects().put(BUCKET, 'k', `${lineOf(ITEM_READER_MAX_ITEM_BYTES, 't1')}\n{"id":"t2","pad":""}\n`);
    const invoker = new FakeInvoker();

    const outcome = await run(distributedMap({ ItemSelector: { 'id.$': '$$.Map.Item.Value.id' } }), { tasksKey: 'k' }, { invoker, objects });

    expect(outcome).toEqual({ status: 'SUCCEEDED', output: [{ item: { id: 't1' } }, { item: { id: 't2' } }] });
    expect(invoker.calls.map((call) => call.parameters)).toEqual([{ item: { id: 't1' } }, { item: { id: 't2' } }]);
  });

  it(`a line of 8,000,001 bytes fails the Map with States.ItemReaderFailed, naming the line, before any child runs (${ERRORS})`, async () => {
    const objects = new MemoryObjects().put(BUCKET, 'k', `{"id":"t1","pad":""}\n\n${lineOf(ITEM_READER_MAX_ITEM_BYTES + 1, 't2')}\n{"id":"t3","pad":""}\n`);
    const invoker = new FakeInvoker();

    const outcome = await run(distributedMap({ ItemSelector: { 'id.$': '$$.Map.Item.Value.id' } }), { tasksKey: 'k' }, { invoker, objects });

    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { failure: { Error: 'States.ItemReaderFailed' } } });
    expect((outcome as { output: { failure: { Cause: string } } }).output.failure.Cause).toContain('line 2 of s3://tasks-bucket/k is 8000001 bytes');
    expect(invoker.calls).toHaveLength(0);
  });

  it('counts bytes of UTF-8, not characters: a line of 4,000,001 "é" is over 8 MB of UTF-8 in about 4 million characters', async () => {
    const line = JSON.stringify({ id: 't1', pad: 'é'.repeat(4_000_001) });
    expect(line.length).toBeLessThan(ITEM_READER_MAX_ITEM_BYTES);
    expect(Buffer.byteLength(line, 'utf8')).toBeGreaterThan(ITEM_READER_MAX_ITEM_BYTES);
    const objects = new MemoryObjects().put(BUCKET, 'k', `${line}\n`);

    const outcome = await run(distributedMap(), { tasksKey: 'k' }, { objects });

    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { failure: { Error: 'States.ItemReaderFailed' } } });
  });

  it('an item of JSON InputType over 8 MB fails the same way', async () => {
    const objects = new MemoryObjects().put(BUCKET, 'items.json', `[{"id":"t1"},${lineOf(ITEM_READER_MAX_ITEM_BYTES + 1, 't2')}]`);

    const outcome = await run(
      distributedMap({}, { ReaderConfig: { InputType: 'JSON' }, Parameters: { Bucket: BUCKET, Key: 'items.json' } }),
      {},
      { objects },
    );

    expect(outcome).toMatchObject({ status: 'SUCCEEDED', output: { failure: { Error: 'States.ItemReaderFailed' } } });
    expect((outcome as { output: { failure: { Cause: string } } }).output.failure.Cause).toContain('item 2');
  });

  it('an item under 8 MB but over 256 KiB with no ItemSelector to reduce it fails its own child with States.DataLimitExceeded, not the reader', async () => {
    const objects = new MemoryObjects().put(BUCKET, 'k', `${lineOf(300_000, 't1')}\n{"id":"t2","pad":""}\n`);
    const invoker = new FakeInvoker();

    const outcome = await run(distributedMap({ ToleratedFailurePercentage: 100 }), { tasksKey: 'k' }, { invoker, objects });

    expect(outcome).toMatchObject({ status: 'SUCCEEDED' });
    expect((outcome as { output: unknown[] }).output).toHaveLength(2);
    expect(invoker.calls.map((call) => (call.parameters as { item: { id: string } }).item.id)).toEqual(['t2']);
  });
});
