/**
 * Tasks live in S3 as JSON Lines, one task a line in run order: the
 * Distributed Map's ItemReader streams them, so a batch of 100,000 tasks
 * never travels through a 256 KiB state payload.
 */
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { TaskFileRemover, TaskStore } from '../domain/ports';
import type { Task } from '../domain/types';

export const tasksKeyOf = (batchId: string) => `batches/${batchId}/tasks.jsonl`;

export class S3TaskStore implements TaskStore, TaskFileRemover {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
  ) {}

  async putTasks(batchId: string, tasks: readonly Task[]): Promise<{ bucket: string; key: string }> {
    const key = tasksKeyOf(batchId);
    const body = tasks.map((task) => JSON.stringify(task)).join('\n');
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/x-ndjson' }));
    return { bucket: this.bucket, key };
  }

  async deleteTasks(tasksKey: string): Promise<void> {
    // S3 answers 204 for a key that does not exist, so a repeated delete is fine.
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: tasksKey }));
  }
}
