/** Synthesizing FleetStack for Template assertions, with the app context `cdk.json` gives. */
import { App, type CfnElement, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import type { FleetProps } from '../../infra/fleet';
import { FleetStack } from '../../infra/fleet-stack';

export type Resources = Record<string, { Type: string; Properties?: Record<string, unknown>; Metadata?: Record<string, unknown> }>;
export type Statement = { Effect: string; Action: string | string[]; Resource: unknown };

export function synth(id: string, fleet?: FleetProps) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [], '@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2': true } });
  const stack = new FleetStack(app, id, { fleet });
  const template = Template.fromStack(stack);
  return { stack, template, resources: (template.toJSON() as { Resources: Resources }).Resources };
}

export const logicalIdOf = (stack: Stack, construct: IConstruct) => stack.getLogicalId(construct.node.defaultChild as CfnElement);
export const asArray = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);
