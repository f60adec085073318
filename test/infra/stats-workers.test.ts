/**
 * Permissions GET /stats and GET /workers rely on. They add no grant of their
 * own: the fleet stats and the worker registry live in the Fleet table, which
 * the functions can already use. These checks keep it that way if the grants
 * are ever narrowed.
 */
import { App, type CfnElement, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { FleetStack } from '../../infra/fleet-stack';
import { synth } from './synth';

type Statement = { Effect: string; Action: string | string[]; Resource: unknown };
type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;

const logicalIdOf = (stack: Stack, construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);

/** The DynamoDB actions a role may take on the table (`{ Fn::GetAtt: [table, 'Arn'] }`). */
function tableActionsOf(resources: Resources, roleId: string, tableId: string): string[] {
  const actions: string[] = [];
  for (const resource of Object.values(resources)) {
    if (resource.Type !== 'AWS::IAM::Policy') continue;
    const roles = (resource.Properties?.Roles ?? []) as unknown[];
    if (!roles.some((role) => JSON.stringify(role) === JSON.stringify({ Ref: roleId }))) continue;
    for (const statement of (resource.Properties?.PolicyDocument as { Statement: Statement[] }).Statement) {
      if (statement.Effect !== 'Allow') continue;
      const targets = Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource];
      if (!targets.some((r) => JSON.stringify(r) === JSON.stringify({ 'Fn::GetAtt': [tableId, 'Arn'] }))) continue;
      actions.push(...(Array.isArray(statement.Action) ? statement.Action : [statement.Action]));
    }
  }
  return actions;
}

describe('FleetStack: stats and worker registry permissions', () => {
  let resources: Resources;
  let ids: { table: string; worker: string; api: string; finish: string };

  beforeAll(() => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [], '@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2': true } });
    const stack = new FleetStack(app, 'StatsWorkersTest');
    resources = (Template.fromStack(stack).toJSON() as { Resources: Resources }).Resources;
    const { fleet } = stack;
    ids = {
      table: logicalIdOf(stack, fleet.table),
      worker: logicalIdOf(stack, fleet.workerFunction.role!),
      api: logicalIdOf(stack, fleet.apiFunction.role!),
      finish: logicalIdOf(stack, fleet.finishBatchFunction.role!),
    };
  });

  it('lets the worker register and deregister itself (PutItem, conditional DeleteItem) on the table', () => {
    const actions = tableActionsOf(resources, ids.worker, ids.table);

    expect(actions).toEqual(expect.arrayContaining(['dynamodb:PutItem', 'dynamodb:DeleteItem']));
  });

  it('lets the API read the stats and the registry (BatchGetItem, Query) and add to the stats (UpdateItem, PutItem)', () => {
    const actions = tableActionsOf(resources, ids.api, ids.table);

    expect(actions).toEqual(expect.arrayContaining(['dynamodb:BatchGetItem', 'dynamodb:Query', 'dynamodb:UpdateItem', 'dynamodb:PutItem']));
  });

  it('lets Finish batch mark a batch counted and add its counts (PutItem, UpdateItem)', () => {
    const actions = tableActionsOf(resources, ids.finish, ids.table);

    expect(actions).toEqual(expect.arrayContaining(['dynamodb:PutItem', 'dynamodb:UpdateItem']));
  });
});

describe('FleetProps.workerListing', () => {
  const listingOf = (resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>) =>
    Object.values(resources)
      .filter((r) => r.Type === 'AWS::Lambda::Function')
      .map((r) => (r.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables?.FLEET_WORKER_LISTING);

  it('lists every attempt by default: every function is told so (the worker, and those that read the config)', () => {
    const { resources } = synth('ListingDefault');
    const values = listingOf(resources);

    expect(values.length).toBeGreaterThan(3);
    expect(new Set(values)).toEqual(new Set(['every-attempt']));
  });

  it("passes the opt-in 'long-attempts' to every function", () => {
    const { resources } = synth('ListingLong', { workerListing: 'long-attempts' });

    expect(new Set(listingOf(resources))).toEqual(new Set(['long-attempts']));
  });

  it('refuses another mode at synth, naming the prop', () => {
    expect(() => synth('ListingBad', { workerListing: 'sometimes' as never })).toThrow(/workerListing must be one of every-attempt, long-attempts; got "sometimes"/);
  });
});
