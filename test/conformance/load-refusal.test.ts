/**
 * A definition that uses anything Fleet's local runner does not implement is
 * refused when it is loaded, with an error naming the field, rather than run
 * with different semantics (CONVENTIONS.md: "it must fail loudly, never
 * silently ignore a field"). Every case here is valid ASL that AWS accepts
 * (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-amazon-states-language.html),
 * except the last group, which AWS refuses too.
 */
import { describe, expect, it } from 'vitest';
import { DefinitionError, loadDefinition } from '../../infra/local/asl/definition';
import { LAMBDA_INVOKE } from './harness';

type Json = Record<string, unknown>;

const task = (extra: Json = {}): Json => ({ Type: 'Task', Resource: LAMBDA_INVOKE, Parameters: { FunctionName: 'f', 'Payload.$': '$' }, End: true, ...extra });
const single = (state: Json, extra: Json = {}): Json => ({ StartAt: 'S', States: { S: state }, ...extra });

/** Fleet's own distributed Map, as synthesized, minus the parts a case changes. */
const distributedMap = (extra: Json = {}, reader: Json = {}, writer: Json = {}): Json =>
  single({
    Type: 'Map',
    End: true,
    Label: 'FleetTasks',
    ItemProcessor: { ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'EXPRESS' }, StartAt: 'T', States: { T: task() } },
    ItemReader: { Resource: 'arn:aws:states:::s3:getObject', ReaderConfig: { InputType: 'JSONL' }, Parameters: { Bucket: 'b', 'Key.$': '$.tasksKey' }, ...reader },
    ResultWriter: { Resource: 'arn:aws:states:::s3:putObject', Parameters: { Bucket: 'b', Prefix: 'p' }, WriterConfig: { OutputType: 'JSONL', Transformation: 'COMPACT' }, ...writer },
    ...extra,
  });

const choice = (rule: Json): Json => ({
  StartAt: 'C',
  States: { C: { Type: 'Choice', Choices: [{ Next: 'Done', ...rule }], Default: 'Done' }, Done: { Type: 'Succeed' } },
});

/** [what, definition, text the error must contain (the field)] */
const UNSUPPORTED: [string, Json, string][] = [
  // Task fields
  ['Task HeartbeatSeconds', single(task({ HeartbeatSeconds: 60 })), 'HeartbeatSeconds'],
  ['Task HeartbeatSecondsPath', single(task({ HeartbeatSecondsPath: '$.hb' })), 'HeartbeatSecondsPath'],
  ['Task Credentials', single(task({ Credentials: { RoleArn: 'arn:aws:iam::1:role/r' } })), 'Credentials'],
  ['Task Assign (variables)', single(task({ Assign: { x: 1 } })), 'Assign'],
  ['Task Arguments (JSONata)', single(task({ Parameters: undefined, Arguments: { FunctionName: 'f' } })), 'Arguments'],
  ['a Resource other than lambda:invoke (sqs:sendMessage)', single(task({ Resource: 'arn:aws:states:::sqs:sendMessage' })), 'Resource'],
  ['a Lambda function ARN as Resource (the legacy integration)', single(task({ Resource: 'arn:aws:lambda:us-east-1:123456789012:function:f' })), 'Resource'],
  ['lambda:invoke.waitForTaskToken', single(task({ Resource: `${LAMBDA_INVOKE}.waitForTaskToken` })), 'Resource'],
  // Retry and Catch
  ['Retry JitterStrategy other than FULL/NONE', single(task({ Retry: [{ ErrorEquals: ['E'], JitterStrategy: 'PARTIAL' }] })), 'JitterStrategy'],
  ['an unknown retrier field', single(task({ Retry: [{ ErrorEquals: ['E'], MaxAttemptsPath: '$.n' }] })), 'MaxAttemptsPath'],
  // State types and top-level fields
  ['a Parallel state', single({ Type: 'Parallel', Branches: [], End: true }), 'Parallel'],
  ['a state-machine TimeoutSeconds', single(task(), { TimeoutSeconds: 60 }), 'TimeoutSeconds'],
  ['QueryLanguage JSONata', single(task(), { QueryLanguage: 'JSONata' }), 'QueryLanguage'],
  ['a Fail state ErrorPath', single({ Type: 'Fail', ErrorPath: '$.error' }), 'ErrorPath'],
  // JSONPath beyond reference paths, in a state's path fields
  ['a JSONPath filter in InputPath', single(task({ InputPath: '$.items[?(@.ok)]' })), 'InputPath'],
  ['a JSONPath wildcard in OutputPath', single(task({ OutputPath: '$.items[*]' })), 'OutputPath'],
  // Choice
  ['Choice with And', choice({ And: [{ Variable: '$.a', BooleanEquals: true }] }), 'And'],
  ['Choice with Not', choice({ Not: { Variable: '$.a', BooleanEquals: true } }), 'Not'],
  ['Choice StringMatches', choice({ Variable: '$.a', StringMatches: 'x*' }), 'StringMatches'],
  ['Choice BooleanEqualsPath', choice({ Variable: '$.a', BooleanEqualsPath: '$.b' }), 'BooleanEqualsPath'],
  ['Choice TimestampEquals', choice({ Variable: '$.a', TimestampEquals: '2025-01-01T00:00:00Z' }), 'TimestampEquals'],
  // Wait
  ['Wait Timestamp', single({ Type: 'Wait', Timestamp: '2030-01-01T00:00:00Z', End: true }), 'Timestamp'],
  ['Wait TimestampPath', single({ Type: 'Wait', TimestampPath: '$.at', End: true }), 'TimestampPath'],
  // Map
  ['Map ItemBatcher', distributedMap({ ItemBatcher: { MaxItemsPerBatch: 10 } }), 'ItemBatcher'],
  ['Map ToleratedFailureCount', distributedMap({ ToleratedFailureCount: 5 }), 'ToleratedFailureCount'],
  ['Map ToleratedFailurePercentagePath', distributedMap({ ToleratedFailurePercentagePath: '$.pct' }), 'ToleratedFailurePercentagePath'],
  ['Map Iterator (the legacy field)', single({ Type: 'Map', End: true, Iterator: { StartAt: 'T', States: { T: task() } } }), 'Iterator'],
  ['Map Parameters (the legacy field)', distributedMap({ Parameters: { 'x.$': '$' } }), 'Parameters'],
  ['ItemReader InputType CSV', distributedMap({}, { ReaderConfig: { InputType: 'CSV', CSVHeaderLocation: 'FIRST_ROW' } }), 'CSVHeaderLocation'],
  ['ItemReader InputType MANIFEST', distributedMap({}, { ReaderConfig: { InputType: 'MANIFEST' } }), 'InputType'],
  ['ItemReader s3:listObjectsV2', distributedMap({}, { Resource: 'arn:aws:states:::s3:listObjectsV2' }), 'Resource'],
  ['ItemReader Parameters VersionId', distributedMap({}, { Parameters: { Bucket: 'b', Key: 'k', VersionId: 'v1' } }), 'VersionId'],
  ['ResultWriter Transformation FLATTEN', distributedMap({}, {}, { WriterConfig: { OutputType: 'JSONL', Transformation: 'FLATTEN' } }), 'Transformation'],
];

