/** Batch executions on the parent state machine: start, stop, and live concurrency. */
import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  ListMapRunsCommand,
  StartExecutionCommand,
  StopExecutionCommand,
  UpdateMapRunCommand,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import type { BatchExecutionInput, WorkflowStarter } from '../domain/ports';

export class StepFunctionsWorkflow implements WorkflowStarter {
  constructor(
    private readonly client: SFNClient,
    private readonly stateMachineArn: string,
  ) {}

  /** Executions are named after their batch, so the ARN follows from the batch id. */
  executionArnOf(batchId: string): string {
    return `${this.stateMachineArn.replace(':stateMachine:', ':execution:')}:${batchId}`;
  }

  async startBatch(input: BatchExecutionInput): Promise<string> {
    try {
      // The execution is named after the batch, so the console finds it by batch id
      // and a repeated start of the same batch cannot run it twice.
      const { executionArn } = await this.client.send(
        new StartExecutionCommand({ stateMachineArn: this.stateMachineArn, name: input.batchId, input: JSON.stringify(input) }),
      );
      return executionArn ?? '';
    } catch (error) {
      // Same name and same input: Step Functions treats the start as already done.
      if (error instanceof ExecutionAlreadyExists) return this.executionArnOf(input.batchId);
      throw error;
    }
  }

  async stopBatch(batchId: string): Promise<void> {
    try {
      await this.client.send(
        new StopExecutionCommand({ executionArn: this.executionArnOf(batchId), error: 'Fleet.Cancelled', cause: 'cancelBatch was called' }),
      );
    } catch (error) {
      if (error instanceof ExecutionDoesNotExist) return;
      throw error;
    }
  }

  async isBatchRunning(batchId: string): Promise<boolean> {
    try {
      const { status } = await this.client.send(new DescribeExecutionCommand({ executionArn: this.executionArnOf(batchId) }));
      return status === 'RUNNING';
    } catch (error) {
      if (error instanceof ExecutionDoesNotExist) return false;
      throw error;
    }
  }

  /**
   * UpdateMapRun on the batch's in-flight Map Run. One call per Map Run per
   * change; the SDK's retries absorb the ~1 request/s throttle.
   */
  async setBatchConcurrency(batchId: string, maxConcurrency: number): Promise<boolean> {
    let mapRuns;
    try {
      ({ mapRuns = [] } = await this.client.send(new ListMapRunsCommand({ executionArn: this.executionArnOf(batchId) })));
    } catch (error) {
      if (error instanceof ExecutionDoesNotExist) return false;
      throw error;
    }
    let updated = false;
    for (const mapRun of mapRuns) {
      if (mapRun.stopDate || !mapRun.mapRunArn) continue;
      await this.client.send(new UpdateMapRunCommand({ mapRunArn: mapRun.mapRunArn, maxConcurrency }));
      updated = true;
    }
    return updated;
  }
}
