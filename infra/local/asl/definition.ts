/**
 * Loads an Amazon States Language definition for the local runner and
 * refuses, with the field's name, anything the runner does not implement.
 * A definition that loads here runs with AWS's documented semantics; one
 * that uses more does not run at all, rather than run differently.
 */
import { checkTemplate as checkPathTemplate, compilePath } from './json-path';

/** Payload templates, refused as a DefinitionError that names the field. */
function checkTemplate(template: unknown, where: string): void {
  try {
    checkPathTemplate(template, where);
  } catch (error) {
    throw new DefinitionError((error as Error).message);
  }
}

export interface Retrier {
  ErrorEquals: string[];
  IntervalSeconds?: number;
  MaxAttempts?: number;
  BackoffRate?: number;
  MaxDelaySeconds?: number;
  JitterStrategy?: 'FULL' | 'NONE';
}

export interface Catcher {
  ErrorEquals: string[];
  Next: string;
  ResultPath?: string | null;
}

export interface StateDefinition {
  Type: 'Task' | 'Map' | 'Parallel' | 'Pass' | 'Succeed' | 'Fail' | 'Choice' | 'Wait';
  Comment?: string;
  Next?: string;
  End?: boolean;
  InputPath?: string | null;
  OutputPath?: string | null;
  ResultPath?: string | null;
  Parameters?: unknown;
  ResultSelector?: unknown;
  Retry?: Retrier[];
  Catch?: Catcher[];
  // Task
  Resource?: string;
  TimeoutSeconds?: number;
  TimeoutSecondsPath?: string;
  // Pass
  Result?: unknown;
  // Choice
  Choices?: ChoiceRule[];
  Default?: string;
  // Wait
  Seconds?: number;
  SecondsPath?: string;
  // Fail
  Error?: string;
  Cause?: string;
  // Parallel
  Branches?: StateMachineDefinition[];
  // Map
  ItemProcessor?: StateMachineDefinition & { ProcessorConfig?: { Mode?: string; ExecutionType?: string } };
  ItemReader?: { Resource: string; ReaderConfig?: { InputType?: string; MaxItems?: number }; Parameters?: unknown };
  ItemSelector?: unknown;
  ItemsPath?: string;
  MaxConcurrency?: number;
  MaxConcurrencyPath?: string;
  ToleratedFailurePercentage?: number;
  Label?: string;
  ResultWriter?: { Resource?: string; Parameters?: unknown; WriterConfig?: { Transformation?: string; OutputType?: string } };
}

/** A Choice rule: a Variable, one comparison, and Next. */
export interface ChoiceRule {
  Variable: string;
  Next: string;
  BooleanEquals?: boolean;
  StringEquals?: string;
  NumericEquals?: number;
  NumericGreaterThan?: number;
  NumericGreaterThanEquals?: number;
  NumericLessThan?: number;
  NumericLessThanEquals?: number;
  IsPresent?: boolean;
}

/** Choice comparisons the local runner implements. */
export const CHOICE_COMPARISONS = [
  'BooleanEquals',
  'StringEquals',
  'NumericEquals',
  'NumericGreaterThan',
  'NumericGreaterThanEquals',
  'NumericLessThan',
  'NumericLessThanEquals',
  'IsPresent',
] as const;

export interface StateMachineDefinition {
  StartAt: string;
  States: Record<string, StateDefinition>;
  Comment?: string;
}

export class DefinitionError extends Error {
  override readonly name = 'DefinitionError';
}

const COMMON = ['Type', 'Comment'];
const FLOW = ['Next', 'End'];
const IO = ['InputPath', 'OutputPath'];

