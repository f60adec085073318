/** The local DynamoDB's own process: it answers, closes cleanly, and an unexpected end is reported. */
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startDynamoDbProcess } from '../../infra/local/dynamodb-process';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 25));
}

afterEach(() => vi.restoreAllMocks());

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

  it('reports an unexpected end of the process (the fleet cannot store anything without it)', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const dynamo = await startDynamoDbProcess({});

    process.kill(dynamo.pid, 'SIGKILL');
    await until(() => logged.mock.calls.length > 0);

    expect(String(logged.mock.calls[0]?.[0])).toMatch(/local DynamoDB process ended unexpectedly \(code null, signal SIGKILL\)/);
    await dynamo.close();
  });
});
