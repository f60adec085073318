/**
 * Fleet on the AWS console: the CloudWatch dashboard and alarms the Fleet
 * construct builds, and the Powertools environment its functions run with.
 * The metric names come from lambdas/domain/metrics.ts, the list the Lambdas
 * emit from.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { FLEET_METRICS, METRICS_NAMESPACE, STATUS_DIMENSION } from '../lambdas/domain/metrics';

/** Log levels of Fleet's functions (Powertools Logger). */
export type FleetLogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

/** Final batch statuses, as BatchesFinished's `status` dimension carries them. */
const FINAL_STATUSES = ['completed', 'partial', 'failed', 'cancelled'] as const;

/** One period for the dashboard and the alarms. */
const PERIOD = Duration.minutes(5);

/** CloudWatch lets one alarm's metric math read at most this many metrics. */
const MAX_METRICS_PER_ALARM = 10;

/**
 * The Powertools `service` of one Fleet: its stack's name and its path in the
 * stack, e.g. `Fleet-dev/Fleet`. It is the dimension every Fleet metric
 * carries, so two Fleets in one account and region keep their numbers apart.
 */
export function fleetServiceName(fleet: Construct): string {
  const stack = Stack.of(fleet);
  const within = fleet.node.scopes.slice(stack.node.scopes.length).map((scope) => scope.node.id);
  return [stack.stackName, ...within].join('/');
}

/**
 * The variables Powertools reads (lambdas/adapters/observability.ts), the
 * same for every Fleet function: local mode runs them all in one process.
 */
export function powertoolsEnvironment(options: { serviceName: string; logLevel: FleetLogLevel; tracing: boolean }): Record<string, string> {
  return {
    POWERTOOLS_SERVICE_NAME: options.serviceName,
    POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
    POWERTOOLS_LOG_LEVEL: options.logLevel,
    // Without active tracing on the function there is no segment to add to.
    POWERTOOLS_TRACE_ENABLED: String(options.tracing),
  };
}

export interface FleetObservabilityProps {
  /** The `service` dimension of this Fleet's metrics (fleetServiceName). */
  readonly serviceName: string;
  /** The functions whose throttles are graphed and alarmed on, with the workers'. */
  readonly apiFunction: lambda.IFunction;
  readonly startBatchFunction: lambda.IFunction;
  readonly finishBatchFunction: lambda.IFunction;
  /** The default worker first, then any per-type workers: the Map Runs' children invoke these. */
  readonly workerFunctions: readonly lambda.IFunction[];
  /** The batch state machine: its ExecutionThrottled. */
  readonly stateMachine: sfn.IStateMachine;
  /** The HTTP API: its 4xx. */
  readonly httpApi: apigw.IHttpApi;
  /** The API's access log, where throttled requests show as status 429. */
  readonly apiAccessLogs: logs.ILogGroup;
  /**
   * Where alarm state changes are sent (ALARM and OK).
   * @default - none: the alarms only show in the console
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Percentage of tasks failing for good over 5 minutes above which the failure-rate alarm fires.
   * @default 10
   */
  readonly failureRateAlarmThreshold?: number;
  /**
   * Throttled Lambda invocations and state-machine transitions over 5 minutes
   * at or above which the throttling alarm fires.
   * @default 1
   */
  readonly throttleAlarmThreshold?: number;
}

/**
 * The dashboard and the alarms of one Fleet. Built by the Fleet construct;
 * reach it as `fleet.observability`.
 */
