/**
 * The file jobs: the work that moves whole files, one STANDARD execution per
 * job, so each is retried, bounded and visible in the Step Functions console
 * by name (`prepare-<batchId>`, `export-<batchId>-<attempt>`):
 *
 *   Route job ─prepare─▶ Prepare tasks file ─▶ Done
 *             └export──▶ Export results ─────▶ Done
 *   (either, once its retries are spent) ─▶ Record job failure ─▶ Job failed
 *
 * A batch whose file cannot be validated ends failed with the error, and an
 * export that cannot be built ends failed (the next request builds it
 * again): a job never leaves its batch waiting in silence.
 */
import { Duration } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';

export const FILE_JOB_STATE_NAMES = Object.freeze({
  routeJob: 'Route job',
  prepareTasksFile: 'Prepare tasks file',
  exportResults: 'Export results',
  recordJobFailure: 'Record job failure',
  done: 'Done',
  jobFailed: 'Job failed',
});

/**
 * How a tasks file's validation execution is named: `prepare-<batchId>`
 * (lambdas/adapters/file-jobs.ts names it). The API may stop those, and no
 * other execution of the file jobs (test/infra/iam-matches-code.test.ts
 * checks the two agree).
 */
export const PREPARE_EXECUTION_PREFIX = 'prepare-';

/**
 * A job's Lambda call fails on storage errors the SDK's own retries did not
 * absorb, or on Lambda's: tried three more times, 5 s doubling. A pass that
 * timed out (15 minutes) is not tried again: it would time out again.
 */
const JOB_RETRY: sfn.RetryProps = {
  errors: ['States.ALL'],
  interval: Duration.seconds(5),
  backoffRate: 2,
  maxAttempts: 3,
  jitterStrategy: sfn.JitterType.FULL,
};

export interface FileJobsWorkflowProps {
  fileJobsFunction: lambda.IFunction;
}

export class FileJobsWorkflow extends Construct {
  readonly definition: sfn.IChainable;

  constructor(scope: Construct, id: string, props: FileJobsWorkflowProps) {
    super(scope, id);
    const names = FILE_JOB_STATE_NAMES;
    const done = new sfn.Succeed(this, names.done);
    const jobFailed = new sfn.Fail(this, names.jobFailed, {
      error: 'Fleet.FileJobFailed',
      cause: 'the job failed after its retries; its batch or export was marked failed with the error',
    });
    const recordFailure = new tasks.LambdaInvoke(this, names.recordJobFailure, {
      lambdaFunction: props.fileJobsFunction,
      payload: sfn.TaskInput.fromObject({
        action: 'failed',
        job: sfn.JsonPath.objectAt('$.job'),
        error: sfn.JsonPath.objectAt('$.error'),
      }),
      resultPath: sfn.JsonPath.DISCARD,
      retryOnServiceExceptions: true,
    });
    recordFailure.addRetry(JOB_RETRY);
    recordFailure.next(jobFailed);

    const job = (name: string, payload: Record<string, unknown>) => {
      const invoke = new tasks.LambdaInvoke(this, name, {
        lambdaFunction: props.fileJobsFunction,
        payload: sfn.TaskInput.fromObject(payload),
        resultSelector: { 'outcome.$': '$.Payload' },
        retryOnServiceExceptions: false,
      });
      invoke.addRetry({ ...JOB_RETRY, errors: ['Sandbox.Timedout', 'States.Timeout'], maxAttempts: 0 });
      invoke.addRetry(JOB_RETRY);
      // The job's input travels on as `job`, for the failure record.
      invoke.addCatch(new sfn.Pass(this, `${name} failed`, { parameters: { 'job.$': '$$.Execution.Input', 'error.$': '$.error' } }).next(recordFailure), {
        errors: ['States.ALL'],
        resultPath: '$.error',
      });
      return invoke.next(done);
    };

    this.definition = new sfn.Choice(this, names.routeJob)
      .when(sfn.Condition.stringEquals('$.job', 'prepare'), job(names.prepareTasksFile, { action: 'prepare', batchId: sfn.JsonPath.stringAt('$.batchId') }))
      .when(
        sfn.Condition.stringEquals('$.job', 'export'),
        job(names.exportResults, { action: 'export', batchId: sfn.JsonPath.stringAt('$.batchId'), attempt: sfn.JsonPath.numberAt('$.attempt') }),
      )
      .otherwise(new sfn.Fail(this, 'Unknown job', { error: 'Fleet.UnknownJob', cause: 'the execution input names no known job' }));
  }
}
