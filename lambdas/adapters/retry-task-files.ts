/**
 * Task files of retry-failed: the batch's own tasks file is read back, and
 * the tasks to run again are written beside it as `batches/<id>/retry-<n>.jsonl`,
 * in the same JSON Lines form, for the retry execution's ItemReader.
 */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { RetryTaskFiles } from '../domain/ports';
import type { Task } from '../domain/types';

export const retryTasksKeyOf = (batchId: string, retry: number) => `batches/${batchId}/retry-${retry}.jsonl`;

export class S3RetryTaskFiles implements RetryTaskFiles {
  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
  ) {}

  async readTasks(tasksKey: string): Promise<Task[]> {
    const { Body } = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: tasksKey }));
    const text = (await Body?.transformToString('utf8')) ?? '';
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as Task);
  }

  async putRetryTasks(batchId: string, retry: number, tasks: readonly Task[]): Promise<{ bucket: string; key: string }> {
    const key = retryTasksKeyOf(batchId, retry);
    const body = tasks.map((task) => JSON.stringify(task)).join('\n');
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/x-ndjson' }));
    return { bucket: this.bucket, key };
  }

  async deleteRetryTasks(batchId: string, retries: number): Promise<void> {
    for (let retry = 1; retry <= retries; retry++) {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: retryTasksKeyOf(batchId, retry) }));
    }
  }
}
