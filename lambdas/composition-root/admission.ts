/** Admission for the functions that start, stop or re-share batches' executions: one coordinator per state machine. */
import { z } from 'zod';
import { admissionFor, type AdmissionWiring } from '../adapters/admission';
import { loadEnv, sfn } from '../adapters/clients';
import { batchRepository, executionNameOf, once, tableEnv } from './shared';

const byStateMachine = new Map<string, AdmissionWiring>();

/** The coordinator and workflow of the batch state machine `stateMachineArn`. */
export function admissionOn(stateMachineArn: string): AdmissionWiring {
  let wiring = byStateMachine.get(stateMachineArn);
  if (!wiring) {
    wiring = admissionFor(sfn(), tableEnv().TABLE_NAME, stateMachineArn, batchRepository(), executionNameOf);
    byStateMachine.set(stateMachineArn, wiring);
  }
  return wiring;
}

/** The state machine a function's environment names (STATE_MACHINE_ARN): the API's, the schedules' and the file jobs'. */
export const stateMachineEnv = once(() => loadEnv({ STATE_MACHINE_ARN: z.string().min(1) }));

/** Admission on the function's own state machine (STATE_MACHINE_ARN). */
export const admission = () => admissionOn(stateMachineEnv().STATE_MACHINE_ARN);
