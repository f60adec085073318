/**
 * Issue 4, AWS observability, as the Fleet construct synthesizes it: the
 * Powertools environment and X-Ray tracing of every Fleet function, the state
 * machine's log, the CloudWatch dashboard and the alarms with their optional
 * SNS topic.
 */
import { App, Stack, type CfnElement } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Fleet, LOCAL_ENTRY_METADATA, type FleetProps } from '../../infra/fleet';
import { FleetStack } from '../../infra/fleet-stack';
import { FLEET_METRICS, METRICS_NAMESPACE } from '../../lambdas/domain/metrics';

type Resource = { Type: string; Properties?: Record<string, unknown>; Metadata?: Record<string, unknown> };
type Resources = Record<string, Resource>;
interface AlarmMetric {
  Id: string;
  Expression?: string;
  ReturnData?: boolean;
  MetricStat?: { Metric: { Namespace: string; MetricName: string; Dimensions: { Name: string; Value: unknown }[] }; Period: number; Stat: string };
}

const CONTEXT = { 'aws:cdk:bundling-stacks': [], '@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2': true };
const THUMBNAIL_ENTRY = 'examples/workers/thumbnail-worker.ts';

function synth<S extends Stack>(build: (app: App) => S) {
  const stack = build(new App({ context: CONTEXT }));
  const template = Template.fromStack(stack);
  return { stack, template, resources: (template.toJSON() as { Resources: Resources }).Resources };
}

