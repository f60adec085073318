/**
 * The dead-letter queue of failed tasks on SQS: one message per task that
 * failed for good, for operators to inspect. Only the task's identity and its
 * failure travel, never its data (it stays in the batch's tasks file).
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { DeadLetteredTask, DeadLetterQueue } from '../domain/ports';

/** SQS takes 256 KiB per message; an error message is cut far below that. */
export const MAX_DEAD_LETTER_ERROR_CHARS = 8_192;

export class SqsDeadLetterQueue implements DeadLetterQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async send(task: DeadLetteredTask): Promise<void> {
    const body: DeadLetteredTask = { ...task, error: task.error.slice(0, MAX_DEAD_LETTER_ERROR_CHARS) };
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify(body),
        // Filterable without parsing the body, e.g. in the console's poller.
        MessageAttributes: { batchId: { DataType: 'String', StringValue: task.batchId } },
      }),
    );
  }
}