/** Payload templates (Parameters, ResultSelector, ItemSelector): refused, but as a PathError (see below). */
const UNSUPPORTED_IN_TEMPLATES: [string, Json, string][] = [
  ['a JSONPath filter in Parameters', single(task({ Parameters: { FunctionName: 'f', 'Payload.$': '$.items[?(@.ok)]' } })), 'Parameters.Payload.$'],
  ['an intrinsic function in Parameters', single(task({ Parameters: { FunctionName: 'f', 'Payload.$': "States.Format('{}', $.id)" } })), 'Parameters.Payload.$'],
  ['an intrinsic function in ResultSelector', single(task({ ResultSelector: { 'n.$': 'States.ArrayLength($.Payload)' } })), 'ResultSelector.n.$'],
  ['an intrinsic function in ItemSelector', distributedMap({ ItemSelector: { 'id.$': 'States.UUID()' } }), 'ItemSelector.id.$'],
];

/** Invalid on AWS as well: refused by both. */
const INVALID_ON_AWS_TOO: [string, Json, string][] = [
  [
    'States.ALL not alone in ErrorEquals',
    single(task({ Retry: [{ ErrorEquals: ['States.ALL', 'E'] }] })),
    'States.ALL',
  ],
  [
    'States.ALL in a retrier that is not the last',
    single(task({ Retry: [{ ErrorEquals: ['States.ALL'] }, { ErrorEquals: ['E'] }] })),
    'States.ALL',
  ],
  [
    'States.ALL in a catcher that is not the last',
    { StartAt: 'S', States: { S: task({ Catch: [{ ErrorEquals: ['States.ALL'], Next: 'D' }, { ErrorEquals: ['E'], Next: 'D' }] }), D: { Type: 'Succeed' } } },
    'States.ALL',
  ],
  ['TimeoutSeconds with TimeoutSecondsPath', single(task({ TimeoutSeconds: 5, TimeoutSecondsPath: '$.t' })), 'TimeoutSeconds'],
  [
    'ToleratedFailurePercentage on an inline Map',
    single({ Type: 'Map', End: true, ToleratedFailurePercentage: 10, ItemProcessor: { StartAt: 'T', States: { T: task() } } }),
    'ToleratedFailurePercentage',
  ],
];