export class FleetObservability extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  /** Fires when more than `failureRateAlarmThreshold` % of the tasks that ended in 5 minutes failed for good. */
  readonly failureRateAlarm: cloudwatch.Alarm;
  /**
   * Fire when Fleet's functions or its state machine are throttled. One alarm
   * reads at most 10 metrics, so with many per-type workers there are several.
   */
  readonly throttleAlarms: readonly cloudwatch.Alarm[];
  /** Every alarm above. */
  readonly alarms: readonly cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: FleetObservabilityProps) {
    super(scope, id);
    const fleetMetric = (metricName: string, options: cloudwatch.MetricOptions = {}) =>
      new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        period: PERIOD,
        statistic: cloudwatch.Stats.SUM,
        ...options,
        dimensionsMap: { service: props.serviceName, ...options.dimensionsMap },
      });

    const submitted = fleetMetric(FLEET_METRICS.batchesSubmitted, { label: 'Submitted' });
    const finished = FINAL_STATUSES.map((status) =>
      fleetMetric(FLEET_METRICS.batchesFinished, { dimensionsMap: { [STATUS_DIMENSION]: status }, label: `Finished ${status}` }),
    );
    const succeeded = fleetMetric(FLEET_METRICS.tasksSucceeded, { label: 'Succeeded' });
    const failed = fleetMetric(FLEET_METRICS.tasksFailed, { label: 'Failed (final)' });
    const retries = fleetMetric(FLEET_METRICS.taskRetries, { label: 'Retries' });
    const duration = (statistic: string) => fleetMetric(FLEET_METRICS.workerDuration, { statistic, label: statistic });

    // A period with no task ending has no data point: missing, never breaching.
    const failureRate = new cloudwatch.MathExpression({
      expression: '100 * FILL(failed, 0) / (FILL(succeeded, 0) + FILL(failed, 0))',
      usingMetrics: { succeeded, failed },
      period: PERIOD,
      label: 'Tasks failed for good (%)',
    });
    const failureRateThreshold = props.failureRateAlarmThreshold ?? 10;
    if (!(failureRateThreshold >= 0 && failureRateThreshold < 100)) {
      throw new Error(`failureRateAlarmThreshold is a percentage from 0 to below 100, got ${failureRateThreshold}`);
    }
    this.failureRateAlarm = new cloudwatch.Alarm(this, 'TaskFailureRateAlarm', {
      alarmDescription: `Fleet ${props.serviceName}: more than ${failureRateThreshold}% of the tasks that ended in 5 minutes failed for good (TasksFailed / (TasksSucceeded + TasksFailed)).`,
      metric: failureRate,
      threshold: failureRateThreshold,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    // Fleet keeps each batch's MaxConcurrency under the fleet-wide cap, so a
    // throttle means the account's Lambda concurrency or Step Functions'
    // transition quota is short of it: worth knowing at the first one.
    const functions = [props.apiFunction, ...props.workerFunctions, props.startBatchFunction, props.finishBatchFunction];
    const throttleMetrics: Array<[string, cloudwatch.IMetric]> = [
      ['machine', props.stateMachine.metricThrottled({ period: PERIOD, label: 'State machine ExecutionThrottled' })],
      ...functions.map((fn, i): [string, cloudwatch.IMetric] => [`fn${i}`, fn.metricThrottles({ period: PERIOD, label: `${fn.node.id} Throttles` })]),
    ];
    const throttleThreshold = props.throttleAlarmThreshold ?? 1;
    const throttleAlarms: cloudwatch.Alarm[] = [];
    for (let start = 0; start < throttleMetrics.length; start += MAX_METRICS_PER_ALARM) {
      const group = throttleMetrics.slice(start, start + MAX_METRICS_PER_ALARM);
      const n = throttleAlarms.length;
      throttleAlarms.push(
        new cloudwatch.Alarm(this, n === 0 ? 'ThrottleAlarm' : `ThrottleAlarm${n + 1}`, {
          alarmDescription: `Fleet ${props.serviceName}: Lambda invocations or state transitions were throttled (Lambda Throttles, Step Functions ExecutionThrottled).`,
          metric: new cloudwatch.MathExpression({
            expression: group.map(([key]) => `FILL(${key}, 0)`).join(' + '),
            usingMetrics: Object.fromEntries(group),
            period: PERIOD,
            label: 'Throttled',
          }),
          threshold: throttleThreshold,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
      );
    }
    this.throttleAlarms = throttleAlarms;
    this.alarms = [this.failureRateAlarm, ...throttleAlarms];
    if (props.alarmTopic) {
      const action = new cloudwatchActions.SnsAction(props.alarmTopic);
      for (const alarm of this.alarms) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }

    // Each running task is one worker invocation, so the workers' concurrent
    // executions are the Map Runs' concurrency (AWS/States has no per-Map Run
    // concurrency metric).
    const concurrency = props.workerFunctions.map((fn) =>
      fn.metric('ConcurrentExecutions', { statistic: cloudwatch.Stats.MAXIMUM, period: Duration.minutes(1), label: `${fn.node.id} concurrent` }),
    );
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          new cloudwatch.TextWidget({
            markdown: `# Fleet ${props.serviceName}\nBatches, tasks and their workers. Metrics in namespace \`${METRICS_NAMESPACE}\`, dimension \`service\`.`,
            width: 24,
            height: 2,
          }),
        ],
        [
          new cloudwatch.GraphWidget({ title: 'Batches', left: [submitted, ...finished], width: 8, stacked: false }),
          new cloudwatch.GraphWidget({ title: 'Tasks', left: [succeeded, failed, retries], width: 8 }),
          new cloudwatch.GraphWidget({
            title: 'Task failure rate (%)',
            left: [failureRate],
            leftAnnotations: [{ value: failureRateThreshold, label: 'alarm' }],
            leftYAxis: { min: 0, max: 100 },
            width: 8,
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Worker duration (ms per attempt)',
            left: [duration(cloudwatch.Stats.AVERAGE), duration(cloudwatch.Stats.p(50)), duration(cloudwatch.Stats.p(99)), duration(cloudwatch.Stats.MAXIMUM)],
            width: 8,
          }),
          new cloudwatch.GraphWidget({ title: 'Map Run concurrency (worker concurrent executions)', left: concurrency, width: 8 }),
          new cloudwatch.GraphWidget({
            title: 'Throttles',
            left: throttleMetrics.map(([, metric]) => metric),
            // HTTP APIs report no 429 metric of their own: 4xx includes throttled requests (the log widget counts them).
            right: [props.httpApi.metricClientError({ period: PERIOD, label: 'API 4xx (includes 429)' })],
            width: 8,
          }),
        ],
        [
          new cloudwatch.LogQueryWidget({
            title: 'API requests throttled (429), from the access log',
            logGroupNames: [props.apiAccessLogs.logGroupName],
            queryLines: ['filter status = "429"', 'stats count(*) as throttled by bin(5m)'],
            view: cloudwatch.LogQueryVisualizationType.BAR,
            width: 12,
          }),
          new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: [...this.alarms], width: 12 }),
        ],
      ],
    });
  }
}
