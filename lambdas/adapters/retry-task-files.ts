/**
 * Task files of retry-failed: the batch's own tasks file is streamed back,
 * and the tasks to run again are written beside it as
 * `batches/<id>/retry-<n>.jsonl`, in the same JSON Lines form, for the retry
 * execution's ItemReader. Neither file is held whole: a file batch may hold
 * millions of tasks.
 */
import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { RetryTaskFiles } from '../domain/ports';
import { S3FileStorage } from './file-storage';

export const retryTasksKeyOf = (batchId: string, retry: number) => `batches/${batchId}/retry-${retry}.jsonl`;

/** Lines handed to the writer at once: one await per ~1 MB, not per line. */
const CHUNK_CHARS = 1 << 20;

export class S3RetryTaskFiles implements RetryTaskFiles {
  private readonly files: S3FileStorage;

  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
  ) {
    this.files = new S3FileStorage(client, bucket);
  }

  readTasks(tasksKey: string): AsyncIterable<Uint8Array> {
    return this.files.read(this.bucket, tasksKey);
  }

  async writeRetryTasks(batchId: string, retry: number, fill: (emit: (line: string) => Promise<void>) => Promise<void>): Promise<{ bucket: string; key: string }> {
    const key = retryTasksKeyOf(batchId, retry);
    const writer = this.files.writer(key);
    let chunk: string[] = [];
    let size = 0;
    const flush = async () => {
      if (chunk.length === 0) return;
      const text = chunk.join('');
      chunk = [];
      size = 0;
      await writer.write(text);
    };
    try {
      await fill(async (line) => {
        chunk.push(line, '\n');
        size += line.length + 1;
        if (size >= CHUNK_CHARS) await flush();
      });
      await flush();
      await writer.close();
    } catch (error) {
      await writer.abort();
      throw error;
    }
    return { bucket: this.bucket, key };
  }

  async deleteRetryTasks(batchId: string, retries: number): Promise<void> {
    for (let retry = 1; retry <= retries; retry++) {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: retryTasksKeyOf(batchId, retry) }));
    }
  }
}
