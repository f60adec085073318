/**
 * The batch workflow: the one definition AWS runs and local mode runs.
 *
 *   Start batch ─▶ Capacity granted? ─yes─▶ Run tasks (Distributed Map, one child per task) ─▶ Finish batch
 *                          └─no (cancelled before it started)─▶ Not started
 *                     └─ child: Run task ──(final failure)──▶ Failure recorded
 *                                ├──(timeout backstop, crash)──▶ Record failure
 *                                └──(storage unavailable after retries)──▶ Storage unavailable (the child fails)
 *
 * Run task is a single-branch Parallel around the worker's Lambda call
 * (Invoke worker): the Parallel retries failed attempts and counts them,
 * the call inside retries what is not the task's fault.
 *
 * An execution starts only once admission gave its batch a share of the
 * fleet-wide cap (lambdas/domain/capacity-coordinator.ts): a waiting batch
 * has no execution, so no history grows while it waits.
 *
 * With per-type workers the child starts with a Choice on `$.task.type`: one
 * `Run <type> task` state per configured type (each with the same Retry,
 * timeout and Catch as Run task), and Run task for every other type.
 */
import { Duration } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { LIMITS, RETRY_BACKOFF, STORAGE_RETRY } from '../lambdas/domain/config';
import { WORKER_ERROR } from '../lambdas/domain/errors';

/** State names: what the Step Functions console shows. */
export const STATE_NAMES = Object.freeze({
  startBatch: 'Start batch',
  capacityGranted: 'Capacity granted?',
  notStarted: 'Not started',
  runTasks: 'Run tasks',
  finishBatch: 'Finish batch',
  runTask: 'Run task',
  recordFailure: 'Record failure',
  failureRecorded: 'Failure recorded',
  routeByType: 'Route by task type',
  /** Inside Run task: the Lambda call of one attempt. */
  invokeWorker: 'Invoke worker',
  storageUnavailable: 'Storage unavailable',
});

/** The state that runs a task of a type with its own worker function. */
export const runTaskStateName = (taskType: string) => `Run ${taskType} task`;

/** Inside a typed Run task: the Lambda call of one attempt. */
export const invokeWorkerStateName = (taskType: string) => `Invoke ${taskType} worker`;

/** Names the Map Run in ARNs, metrics and the console (at most 40 characters). */
export const MAP_RUN_LABEL = 'FleetTasks';

/** Lambda's own transient errors: retried whatever the batch's retry settings. */
export const LAMBDA_TRANSIENT_ERRORS = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
];

/** Lambda's own transient errors: 1 s doubling to 30 s, 6 attempts. */
const lambdaTransientRetry = (errors: string[]): sfn.RetryProps => ({
  errors,
  interval: Duration.seconds(1),
  backoffRate: 2,
  maxDelay: Duration.seconds(30),
  jitterStrategy: sfn.JitterType.FULL,
  maxAttempts: 6,
});

/**
 * The worker could not record an outcome (Fleet.StorageUnavailable): the
 * fleet's fault, not the task's, so it spends no attempt.
 */
const STORAGE_UNAVAILABLE_RETRY: sfn.RetryProps = {
  errors: [WORKER_ERROR.storageUnavailable],
  interval: Duration.seconds(STORAGE_RETRY.intervalSeconds),
  backoffRate: STORAGE_RETRY.backoffRate,
  maxDelay: Duration.seconds(STORAGE_RETRY.maxDelaySeconds),
  jitterStrategy: sfn.JitterType.FULL,
  maxAttempts: STORAGE_RETRY.maxAttempts,
};

/**
 * Start and Finish batch only read and write the table (and, for a retry,
 * the tasks bucket): any error of theirs is the fleet's, transient (storage
 * throttled or unreachable), never the batch's. Retried for about 25 minutes
 * (2 s doubling to 60 s, 30 attempts) before the execution fails; the
 * reconcile then redrives it.
 */
const LIFECYCLE_RETRY: sfn.RetryProps = {
  errors: ['States.ALL'],
  interval: Duration.seconds(2),
  backoffRate: 2,
  maxDelay: Duration.seconds(60),
  jitterStrategy: sfn.JitterType.FULL,
  maxAttempts: 30,
};

export interface BatchWorkflowProps {
  startBatchFunction: lambda.IFunction;
  finishBatchFunction: lambda.IFunction;
  workerFunction: lambda.IFunction;
  /**
   * Task types with their own worker function; every other type runs on
   * `workerFunction`. Empty or absent: the child is exactly Run task, as it
   * was before per-type workers existed.
   */
  typeWorkers?: Readonly<Record<string, lambda.IFunction>>;
  tasksBucket: s3.IBucket;
  /**
   * EXPRESS children cost ~2.6x less per short task ($29.62 against $77.48 per million, npm run cost); tasks that may run past
   * 5 minutes (Express's limit) need STANDARD.
   */
  childExecutionType: sfn.StateMachineType;
}

