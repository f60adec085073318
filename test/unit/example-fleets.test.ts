/** The seed's example fleets as task types: `resize` (a stand-in) and `process`. */
import { describe, expect, it } from 'vitest';
import { TaskPermanentError } from '../../lambdas/domain/errors';
import { processData, resize } from '../../lambdas/tasks/example-fleets';
import type { TaskContext } from '../../lambdas/domain/task-handler';

const context: TaskContext = { taskId: 't', batchId: 'b', attempt: 0, deadline: Date.now() + 60_000, signal: new AbortController().signal };
const dataUrl = (records: unknown) => `data:application/json;base64,${Buffer.from(JSON.stringify(records)).toString('base64')}`;
const decode = (url: string) => JSON.parse(Buffer.from(url.split(',')[1] ?? '', 'base64').toString('utf8')) as unknown;

describe('resize (stand-in)', () => {
  it('keeps the aspect ratio, never upscales, and names the output by a checksum', async () => {
    const wide = await resize({ url: 'https://x/a.jpg?w=4000&h=3000', width: 800 }, context);
    const small = await resize({ url: 'https://x/b.png?w=300&h=200', width: 800, format: 'png' }, context);
    const again = await resize({ url: 'https://x/a.jpg?w=4000&h=3000', width: 800 }, context);

    expect(wide).toMatchObject({ width: 800, height: 600, format: 'jpeg', standIn: true });
    expect(small).toMatchObject({ width: 300, height: 200, format: 'png' });
    expect(wide.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(again.checksum).toBe(wide.checksum);
    expect(small.checksum).not.toBe(wide.checksum);
  });

  it('refuses bad data permanently, naming the field', () => {
    expect(() => resize({ url: 'https://x/a.jpg', width: -1 }, context)).toThrow(TaskPermanentError);
    expect(() => resize({ url: 'https://x/a.jpg', width: -1 }, context)).toThrow(/resize: data\.width/);
  });
});

describe('process', () => {
  it('clean trims strings and drops empty fields and records; validate passes good records', async () => {
    const source = [{ id: 1, name: ' Ada ', email: 'ada@example.com', note: '  ' }, { name: '' }, {}, { id: 2, name: 'Bo', email: 'bo@example.com' }];

    const result = await processData({ sourceUrl: dataUrl(source), transformations: ['clean', 'validate'] }, context);

    expect(result).toMatchObject({ recordsProcessed: 2, recordsDropped: 2 });
    expect(decode(result.outputUrl)).toEqual([
      { id: 1, name: 'Ada', email: 'ada@example.com' },
      { id: 2, name: 'Bo', email: 'bo@example.com' },
    ]);
  });

  it('validate fails the task permanently at the first bad record', () => {
    const source = [{ id: 1, name: 'Ada', email: 'ada@example.com' }, { id: 2, name: 'Bo', email: 'not-an-email' }];

    expect(() => processData({ sourceUrl: dataUrl(source), transformations: ['validate'] }, context)).toThrow(TaskPermanentError);
    expect(() => processData({ sourceUrl: dataUrl(source), transformations: ['validate'] }, context)).toThrow(/validate: record 1: email/);
  });

  it('runs no transformation when given none, and refuses non-data: URLs and non-arrays', async () => {
    const untouched = await processData({ sourceUrl: dataUrl([{ name: ' x ' }]) }, context);

    expect(untouched.recordsProcessed).toBe(1);
    expect(decode(untouched.outputUrl)).toEqual([{ name: ' x ' }]);
    expect(() => processData({ sourceUrl: 'https://data.example.com/a.json', transformations: [] }, context)).toThrow(/data: URL/);
    expect(() => processData({ sourceUrl: dataUrl({ not: 'an array' }) }, context)).toThrow(/JSON array/);
    expect(() => processData({ sourceUrl: 'data:,not json' }, context)).toThrow(/not valid JSON/);
  });
});