const ERRORS_PAGE = 'https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html';
const TASK_PAGE = 'https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html';
const WAIT_PAGE = 'https://docs.aws.amazon.com/step-functions/latest/dg/state-wait.html';
const DISTRIBUTED_PAGE = 'https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html';
const ITEMREADER_PAGE = 'https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html';
const RESULTWRITER_PAGE = 'https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html';

const retrier = (fields: Json): Json => single(task({ Retry: [{ ErrorEquals: ['E'], ...fields }] }));

/**
 * Values out of the range AWS validates: [what, definition, the field and state the error must name, the page].
 * Retrier: IntervalSeconds and MaxDelaySeconds are positive integers, MaxAttempts
 * a non-negative integer (at most 99999999), BackoffRate at least 1.0 (ERRORS_PAGE);
 * TimeoutSeconds a positive integer (TASK_PAGE); Wait Seconds a non-negative integer.
 */
const OUT_OF_RANGE: [string, Json, string, string][] = [
  ['BackoffRate below 1', retrier({ BackoffRate: 0.5 }), 'States["S"].Retry[0].BackoffRate', ERRORS_PAGE],
  ['BackoffRate not a number', retrier({ BackoffRate: '2' }), 'States["S"].Retry[0].BackoffRate', ERRORS_PAGE],
  ['IntervalSeconds 0', retrier({ IntervalSeconds: 0 }), 'States["S"].Retry[0].IntervalSeconds', ERRORS_PAGE],
  ['IntervalSeconds not an integer', retrier({ IntervalSeconds: 1.5 }), 'States["S"].Retry[0].IntervalSeconds', ERRORS_PAGE],
  ['IntervalSeconds above 99999999', retrier({ IntervalSeconds: 100_000_000 }), 'States["S"].Retry[0].IntervalSeconds', ERRORS_PAGE],
  ['MaxDelaySeconds 0', retrier({ MaxDelaySeconds: 0 }), 'States["S"].Retry[0].MaxDelaySeconds', ERRORS_PAGE],
  ['MaxDelaySeconds above 31622400', retrier({ MaxDelaySeconds: 31_622_401 }), 'States["S"].Retry[0].MaxDelaySeconds', ERRORS_PAGE],
  ['a negative MaxAttempts', retrier({ MaxAttempts: -1 }), 'States["S"].Retry[0].MaxAttempts', ERRORS_PAGE],
  ['MaxAttempts above 99999999', retrier({ MaxAttempts: 100_000_000 }), 'States["S"].Retry[0].MaxAttempts', ERRORS_PAGE],
  ['a Map retrier out of range too', distributedMap({ Retry: [{ ErrorEquals: ['E'], BackoffRate: 0 }] }), 'States["S"].Retry[0].BackoffRate', ERRORS_PAGE],
  ['Task TimeoutSeconds 0', single(task({ TimeoutSeconds: 0 })), 'States["S"].TimeoutSeconds', TASK_PAGE],
  ['Task TimeoutSeconds negative', single(task({ TimeoutSeconds: -5 })), 'States["S"].TimeoutSeconds', TASK_PAGE],
  ['Task TimeoutSeconds not an integer', single(task({ TimeoutSeconds: 2.5 })), 'States["S"].TimeoutSeconds', TASK_PAGE],
  ['Wait Seconds negative', single({ Type: 'Wait', Seconds: -1, End: true }), 'States["S"].Seconds', WAIT_PAGE],
  ['Wait Seconds above 99999999', single({ Type: 'Wait', Seconds: 100_000_000, End: true }), 'States["S"].Seconds', WAIT_PAGE],
  ['ToleratedFailurePercentage above 100', distributedMap({ ToleratedFailurePercentage: 101 }), 'States["S"].ToleratedFailurePercentage', DISTRIBUTED_PAGE],
  ['ToleratedFailurePercentage negative', distributedMap({ ToleratedFailurePercentage: -1 }), 'States["S"].ToleratedFailurePercentage', DISTRIBUTED_PAGE],
  ['MaxConcurrency negative', distributedMap({ MaxConcurrency: -1 }), 'States["S"].MaxConcurrency', DISTRIBUTED_PAGE],
  ['MaxConcurrency above 10,000 on a Distributed Map', distributedMap({ MaxConcurrency: 10_001 }), 'States["S"].MaxConcurrency', DISTRIBUTED_PAGE],
  ['ReaderConfig MaxItems negative', distributedMap({}, { ReaderConfig: { InputType: 'JSONL', MaxItems: -1 } }), 'ItemReader.ReaderConfig.MaxItems', ITEMREADER_PAGE],
  [
    'an unknown WriterConfig OutputType',
    distributedMap({}, {}, { WriterConfig: { OutputType: 'CSV', Transformation: 'COMPACT' } }),
    'States["S"].ResultWriter.WriterConfig.OutputType',
    RESULTWRITER_PAGE,
  ],
  ['a WriterConfig without OutputType', distributedMap({}, {}, { WriterConfig: { Transformation: 'COMPACT' } }), 'ResultWriter.WriterConfig.OutputType', RESULTWRITER_PAGE],
  [
    'an unknown WriterConfig Transformation',
    distributedMap({}, {}, { WriterConfig: { OutputType: 'JSONL', Transformation: 'SQUASH' } }),
    'States["S"].ResultWriter.WriterConfig.Transformation',
    RESULTWRITER_PAGE,
  ],
];

