/** FileJobs on the file-jobs state machine: one execution per job, named after it, so starting twice runs it once. */
import { ExecutionAlreadyExists, ExecutionDoesNotExist, StartExecutionCommand, StopExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import type { FileJobs } from '../domain/file-jobs';

/** What the file-jobs state machine is started with (infra/file-jobs-workflow.ts routes on `job`). */
export type FileJobInput = { job: 'prepare'; batchId: string } | { job: 'export'; batchId: string; attempt: number };

export const prepareExecutionName = (batchId: string) => `prepare-${batchId}`;
export const exportExecutionName = (batchId: string, attempt: number) => `export-${batchId}-${attempt}`;

export class StepFunctionsFileJobs implements FileJobs {
  constructor(
    private readonly client: SFNClient,
    private readonly stateMachineArn: string,
  ) {}

  private async start(name: string, input: FileJobInput): Promise<void> {
    try {
      await this.client.send(new StartExecutionCommand({ stateMachineArn: this.stateMachineArn, name, input: JSON.stringify(input) }));
    } catch (error) {
      // Started before (a retried submit or request): the job runs, or ran, once.
      if (error instanceof ExecutionAlreadyExists) return;
      throw error;
    }
  }

  startPrepare(batchId: string): Promise<void> {
    return this.start(prepareExecutionName(batchId), { job: 'prepare', batchId });
  }

  startExport(batchId: string, attempt: number): Promise<void> {
    return this.start(exportExecutionName(batchId, attempt), { job: 'export', batchId, attempt });
  }

  async stopPrepare(batchId: string): Promise<void> {
    const executionArn = `${this.stateMachineArn.replace(':stateMachine:', ':execution:')}:${prepareExecutionName(batchId)}`;
    try {
      await this.client.send(new StopExecutionCommand({ executionArn, error: 'Fleet.Cancelled', cause: 'cancelBatch was called' }));
    } catch (error) {
      if (error instanceof ExecutionDoesNotExist) return;
      throw error;
    }
  }
}
