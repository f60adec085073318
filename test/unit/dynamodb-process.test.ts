/**
 * The local DynamoDB's own process, supervised: it answers, closes cleanly;
 * on disk a death is followed by a restart on the same endpoint with the data
 * intact and one WARN line; in memory, or when it keeps dying, that is fatal.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, GetItemCommand, ListTablesCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startDynamoDbProcess, type DynamoDbProcess } from '../../infra/local/dynamodb-process';
import { newLocalCredentials } from '../../infra/local/emulator-guard';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Polls a condition (never a fixed sleep); throws if it does not hold within the bound. */
async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 1_200; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting until ${what}`);
}

const started: DynamoDbProcess[] = [];
const folders: string[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const dynamo of started.splice(0)) await dynamo.close();
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

async function start(options: Parameters<typeof startDynamoDbProcess>[0]): Promise<DynamoDbProcess> {
  const dynamo = await startDynamoDbProcess(options);
  started.push(dynamo);
  return dynamo;
}

function folder(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleet-dynamo-'));
  folders.push(dir);
  return dir;
}

describe('startDynamoDbProcess', () => {
  it('serves DynamoDB from a child process, and close() ends it without a complaint', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const dynamo = await startDynamoDbProcess({});
    expect(dynamo.pid).not.toBe(process.pid);
    const client = new DynamoDBClient({ region: 'us-east-1', endpoint: dynamo.endpoint, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });

    const { TableNames } = await client.send(new ListTablesCommand({}));
    await dynamo.close();

    expect(TableNames).toEqual([]);
    expect(alive(dynamo.pid)).toBe(false);
    expect(logged).not.toHaveBeenCalled();
    client.destroy();
  });

  it('on disk: restarts a killed process on the same endpoint, with the data written before, and says so once', async () => {
    const warnings: string[] = [];
    const fatal = vi.fn();
    const credentials = newLocalCredentials();
    const dynamo = await start({ path: path.join(folder(), 'db'), credentials, warn: (line) => warnings.push(line), onFatal: fatal });
    const client = new DynamoDBClient({ region: 'us-east-1', endpoint: dynamo.endpoint, credentials });
    await client.send(
      new CreateTableCommand({
        TableName: 'kept',
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    // As on AWS, a new table is CREATING for a moment: writes wait until it is ACTIVE.
    await until(async () => (await client.send(new DescribeTableCommand({ TableName: 'kept' }))).Table?.TableStatus === 'ACTIVE', 'the table is active');
    for (let i = 0; i < 50; i++) await client.send(new PutItemCommand({ TableName: 'kept', Item: { pk: { S: `k${i}` }, n: { N: String(i) } } }));
    const firstPid = dynamo.pid;

    process.kill(firstPid, 'SIGKILL');
    await until(() => dynamo.restarts === 1, 'the process was restarted');

    expect(dynamo.pid).not.toBe(firstPid);
    expect(alive(firstPid)).toBe(false);
    // The same endpoint, so the same client (as the handlers' are) reads every item back.
    for (let i = 0; i < 50; i++) {
      const { Item } = await client.send(new GetItemCommand({ TableName: 'kept', Key: { pk: { S: `k${i}` } }, ConsistentRead: true }));
      expect(Item?.n?.N).toBe(String(i));
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^fleet: WARN the local DynamoDB process ended unexpectedly \(code null, signal SIGKILL\); restarting it on http:\/\/127\.0\.0\.1:\d+ over the same data folder/);
    expect(fatal).not.toHaveBeenCalled();
    client.destroy();
  });

  it('gives up, saying why, when the process keeps dying (more than maxRestarts within the window)', async () => {
    const fatal = vi.fn();
    const dynamo = await start({ path: path.join(folder(), 'db'), maxRestarts: 2, restartWindowMs: 600_000, warn: () => undefined, onFatal: fatal });
    for (let restart = 1; restart <= 2; restart++) {
      const pid = dynamo.pid;
      process.kill(pid, 'SIGKILL');
      await until(() => dynamo.restarts === restart, `restart ${restart}`);
    }
    expect(fatal).not.toHaveBeenCalled();

    process.kill(dynamo.pid, 'SIGKILL');
    await until(() => fatal.mock.calls.length > 0, 'the supervisor gave up');

    expect(dynamo.restarts).toBe(2);
    expect(fatal).toHaveBeenCalledTimes(1);
    expect((fatal.mock.calls[0]?.[0] as Error).message).toMatch(/could not be kept running: 3 failures within 600 s \(last: code null, signal SIGKILL\)/);
  });

  it('in memory: a death is fatal at once (the data died with the process), never a silent restart with empty tables', async () => {
    const fatal = vi.fn();
    const warnings: string[] = [];
    const dynamo = await start({ warn: (line) => warnings.push(line), onFatal: fatal });
    const pid = dynamo.pid;

    process.kill(pid, 'SIGKILL');
    await until(() => fatal.mock.calls.length > 0, 'the supervisor reported the loss');

    expect((fatal.mock.calls[0]?.[0] as Error).message).toMatch(
      /ended unexpectedly \(code null, signal SIGKILL\) and its data was in memory only: every batch and result is gone/,
    );
    expect(dynamo.restarts).toBe(0);
    expect(dynamo.pid).toBe(pid);
    expect(warnings).toEqual([]);
  });
});