const fleetStack = (id: string, fleet?: FleetProps) => synth((app) => new FleetStack(app, id, { fleet }));
const logicalIdOf = (stack: Stack, construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
const ofType = (resources: Resources, type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

/** Fleet's own functions: those it tells local mode about. */
const fleetFunctions = (resources: Resources) => ofType(resources, 'AWS::Lambda::Function').filter(([, r]) => r.Metadata?.[LOCAL_ENTRY_METADATA]);

/** The dashboard body as text, each token written `<logicalId>`. */
function dashboardBody(resources: Resources): string {
  const dashboards = ofType(resources, 'AWS::CloudWatch::Dashboard');
  expect(dashboards).toHaveLength(1);
  const join = dashboards[0]?.[1].Properties?.DashboardBody as { 'Fn::Join': [string, unknown[]] };
  return join['Fn::Join'][1].map((part) => (typeof part === 'string' ? part : `<${(part as { Ref?: string }).Ref}>`)).join('');
}

/** Every alarm's metrics, keyed by alarm logical id. */
const alarmsOf = (resources: Resources) =>
  ofType(resources, 'AWS::CloudWatch::Alarm').map(([id, r]) => ({ id, properties: r.Properties ?? {}, metrics: (r.Properties?.Metrics ?? []) as AlarmMetric[] }));

const failureRateAlarm = (resources: Resources) => {
  const found = alarmsOf(resources).filter((alarm) => alarm.metrics.some((m) => m.MetricStat?.Metric.MetricName === FLEET_METRICS.tasksFailed));
  expect(found).toHaveLength(1);
  return found[0]!;
};
const throttleAlarms = (resources: Resources) =>
  alarmsOf(resources).filter((alarm) => alarm.metrics.some((m) => ['Throttles', 'ExecutionThrottled'].includes(m.MetricStat?.Metric.MetricName ?? '')));

describe('observability: the Fleet construct on AWS (issue 4)', () => {
  let deployed: ReturnType<typeof fleetStack>;

  beforeAll(() => {
    deployed = fleetStack('Obs');
  });

  describe('Powertools and X-Ray in every Fleet function', () => {
    it('sets the Powertools environment on each function, the same service for all (local mode runs them in one process)', () => {
      const functions = fleetFunctions(deployed.resources);
      expect(functions.map(([id]) => id).sort()).toEqual(
        [
          deployed.stack.fleet.apiFunction,
          deployed.stack.fleet.workerFunction,
          deployed.stack.fleet.startBatchFunction,
          deployed.stack.fleet.finishBatchFunction,
          deployed.stack.fleet.admissionReconcilerFunction,
          deployed.stack.fleet.fileJobsFunction,
        ]
          .map((fn) => logicalIdOf(deployed.stack, fn))
          .sort(),
      );
      for (const [id, fn] of functions) {
        const variables = (fn.Properties?.Environment as { Variables: Record<string, unknown> }).Variables;
        expect(variables, id).toMatchObject({
          POWERTOOLS_SERVICE_NAME: 'Obs/Fleet',
          POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
          POWERTOOLS_LOG_LEVEL: 'INFO',
          POWERTOOLS_TRACE_ENABLED: 'true',
        });
        expect(fn.Properties?.TracingConfig, id).toEqual({ Mode: 'Active' });
      }
    });

    it('grants each function X-Ray, which tracing needs', () => {
      const { fleet } = deployed.stack;
      for (const fn of [fleet.apiFunction, fleet.workerFunction, fleet.startBatchFunction, fleet.finishBatchFunction, fleet.admissionReconcilerFunction, fleet.fileJobsFunction]) {
        const role = logicalIdOf(deployed.stack, fn.role!);
        deployed.template.hasResourceProperties('AWS::IAM::Policy', {
          Roles: Match.arrayWith([{ Ref: role }]),
          PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], Resource: '*' })]) },
        });
      }
    });

    it('follows the logLevel and tracing props, per-type workers included', () => {
      const { resources } = fleetStack('Quiet', { logLevel: 'DEBUG', tracing: false, workers: { thumbnail: { entry: THUMBNAIL_ENTRY } } });
      const functions = fleetFunctions(resources);
      // API, worker, thumbnail worker, Start and Finish batch, the admission reconciler, the file jobs.
      expect(functions).toHaveLength(7);
      for (const [id, fn] of functions) {
        expect((fn.Properties?.Environment as { Variables: Record<string, unknown> }).Variables, id).toMatchObject({
          POWERTOOLS_SERVICE_NAME: 'Quiet/Fleet',
          POWERTOOLS_LOG_LEVEL: 'DEBUG',
          POWERTOOLS_TRACE_ENABLED: 'false',
        });
        expect(fn.Properties?.TracingConfig, id).toBeUndefined();
      }
      const xray = ofType(resources, 'AWS::IAM::Policy').filter(([, policy]) => JSON.stringify(policy.Properties).includes('xray:'));
      expect(xray).toEqual([]);
    });

    it('names each Fleet its own service, so two Fleets in one account keep their metrics apart', () => {
      const { resources } = synth((app) => {
        const stack = new Stack(app, 'Two');
        new Fleet(stack, 'Images');
        new Fleet(stack, 'Reports');
        return stack;
      });
      const services = new Set(fleetFunctions(resources).map(([, fn]) => (fn.Properties?.Environment as { Variables: Record<string, string> }).Variables.POWERTOOLS_SERVICE_NAME));
      expect([...services].sort()).toEqual(['Two/Images', 'Two/Reports']);
    });
  });

  it('keeps the batch state machine log at ERROR, without execution data, in its own log group, which the file jobs share', () => {
    const logs = logicalIdOf(deployed.stack, deployed.stack.fleet.stateMachineLogs);
    const machine = (construct: IConstruct) => deployed.resources[logicalIdOf(deployed.stack, construct)]?.Properties;
    expect(machine(deployed.stack.fleet.stateMachine)).toMatchObject({
      LoggingConfiguration: {
        Level: 'ERROR',
        IncludeExecutionData: false,
        Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [logs, 'Arn'] } } }],
      },
      TracingConfiguration: { Enabled: true },
    });
    // A file job is a few transitions whatever its file's size: logged in full, still without data.
    expect(machine(deployed.stack.fleet.fileJobsStateMachine)).toMatchObject({
      LoggingConfiguration: {
        Level: 'ALL',
        IncludeExecutionData: false,
        Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [logs, 'Arn'] } } }],
      },
      TracingConfiguration: { Enabled: true },
    });
  });

  describe('the dashboard', () => {
    it('graphs every Fleet metric in the Fleet namespace, for this Fleet only', () => {
      const body = dashboardBody(deployed.resources);
      for (const name of Object.values(FLEET_METRICS)) {
        expect(body, name).toContain(JSON.stringify([METRICS_NAMESPACE, name, 'service', 'Obs/Fleet']).slice(1, -1));
      }
      for (const status of ['completed', 'partial', 'failed', 'cancelled']) {
        expect(body).toContain(`"BatchesFinished","service","Obs/Fleet","status","${status}"`);
      }
      // Worker duration as average, median, p99 and maximum.
      for (const stat of ['p50', 'p99', 'Maximum']) expect(body).toContain(`"stat":"${stat}"`);
    });

    it("shows the Map Runs' concurrency, throttles and the API's 429s", () => {
      const body = dashboardBody(deployed.resources);
      const fleet = deployed.stack.fleet;
      const worker = logicalIdOf(deployed.stack, fleet.workerFunction);
      expect(body).toContain(`"AWS/Lambda","ConcurrentExecutions","FunctionName","<${worker}>"`);
      for (const fn of [fleet.apiFunction, fleet.workerFunction, fleet.startBatchFunction, fleet.finishBatchFunction]) {
        expect(body).toContain(`"AWS/Lambda","Throttles","FunctionName","<${logicalIdOf(deployed.stack, fn)}>"`);
      }
      expect(body).toContain(`"AWS/States","ExecutionThrottled","StateMachineArn","<${logicalIdOf(deployed.stack, fleet.stateMachine)}>"`);
      expect(body).toContain(`"AWS/ApiGateway","4xx","ApiId","<${logicalIdOf(deployed.stack, fleet.httpApi)}>"`);
      // The access log query that counts throttled requests exactly.
      expect(body).toContain(`SOURCE '<${logicalIdOf(deployed.stack, fleet.apiAccessLogs)}>'`);
      expect(body).toContain('filter status = \\"429\\"');
    });

    it('graphs the concurrency of per-type workers too', () => {
      const { stack, resources } = fleetStack('Typed', { workers: { thumbnail: { entry: THUMBNAIL_ENTRY } } });
      const thumbnail = logicalIdOf(stack, stack.fleet.typeWorkerFunctions.thumbnail!);
      expect(dashboardBody(resources)).toContain(`"AWS/Lambda","ConcurrentExecutions","FunctionName","<${thumbnail}>"`);
    });
  });

  describe('the alarms', () => {
    it('alarms on the task failure rate: failed / (succeeded + failed) over 5 minutes, above 10 %, missing data not breaching', () => {
      const alarm = failureRateAlarm(deployed.resources);
      expect(alarm.properties).toMatchObject({
        Threshold: 10,
        ComparisonOperator: 'GreaterThanThreshold',
        EvaluationPeriods: 1,
        TreatMissingData: 'notBreaching',
      });
      const expression = alarm.metrics.find((m) => m.ReturnData !== false)?.Expression;
      expect(expression).toBe('100 * FILL(failed, 0) / (FILL(succeeded, 0) + FILL(failed, 0))');
      const byId = Object.fromEntries(alarm.metrics.filter((m) => m.MetricStat).map((m) => [m.Id, m.MetricStat]));
      for (const [id, name] of [
        ['failed', FLEET_METRICS.tasksFailed],
        ['succeeded', FLEET_METRICS.tasksSucceeded],
      ] as const) {
        expect(byId[id]).toEqual({
          Metric: { Namespace: METRICS_NAMESPACE, MetricName: name, Dimensions: [{ Name: 'service', Value: 'Obs/Fleet' }] },
          Period: 300,
          Stat: 'Sum',
        });
      }
    });

    it('takes the failure-rate threshold from the props, and refuses one that is no percentage', () => {
      const { resources } = fleetStack('Strict', { failureRateAlarmThreshold: 2.5 });
      expect(failureRateAlarm(resources).properties.Threshold).toBe(2.5);
      // At 100 or more the alarm could never fire.
      for (const bad of [-1, 100, Number.NaN]) {
        expect(() => fleetStack(`Bad${String(bad).replace(/\W/g, '')}`, { failureRateAlarmThreshold: bad })).toThrow(/failureRateAlarmThreshold/);
      }
    });

    it('alarms at the first throttle of any Fleet function or of the state machine', () => {
      const alarms = throttleAlarms(deployed.resources);
      expect(alarms).toHaveLength(1);
      const alarm = alarms[0]!;
      expect(alarm.properties).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', EvaluationPeriods: 1, TreatMissingData: 'notBreaching' });
      const fleet = deployed.stack.fleet;
      const throttled = alarm.metrics
        .filter((m) => m.MetricStat?.Metric.MetricName === 'Throttles')
        .map((m) => (m.MetricStat?.Metric.Dimensions[0]?.Value as { Ref: string }).Ref)
        .sort();
      expect(throttled).toEqual([fleet.apiFunction, fleet.workerFunction, fleet.startBatchFunction, fleet.finishBatchFunction].map((fn) => logicalIdOf(deployed.stack, fn)).sort());
      const machine = alarm.metrics.find((m) => m.MetricStat?.Metric.MetricName === 'ExecutionThrottled');
      expect(machine?.MetricStat?.Metric).toEqual({
        Namespace: 'AWS/States',
        MetricName: 'ExecutionThrottled',
        Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: logicalIdOf(deployed.stack, fleet.stateMachine) } }],
      });
      // The expression adds up every metric the alarm reads.
      const ids = alarm.metrics.filter((m) => m.MetricStat).map((m) => m.Id);
      const expression = alarm.metrics.find((m) => m.Expression)?.Expression ?? '';
      for (const id of ids) expect(expression).toContain(`FILL(${id}, 0)`);
    });

    it('splits the throttle alarm when there are more metrics than one alarm may read (10)', () => {
      const workers = Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((type) => [`type${type}`, { entry: THUMBNAIL_ENTRY }]));
      const { stack, resources } = fleetStack('Many', { workers });
      const alarms = throttleAlarms(resources);
      expect(alarms).toHaveLength(2);
      for (const alarm of alarms) expect(alarm.metrics.filter((m) => m.MetricStat).length).toBeLessThanOrEqual(10);
      const covered = alarms.flatMap((alarm) => alarm.metrics.filter((m) => m.MetricStat?.Metric.MetricName === 'Throttles'));
      // 4 of Fleet's own functions and 8 per-type workers.
      expect(covered).toHaveLength(12);
      expect(stack.fleet.observability.alarms).toHaveLength(3);
    });

    it('sends no notification unless a topic is given', () => {
      for (const alarm of alarmsOf(deployed.resources)) {
        expect(alarm.properties.AlarmActions, alarm.id).toBeUndefined();
        expect(alarm.properties.OKActions, alarm.id).toBeUndefined();
      }
    });

    it('notifies the given SNS topic of every alarm, on ALARM and on OK', () => {
      const { stack, resources } = synth((app) => {
        const stack = new Stack(app, 'Notified');
        const topic = new sns.Topic(stack, 'Alarms');
        new Fleet(stack, 'Fleet', { alarmTopic: topic });
        return stack;
      });
      const topic = logicalIdOf(stack, stack.node.findChild('Alarms'));
      const alarms = alarmsOf(resources);
      expect(alarms).toHaveLength(2);
      for (const alarm of alarms) {
        expect(alarm.properties.AlarmActions, alarm.id).toEqual([{ Ref: topic }]);
        expect(alarm.properties.OKActions, alarm.id).toEqual([{ Ref: topic }]);
      }
    });

    it('exposes the dashboard and the alarms on the construct', () => {
      const { observability } = deployed.stack.fleet;
      expect(logicalIdOf(deployed.stack, observability.dashboard)).toBe(ofType(deployed.resources, 'AWS::CloudWatch::Dashboard')[0]?.[0]);
      expect(observability.alarms.map((alarm) => logicalIdOf(deployed.stack, alarm)).sort()).toEqual(alarmsOf(deployed.resources).map((alarm) => alarm.id).sort());
      expect(observability.alarms).toContain(observability.failureRateAlarm);
    });
  });
});
