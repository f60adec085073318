/**
 * Admission on the Fleet table and the batch state machine: the one place
 * that builds a CapacityCoordinator, for the API, the lifecycle functions and
 * the autoscaler alike (through lambdas/composition-root/admission.ts).
 */
import { CapacityCoordinator } from '../domain/capacity-coordinator';
import type { BatchRepository, ExecutionNameOf } from '../domain/ports';
import { DynamoAdmissionQueue } from './admission-queue';
import { DynamoCapacityStore } from './capacity-store';
import { dynamo } from './clients';
import { logger } from './observability';
import { StepFunctionsWorkflow } from './workflow';

export interface AdmissionWiring {
  coordinator: CapacityCoordinator;
  /** Batches' executions, found by their current name (a retried batch runs `<batchId>-retry-<n>`). */
  workflow: StepFunctionsWorkflow;
}

export function admissionFor(
  sfnClient: ConstructorParameters<typeof StepFunctionsWorkflow>[0],
  tableName: string,
  stateMachineArn: string,
  repository: Pick<BatchRepository, 'getStatus' | 'getConfig'>,
  /** The composition root's one lookup of a batch's current execution (a retried batch runs `<batchId>-retry-<n>`). */
  executionNameOf: ExecutionNameOf,
): AdmissionWiring {
  const workflow = new StepFunctionsWorkflow(sfnClient, stateMachineArn, { executionNameOf });
  const coordinator = new CapacityCoordinator({
    store: new DynamoCapacityStore(dynamo(), tableName),
    queue: new DynamoAdmissionQueue(dynamo(), tableName),
    repository,
    workflow,
    executionNameOf,
    // Never fatal: the batch stays queued, and the next pass or the reconcile admits it.
    onError: (message, error) => {
      const text = String(error);
      logger.warn(`admission: ${message}`, { error: error === undefined ? undefined : text });
    },
  });
  return { coordinator, workflow };
}
