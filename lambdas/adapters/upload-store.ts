/** UploadStore on the Fleet table: one item per upload, gone a day after its URL expired (TTL). */
import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { UploadRecord, UploadStore } from '../domain/tasks-file';
import { unlessConditionFails } from './conditional-write';
import { uploadKey } from './table-layout';

/** Kept past its URL's expiry, so a late submit hears "expired" rather than "unknown". */
const KEPT_AFTER_EXPIRY_SECONDS = 86_400;

export class DynamoUploadStore implements UploadStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async create(upload: UploadRecord): Promise<void> {
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: { ...uploadKey(upload.uploadId), ...upload, expiresAt: Math.floor(upload.urlExpiresAt / 1000) + KEPT_AFTER_EXPIRY_SECONDS },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async get(uploadId: string): Promise<UploadRecord | undefined> {
    const { Item } = await this.client.send(new GetCommand({ TableName: this.tableName, Key: uploadKey(uploadId), ConsistentRead: true }));
    if (!Item) return undefined;
    return {
      uploadId: String(Item.uploadId),
      key: String(Item.key),
      createdAt: Number(Item.createdAt),
      urlExpiresAt: Number(Item.urlExpiresAt),
      ...(typeof Item.batchId === 'string' ? { batchId: Item.batchId } : {}),
      ...(typeof Item.etag === 'string' ? { etag: Item.etag } : {}),
      ...(typeof Item.bytes === 'number' ? { bytes: Item.bytes } : {}),
    };
  }

  async claim(uploadId: string, batchId: string, file: { etag: string; bytes: number }): Promise<boolean> {
    const claimed = await unlessConditionFails(() =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: uploadKey(uploadId),
          UpdateExpression: 'SET batchId = :b, etag = if_not_exists(etag, :e), #bytes = if_not_exists(#bytes, :n)',
          // First batch wins; the same batch again (a retried submit) is fine.
          ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(batchId) OR batchId = :b)',
          ExpressionAttributeNames: { '#bytes': 'bytes' },
          ExpressionAttributeValues: { ':b': batchId, ':e': file.etag, ':n': file.bytes },
        }),
      ),
    );
    return claimed !== undefined;
  }
}