const ALLOWED: Record<string, readonly string[]> = {
  Task: [...COMMON, ...FLOW, ...IO, 'Resource', 'Parameters', 'ResultSelector', 'ResultPath', 'Retry', 'Catch', 'TimeoutSeconds', 'TimeoutSecondsPath'],
  Map: [
    ...COMMON,
    ...FLOW,
    ...IO,
    'ItemProcessor',
    'ItemReader',
    'ItemSelector',
    'ItemsPath',
    'MaxConcurrency',
    'MaxConcurrencyPath',
    'Label',
    'ResultWriter',
    'ToleratedFailurePercentage',
    'ResultSelector',
    'ResultPath',
    'Retry',
    'Catch',
  ],
  // JSONPath fields only: Arguments, Output, Assign and QueryLanguage are refused by name.
  Parallel: [...COMMON, ...FLOW, ...IO, 'Branches', 'Parameters', 'ResultSelector', 'ResultPath', 'Retry', 'Catch'],
  Pass: [...COMMON, ...FLOW, ...IO, 'Parameters', 'Result', 'ResultPath'],
  Succeed: [...COMMON, ...IO],
  Choice: [...COMMON, ...IO, 'Choices', 'Default'],
  Wait: [...COMMON, ...FLOW, ...IO, 'Seconds', 'SecondsPath'],
  Fail: [...COMMON, 'Error', 'Cause'],
};

const RETRIER_FIELDS = ['ErrorEquals', 'IntervalSeconds', 'MaxAttempts', 'BackoffRate', 'MaxDelaySeconds', 'JitterStrategy'];
const CATCHER_FIELDS = ['ErrorEquals', 'Next', 'ResultPath'];
const TOP_FIELDS = ['StartAt', 'States', 'Comment'];
const PROCESSOR_FIELDS = ['StartAt', 'States', 'Comment', 'ProcessorConfig'];

/** Task resources the local runner can call. */
export const SUPPORTED_RESOURCES = [/^arn:[a-z-]+:states:::lambda:invoke$/];
const ITEM_READER_RESOURCE = /^arn:[a-z-]+:states:::s3:getObject$/;
const RESULT_WRITER_RESOURCE = /^arn:[a-z-]+:states:::s3:putObject$/;

/**
 * Value ranges AWS refuses when it validates a definition (CreateStateMachine's
 * InvalidDefinition), from the Amazon States Language pages of the developer
 * guide and AWS's own ASL schema: Retry
 * (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html),
 * Task (https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html),
 * Wait (https://docs.aws.amazon.com/step-functions/latest/dg/state-wait.html).
 */
export const RANGES = {
  IntervalSeconds: { min: 1, max: 99_999_999 },
  MaxAttempts: { min: 0, max: 99_999_999 },
  MaxDelaySeconds: { min: 1, max: 31_622_400 },
  TimeoutSeconds: { min: 1, max: 99_999_999 },
  WaitSeconds: { min: 0, max: 99_999_999 },
  /** A Distributed Map's: at most 10,000 children at once; 0 means that maximum. */
  MaxConcurrency: { min: 0, max: 10_000 },
  MaxItems: { min: 0, max: 100_000_000 },
} as const;

function checkInteger(value: unknown, where: string, range: { min: number; max: number }): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < range.min || value > range.max) {
    throw new DefinitionError(`${where} must be an integer from ${range.min} to ${range.max}, got ${JSON.stringify(value)}`);
  }
}

function refuseUnknown(object: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) {
      throw new DefinitionError(`${where}: field "${key}" is not implemented by Fleet's local runner`);
    }
  }
}

function checkPath(value: unknown, where: string, nullable = true): void {
  if (value === undefined || (nullable && value === null)) return;
  if (typeof value !== 'string') throw new DefinitionError(`${where} must be a JSONPath string`);
  try {
    compilePath(value);
  } catch (error) {
    throw new DefinitionError(`${where}: ${(error as Error).message}`);
  }
}

