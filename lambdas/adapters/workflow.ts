/** Starts batch executions on the parent state machine. */
import { ExecutionAlreadyExists, StartExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import type { BatchExecutionInput, WorkflowStarter } from '../domain/ports';

export class StepFunctionsWorkflow implements WorkflowStarter {
  constructor(
    private readonly client: SFNClient,
    private readonly stateMachineArn: string,
  ) {}

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
      if (error instanceof ExecutionAlreadyExists) return '';
      throw error;
    }
  }
}
