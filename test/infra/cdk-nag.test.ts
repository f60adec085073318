/**
 * cdk-nag's AwsSolutions pack over the synthesized Fleet: zero findings
 * left unacknowledged, and every acknowledgment Fleet makes is one the pack
 * actually raises, with a written reason (infra/fleet.ts, acknowledgeNagFindings).
 */
import { App, Stack, Validations, type PolicyViolation } from 'aws-cdk-lib';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Fleet, type FleetProps } from '../../infra/fleet';
import { FleetStack } from '../../infra/fleet-stack';

const CONTEXT = { 'aws:cdk:bundling-stacks': [], '@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2': true };

/** Synthesizes a stack, then runs the pack over it the way the validation plugin does. */
function nag(build: (app: App) => Stack): { violations: PolicyViolation[]; acknowledged: Map<string, string> } {
  const app = new App({ context: CONTEXT });
  const stack = build(app);
  app.synth();
  const report = new AwsSolutionsChecks().validateScope(stack);
  return { violations: report.violations, acknowledged: acknowledgmentsIn(stack) };
}

/** Every acknowledgment recorded in the construct tree: finding id → reason. */
function acknowledgmentsIn(root: IConstruct): Map<string, string> {
  const found = new Map<string, string>();
  for (const construct of root.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY || !entry.data) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) found.set(id.replace(/^annotation::/i, ''), reason);
    }
  }
  return found;
}

const describeViolations = (violations: PolicyViolation[]) =>
  violations.map((v) => `${v.ruleName} on ${v.violatingResources.map((r) => r.constructPath).join(', ')}`).join('\n');

afterEach(() => {
  vi.restoreAllMocks();
});

describe('cdk-nag AwsSolutions', () => {
  it('finds nothing unacknowledged in the Fleet stack as deployed', () => {
    const { violations } = nag((app) => new FleetStack(app, 'Nag'));

    expect(describeViolations(violations)).toBe('');
  });

  it('finds nothing unacknowledged with every option changed and the construct under another id', () => {
    const props: FleetProps = {
      authorization: { jwt: { issuer: 'https://issuer.example.com', audience: ['fleet'] } },
      throttle: { rateLimit: 5 },
      childExecutionType: sfn.StateMachineType.STANDARD,
      stateMachineLogLevel: sfn.LogLevel.ALL,
      retentionDays: 30,
      workers: { thumbnail: { entry: 'examples/workers/thumbnail-worker.ts' } },
      autoscaling: { min: 1, max: 20 },
      tasksFileBuckets: ['deployer-tasks-files', 'more.tasks-files'],
    };

    const { violations } = nag((app) => {
      const stack = new Stack(app, 'Custom');
      new Fleet(stack, 'MyOwnFleet', props);
      return stack;
    });

    expect(describeViolations(violations)).toBe('');
  });

  it('still reports what an option gives up: tracing turned off is an SF2 finding for the user to own', () => {
    const { violations } = nag((app) => {
      const stack = new Stack(app, 'NoTracing');
      new Fleet(stack, 'Fleet', { tracing: false });
      return stack;
    });

    expect(violations.map((v) => v.ruleName)).toEqual(['AwsSolutions-SF2']);
  });

  it('passes as a validation plugin: synthesis is not interrupted', () => {
    const app = new App({ context: CONTEXT });
    new FleetStack(app, 'Plugin');
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));

    expect(() => app.synth()).not.toThrow();
  });

  for (const [label, fleet] of [
    ['as deployed', undefined],
    // Each listed bucket's objects are a finding of their own, acknowledged only when listed.
    ['with tasksFileBuckets', { tasksFileBuckets: ['deployer-tasks-files'] }],
  ] as [string, FleetProps | undefined][]) {
    it(`acknowledges only findings the pack raises, each with a written reason (${label})`, () => {
      // Arrange: what Fleet acknowledges, then what the pack says without the acknowledgments.
      const { acknowledged } = nag((app) => new FleetStack(app, 'WithAcks', { fleet }));
      vi.spyOn(Validations.prototype, 'acknowledge').mockImplementation(() => undefined);

      // Act
      const { violations } = nag((app) => new FleetStack(app, 'WithoutAcks', { fleet }));

      // Assert: the same findings, none stale, none missing.
      expect(new Set(violations.map((v) => v.ruleName))).toEqual(new Set(acknowledged.keys()));
      for (const [id, reason] of acknowledged) {
        expect(reason.length, `the reason for ${id} says too little: "${reason}"`).toBeGreaterThanOrEqual(60);
      }
      expect([...acknowledged.keys()].some((id) => id.includes('s3:::deployer-tasks-files/*'))).toBe(fleet !== undefined);
    });
  }

  it('acknowledges no SF1 on the file-jobs state machine: it logs ALL', () => {
    vi.spyOn(Validations.prototype, 'acknowledge').mockImplementation(() => undefined);
    const { violations } = nag((app) => new FleetStack(app, 'Unacknowledged'));
    const sf1 = violations.filter((v) => v.ruleName === 'AwsSolutions-SF1').flatMap((v) => v.violatingResources.map((r) => r.constructPath));
    expect(sf1).toEqual(['Unacknowledged/Fleet/BatchStateMachine/Resource']);
  });

  it('keeps the table encrypted with point-in-time recovery: those rules hold without any acknowledgment', () => {
    const { acknowledged } = nag((app) => new FleetStack(app, 'Table'));

    expect([...acknowledged.keys()].filter((id) => /^AwsSolutions-(DDB3|DDB4|S10|S2|APIG1|APIG4|L1|SF2)\b/.test(id))).toEqual([]);
  });
});