function checkStates(machine: StateMachineDefinition, where: string, topFields: readonly string[]): void {
  refuseUnknown(machine as unknown as Record<string, unknown>, topFields, where);
  if (typeof machine.StartAt !== 'string') throw new DefinitionError(`${where}.StartAt is missing`);
  const states: unknown = machine.States;
  if (!states || typeof states !== 'object') throw new DefinitionError(`${where}.States is missing`);
  if (!machine.States[machine.StartAt]) throw new DefinitionError(`${where}.StartAt names no state: "${machine.StartAt}"`);
  for (const [name, state] of Object.entries(machine.States)) {
    const at = `${where}.States["${name}"]`;
    const allowed = ALLOWED[state.Type];
    if (!allowed) throw new DefinitionError(`${at}: state Type "${state.Type}" is not implemented by Fleet's local runner`);
    refuseUnknown(state as unknown as Record<string, unknown>, allowed, at);
    if (state.Type === 'Choice') {
      checkChoice(machine, state, at);
    } else if (state.Type !== 'Succeed' && state.Type !== 'Fail') {
      if (!state.End && !state.Next) throw new DefinitionError(`${at}: needs Next or End`);
      if (state.Next && !machine.States[state.Next]) throw new DefinitionError(`${at}.Next names no state: "${state.Next}"`);
    }
    checkPath(state.InputPath, `${at}.InputPath`);
    checkPath(state.OutputPath, `${at}.OutputPath`);
    checkPath(state.ResultPath, `${at}.ResultPath`);
    checkTemplate(state.Parameters, `${at}.Parameters`);
    checkTemplate(state.ResultSelector, `${at}.ResultSelector`);
    (state.Retry ?? []).forEach((retrier, i) => {
      refuseUnknown(retrier as unknown as Record<string, unknown>, RETRIER_FIELDS, `${at}.Retry[${i}]`);
      if (!Array.isArray(retrier.ErrorEquals) || retrier.ErrorEquals.length === 0) {
        throw new DefinitionError(`${at}.Retry[${i}].ErrorEquals must be a non-empty array`);
      }
      checkInteger(retrier.IntervalSeconds, `${at}.Retry[${i}].IntervalSeconds`, RANGES.IntervalSeconds);
      checkInteger(retrier.MaxAttempts, `${at}.Retry[${i}].MaxAttempts`, RANGES.MaxAttempts);
      checkInteger(retrier.MaxDelaySeconds, `${at}.Retry[${i}].MaxDelaySeconds`, RANGES.MaxDelaySeconds);
      if (retrier.BackoffRate !== undefined && (typeof retrier.BackoffRate !== 'number' || !Number.isFinite(retrier.BackoffRate) || retrier.BackoffRate < 1)) {
        throw new DefinitionError(`${at}.Retry[${i}].BackoffRate must be a number of at least 1.0, got ${JSON.stringify(retrier.BackoffRate)}`);
      }
      const jitter: unknown = retrier.JitterStrategy;
      if (jitter !== undefined && jitter !== 'FULL' && jitter !== 'NONE') {
        throw new DefinitionError(`${at}.Retry[${i}].JitterStrategy must be FULL or NONE`);
      }
      const all = retrier.ErrorEquals.indexOf('States.ALL');
      if (all >= 0 && (retrier.ErrorEquals.length > 1 || i !== (state.Retry ?? []).length - 1)) {
        throw new DefinitionError(`${at}.Retry[${i}]: States.ALL must appear alone and in the last retrier`);
      }
    });
    (state.Catch ?? []).forEach((catcher, i) => {
      refuseUnknown(catcher as unknown as Record<string, unknown>, CATCHER_FIELDS, `${at}.Catch[${i}]`);
      if (!machine.States[catcher.Next]) throw new DefinitionError(`${at}.Catch[${i}].Next names no state: "${catcher.Next}"`);
      checkPath(catcher.ResultPath, `${at}.Catch[${i}].ResultPath`);
      const all = catcher.ErrorEquals.indexOf('States.ALL');
      if (all >= 0 && (catcher.ErrorEquals.length > 1 || i !== (state.Catch ?? []).length - 1)) {
        throw new DefinitionError(`${at}.Catch[${i}]: States.ALL must appear alone and in the last catcher`);
      }
    });
    if (state.Type === 'Task') {
      if (!state.Resource || !SUPPORTED_RESOURCES.some((re) => re.test(state.Resource ?? ''))) {
        throw new DefinitionError(`${at}.Resource "${String(state.Resource)}" is not implemented by Fleet's local runner (only lambda:invoke is)`);
      }
      if (state.TimeoutSeconds !== undefined && state.TimeoutSecondsPath !== undefined) {
        throw new DefinitionError(`${at}: TimeoutSeconds and TimeoutSecondsPath are mutually exclusive`);
      }
      checkInteger(state.TimeoutSeconds, `${at}.TimeoutSeconds`, RANGES.TimeoutSeconds);
      checkPath(state.TimeoutSecondsPath, `${at}.TimeoutSecondsPath`, false);
    }
    if (state.Type === 'Map') checkMap(state, at);
    if (state.Type === 'Parallel') checkParallel(state, at);
    if (state.Type === 'Wait') {
      if ((state.Seconds === undefined) === (state.SecondsPath === undefined)) {
        throw new DefinitionError(`${at}: needs exactly one of Seconds and SecondsPath (Timestamp is not implemented by Fleet's local runner)`);
      }
      checkInteger(state.Seconds, `${at}.Seconds`, RANGES.WaitSeconds);
      checkPath(state.SecondsPath, `${at}.SecondsPath`, false);
    }
  }
}

