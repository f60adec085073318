/** Batch executions on the parent state machine: start, stop, and live concurrency. */
import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  ListMapRunsCommand,
  RedriveExecutionCommand,
  StartExecutionCommand,
  StopExecutionCommand,
  UpdateMapRunCommand,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import type { BatchExecutionInput, ExecutionNameOf, RetryWorkflow, WorkflowStarter } from '../domain/ports';

export interface StepFunctionsWorkflowOptions {
  /**
   * The name of a batch's current execution. A batch's first execution is
   * named after it; retry-failed starts `<batchId>-retry-<n>`, so stop,
   * running checks and UpdateMapRun must look its name up.
   * @default - every batch runs the execution named after it
   */
  executionNameOf?: ExecutionNameOf;
}

export class StepFunctionsWorkflow implements WorkflowStarter, RetryWorkflow {
  constructor(
    private readonly client: SFNClient,
    private readonly stateMachineArn: string,
    private readonly options: StepFunctionsWorkflowOptions = {},
  ) {}

  /** A batch's first execution is named after it, so its ARN follows from the batch id. */
  executionArnOf(batchId: string): string {
    return this.arnOfExecution(batchId);
  }

  private arnOfExecution(executionName: string): string {
    return `${this.stateMachineArn.replace(':stateMachine:', ':execution:')}:${executionName}`;
  }

  /** The batch's current execution: its first, or its latest retry-failed. */
  private async currentExecutionArn(batchId: string): Promise<string> {
    return this.arnOfExecution(this.options.executionNameOf ? await this.options.executionNameOf(batchId) : batchId);
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

  async startRetry(input: BatchExecutionInput, executionName: string): Promise<string> {
    try {
      const { executionArn } = await this.client.send(
        new StartExecutionCommand({ stateMachineArn: this.stateMachineArn, name: executionName, input: JSON.stringify(input) }),
      );
      return executionArn ?? '';
    } catch (error) {
      if (error instanceof ExecutionAlreadyExists) return this.arnOfExecution(executionName);
      throw error;
    }
  }

  async executionStatus(executionName: string): Promise<string | undefined> {
    try {
      const { status } = await this.client.send(new DescribeExecutionCommand({ executionArn: this.arnOfExecution(executionName) }));
      return status;
    } catch (error) {
      if (error instanceof ExecutionDoesNotExist) return undefined;
      throw error;
    }
  }

  async redrive(executionName: string): Promise<void> {
    await this.client.send(new RedriveExecutionCommand({ executionArn: this.arnOfExecution(executionName) }));
  }

  async stopBatch(batchId: string): Promise<void> {
    try {
      await this.client.send(
        new StopExecutionCommand({ executionArn: await this.currentExecutionArn(batchId), error: 'Fleet.Cancelled', cause: 'cancelBatch was called' }),
      );
    } catch (error) {
      if (error instanceof ExecutionDoesNotExist) return;
      throw error;
    }
  }

  async isBatchRunning(batchId: string): Promise<boolean> {
    try {
      const { status } = await this.client.send(new DescribeExecutionCommand({ executionArn: await this.currentExecutionArn(batchId) }));
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
      ({ mapRuns = [] } = await this.client.send(new ListMapRunsCommand({ executionArn: await this.currentExecutionArn(batchId) })));
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