describe('loadDefinition refuses values out of the range AWS validates, naming the field and its state', () => {
  for (const [what, definition, field, page] of OUT_OF_RANGE) {
    it(`${what} (${page})`, () => {
      expect(() => loadDefinition(JSON.stringify(definition))).toThrow(DefinitionError);
      expect(() => loadDefinition(JSON.stringify(definition))).toThrow(field);
    });
  }

  it('a state inside a Map ItemProcessor is named with its path', () => {
    const definition = distributedMap({
      ItemProcessor: { ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'EXPRESS' }, StartAt: 'T', States: { T: task({ TimeoutSeconds: 0 }) } },
    });
    expect(() => loadDefinition(JSON.stringify(definition))).toThrow('$.States["S"].ItemProcessor.States["T"].TimeoutSeconds');
  });

  it('accepts the bounds themselves: the refusals above are about range, not the fields', () => {
    const bounds = single(
      task({
        TimeoutSeconds: 1,
        Retry: [
          { ErrorEquals: ['A'], IntervalSeconds: 1, MaxAttempts: 0, BackoffRate: 1, MaxDelaySeconds: 1 },
          { ErrorEquals: ['B'], IntervalSeconds: 99_999_999, MaxAttempts: 99_999_999, BackoffRate: 1.5, MaxDelaySeconds: 31_622_400 },
        ],
      }),
    );
    expect(() => loadDefinition(JSON.stringify(bounds))).not.toThrow();
    expect(() => loadDefinition(JSON.stringify(single({ Type: 'Wait', Seconds: 0, End: true })))).not.toThrow();
    expect(() => loadDefinition(JSON.stringify(distributedMap({ MaxConcurrency: 10_000, ToleratedFailurePercentage: 100 })))).not.toThrow();
    expect(() => loadDefinition(JSON.stringify(distributedMap({ MaxConcurrency: 0, ToleratedFailurePercentage: 0 })))).not.toThrow();
    expect(() => loadDefinition(JSON.stringify(distributedMap({}, {}, { WriterConfig: { OutputType: 'JSON', Transformation: 'NONE' } })))).not.toThrow();
  });
});

describe('loadDefinition refuses what the local runner does not implement, naming the field', () => {
  it.each(UNSUPPORTED)('%s', (_what, definition, field) => {
    expect(() => loadDefinition(JSON.stringify(definition))).toThrow(field);
  });

  it.each(INVALID_ON_AWS_TOO)('%s (invalid on AWS too)', (_what, definition, field) => {
    expect(() => loadDefinition(JSON.stringify(definition))).toThrow(field);
  });

  it.each(UNSUPPORTED_IN_TEMPLATES)('%s', (_what, definition, field) => {
    expect(() => loadDefinition(JSON.stringify(definition))).toThrow(field);
  });

  it.each([...UNSUPPORTED, ...INVALID_ON_AWS_TOO])('refuses %s with a DefinitionError', (_what, definition) => {
    expect(() => loadDefinition(JSON.stringify(definition))).toThrow(DefinitionError);
  });

  // Guards loadDefinition's own contract ("throws a DefinitionError
  // naming the first unsupported field"): definition.ts calls json-path.ts's
  // checkTemplate unwrapped, so a bad payload template escapes as a PathError.
  // Still refused at load, and the message names the field, but a caller that
  // catches DefinitionError missed it. Now wrapped; this keeps it so.
  for (const [what, definition] of UNSUPPORTED_IN_TEMPLATES) {
    it(`refuses ${what} with a DefinitionError`, () => {
      expect(() => loadDefinition(JSON.stringify(definition))).toThrow(DefinitionError);
    });
  }

  it('accepts Fleet-shaped definitions: the refusals above come from the one field each case adds', () => {
    expect(() => loadDefinition(JSON.stringify(distributedMap()))).not.toThrow();
    expect(() => loadDefinition(JSON.stringify(single(task())))).not.toThrow();
    expect(() => loadDefinition(JSON.stringify(choice({ Variable: '$.a', BooleanEquals: true })))).not.toThrow();
    expect(() => loadDefinition(JSON.stringify(single({ Type: 'Wait', SecondsPath: '$.s', End: true })))).not.toThrow();
  });
});