function checkChoice(machine: StateMachineDefinition, state: StateDefinition, at: string): void {
  if (!Array.isArray(state.Choices) || state.Choices.length === 0) throw new DefinitionError(`${at}.Choices must be a non-empty array`);
  state.Choices.forEach((rule, i) => {
    const where = `${at}.Choices[${i}]`;
    refuseUnknown(rule as unknown as Record<string, unknown>, ['Variable', 'Next', ...CHOICE_COMPARISONS], where);
    const comparisons = CHOICE_COMPARISONS.filter((name) => rule[name] !== undefined);
    if (comparisons.length !== 1) throw new DefinitionError(`${where}: needs exactly one comparison (And, Or and Not are not implemented)`);
    checkPath(rule.Variable, `${where}.Variable`, false);
    if (!machine.States[rule.Next]) throw new DefinitionError(`${where}.Next names no state: "${rule.Next}"`);
  });
  if (state.Default !== undefined && !machine.States[state.Default]) throw new DefinitionError(`${at}.Default names no state: "${state.Default}"`);
}

/**
 * Each branch is a state machine of its own: its states transition only to
 * each other (https://docs.aws.amazon.com/step-functions/latest/dg/state-parallel.html).
 */
function checkParallel(state: StateDefinition, at: string): void {
  if (!Array.isArray(state.Branches) || state.Branches.length === 0) throw new DefinitionError(`${at}.Branches must be a non-empty array`);
  state.Branches.forEach((branch, i) => {
    const value: unknown = branch;
    if (!value || typeof value !== 'object') throw new DefinitionError(`${at}.Branches[${i}] must be an object`);
    checkStates(branch, `${at}.Branches[${i}]`, TOP_FIELDS);
  });
}

