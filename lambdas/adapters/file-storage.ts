/**
 * FileStorage on S3: tasks files and exports are streamed in and out, never
 * held whole. Writes go through @aws-sdk/lib-storage's Upload (multipart,
 * parts of 8 MiB, a few in flight), so a file of any size costs a few parts
 * of memory. URLs are SigV4-presigned: the caller's own HTTP client moves
 * the bytes, not the API function.
 */
import { PassThrough, type Readable } from 'node:stream';
import { once } from 'node:events';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { FileStorage, ObjectWriter } from '../domain/file-jobs';
import { TasksFileChangedError } from '../domain/tasks-file';

const PART_BYTES = 8 * 1024 * 1024;

const isMissing = (error: unknown) =>
  error instanceof S3ServiceException && (error.name === 'NotFound' || error.name === 'NoSuchKey' || error.$metadata.httpStatusCode === 404);

export class S3FileStorage implements FileStorage {
  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
    /** Signs the URLs; see clients.ts s3ForPresigning. @default client */
    private readonly presigner: S3Client = client,
  ) {}

  async head(bucket: string, key: string): Promise<{ etag: string; bytes: number } | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return { etag: head.ETag ?? '', bytes: head.ContentLength ?? 0 };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async *read(bucket: string, key: string, etag?: string): AsyncIterable<Uint8Array> {
    let body: Readable;
    try {
      // If-Match: S3 answers 412 once the object is not the one validated.
      const object = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...(etag ? { IfMatch: etag } : {}) }));
      // Checked here too, should a store ignore If-Match.
      if (etag && object.ETag !== etag) throw new TasksFileChangedError(`the tasks file s3://${bucket}/${key} changed after the batch was submitted (ETag ${etag}, now ${object.ETag})`);
      body = object.Body as Readable;
    } catch (error) {
      if (error instanceof TasksFileChangedError) throw error;
      if (isMissing(error)) throw new TasksFileChangedError(`the tasks file s3://${bucket}/${key} was deleted after the batch was submitted`);
      if (error instanceof S3ServiceException && (error.name === 'PreconditionFailed' || error.$metadata.httpStatusCode === 412)) {
        throw new TasksFileChangedError(`the tasks file s3://${bucket}/${key} changed after the batch was submitted (its ETag is no longer ${etag})`);
      }
      throw error;
    }
    try {
      for await (const chunk of body) yield chunk as Uint8Array;
    } finally {
      // A reader that stops early (a full list of errors) must not leave the socket open.
      body.destroy();
    }
  }

  writer(key: string): ObjectWriter {
    const stream = new PassThrough({ highWaterMark: PART_BYTES });
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: stream, ContentType: 'application/x-ndjson' },
      partSize: PART_BYTES,
      queueSize: 4,
      leavePartsOnError: false,
    });
    const done = upload.done();
    // Observed by close() or abort(); never an unhandled rejection meanwhile.
    done.catch(() => undefined);
    // Boxed: what was thrown may be any value, and is rethrown as it is.
    let failed: { error: unknown } | undefined;
    done.catch((error: unknown) => {
      failed = { error };
      stream.destroy();
    });
    const throwIfFailed = () => {
      if (failed) throw failed.error;
    };
    return {
      write: async (text) => {
        throwIfFailed();
        if (!stream.write(text)) await Promise.race([once(stream, 'drain'), done.then(() => undefined)]);
        throwIfFailed();
      },
      close: async () => {
        stream.end();
        await done;
      },
      abort: async () => {
        await upload.abort().catch(() => undefined);
        stream.destroy();
        await done.catch(() => undefined);
      },
    };
  }

  async remove(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  uploadUrl(key: string, expiresInSeconds: number): Promise<string> {
    return getSignedUrl(this.presigner, new PutObjectCommand({ Bucket: this.bucket, Key: key }), { expiresIn: expiresInSeconds });
  }

  downloadUrl(key: string, expiresInSeconds: number, fileName: string): Promise<string> {
    return getSignedUrl(
      this.presigner,
      new GetObjectCommand({ Bucket: this.bucket, Key: key, ResponseContentDisposition: `attachment; filename="${fileName}"`, ResponseContentType: 'application/x-ndjson' }),
      { expiresIn: expiresInSeconds },
    );
  }
}
