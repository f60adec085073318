/**
 * Override props in the manner of AWS Solutions Constructs: CDK's own props
 * for Fleet's functions, table and state machine, merged over Fleet's
 * defaults; and props Fleet cannot run with, refused at synth with a message
 * that names the prop.
 * https://docs.aws.amazon.com/solutions/latest/constructs/walkthrough-part-1.html (override props)
 * https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html (memory 128 MB to 10,240 MB, timeout 900 s)
 */
import { Duration } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { describe, expect, it } from 'vitest';
import type { FleetFunctionProps, FleetProps } from '../../infra/fleet';
import { logicalIdOf, synth } from './synth';

const THUMBNAIL_ENTRY = 'examples/workers/thumbnail-worker.ts';

describe('override props, merged over Fleet’s defaults', () => {
  const { stack, resources } = synth('Overrides', {
    workers: { thumbnail: { entry: THUMBNAIL_ENTRY, memorySize: 2048, functionProps: { description: 'thumbnails', memorySize: 4096 } } },
    functionProps: { environment: { TEAM: 'imaging' }, description: 'a Fleet function' },
    workerFunctionProps: { memorySize: 1536, reservedConcurrentExecutions: 50 },
    apiFunctionProps: { memorySize: 2048 },
    tableProps: { deletionProtection: true },
    stateMachineProps: { timeout: Duration.hours(6), comment: 'our batches' },
  });
  const props = (construct: Parameters<typeof logicalIdOf>[1]) => resources[logicalIdOf(stack, construct)]?.Properties ?? {};
  const fleet = stack.fleet;

  it('gives every function the common overrides, with Fleet’s environment kept beside the user’s variables', () => {
    for (const fn of [fleet.apiFunction, fleet.workerFunction, fleet.startBatchFunction, fleet.finishBatchFunction, fleet.fileJobsFunction]) {
      const variables = (props(fn).Environment as { Variables: Record<string, unknown> }).Variables;
      expect(variables.TEAM).toBe('imaging');
      expect(variables.TABLE_NAME).toEqual({ Ref: logicalIdOf(stack, fleet.table) });
    }
    expect(props(fleet.startBatchFunction).Description).toBe('a Fleet function');
  });

  it('applies workerFunctionProps to the worker functions only, a type’s own memory winning', () => {
    expect(props(fleet.workerFunction)).toMatchObject({ MemorySize: 1536, ReservedConcurrentExecutions: 50 });
    expect(props(fleet.typeWorkerFunctions.thumbnail!)).toMatchObject({ MemorySize: 2048, ReservedConcurrentExecutions: 50, Description: 'thumbnails' });
    expect(props(fleet.apiFunction).ReservedConcurrentExecutions).toBeUndefined();
    expect(props(fleet.startBatchFunction).MemorySize).toBe(512);
  });

  it('applies apiFunctionProps to the API function, keeping Fleet’s handler and runtime', () => {
    expect(props(fleet.apiFunction)).toMatchObject({ MemorySize: 2048, Handler: 'index.handler', Runtime: 'nodejs24.x' });
  });

  it('merges tableProps over Fleet’s table, whose keys and TTL stay', () => {
    expect(props(fleet.table)).toMatchObject({
      DeletionProtectionEnabled: true,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
    });
  });

  it('merges stateMachineProps over the batch state machine, whose definition stays Fleet’s', () => {
    const definition = JSON.stringify(props(fleet.stateMachine).DefinitionString);
    expect(definition).toContain('\\"TimeoutSeconds\\":21600');
    expect(definition).toContain('our batches');
    expect(definition).toContain('DISTRIBUTED');
  });
});

describe('props Fleet cannot run with, refused at synth', () => {
  const refused = (fleet: FleetProps) => () => synth('Refused', fleet);
  const python = { runtime: lambda.Runtime.PYTHON_3_13 } as FleetFunctionProps;

  it('refuses a runtime that is not Node.js, naming the prop', () => {
    expect(refused({ functionProps: python })).toThrow(/Fleet functionProps\.runtime: .*python3\.13 cannot run them/);
    expect(refused({ workerFunctionProps: python })).toThrow(/Fleet workerFunctionProps\.runtime/);
    expect(refused({ workers: { thumbnail: { entry: THUMBNAIL_ENTRY, functionProps: python } } })).toThrow(/Fleet workers\.thumbnail\.functionProps\.runtime/);
  });

  it('refuses an entry, handler or code for one of Fleet’s functions', () => {
    expect(refused({ apiFunctionProps: { entry: 'src/api.ts' } as FleetFunctionProps })).toThrow(/Fleet apiFunctionProps\.entry: Fleet sets each function's entry/);
    expect(refused({ functionProps: { handler: 'main' } as FleetFunctionProps })).toThrow(/Fleet functionProps\.handler/);
  });

  it('refuses an override of a variable Fleet sets, which would point a function elsewhere', () => {
    expect(refused({ functionProps: { environment: { TABLE_NAME: 'other' } } })).toThrow(/Fleet functionProps\.environment\.TABLE_NAME/);
    expect(refused({ workerFunctionProps: { environment: { FLEET_DLQ_URL: 'x' } } })).toThrow(/Fleet workerFunctionProps\.environment\.FLEET_DLQ_URL/);
  });

  it('refuses another key schema or TTL attribute for the table', () => {
    expect(refused({ tableProps: { partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING } } })).toThrow(/Fleet tableProps\.partitionKey: Fleet's items are keyed by pk \(S\); got id \(S\)/);
    expect(refused({ tableProps: { sortKey: { name: 'sk', type: dynamodb.AttributeType.NUMBER } } })).toThrow(/Fleet tableProps\.sortKey/);
    expect(refused({ tableProps: { timeToLiveAttribute: 'ttl' } })).toThrow(/Fleet tableProps\.timeToLiveAttribute/);
  });

  it('refuses an EXPRESS parent or another definition for the batch state machine', () => {
    expect(refused({ stateMachineProps: { stateMachineType: sfn.StateMachineType.EXPRESS } })).toThrow(/Fleet stateMachineProps\.stateMachineType: .*must be STANDARD/);
    const other = { definitionBody: sfn.DefinitionBody.fromString('{}') } as FleetProps['stateMachineProps'];
    expect(refused({ stateMachineProps: other })).toThrow(/Fleet stateMachineProps\.definitionBody/);
  });

  it('refuses numbers outside what Lambda and Fleet accept', () => {
    expect(refused({ workerMemorySize: 64 })).toThrow(/Fleet workerMemorySize: Lambda memory is a whole number of MB from 128 to 10240, got 64/);
    expect(refused({ apiFunctionProps: { memorySize: 20_000 } })).toThrow(/Fleet apiFunctionProps\.memorySize/);
    expect(refused({ retentionDays: 0 })).toThrow(/Fleet retentionDays: must be a whole number from 1, got 0/);
    expect(refused({ maxTasksPerBatch: 1.5 })).toThrow(/Fleet maxTasksPerBatch/);
    expect(refused({ workers: { thumbnail: { entry: THUMBNAIL_ENTRY, timeout: Duration.minutes(16) } } })).toThrow(/Fleet workers\.thumbnail\.timeout: a Lambda timeout is from 1 second to 15 minutes, got 960 s/);
  });

  it('refuses a worker entry that is not a file, saying where it looked', () => {
    expect(refused({ workers: { resize2: { entry: 'src/workers/missing.ts' } } })).toThrow(/Fleet workers\.resize2\.entry: src\/workers\/missing\.ts is not a file \(relative entries are resolved from /);
  });
});