function checkMap(state: StateDefinition, at: string): void {
  const processor = state.ItemProcessor;
  if (!processor) throw new DefinitionError(`${at}.ItemProcessor is missing (the local runner does not implement Iterator)`);
  const config = processor.ProcessorConfig ?? {};
  refuseUnknown(config, ['Mode', 'ExecutionType'], `${at}.ItemProcessor.ProcessorConfig`);
  if (config.Mode !== undefined && config.Mode !== 'DISTRIBUTED' && config.Mode !== 'INLINE') {
    throw new DefinitionError(`${at}.ItemProcessor.ProcessorConfig.Mode "${config.Mode}" is unknown`);
  }
  if (config.ExecutionType !== undefined && config.ExecutionType !== 'EXPRESS' && config.ExecutionType !== 'STANDARD') {
    throw new DefinitionError(`${at}.ItemProcessor.ProcessorConfig.ExecutionType "${config.ExecutionType}" is unknown`);
  }
  const distributed = config.Mode === 'DISTRIBUTED';
  if (!distributed && (state.ItemReader || state.ResultWriter || state.Label)) {
    throw new DefinitionError(`${at}: ItemReader, ResultWriter and Label need ProcessorConfig.Mode DISTRIBUTED`);
  }
  if (state.MaxConcurrency !== undefined && state.MaxConcurrencyPath !== undefined) {
    throw new DefinitionError(`${at}: MaxConcurrency and MaxConcurrencyPath are mutually exclusive`);
  }
  // A Distributed Map runs at most 10,000 children at once (the Distributed Map page); local mode refuses more rather than cap it silently.
  checkInteger(state.MaxConcurrency, `${at}.MaxConcurrency`, distributed ? RANGES.MaxConcurrency : { min: 0, max: Number.MAX_SAFE_INTEGER });
  checkPath(state.MaxConcurrencyPath, `${at}.MaxConcurrencyPath`, false);
  const tolerated = state.ToleratedFailurePercentage;
  if (tolerated !== undefined && (typeof tolerated !== 'number' || tolerated < 0 || tolerated > 100)) {
    throw new DefinitionError(`${at}.ToleratedFailurePercentage must be a number from 0 to 100`);
  }
  if (tolerated !== undefined && !distributed) throw new DefinitionError(`${at}.ToleratedFailurePercentage needs ProcessorConfig.Mode DISTRIBUTED`);
  checkPath(state.ItemsPath, `${at}.ItemsPath`, false);
  checkTemplate(state.ItemSelector, `${at}.ItemSelector`);
  if (state.Label !== undefined && (typeof state.Label !== 'string' || state.Label.length > 40)) {
    throw new DefinitionError(`${at}.Label must be a string of at most 40 characters`);
  }
  if (state.ItemReader) {
    const reader = state.ItemReader;
    refuseUnknown(reader, ['Resource', 'ReaderConfig', 'Parameters'], `${at}.ItemReader`);
    if (!ITEM_READER_RESOURCE.test(reader.Resource)) {
      throw new DefinitionError(`${at}.ItemReader.Resource "${reader.Resource}" is not implemented (only s3:getObject is)`);
    }
    refuseUnknown(reader.ReaderConfig ?? {}, ['InputType', 'MaxItems'], `${at}.ItemReader.ReaderConfig`);
    checkInteger(reader.ReaderConfig?.MaxItems, `${at}.ItemReader.ReaderConfig.MaxItems`, RANGES.MaxItems);
    const type = reader.ReaderConfig?.InputType;
    if (type !== 'JSONL' && type !== 'JSON') {
      throw new DefinitionError(`${at}.ItemReader.ReaderConfig.InputType "${String(type)}" is not implemented (JSON and JSONL are)`);
    }
    refuseUnknown((reader.Parameters ?? {}) as Record<string, unknown>, ['Bucket', 'Bucket.$', 'Key', 'Key.$'], `${at}.ItemReader.Parameters`);
    checkTemplate(reader.Parameters, `${at}.ItemReader.Parameters`);
  }
  if (state.ResultWriter) {
    const writer = state.ResultWriter;
    refuseUnknown(writer, ['Resource', 'Parameters', 'WriterConfig'], `${at}.ResultWriter`);
    if (writer.Resource !== undefined && !RESULT_WRITER_RESOURCE.test(writer.Resource)) {
      throw new DefinitionError(`${at}.ResultWriter.Resource "${writer.Resource}" is not implemented (only s3:putObject is)`);
    }
    refuseUnknown((writer.Parameters ?? {}) as Record<string, unknown>, ['Bucket', 'Bucket.$', 'Prefix', 'Prefix.$'], `${at}.ResultWriter.Parameters`);
    checkTemplate(writer.Parameters, `${at}.ResultWriter.Parameters`);
    refuseUnknown(writer.WriterConfig ?? {}, ['Transformation', 'OutputType'], `${at}.ResultWriter.WriterConfig`);
    if (writer.WriterConfig !== undefined) {
      // The ResultWriter page lists OutputType JSON or JSONL (required in a
      // WriterConfig) and Transformation NONE, COMPACT or FLATTEN.
      const { OutputType: outputType, Transformation: transformation } = writer.WriterConfig;
      if (outputType !== 'JSON' && outputType !== 'JSONL') {
        throw new DefinitionError(`${at}.ResultWriter.WriterConfig.OutputType must be JSON or JSONL, got ${JSON.stringify(outputType)}`);
      }
      if (transformation !== undefined && !['NONE', 'COMPACT', 'FLATTEN'].includes(transformation)) {
        throw new DefinitionError(`${at}.ResultWriter.WriterConfig.Transformation must be NONE, COMPACT or FLATTEN, got ${JSON.stringify(transformation)}`);
      }
      if (transformation === 'FLATTEN') {
        throw new DefinitionError(`${at}.ResultWriter.WriterConfig.Transformation "FLATTEN" is not implemented (COMPACT and NONE are)`);
      }
    }
  }
  checkStates(processor, `${at}.ItemProcessor`, PROCESSOR_FIELDS);
}

/** Parses and checks a definition; throws a DefinitionError naming the first unsupported field. */
export function loadDefinition(definition: string | StateMachineDefinition): StateMachineDefinition {
  const machine = (typeof definition === 'string' ? JSON.parse(definition) : definition) as StateMachineDefinition;
  checkStates(machine, '$', TOP_FIELDS);
  return machine;
}