export class BatchWorkflow extends Construct {
  readonly definition: sfn.IChainable;

  constructor(scope: Construct, id: string, props: BatchWorkflowProps) {
    super(scope, id);

    // The lifecycle functions get the state and the state machine's own ARN,
    // which they need for UpdateMapRun and cannot take from their environment.
    const lifecyclePayload = sfn.TaskInput.fromObject({
      state: sfn.JsonPath.entirePayload,
      stateMachineArn: sfn.JsonPath.stringAt('$$.StateMachine.Id'),
    });
    const startBatch = new tasks.LambdaInvoke(this, STATE_NAMES.startBatch, {
      lambdaFunction: props.startBatchFunction,
      payload: lifecyclePayload,
      outputPath: '$.Payload',
      retryOnServiceExceptions: true,
    });
    startBatch.addRetry(LIFECYCLE_RETRY);

    // One attempt of one task on `workerFunction`: a single-branch Parallel
    // around the Lambda call. `$$.State.RetryCount` counts the retries of
    // every retrier of a state, so on one Task a Lambda throttle would use up
    // one of the task's attempts. The Parallel carries only the task's own
    // retrier (TaskAttemptFailed) and hands its RetryCount, the task's attempt,
    // to the branch through Parameters; the Task inside retries what is not
    // the task's fault (Lambda's transient errors, storage unavailable) without
    // touching that count. A Parallel's retry runs its branch again from the start.
    // https://docs.aws.amazon.com/step-functions/latest/dg/state-parallel.html
    // https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html
    const attemptOn = (stateName: string, invokeName: string, workerFunction: lambda.IFunction) => {
      const invoke = new tasks.LambdaInvoke(this, invokeName, {
        lambdaFunction: workerFunction,
        // The branch's input is the attempt's payload, built by the Parallel's Parameters.
        payload: sfn.TaskInput.fromJsonPathAt('$'),
        resultSelector: { 'taskId.$': '$.Payload.taskId', 'success.$': '$.Payload.success' },
        // A backstop: the worker enforces each attempt's own deadline; this bounds
        // an attempt that hangs past it, e.g. a handler blocking its event loop.
        taskTimeout: sfn.Timeout.at('$.settings.attemptTimeoutSeconds'),
        // Retries are declared below, so their order and jitter are explicit.
        retryOnServiceExceptions: false,
      });
      // The worker could not record the attempt's outcome: the fleet's fault,
      // not the task's. Retried generously; the task runs again (at least
      // once), and its result is recorded once (first write wins).
      invoke.addRetry(STORAGE_UNAVAILABLE_RETRY);
      invoke.addRetry(lambdaTransientRetry(LAMBDA_TRANSIENT_ERRORS));
      const runTask = new sfn.Parallel(this, stateName, {
        parameters: {
          batchId: sfn.JsonPath.stringAt('$.batchId'),
          task: sfn.JsonPath.objectAt('$.task'),
          settings: sfn.JsonPath.objectAt('$.settings'),
          attempt: sfn.JsonPath.numberAt('$$.State.RetryCount'),
          executionStartTime: sfn.JsonPath.stringAt('$$.Execution.StartTime'),
        },
        // One branch: its output is the first and only element.
        resultSelector: { 'taskId.$': '$[0].taskId', 'success.$': '$[0].success' },
      });
      runTask.branch(invoke);
      runTask.addRetry({
        errors: [WORKER_ERROR.attemptFailed],
        interval: Duration.seconds(RETRY_BACKOFF.intervalSeconds),
        backoffRate: RETRY_BACKOFF.backoffRate,
        maxDelay: Duration.seconds(RETRY_BACKOFF.maxDelaySeconds),
        jitterStrategy: sfn.JitterType.FULL,
        // The cap; each batch's maxRetries is enforced by the worker, which stops
        // throwing TaskAttemptFailed once the batch's retries are spent.
        maxAttempts: LIMITS.maxRetries,
      });
      return runTask;
    };
    const runTask = attemptOn(STATE_NAMES.runTask, STATE_NAMES.invokeWorker, props.workerFunction);
    const typedRuns = Object.entries(props.typeWorkers ?? {}).map(([taskType, fn]) => ({
      taskType,
      run: attemptOn(runTaskStateName(taskType), invokeWorkerStateName(taskType), fn),
    }));

    const failureRecorded = new sfn.Succeed(this, STATE_NAMES.failureRecorded, {
      comment: 'The worker recorded this task as failed; the child ends without failing the Map Run.',
    });
    const recordFailure = new tasks.LambdaInvoke(this, STATE_NAMES.recordFailure, {
      lambdaFunction: props.workerFunction,
      payload: sfn.TaskInput.fromObject({
        action: 'recordFailure',
        batchId: sfn.JsonPath.stringAt('$.batchId'),
        task: sfn.JsonPath.objectAt('$.task'),
        // The batch's settings say which counters its outcomes go to.
        settings: sfn.JsonPath.objectAt('$.settings'),
        error: sfn.JsonPath.objectAt('$.error'),
      }),
      resultSelector: { 'taskId.$': '$.Payload.taskId', 'success.$': '$.Payload.success' },
      retryOnServiceExceptions: true,
    });
    // A throttled Record failure must not lose its task: Lambda's throttle is
    // not among retryOnServiceExceptions' errors.
    recordFailure.addRetry(lambdaTransientRetry(['Lambda.TooManyRequestsException']));
    recordFailure.addRetry(STORAGE_UNAVAILABLE_RETRY);
    // Storage stayed unavailable through every retry: nothing can be recorded,
    // so the child fails. The Map tolerates it and Finish batch counts the task lost.
    const storageUnavailable = new sfn.Fail(this, STATE_NAMES.storageUnavailable, {
      error: WORKER_ERROR.storageUnavailable,
      cause: 'the task outcome could not be recorded: storage stayed unavailable through every retry',
    });
    // Whichever function ran the attempt, the default worker records a failure
    // it could not record itself: recordFailure needs no task handler.
    for (const run of [runTask, ...typedRuns.map((t) => t.run)]) {
      run.addCatch(failureRecorded, { errors: [WORKER_ERROR.failed], resultPath: sfn.JsonPath.DISCARD });
      run.addCatch(storageUnavailable, { errors: [WORKER_ERROR.storageUnavailable], resultPath: sfn.JsonPath.DISCARD });
      run.addCatch(recordFailure, { errors: ['States.ALL'], resultPath: '$.error' });
    }
    let taskProcessor: sfn.IChainable = runTask;
    if (typedRuns.length > 0) {
      const route = new sfn.Choice(this, STATE_NAMES.routeByType);
      for (const { taskType, run } of typedRuns) route.when(sfn.Condition.stringEquals('$.task.type', taskType), run);
      taskProcessor = route.otherwise(runTask);
    }

    const runTasks = new sfn.DistributedMap(this, STATE_NAMES.runTasks, {
      label: MAP_RUN_LABEL,
      itemReader: new sfn.S3JsonLItemReader({ bucket: props.tasksBucket, key: sfn.JsonPath.stringAt('$.tasksKey') }),
      itemSelector: {
        batchId: sfn.JsonPath.stringAt('$.batchId'),
        task: sfn.JsonPath.objectAt('$$.Map.Item.Value'),
        settings: sfn.JsonPath.objectAt('$.settings'),
      },
      // Read from the batch's start, and changed while it runs by UpdateMapRun.
      maxConcurrencyPath: sfn.JsonPath.stringAt('$.maxConcurrency'),
      mapExecutionType: props.childExecutionType,
      // Task failures never fail a child (they are caught and recorded), so a
      // failed child means one lost to infrastructure: it must not stop the
      // others. Finish batch counts its task as failed.
      toleratedFailurePercentage: 100,
      // Child outputs go to S3, not into the state: 100,000 of them exceed 256 KiB.
      resultWriterV2: new sfn.ResultWriterV2({
        bucket: props.tasksBucket,
        prefix: 'map-runs',
        writerConfig: new sfn.WriterConfig({ transformation: sfn.Transformation.COMPACT, outputType: sfn.OutputType.JSONL }),
      }),
      resultPath: '$.mapRun',
    });
    runTasks.itemProcessor(taskProcessor);

    const finishBatch = new tasks.LambdaInvoke(this, STATE_NAMES.finishBatch, {
      lambdaFunction: props.finishBatchFunction,
      payload: lifecyclePayload,
      outputPath: '$.Payload',
      retryOnServiceExceptions: true,
    });
    finishBatch.addRetry(LIFECYCLE_RETRY);
    runTasks.addCatch(finishBatch, { errors: ['States.ALL'], resultPath: '$.failure' });

    // Admission started this execution once the batch held a share of the cap;
    // a batch cancelled in the meantime runs nothing.
    const notStarted = new sfn.Succeed(this, STATE_NAMES.notStarted, { comment: 'The batch was cancelled before its execution started.' });
    const capacityGranted = new sfn.Choice(this, STATE_NAMES.capacityGranted)
      .when(sfn.Condition.booleanEquals('$.admitted', true), runTasks.next(finishBatch))
      .otherwise(notStarted);
    this.definition = startBatch.next(capacityGranted);
  }
}
