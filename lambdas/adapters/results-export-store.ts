/** ResultsExportStore on the Fleet table: one item per batch, every write conditional on the build's attempt. */
import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ResultsExport, ResultsExportStore } from '../domain/file-jobs';
import { unlessConditionFails } from './conditional-write';
import { exportKey } from './table-layout';

export class DynamoResultsExportStore implements ResultsExportStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async get(batchId: string): Promise<ResultsExport | undefined> {
    const { Item } = await this.client.send(new GetCommand({ TableName: this.tableName, Key: exportKey(batchId), ConsistentRead: true }));
    if (!Item) return undefined;
    const { pk: _pk, sk: _sk, ...stored } = Item;
    return stored as ResultsExport;
  }

  async begin(next: ResultsExport, previousAttempt: number | undefined): Promise<boolean> {
    const begun = await unlessConditionFails(() =>
      this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...exportKey(next.batchId), ...next },
          ...(previousAttempt === undefined
            ? { ConditionExpression: 'attribute_not_exists(pk)' }
            : { ConditionExpression: 'attempt = :previous', ExpressionAttributeValues: { ':previous': previousAttempt } }),
        }),
      ),
    );
    return begun !== undefined;
  }

  private async update(batchId: string, attempt: number, fields: Record<string, unknown>): Promise<boolean> {
    const entries = Object.entries(fields).filter(([, value]) => value !== undefined);
    const updated = await unlessConditionFails(() =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: exportKey(batchId),
          UpdateExpression: `SET ${entries.map(([name]) => `#${name} = :${name}`).join(', ')}`,
          ConditionExpression: 'attempt = :attempt AND #state = :building',
          ExpressionAttributeNames: Object.fromEntries([...entries.map(([name]): [string, string] => [`#${name}`, name]), ['#state', 'state']]),
          ExpressionAttributeValues: { ...Object.fromEntries(entries.map(([name, value]) => [`:${name}`, value])), ':attempt': attempt, ':building': 'building' },
        }),
      ),
    );
    return updated !== undefined;
  }

  progress(batchId: string, attempt: number, fields: { resultsWritten: number; updatedAt: number }): Promise<boolean> {
    return this.update(batchId, attempt, fields);
  }

  end(batchId: string, attempt: number, fields: { state: 'ready' | 'failed'; resultsWritten: number; bytes?: number; error?: string; updatedAt: number }): Promise<boolean> {
    return this.update(batchId, attempt, fields);
  }
}
