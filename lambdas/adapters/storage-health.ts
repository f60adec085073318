/**
 * Whether the fleet's table answers, for GET /healthz: a health check that
 * says 200 while every read and write fails sends traffic (and operators) the
 * wrong way. One eventually consistent GetItem of a small item (half a read
 * unit on AWS), bounded in time so a storage that hangs reads as down too.
 */
import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { configKey } from './table-layout';

export type StorageHealth = { reachable: true } | { reachable: false; reason: string };

export class DynamoStorageHealth {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly timeoutMs = 3_000,
  ) {}

  async check(): Promise<StorageHealth> {
    try {
      await this.client.send(new GetCommand({ TableName: this.tableName, Key: configKey(), ProjectionExpression: 'pk' }), {
        abortSignal: AbortSignal.timeout(this.timeoutMs),
      });
      return { reachable: true };
    } catch (error) {
      const { name, message } = error as Error;
      return { reachable: false, reason: `${name}: ${message}` };
    }
  }
}
