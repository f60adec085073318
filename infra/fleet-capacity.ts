/**
 * Fleet's capacity: the policy that lets the functions which hand the
 * fleet-wide cap around re-share it and admit batches, the admission
 * reconciler run every minute, and the optional autoscaler (FleetProps.autoscaling)
 * with its schedule. Made in the Fleet construct's own scope under the ids
 * they always had, so their logical IDs do not move.
 */
import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { DEFAULT_DEAD_BAND, DEFAULT_TASKS_PER_WORKER, parseAutoscalingPolicy } from '../lambdas/domain/autoscaling';
import { updateMapRunsStatement } from './fleet-api';
import { own, TABLE_READ_WRITE_ACTIONS, type FleetFunctionFactory } from './fleet-functions';
import type { FleetAutoscalingProps } from './fleet-props';

/** `arn:...:execution:<state machine name>:*`: every execution of the batch state machine. */
export function executionsArnOf(stateMachine: sfn.StateMachine): string {
  return Stack.of(stateMachine).formatArn({
    service: 'states',
    resource: 'execution',
    resourceName: `${stateMachine.stateMachineName}:*`,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}

/**
 * Finish batch hands the fleet-wide cap on: it re-shares it (other batches'
 * Map Runs change) and admits the next batches (their executions start).
 * The autoscaler and the reconciler do the same (they attach to it later).
 * A standalone policy (id CapacitySharingPolicy): were it in the lifecycle
 * functions' default policies, each would depend on the state machine that
 * invokes it, a CloudFormation cycle.
 */
export function createCapacitySharingPolicy(fleet: Construct, stateMachine: sfn.StateMachine, roles: iam.IRole[]): iam.Policy {
  return new iam.Policy(fleet, 'CapacitySharingPolicy', {
    roles,
    statements: [
      new iam.PolicyStatement({ actions: ['states:ListMapRuns', 'states:DescribeExecution'], resources: [executionsArnOf(stateMachine)] }),
      new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: [stateMachine.stateMachineArn] }),
      updateMapRunsStatement(stateMachine),
    ],
  });
}

/** Scheduler's role for one schedule, only for this account's schedules (Fleet's own, not CDK's stack-wide one). */
const scheduleRole = (fleet: Construct, id: string) =>
  new iam.Role(fleet, id, {
    assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com').withConditions({ StringEquals: { 'aws:SourceAccount': Stack.of(fleet).account } }),
  });

export interface CapacityFunctionProps {
  readonly table: dynamodb.ITable;
  readonly stateMachine: sfn.StateMachine;
  readonly capacitySharing: iam.Policy;
}

/** The admission reconciler and its schedule. */
export interface AdmissionReconciler {
  readonly admissionReconcilerFunction: nodejs.NodejsFunction;
  readonly admissionReconcilerSchedule: scheduler.Schedule;
}

/**
 * The admission safety net: every minute, frees the shares of batches whose
 * execution ended without Finish batch, redrives executions that failed
 * outside their tasks, and admits whatever an interrupted pass left queued
 * (ids AdmissionReconcilerFunction, AdmissionRepairPolicy, AdmissionReconcilerSchedule).
 */
export function createAdmissionReconciler(fleet: Construct, factory: FleetFunctionFactory, props: CapacityFunctionProps): AdmissionReconciler {
  const reconciler = factory.create('AdmissionReconcilerFunction', own('lambdas/admission-reconciler.ts'), 'handler', {
    environment: { STATE_MACHINE_ARN: props.stateMachine.stateMachineArn },
    timeout: Duration.minutes(2),
  });
  reconciler.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(1) });
  props.table.grant(reconciler, ...TABLE_READ_WRITE_ACTIONS);
  if (reconciler.role) {
    props.capacitySharing.attachToRole(reconciler.role);
    // Only the reconciler redrives: an unfinished batch's execution that failed outside its tasks.
    new iam.Policy(fleet, 'AdmissionRepairPolicy', {
      roles: [reconciler.role],
      statements: [new iam.PolicyStatement({ actions: ['states:RedriveExecution'], resources: [executionsArnOf(props.stateMachine)] })],
    });
  }
  const schedule = new scheduler.Schedule(fleet, 'AdmissionReconcilerSchedule', {
    schedule: scheduler.ScheduleExpression.rate(Duration.minutes(1)),
    // A missed run is not retried: the next one, a minute later, looks afresh.
    target: new schedulerTargets.LambdaInvoke(reconciler, {
      input: scheduler.ScheduleTargetInput.fromObject({}),
      retryAttempts: 0,
      role: scheduleRole(fleet, 'AdmissionReconcilerScheduleRole'),
    }),
    description: 'Fleet admission: reclaim capacity held by ended executions, redrive failed ones, admit waiting batches',
  });
  return { admissionReconcilerFunction: reconciler, admissionReconcilerSchedule: schedule };
}

/** The autoscaler and its schedule. */
export interface Autoscaler {
  readonly autoscalerFunction: nodejs.NodejsFunction;
  readonly autoscalingSchedule: scheduler.Schedule;
}

/**
 * The built-in autoscaling policy (ids AutoscalerFunction, AutoscalingSchedule,
 * AutoscalingScheduleRole). The policy is checked here, so a bad one fails
 * `cdk synth`, not every run of the schedule.
 */
export function createAutoscaler(fleet: Construct, factory: FleetFunctionFactory, autoscaling: FleetAutoscalingProps, props: CapacityFunctionProps): Autoscaler {
  const policy = parseAutoscalingPolicy({
    tasksPerWorker: DEFAULT_TASKS_PER_WORKER,
    deadBand: DEFAULT_DEAD_BAND,
    ...autoscaling,
  });
  const autoscaler = factory.create('AutoscalerFunction', own('lambdas/autoscaler.ts'), 'handler', {
    environment: { STATE_MACHINE_ARN: props.stateMachine.stateMachineArn },
    // Re-sharing the cap calls UpdateMapRun (~1 request/s) on each running batch whose share moved.
    timeout: Duration.minutes(2),
  });
  // Scheduler invokes asynchronously: without this, Lambda itself would run a
  // failed run again up to twice, minutes later, beside the scheduled ones.
  autoscaler.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(1) });
  // It reads the batches and the config, and stores the cap and its shares.
  props.table.grant(autoscaler, ...TABLE_READ_WRITE_ACTIONS);
  // And re-shares the cap among running Map Runs, as Start and Finish batch do.
  if (autoscaler.role) props.capacitySharing.attachToRole(autoscaler.role);
  const schedule = new scheduler.Schedule(fleet, 'AutoscalingSchedule', {
    schedule: scheduler.ScheduleExpression.rate(Duration.minutes(1)),
    // The policy travels as the event: the schedule shows it, and local mode reads it from the template.
    // A missed run is not retried: the next one, a minute later, reads the backlog afresh.
    target: new schedulerTargets.LambdaInvoke(autoscaler, {
      input: scheduler.ScheduleTargetInput.fromObject(policy),
      retryAttempts: 0,
      role: scheduleRole(fleet, 'AutoscalingScheduleRole'),
    }),
    description: `Fleet autoscaling: maxConcurrentWorkers from ${policy.min} to ${policy.max}, following the backlog`,
  });
  return { autoscalerFunction: autoscaler, autoscalingSchedule: schedule };
}
