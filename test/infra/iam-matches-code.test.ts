/**
 * Issue 7, item 3: IAM matches the code.
 *
 * For each Lambda entry, the AWS SDK commands its code can send are derived
 * from the code itself: esbuild resolves the entry's module graph (metafile),
 * and every Fleet source file reachable from it is scanned for
 * `new XxxCommand(`. Each command maps to the IAM action AWS authorizes it
 * with, and the synthesized policies on the function's role must allow it on
 * the right kind of resource. Granted actions that no reachable command needs
 * must be listed, with a reason, in GRANTED_BEYOND_CODE.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { App, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { PREPARE_EXECUTION_PREFIX } from '../../infra/file-jobs-workflow';
import { FleetStack } from '../../infra/fleet-stack';
import { prepareExecutionName } from '../../lambdas/adapters/file-jobs';
import { render } from './iam-render';
import { bundle } from './bundle';

const repoRoot = path.resolve(import.meta.dirname, '../..');

/** What kind of resource an action must be granted on. */
type ResourceKind =
  | 'table'
  | 'tableIndex'
  | 'stateMachine'
  | 'execution'
  | 'mapRun'
  | 'fileJobsStateMachine'
  | 'fileJobsPrepareExecution'
  | 'bucketObjects'
  | 'queue';

/**
 * A command sent with an IndexName reads a secondary index: IAM authorizes it
 * on `<table>/index/<name>`, not on the table
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/using-identity-based-policies.html).
 * commandsOf names such a command `<Command>@index`.
 */
const ON_INDEX = '@index';

/**
 * The one module that sends to the file-jobs state machine (StepFunctionsFileJobs,
 * built on FILE_JOBS_STATE_MACHINE_ARN; checked below): commandsOf names its
 * commands `<Command>@fileJobs`, so they are checked against that machine and
 * not the batch one.
 */
const FILE_JOBS_ADAPTER = 'lambdas/adapters/file-jobs.ts';

/** The composition root's modules (lambdas/composition-root/): where the handlers' adapters are built. */
const API_COMPOSITION = 'lambdas/composition-root/api.ts';
const WORKER_COMPOSITION = 'lambdas/composition-root/worker.ts';
const ADMISSION_COMPOSITION = 'lambdas/composition-root/admission.ts';
const COMPOSITION_MODULES = ['shared', 'admission', 'worker', 'lifecycle', 'api', 'schedules', 'file-jobs'].map((name) => `lambdas/composition-root/${name}.ts`);
/** The worker's rules, calling adapters only through its deps. */
const WORKER_SERVICE = 'lambdas/domain/worker-service.ts';
/** Local-only: only infra/local/write-grouping.ts imports them. */
const COALESCERS = ['counter', 'insert', 'put'].map((name) => `lambdas/adapters/${name}-coalescer.ts`);

/** A source file's code: comments stripped. */
const code = (file: string) =>
  readFileSync(path.join(repoRoot, file), 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '')
    .replace(/\s\/\/.*$/gm, '');
const ON_FILE_JOBS = '@fileJobs';

/**
 * @aws-sdk/lib-storage's Upload, a dependency (commandsOf scans only Fleet's
 * own files), sends its commands itself: PutObject for a body of one part,
 * else CreateMultipartUpload, UploadPart, CompleteMultipartUpload, and
 * AbortMultipartUpload when a part fails or abort() is called; PutObjectTagging
 * only when given `tags`. commandsOf adds them where Fleet's code builds an
 * Upload; a test below reads them back from lib-storage's own source, so a new
 * version that sends another command fails here.
 */
const LIB_STORAGE_UPLOAD_COMMANDS = ['PutObjectCommand', 'CreateMultipartUploadCommand', 'UploadPartCommand', 'CompleteMultipartUploadCommand', 'AbortMultipartUploadCommand'];
const LIB_STORAGE_TAGGING_COMMAND = 'PutObjectTaggingCommand';

/** A bucket the deployer lets batches name their tasks file in (FleetProps.tasksFileBuckets), configured on the stack below. */
const DEPLOYER_BUCKET = 'deployer-tasks-files';

/**
 * SDK command class → IAM action and resource. lib-dynamodb's document
 * commands (PutCommand…) and client-dynamodb's (PutItemCommand…) both appear.
 */
const COMMAND_ACTIONS: Record<string, { action: string; resource: ResourceKind }> = {
  PutCommand: { action: 'dynamodb:PutItem', resource: 'table' },
  PutItemCommand: { action: 'dynamodb:PutItem', resource: 'table' },
  GetCommand: { action: 'dynamodb:GetItem', resource: 'table' },
  GetItemCommand: { action: 'dynamodb:GetItem', resource: 'table' },
  QueryCommand: { action: 'dynamodb:Query', resource: 'table' },
  [`QueryCommand${ON_INDEX}`]: { action: 'dynamodb:Query', resource: 'tableIndex' },
  ScanCommand: { action: 'dynamodb:Scan', resource: 'table' },
  [`ScanCommand${ON_INDEX}`]: { action: 'dynamodb:Scan', resource: 'tableIndex' },
  UpdateCommand: { action: 'dynamodb:UpdateItem', resource: 'table' },
  UpdateItemCommand: { action: 'dynamodb:UpdateItem', resource: 'table' },
  DeleteCommand: { action: 'dynamodb:DeleteItem', resource: 'table' },
  DeleteItemCommand: { action: 'dynamodb:DeleteItem', resource: 'table' },
  BatchGetCommand: { action: 'dynamodb:BatchGetItem', resource: 'table' },
  BatchGetItemCommand: { action: 'dynamodb:BatchGetItem', resource: 'table' },
  BatchWriteCommand: { action: 'dynamodb:BatchWriteItem', resource: 'table' },
  BatchWriteItemCommand: { action: 'dynamodb:BatchWriteItem', resource: 'table' },
  StartExecutionCommand: { action: 'states:StartExecution', resource: 'stateMachine' },
  StopExecutionCommand: { action: 'states:StopExecution', resource: 'execution' },
  DescribeExecutionCommand: { action: 'states:DescribeExecution', resource: 'execution' },
  RedriveExecutionCommand: { action: 'states:RedriveExecution', resource: 'execution' },
  ListMapRunsCommand: { action: 'states:ListMapRuns', resource: 'execution' },
  UpdateMapRunCommand: { action: 'states:UpdateMapRun', resource: 'mapRun' },
  [`StartExecutionCommand${ON_FILE_JOBS}`]: { action: 'states:StartExecution', resource: 'fileJobsStateMachine' },
  [`StopExecutionCommand${ON_FILE_JOBS}`]: { action: 'states:StopExecution', resource: 'fileJobsPrepareExecution' },
  PutObjectCommand: { action: 's3:PutObject', resource: 'bucketObjects' },
  GetObjectCommand: { action: 's3:GetObject', resource: 'bucketObjects' },
  // "To use HEAD, you must have the s3:GetObject permission": https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html
  HeadObjectCommand: { action: 's3:GetObject', resource: 'bucketObjects' },
  DeleteObjectCommand: { action: 's3:DeleteObject', resource: 'bucketObjects' },
  // A multipart upload's create, part and complete requests are authorized as s3:PutObject; its abort as s3:AbortMultipartUpload:
  // https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions
  CreateMultipartUploadCommand: { action: 's3:PutObject', resource: 'bucketObjects' },
  UploadPartCommand: { action: 's3:PutObject', resource: 'bucketObjects' },
  CompleteMultipartUploadCommand: { action: 's3:PutObject', resource: 'bucketObjects' },
  AbortMultipartUploadCommand: { action: 's3:AbortMultipartUpload', resource: 'bucketObjects' },
  PutObjectTaggingCommand: { action: 's3:PutObjectTagging', resource: 'bucketObjects' },
  SendMessageCommand: { action: 'sqs:SendMessage', resource: 'queue' },
};

type FunctionKey = 'api' | 'worker' | 'thumbnailWorker' | 'startBatch' | 'finishBatch' | 'autoscaler' | 'reconciler' | 'fileJobs';

const ENTRIES: Record<FunctionKey, string> = {
  api: 'lambdas/api.ts',
  worker: 'lambdas/worker.ts',
  // A per-type worker function (FleetProps.workers), configured on the stack below.
  thumbnailWorker: 'examples/workers/thumbnail-worker.ts',
  // start and finish are two handlers of one module: the same code can send the same commands.
  startBatch: 'lambdas/batch-lifecycle.ts',
  finishBatch: 'lambdas/batch-lifecycle.ts',
  // With FleetProps.autoscaling, configured on the stack below.
  autoscaler: 'lambdas/autoscaler.ts',
  reconciler: 'lambdas/admission-reconciler.ts',
  // Validates tasks files and builds results exports (the file-jobs state machine invokes it).
  fileJobs: 'lambdas/file-jobs.ts',
};

const WORKER_GRANTED_BEYOND_CODE: Record<string, string> = {
  'dynamodb:BatchWriteItem': 'Granted with the worker\'s writes (infra/fleet.ts WORKER_TABLE_ACTIONS); recordResult sends it only to group results, which needs the grouped writes only the local fleet installs (infra/local/write-grouping.ts).',
  'sqs:GetQueueAttributes': 'Part of CDK grantSendMessages on the dead-letter queue; metadata only.',
  'sqs:GetQueueUrl': 'Part of CDK grantSendMessages on the dead-letter queue; the URL comes from FLEET_DLQ_URL.',
};

/** AWS's logging permissions that every function has through AWSLambdaBasicExecutionRole (a managed policy, not checked here). */
const GRANTED_BEYOND_CODE: Record<FunctionKey, Record<string, string>> = {
  api: {
    'dynamodb:ConditionCheckItem': 'Part of CDK grantReadWriteData; ConditionCheckItem only checks, it reads or writes nothing.',
    'dynamodb:DescribeTable': 'Part of CDK grantReadWriteData; table metadata only.',
  },
  worker: WORKER_GRANTED_BEYOND_CODE,
  // Made by createWorkerHandler, a per-type worker runs the worker's code and gets its grants.
  thumbnailWorker: WORKER_GRANTED_BEYOND_CODE,
  startBatch: {
    'dynamodb:ConditionCheckItem': 'Part of CDK grantReadWriteData; ConditionCheckItem only checks.',
    'dynamodb:DescribeTable': 'Part of CDK grantReadWriteData; table metadata only.',
    'dynamodb:BatchWriteItem': 'Part of CDK grantReadWriteData; Start batch writes item by item.',
  },
  finishBatch: {
    'dynamodb:ConditionCheckItem': 'Part of CDK grantReadWriteData; ConditionCheckItem only checks.',
    'dynamodb:DescribeTable': 'Part of CDK grantReadWriteData; table metadata only.',
    'dynamodb:BatchWriteItem': 'Part of CDK grantReadWriteData; Finish batch writes item by item.',
  },
  autoscaler: {
    'dynamodb:ConditionCheckItem': 'Part of CDK grantReadWriteData; ConditionCheckItem only checks.',
    'dynamodb:DescribeTable': 'Part of CDK grantReadWriteData; table metadata only.',
    'dynamodb:BatchWriteItem': 'Part of CDK grantReadWriteData; the autoscaler writes item by item.',
  },
  reconciler: {
    'dynamodb:ConditionCheckItem': 'Part of CDK grantReadWriteData; ConditionCheckItem only checks.',
    'dynamodb:DescribeTable': 'Part of CDK grantReadWriteData; table metadata only.',
    'dynamodb:BatchWriteItem': 'Part of CDK grantReadWriteData; the reconciler writes item by item.',
  },
  fileJobs: {
    'dynamodb:ConditionCheckItem': 'Part of CDK grantReadWriteData; ConditionCheckItem only checks.',
    'dynamodb:DescribeTable': 'Part of CDK grantReadWriteData; table metadata only.',
  },
};

/**
 * What active X-Ray tracing (FleetProps.tracing, on by default) grants every
 * function: the Lambda runtime and the Powertools Tracer send the function's
 * segments and its SDK calls' subsegments. No SDK command in Fleet's code
 * sends them, so they are justified here rather than derived.
 */
const GRANTED_FOR_TRACING: Record<string, string> = {
  'xray:PutTraceSegments': "CDK's grant for Tracing.ACTIVE: the function's trace segments (Powertools Tracer, lambdas/adapters/observability.ts).",
  'xray:PutTelemetryRecords': "CDK's grant for Tracing.ACTIVE: X-Ray telemetry of the function.",
};

/**
 * Commands that a module reachable from the worker contains, but that the
 * worker never sends: WorkerService (lambdas/domain/worker-service.ts) can
 * call only the adapter methods named here (its deps' types pick them; checked
 * below against its source), and none of them sends these.
 */
const WORKER_CALLS = {
  // getBatch: before a retry, whether the batch was cancelled.
  repository: ['getBatch', 'recordResult'],
  activity: ['deregisterWorker', 'noteNextAttempt', 'registerWorker', 'takeNextAttempt'],
  deadLetters: ['send'],
};
/** What recordResult sends only with grouping on (insert-coalescer.ts): the existence read of a group. */
const SENT_ONLY_WHEN_GROUPING = ['dynamodb:BatchGetItem'];
const NOT_SENT_BY_WORKER: Record<string, string> = {
  'dynamodb:Query': 'DynamoBatchRepository listing/counting and DynamoFleetActivity.listWorkers/countWorkers: not called by the worker.',
  'dynamodb:BatchGetItem':
    'recordResult reads only to group results (insert-coalescer.ts), which needs the grouped writes only the local fleet installs (infra/local/write-grouping.ts); no deployed bundle reaches a coalescer (checked below).',
};

/**
 * Start and Finish batch, the autoscaler and the reconciler hold a
 * StepFunctionsWorkflow only to hand it to CapacityCoordinator (built in
 * adapters/admission.ts), which calls the methods named here (checked below).
 * Admission starts executions; only the coordinator's reconcile() redrives,
 * and only the reconciler calls it (checked below).
 */
const COORDINATOR_WORKFLOW_CALLS = ['executionStatus', 'redrive', 'setBatchConcurrency', 'startRetry'];
const NOT_SENT_BY_LIFECYCLE: Record<string, string> = {
  'states:StopExecution': 'StepFunctionsWorkflow.stopBatch: only cancelBatch, in the API.',
  's3:DeleteObject': 'S3RetryTaskFiles.deleteRetryTasks: only DELETE /batches/{id}, in the API.',
  'states:RedriveExecution': "CapacityCoordinator.redriveFailed: only reconcile(), which only the reconciler calls.",
};
const NOT_SENT_BY_AUTOSCALER: Record<string, string> = {
  'states:StopExecution': 'StepFunctionsWorkflow.stopBatch: only cancelBatch, in the API.',
  'states:RedriveExecution': "CapacityCoordinator.redriveFailed: only reconcile(), which only the reconciler calls.",
};
/**
 * The API reaches S3FileStorage (lambdas/adapters/file-storage.ts) for head,
 * remove and the presigned URLs, never its writer, the one lib-storage Upload
 * (checked below): its own writes are single PutObjects.
 */
const NOT_SENT_BY_API: Record<string, string> = {
  's3:AbortMultipartUpload': "S3FileStorage.writer's lib-storage Upload: only the file jobs write through it.",
};
const NOT_SENT_BY_FILE_JOBS: Record<string, string> = {
  'states:StopExecution': 'StepFunctionsWorkflow.stopBatch: only cancelBatch, in the API.',
  'states:RedriveExecution': 'CapacityCoordinator.redriveFailed: only reconcile(), which only the reconciler calls.',
};
const NOT_SENT_BY_RECONCILER: Record<string, string> = {
  'states:StopExecution': 'StepFunctionsWorkflow.stopBatch: only cancelBatch, in the API.',
};

/** Per function, actions a reachable module contains that the function provably never sends. */
const NOT_SENT: Record<FunctionKey, Record<string, string>> = {
  api: NOT_SENT_BY_API,
  worker: NOT_SENT_BY_WORKER,
  thumbnailWorker: NOT_SENT_BY_WORKER,
  startBatch: NOT_SENT_BY_LIFECYCLE,
  finishBatch: NOT_SENT_BY_LIFECYCLE,
  autoscaler: NOT_SENT_BY_AUTOSCALER,
  reconciler: NOT_SENT_BY_RECONCILER,
  fileJobs: NOT_SENT_BY_FILE_JOBS,
};

/** The body of a class method, up to its closing brace at class indentation. */
function methodBody(file: string, method: string): string {
  const source = readFileSync(path.join(repoRoot, file), 'utf8');
  const start = source.search(new RegExp(`\\n  (?:private )?(?:async )?${method}\\(`));
  if (start < 0) throw new Error(`${file}: no method ${method}`);
  return source.slice(start, source.indexOf('\n  }\n', start));
}

/** From `start` to the end of the statement or parameter it opens (a `;` or `,` outside brackets, or the end of its enclosing brackets). */
function statementAt(source: string, start: number): string {
  let depth = 0;
  for (let i = start; i < source.length; i++) {
    const c = source[i];
    if (c === '(' || c === '{' || c === '[') depth++;
    else if (c === ')' || c === '}' || c === ']') {
      if (--depth < 0) return source.slice(start, i);
    } else if ((c === ';' || c === ',') && depth === 0) return source.slice(start, i);
  }
  return source.slice(start);
}

/**
 * The IAM actions a method sends, following within the same file
 * `this.helper(` calls and `this.field.method(` calls (into what the field is
 * built from: its initializer, or its assignment in the constructor), and
 * calls of functions, defined in the same file or imported from Fleet's own
 * modules, transitively.
 */
function actionsOfMethod(file: string, method: string, seen = new Set<string>()): string[] {
  if (seen.has(`${file}#${method}`)) return [];
  seen.add(`${file}#${method}`);
  const source = readFileSync(path.join(repoRoot, file), 'utf8');
  // A function-valued field or constructor parameter (`this.now()`): what it is built from.
  const field = new RegExp(`readonly ${method}\\b`).exec(source);
  if (field && source.search(new RegExp(`\\n  (?:private )?(?:async )?${method}\\(`)) < 0) return actionsOfCode(file, statementAt(source, field.index), seen);
  return actionsOfCode(file, methodBody(file, method), seen);
}

/** The body of a top-level function (`function f(` or `const f = `) of a file, or undefined. */
function functionBody(file: string, name: string): string | undefined {
  const source = readFileSync(path.join(repoRoot, file), 'utf8');
  const declared = source.search(new RegExp(`\\n(?:export )?(?:async )?function ${name}\\(`));
  if (declared >= 0) {
    const end = source.indexOf('\n}\n', declared);
    return source.slice(declared, end < 0 ? undefined : end);
  }
  const assigned = source.search(new RegExp(`\\n(?:export )?const ${name} = `));
  return assigned < 0 ? undefined : statementAt(source, assigned + 1);
}

function actionsOfCode(file: string, code: string, seen: Set<string>): string[] {
  const source = readFileSync(path.join(repoRoot, file), 'utf8');
  const own = [...code.matchAll(/new (\w+Command)\(/g)].map((m) => COMMAND_ACTIONS[m[1] as string]?.action ?? `unmapped ${m[1]}`);
  const helpers = [...code.matchAll(/this\.(\w+)\(/g)].map((m) => m[1] as string).filter((name) => !/^client$/.test(name));
  const fields = [...code.matchAll(/this\.(\w+)\.\w+\(/g)].map((m) => m[1] as string).filter((name) => name !== 'client');
  const fromFields = fields.flatMap((field) => {
    if (seen.has(`${file}#field:${field}`)) return [];
    seen.add(`${file}#field:${field}`);
    const built = [...source.matchAll(new RegExp(`(?:readonly ${field}(?::[^=;]+)? = |this\\.${field} = )`, 'g'))].map((m) => statementAt(source, m.index));
    return built.flatMap((text) => actionsOfCode(file, text, seen));
  });
  // Functions called by name: the same file's, or imported (`a as b` too) from Fleet's own modules.
  const imported = new Map(
    [...source.matchAll(/import \{([^}]+)\} from '(\.[^']+)'/g)].flatMap((m) =>
      (m[1] as string).split(',').flatMap((spec) => {
        const [name, local] = spec.replace(/^\s*type\s+/, '').trim().split(/\s+as\s+/);
        return name ? [[(local ?? name).trim(), { name: name.trim(), module: path.join(path.dirname(file), `${m[2]}.ts`) }] as const] : [];
      }),
    ),
  );
  const called = new Set([...code.matchAll(/(?<![.\w])(\w+)\(/g)].map((m) => m[1] as string));
  const fromFunctions = [...called].flatMap((local) => {
    const target = imported.get(local) ?? { name: local, module: file };
    const key = `${target.module}#fn:${target.name}`;
    if (seen.has(key)) return [];
    seen.add(key);
    const body = functionBody(target.module, target.name);
    return body === undefined ? [] : actionsOfCode(target.module, body, seen);
  });
  return [...own, ...fromFields, ...fromFunctions, ...helpers.flatMap((helper) => actionsOfMethod(file, helper, seen))];
}

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

interface Grant {
  action: string;
  /** Rendered (./iam-render.ts), so two spellings of one ARN compare equal. */
  resource: string;
}

/** The SDK commands a Lambda entry can send, from Fleet's own modules reachable from it. */
async function commandsOf(entry: string): Promise<{ commands: Set<string>; files: string[] }> {
  const { inputs } = await bundle(entry, { format: 'esm' });
  const files = inputs.filter((file) => !file.includes('node_modules') && /^lambdas\//.test(file));
  const commands = new Set<string>();
  for (const file of files) {
    const source = readFileSync(path.join(repoRoot, file), 'utf8');
    for (const match of source.matchAll(/new (\w+Command)\(/g)) {
      const onIndex = /\bIndexName\s*:/.test(statementAt(source, match.index + match[0].length));
      commands.add(`${match[1] as string}${onIndex ? ON_INDEX : ''}${file === FILE_JOBS_ADAPTER ? ON_FILE_JOBS : ''}`);
    }
    for (const command of uploadCommandsIn(source)) commands.add(command);
  }
  return { commands, files };
}

/** What the lib-storage Uploads a source file builds send (LIB_STORAGE_UPLOAD_COMMANDS). */
function uploadCommandsIn(source: string): Set<string> {
  const commands = new Set<string>();
  if (!/import \{[^}]*\bUpload\b[^}]*\} from '@aws-sdk\/lib-storage'/.test(source)) return commands;
  for (const match of source.matchAll(/new Upload\(/g)) {
    for (const command of LIB_STORAGE_UPLOAD_COMMANDS) commands.add(command);
    if (/\btags\s*:/.test(statementAt(source, match.index + match[0].length))) commands.add(LIB_STORAGE_TAGGING_COMMAND);
  }
  return commands;
}

function logicalIdOf(stack: FleetStack, construct: IConstruct): string {
  return stack.getLogicalId(construct.node.defaultChild as CfnElement);
}

const asArray = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

/** Logical ids of the resources grants name. */
interface Ids {
  table: string;
  bucket: string;
  queue: string;
  machine: string;
  fileJobsMachine: string;
}

const STATES_ARN = 'arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}';

/**
 * Whether a rendered policy resource is exactly the resource of `kind` the
 * code needs: an ARN broader (every execution) or narrower (one execution
 * name) than what the code sends is not. Executions are named per batch, so
 * the code needs `execution:<machine name>:*`; Map Runs, `mapRun:<machine name>/*`
 * (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-examine-map-run.html);
 * index reads, `<table>/index/*`.
 */
function isKind(resource: string, kind: ResourceKind, ids: Ids): boolean {
  switch (kind) {
    case 'table':
      return resource === `\${${ids.table}.Arn}`;
    case 'tableIndex':
      return resource === `\${${ids.table}.Arn}/index/*`;
    case 'stateMachine':
      return resource === `\${${ids.machine}}`;
    case 'execution':
      return resource === `${STATES_ARN}:execution:\${${ids.machine}.Name}:*`;
    case 'mapRun':
      return resource === `${STATES_ARN}:mapRun:\${${ids.machine}.Name}/*`;
    case 'fileJobsStateMachine':
      return resource === `\${${ids.fileJobsMachine}}`;
    case 'fileJobsPrepareExecution':
      // Only validations are stopped (StepFunctionsFileJobs.stopPrepare), named prepare-<batchId>.
      return resource === `${STATES_ARN}:execution:\${${ids.fileJobsMachine}.Name}:${PREPARE_EXECUTION_PREFIX}*`;
    case 'bucketObjects':
      // The tasks bucket's objects (or its batches/ or uploads/), or a deployer's bucket's (tasksFileBuckets).
      return [`\${${ids.bucket}.Arn}/*`, `\${${ids.bucket}.Arn}/batches/*`, `\${${ids.bucket}.Arn}/uploads/*`, `arn:\${AWS::Partition}:s3:::${DEPLOYER_BUCKET}/*`].includes(resource);
    case 'queue':
      return resource === `\${${ids.queue}.Arn}`;
  }
}

/** Whether a granted action (possibly a wildcard like s3:PutObject*) covers the needed one. */
const covers = (granted: string, needed: string) => new RegExp(`^${granted.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i').test(needed);

/** Commands a function's code sends with no grant of their action on exactly the resource they need. */
function missingGrants(commands: Iterable<string>, grants: readonly Grant[], notSent: Record<string, string>, ids: Ids): string[] {
  const missing: string[] = [];
  for (const command of commands) {
    const need = COMMAND_ACTIONS[command];
    if (!need || notSent[need.action]) continue;
    if (!grants.some((grant) => covers(grant.action, need.action) && isKind(grant.resource, need.resource, ids))) missing.push(`${command} → ${need.action} on ${need.resource}`);
  }
  return missing;
}

/**
 * Grants of a DynamoDB or Step Functions action the code sends, on a resource
 * that is none the code needs for it. DynamoDB's grants may name the table and
 * its indexes together (CDK's grant shape: an action an index does not serve is
 * refused there by DynamoDB itself); nothing else, and no broader ARN.
 */
function misplacedGrants(commands: Iterable<string>, grants: readonly Grant[], notSent: Record<string, string>, ids: Ids): string[] {
  const needs = [...commands].flatMap((command) => {
    const need = COMMAND_ACTIONS[command];
    return need && !notSent[need.action] ? [need] : [];
  });
  const misplaced: string[] = [];
  for (const grant of grants) {
    if (!/^(dynamodb|states):/.test(grant.action)) continue;
    const kinds = new Set(needs.filter((need) => covers(grant.action, need.action)).map((need) => need.resource));
    if (kinds.size === 0) continue;
    if (kinds.has('table') || kinds.has('tableIndex')) kinds.add('table').add('tableIndex');
    if (![...kinds].some((kind) => isKind(grant.resource, kind, ids))) misplaced.push(`${grant.action} on ${grant.resource}`);
  }
  return misplaced;
}

describe('IAM matches the code (issue 7, item 3)', () => {
  let stack: FleetStack;
  let resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
  const derived = {} as Record<FunctionKey, Set<string>>;
  const reachable = {} as Record<FunctionKey, string[]>;

  beforeAll(async () => {
    const app = new App({
      context: { 'aws:cdk:bundling-stacks': [], '@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2': true },
    });
    stack = new FleetStack(app, 'Test', {
      fleet: { workers: { thumbnail: { entry: ENTRIES.thumbnailWorker } }, autoscaling: { min: 1, max: 10 }, tasksFileBuckets: [DEPLOYER_BUCKET] },
    });
    resources = (Template.fromStack(stack).toJSON() as { Resources: typeof resources }).Resources;
    for (const key of Object.keys(ENTRIES) as FunctionKey[]) {
      const { commands, files } = await commandsOf(ENTRIES[key]);
      derived[key] = commands;
      reachable[key] = files;
    }
  });

  const functionOf = (key: FunctionKey) => {
    const fleet = stack.fleet;
    const thumbnailWorker = fleet.typeWorkerFunctions.thumbnail;
    const autoscaler = fleet.autoscalerFunction;
    if (!thumbnailWorker || !autoscaler) throw new Error('the stack has no thumbnail worker or autoscaler function');
    return {
      api: fleet.apiFunction,
      worker: fleet.workerFunction,
      thumbnailWorker,
      startBatch: fleet.startBatchFunction,
      finishBatch: fleet.finishBatchFunction,
      autoscaler,
      reconciler: fleet.admissionReconcilerFunction,
      fileJobs: fleet.fileJobsFunction,
    }[key];
  };

  /** Every Allow statement of every inline policy attached to the function's role. */
  function grantsOf(key: FunctionKey): Grant[] {
    const fnId = logicalIdOf(stack, functionOf(key));
    const role = (resources[fnId]?.Properties?.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const grants: Grant[] = [];
    for (const resource of Object.values(resources)) {
      if (resource.Type !== 'AWS::IAM::Policy') continue;
      const roles = (resource.Properties?.Roles ?? []) as { Ref?: string }[];
      if (!roles.some((r) => r.Ref === role)) continue;
      const statements = (resource.Properties?.PolicyDocument as { Statement: Statement[] }).Statement;
      for (const statement of statements) {
        if (statement.Effect !== 'Allow') continue;
        for (const action of asArray(statement.Action)) for (const r of asArray(statement.Resource)) grants.push({ action, resource: render(r) });
      }
    }
    return grants;
  }

  /** The logical ids the resources are named by. */
  const idsOf = (): Ids => {
    const fleet = stack.fleet;
    return {
      table: logicalIdOf(stack, fleet.table),
      bucket: logicalIdOf(stack, fleet.tasksBucket),
      queue: logicalIdOf(stack, fleet.deadLetterQueue),
      machine: logicalIdOf(stack, fleet.stateMachine),
      fileJobsMachine: logicalIdOf(stack, fleet.fileJobsStateMachine),
    };
  };


  it('derives commands from each entry through its reachable adapters', () => {
    // A guard that the derivation sees the adapters at all.
    expect(reachable.api).toContain('lambdas/adapters/workflow.ts');
    expect(reachable.worker).toContain('lambdas/adapters/dead-letter-queue.ts');
    expect(derived.api).toContain('StartExecutionCommand');
    expect(derived.worker).toContain('SendMessageCommand');
    // A per-type worker reaches the same worker code through createWorkerHandler.
    expect(reachable.thumbnailWorker).toContain('lambdas/worker.ts');
    expect(derived.thumbnailWorker).toEqual(derived.worker);
    expect(derived.startBatch).toContain('UpdateMapRunCommand');
    // The file jobs stream files through lib-storage's Upload, and reach the admission wiring.
    expect(reachable.fileJobs).toEqual(expect.arrayContaining(['lambdas/adapters/file-storage.ts', 'lambdas/adapters/admission.ts']));
    expect([...derived.fileJobs]).toEqual(expect.arrayContaining(['HeadObjectCommand', 'GetObjectCommand', 'CreateMultipartUploadCommand', 'AbortMultipartUploadCommand']));
    // The API starts and stops file jobs; the file jobs themselves start none (they only name their input's type).
    expect([...derived.api]).toEqual(expect.arrayContaining([`StartExecutionCommand${ON_FILE_JOBS}`, `StopExecutionCommand${ON_FILE_JOBS}`]));
    expect(reachable.fileJobs).not.toContain(FILE_JOBS_ADAPTER);
    for (const key of Object.keys(ENTRIES) as FunctionKey[]) {
      const unknown = [...derived[key]].filter((command) => !COMMAND_ACTIONS[command]);
      expect(unknown, `${key}: commands with no IAM mapping in this test`).toEqual([]);
    }
  });

  it("lib-storage's Upload sends exactly the commands commandsOf adds for it, and Fleet gives it no tags", () => {
    const libStorage = readFileSync(createRequire(import.meta.url).resolve('@aws-sdk/lib-storage'), 'utf8');
    const sent = new Set([...libStorage.matchAll(/new (\w+Command)\(/g)].map((m) => m[1]));
    expect(sent).toEqual(new Set([...LIB_STORAGE_UPLOAD_COMMANDS, LIB_STORAGE_TAGGING_COMMAND]));
    // Tagging only with `tags`, which no Upload Fleet builds passes: no function is derived to send it.
    expect(libStorage).toMatch(/if \(this\.tags\.length\) \{\s*await this\.client\.send\(new PutObjectTaggingCommand/);
    for (const key of Object.keys(ENTRIES) as FunctionKey[]) expect(derived[key], key).not.toContain(LIB_STORAGE_TAGGING_COMMAND);
    // The derivation would see a tags option, and an Upload of another module is not lib-storage's.
    const upload = "import { Upload } from '@aws-sdk/lib-storage';\nconst u = new Upload({ client, params, tags: [{ Key: 'k', Value: 'v' }] });";
    expect(uploadCommandsIn(upload)).toEqual(new Set([...LIB_STORAGE_UPLOAD_COMMANDS, LIB_STORAGE_TAGGING_COMMAND]));
    expect(uploadCommandsIn(upload.replace(', tags: [{ Key: \'k\', Value: \'v\' }]', ''))).toEqual(new Set(LIB_STORAGE_UPLOAD_COMMANDS));
    expect(uploadCommandsIn(upload.replace('@aws-sdk/lib-storage', './uploads'))).toEqual(new Set());
  });

  it("the API never writes through S3FileStorage's writer (its multipart Upload): only the file jobs' domain and a retry's Start batch do", () => {
    // Comments stripped: only code counts.
    const code = (file: string) =>
      readFileSync(path.join(repoRoot, file), 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\/\/.*$/gm, '');
    const writers = reachable.api.filter((file) => /\.writer\(/.test(code(file)));
    expect([...writers].sort()).toEqual(['lambdas/adapters/retry-task-files.ts', 'lambdas/domain/file-jobs.ts']);
    // The retry's tasks file is written by writeRetryTasks, called only by prepareRetry (Start batch), which nothing of the API's calls.
    expect(methodBody('lambdas/adapters/retry-task-files.ts', 'writeRetryTasks')).toContain('.writer(');
    const callers = reachable.api.filter((file) => /\.writeRetryTasks\(/.test(code(file)));
    expect(callers).toEqual(['lambdas/domain/retry-failed.ts']);
    expect(functionBody('lambdas/domain/retry-failed.ts', 'prepareRetry')).toContain('.writeRetryTasks(');
    for (const file of reachable.api.filter((f) => f !== 'lambdas/domain/retry-failed.ts')) expect(code(file), file).not.toMatch(/\bprepareRetry\(/);
    // And the API reaches that module only for its key names and types: nothing of the API's calls the jobs that write.
    const jobsFile = 'lambdas/domain/file-jobs.ts';
    const functions = [...code(jobsFile).matchAll(/\n(?:export )?(?:async )?function (\w+)\(/g)].map((m) => m[1] as string);
    // The functions that open a writer, and those that call them, to a fixed point.
    const writing = new Set(functions.filter((name) => functionBody(jobsFile, name)?.includes('.writer(')));
    for (let grew = true; grew; ) {
      grew = false;
      for (const name of functions) {
        if (writing.has(name) || ![...writing].some((w) => new RegExp(`\\b${w}\\(`).test(functionBody(jobsFile, name) ?? ''))) continue;
        writing.add(name);
        grew = true;
      }
    }
    expect([...writing]).toEqual(expect.arrayContaining(['prepareTasksFile', 'buildResultsExport', 'sortIntoRunOrder']));
    for (const file of reachable.api.filter((f) => f !== 'lambdas/domain/file-jobs.ts')) {
      expect(code(file), file).not.toMatch(new RegExp(`\\b(${[...writing].join('|')})\\(`));
    }
    // The Upload is built in writer() only.
    expect(methodBody('lambdas/adapters/file-storage.ts', 'writer')).toContain('new Upload(');
    expect(code('lambdas/adapters/file-storage.ts').match(/new Upload\(/g)).toHaveLength(1);
  });

  it('only the API starts and stops file jobs, on FILE_JOBS_STATE_MACHINE_ARN, and stops nothing but prepare-<batchId> executions', () => {
    // The API's adapters are built in its composition root module.
    expect(reachable.api).toContain(API_COMPOSITION);
    const api = readFileSync(path.join(repoRoot, API_COMPOSITION), 'utf8');
    expect(api).toContain('new StepFunctionsFileJobs(sfn(), env.FILE_JOBS_STATE_MACHINE_ARN)');
    for (const key of Object.keys(ENTRIES) as FunctionKey[]) {
      if (key !== 'api') expect(reachable[key], key).not.toContain(FILE_JOBS_ADAPTER);
    }
    const adapter = readFileSync(path.join(repoRoot, FILE_JOBS_ADAPTER), 'utf8');
    expect(adapter.match(/new StopExecutionCommand\(/g)).toHaveLength(1);
    expect(methodBody(FILE_JOBS_ADAPTER, 'stopPrepare')).toMatch(/:\$\{prepareExecutionName\(batchId\)\}`[\s\S]*new StopExecutionCommand\(/);
    // The name the adapter stops is the one infra lets the API stop.
    expect(prepareExecutionName('b1')).toBe(`${PREPARE_EXECUTION_PREFIX}b1`);
  });

  it("the worker calls only the adapter methods its NOT_SENT_BY_WORKER reasons name", () => {
    // The worker's handler calls its service only; the service reaches adapters only through its deps.
    const handler = code(ENTRIES.worker);
    expect(handler).toMatch(/workerService\(\)/);
    expect(handler).not.toMatch(/new Dynamo|new Sqs/);
    const service = code(WORKER_SERVICE);
    const deps = /export interface WorkerServiceDeps \{([\s\S]*?)\n\}/.exec(service)?.[1] ?? '';
    // Each dep's type names what the service may call (tsc holds it to that): a Pick, or a port.
    const typeOf = (field: string) => new RegExp(`\\n  ${field}\\??: ([^;]+);`).exec(deps)?.[1] ?? '';
    const ports = readFileSync(path.join(repoRoot, 'lambdas/domain/ports.ts'), 'utf8');
    const methodsOf = (type: string) => {
      const pick = /^Pick<\w+, ([^>]+)>$/.exec(type);
      if (pick) return [...(pick[1] as string).matchAll(/'(\w+)'/g)].map((m) => m[1] as string);
      const body = new RegExp(`export interface ${type} \\{([\\s\\S]*?)\\n\\}`).exec(ports)?.[1] ?? '';
      return [...body.matchAll(/\n  (\w+)\(/g)].map((m) => m[1] as string);
    };
    const DEP_OF = { repository: 'results', activity: 'activity', deadLetters: 'deadLetters' } as const;
    for (const [object, methods] of Object.entries(WORKER_CALLS)) {
      const field = DEP_OF[object as keyof typeof DEP_OF];
      const called = new Set(methodsOf(typeOf(field)));
      // No cast lets the service call anything else on a dep.
      expect(service, field).not.toMatch(new RegExp(`\\b${field}\\b[^;\\n]*\\bas\\b`));
      // What the service hands a dep to (listWhileRunning) may call only methods the dep's type has.
      if (field === 'activity') {
        expect(service).toMatch(/listWhileRunning\(\s*activity\b/);
        const helper = readFileSync(path.join(repoRoot, 'lambdas/domain/fleet-activity.ts'), 'utf8');
        const pick = /listWhileRunning\(\s*activity: Pick<FleetActivity, ([^>]+)>/.exec(helper)?.[1] ?? '';
        for (const m of pick.matchAll(/'(\w+)'/g)) expect([...called], 'listWhileRunning').toContain(m[1]);
      }
      expect([...called].sort(), object).toEqual([...methods].sort());
    }
    // The composition root hands the service exactly these adapters.
    const root = code(WORKER_COMPOSITION);
    expect(root).toMatch(/results: batchRepository\(\)/);
    expect(root).toMatch(/activity: fleetActivity\(\)/);
    expect(root).toMatch(/deadLetters: new SqsDeadLetterQueue\(/);
    expect(root.match(/new (Dynamo|S3|StepFunctions)\w*\(/g) ?? []).toEqual([]);
    // Those methods' own commands (and their private helpers'), read from the adapters.
    const sent = [
      ...actionsOfMethod('lambdas/adapters/batch-repository.ts', 'recordResult'),
      ...actionsOfMethod('lambdas/adapters/batch-repository.ts', 'getBatch'),
      ...actionsOfMethod('lambdas/adapters/fleet-activity.ts', 'registerWorker'),
      ...actionsOfMethod('lambdas/adapters/fleet-activity.ts', 'deregisterWorker'),
      ...actionsOfMethod('lambdas/adapters/fleet-activity.ts', 'noteNextAttempt'),
      ...actionsOfMethod('lambdas/adapters/fleet-activity.ts', 'takeNextAttempt'),
      ...actionsOfMethod('lambdas/adapters/dead-letter-queue.ts', 'send'),
    ];
    expect(sent.length).toBeGreaterThan(0);
    // Found through the coalescer fields (PutItem, BatchGetItem, UpdateItem) and an imported helper (BatchWriteItem).
    expect(sent).toEqual(expect.arrayContaining(['dynamodb:PutItem', 'dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem', 'dynamodb:UpdateItem']));
    // Sent only when results are grouped, which no deployed function does (next test).
    for (const action of sent.filter((a) => !SENT_ONLY_WHEN_GROUPING.includes(a))) expect(Object.keys(NOT_SENT_BY_WORKER)).not.toContain(action);
  });

  it('results are grouped (and BatchGetItem sent) only with the grouped writes the local fleet installs, which no deployed function can reach', () => {
    const functions = Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::Function');
    expect(functions.length).toBeGreaterThan(0);
    for (const fn of functions) {
      const variables = (fn.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {};
      expect(variables).not.toHaveProperty('FLEET_GROUP_RESULT_WRITES');
    }
    // No deployed function's code reaches a coalescer: only infra/local/write-grouping.ts imports them.
    for (const key of Object.keys(ENTRIES) as FunctionKey[]) {
      for (const coalescer of COALESCERS) expect(reachable[key], key).not.toContain(coalescer);
    }
    // The composition root groups from the installed grouped writes alone; nothing installs any on AWS.
    const shared = code('lambdas/composition-root/shared.ts');
    expect(shared).toContain('new DynamoBatchRepository(dynamo(), tableEnv().TABLE_NAME, { grouping: installedWriteGrouping() })');
    expect(shared.match(/new DynamoBatchRepository\(/g)).toHaveLength(1);
    for (const key of Object.keys(ENTRIES) as FunctionKey[]) {
      for (const file of reachable[key]) expect(code(file), file).not.toMatch(/(?<!function )\binstallWriteGrouping\(/);
    }
  });

  it('Start and Finish batch, the autoscaler and the reconciler send Step Functions commands only through CapacityCoordinator', () => {
    for (const key of ['startBatch', 'autoscaler', 'reconciler', 'fileJobs'] as const) {
      // The workflow comes from the one admission wiring (composition-root/admission.ts → admissionFor), and is used nowhere else.
      expect(reachable[key], key).toContain(ADMISSION_COMPOSITION);
      // The handler and the composition root's modules it reaches: the wiring.
      for (const file of reachable[key].filter((f) => f === ENTRIES[key] || f.startsWith('lambdas/composition-root/'))) {
        const source = readFileSync(path.join(repoRoot, file), 'utf8');
        if (file !== 'lambdas/adapters/admission.ts') expect(source, file).not.toMatch(/new StepFunctionsWorkflow\(/);
        if (file !== 'lambdas/domain/capacity-coordinator.ts' && file !== 'lambdas/domain/fleet-service.ts') expect(source.match(/\bworkflow\.\w+\(/g) ?? [], file).toEqual([]);
      }
    }
    expect(readFileSync(path.join(repoRoot, ADMISSION_COMPOSITION), 'utf8')).toMatch(/admissionFor\(/);
    const wiring = readFileSync(path.join(repoRoot, 'lambdas/adapters/admission.ts'), 'utf8');
    expect(wiring.match(/new StepFunctionsWorkflow\(/g)).toHaveLength(1);
    const coordinator = readFileSync(path.join(repoRoot, 'lambdas/domain/capacity-coordinator.ts'), 'utf8');
    const called = new Set([...coordinator.matchAll(/\bworkflow\.(\w+)\(/g)].map((m) => m[1]));
    expect([...called].sort()).toEqual([...COORDINATOR_WORKFLOW_CALLS].sort());
    const sent = COORDINATOR_WORKFLOW_CALLS.flatMap((method) => actionsOfMethod('lambdas/adapters/workflow.ts', method));
    expect(new Set(sent)).toEqual(new Set(['states:DescribeExecution', 'states:ListMapRuns', 'states:UpdateMapRun', 'states:StartExecution', 'states:RedriveExecution']));
    // Redrive is reached only through reconcile(), which only the reconciler calls.
    expect(methodBody('lambdas/domain/capacity-coordinator.ts', 'redriveFailed')).toContain('workflow.redrive(');
    for (const entry of [ENTRIES.startBatch, ENTRIES.autoscaler, ENTRIES.fileJobs, 'lambdas/domain/file-jobs.ts', 'lambdas/domain/fleet-service.ts', 'lambdas/domain/batch-lifecycle.ts', 'lambdas/api.ts', ...COMPOSITION_MODULES]) {
      expect(readFileSync(path.join(repoRoot, entry), 'utf8'), entry).not.toMatch(/\.reconcile\(/);
    }
    expect(readFileSync(path.join(repoRoot, ENTRIES.reconciler), 'utf8')).toMatch(/coordinator\.reconcile\(\)/);
  });

  it('the autoscaler changes the fleet only through FleetService.scaleWorkers, on a service with a CapacityCoordinator', () => {
    const source = readFileSync(path.join(repoRoot, ENTRIES.autoscaler), 'utf8');
    const called = new Set([...source.matchAll(/\bservice\.(\w+)\(/g)].map((m) => m[1]));
    expect([...called]).toEqual(['scaleWorkers']);
    expect(source).toMatch(/const service = scalingService\(\)/);
    // Built in the composition root.
    expect(functionBody('lambdas/composition-root/schedules.ts', 'scalingService')).toMatch(/capacity: coordinator/);
    // scaleWorkers re-shares the cap through the coordinator when it has one.
    const service = readFileSync(path.join(repoRoot, 'lambdas/domain/fleet-service.ts'), 'utf8');
    expect(service).toMatch(/if \(this\.deps\.capacity\) return [^\n]*this\.deps\.capacity\.rescale\(\)/);
  });

  for (const key of Object.keys(ENTRIES) as FunctionKey[]) {
    describe(`${key} (${ENTRIES[key]})`, () => {
      it('is allowed every action its code can send, on the right resource', () => {
        expect(missingGrants(derived[key], grantsOf(key), NOT_SENT[key], idsOf())).toEqual([]);
      });

      it('is granted the Step Functions and DynamoDB actions its code sends on no other resource than the code needs', () => {
        expect(misplacedGrants(derived[key], grantsOf(key), NOT_SENT[key], idsOf())).toEqual([]);
      });

      it('is granted nothing beyond what its code needs, except the justified list', () => {
        const needed = new Set([...derived[key]].map((command) => COMMAND_ACTIONS[command]?.action));
        const granted = new Set(grantsOf(key).map((grant) => grant.action));
        // X-Ray's actions come with active tracing (GRANTED_FOR_TRACING); log delivery is the managed policy's.
        const justified = { ...GRANTED_BEYOND_CODE[key], ...GRANTED_FOR_TRACING };
        const extra = [...granted].filter((action) => ![...needed].some((n) => n !== undefined && covers(action, n) && action === n));
        // A wildcard grant counts as extra unless every action it expands to is justified or needed:
        // listing the wildcard itself with its reason is enough.
        const unexplained = extra.filter((action) => !justified[action] && !(action.endsWith('*') && needed.has(action.replace('*', ''))));
        expect(unexplained, `${key}: granted but not needed and not justified`).toEqual([]);
        // And the allow-list holds no stale entry: each justified action is really granted.
        const stale = Object.keys(justified).filter((action) => !granted.has(action));
        expect(stale, `${key}: justified but no longer granted`).toEqual([]);
      });
    });
  }

  it('grants Scan and the stream reads (GetRecords, GetShardIterator) to no function whose code does not send them', () => {
    const unused = ['dynamodb:Scan', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator'];
    for (const key of Object.keys(ENTRIES) as FunctionKey[]) {
      const needed = new Set([...derived[key]].map((command) => COMMAND_ACTIONS[command]?.action));
      const granted = grantsOf(key).map((grant) => grant.action);
      for (const action of unused.filter((a) => !needed.has(a))) {
        expect(granted.filter((g) => covers(g, action)), `${key} is granted ${action}`).toEqual([]);
      }
    }
  });

  it('actions a function never sends are not granted to it, and each is really in its reachable code', () => {
    for (const key of Object.keys(ENTRIES) as FunctionKey[]) {
      const granted = grantsOf(key).map((grant) => grant.action);
      const derivedActions = [...derived[key]].map((c) => COMMAND_ACTIONS[c]?.action);
      for (const action of Object.keys(NOT_SENT[key])) {
        expect(granted.some((g) => covers(g, action)), `${key} granted ${action}`).toBe(false);
        expect(derivedActions, `${key}: stale NOT_SENT entry`).toContain(action);
      }
    }
  });

  describe('the checks catch a wrong grant (mutations of the synthesized grants)', () => {
    const partition = 'arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}';

    it('a DynamoDB grant without `<table>/index/*`: the API queries an index (listBatches)', () => {
      expect(derived.api).toContain(`QueryCommand${ON_INDEX}`);
      const withoutIndex = grantsOf('api').filter((grant) => !grant.resource.endsWith('/index/*'));
      expect(missingGrants(derived.api, grantsOf('api'), NOT_SENT.api, idsOf())).toEqual([]);
      expect(missingGrants(derived.api, withoutIndex, NOT_SENT.api, idsOf())).toEqual([`QueryCommand${ON_INDEX} → dynamodb:Query on tableIndex`]);
    });

    it('an execution ARN broader than the code needs (every state machine\'s executions)', () => {
      const ids = idsOf();
      const broader = grantsOf('api').map((grant) => (grant.resource.includes(':execution:') ? { ...grant, resource: `${partition}:execution:*` } : grant));
      expect(missingGrants(derived.api, broader, NOT_SENT.api, ids)).toEqual(
        expect.arrayContaining(['StopExecutionCommand → states:StopExecution on execution', 'DescribeExecutionCommand → states:DescribeExecution on execution']),
      );
      expect(misplacedGrants(derived.api, broader, NOT_SENT.api, ids)).toContain(`states:StopExecution on ${partition}:execution:*`);
    });

    it('an execution ARN narrower than the code needs (one execution name, where any batch\'s is sent)', () => {
      const ids = idsOf();
      const narrower = grantsOf('api').map((grant) =>
        grant.resource.includes(':execution:') ? { ...grant, resource: `${partition}:execution:\${${ids.machine}.Name}:batch-1` } : grant,
      );
      expect(missingGrants(derived.api, narrower, NOT_SENT.api, ids)).toEqual(expect.arrayContaining(['StopExecutionCommand → states:StopExecution on execution']));
    });

    it('a Map Run ARN of another state machine', () => {
      const ids = idsOf();
      const other = grantsOf('startBatch').map((grant) => (grant.resource.includes(':mapRun:') ? { ...grant, resource: `${partition}:mapRun:other/*` } : grant));
      expect(missingGrants(derived.startBatch, other, NOT_SENT.startBatch, ids)).toEqual(['UpdateMapRunCommand → states:UpdateMapRun on mapRun']);
      expect(misplacedGrants(derived.startBatch, other, NOT_SENT.startBatch, ids)).toEqual([`states:UpdateMapRun on ${partition}:mapRun:other/*`]);
    });

    it("the API's StopExecution on every file-jobs execution, where it stops only validations (prepare-*)", () => {
      const ids = idsOf();
      const prepare = `${partition}:execution:\${${ids.fileJobsMachine}.Name}:${PREPARE_EXECUTION_PREFIX}*`;
      expect(grantsOf('api')).toContainEqual({ action: 'states:StopExecution', resource: prepare });
      const every = grantsOf('api').map((grant) => (grant.resource === prepare ? { ...grant, resource: `${partition}:execution:\${${ids.fileJobsMachine}.Name}:*` } : grant));
      expect(missingGrants(derived.api, every, NOT_SENT.api, ids)).toEqual([`StopExecutionCommand${ON_FILE_JOBS} → states:StopExecution on fileJobsPrepareExecution`]);
      expect(misplacedGrants(derived.api, every, NOT_SENT.api, ids)).toEqual([`states:StopExecution on ${partition}:execution:\${${ids.fileJobsMachine}.Name}:*`]);
    });

    it('StartExecution of the file jobs granted to a function whose code starts none (the file jobs themselves)', () => {
      const ids = idsOf();
      const withStart = [...grantsOf('fileJobs'), { action: 'states:StartExecution', resource: `\${${ids.fileJobsMachine}}` }];
      expect(misplacedGrants(derived.fileJobs, withStart, NOT_SENT.fileJobs, ids)).toEqual([`states:StartExecution on \${${ids.fileJobsMachine}}`]);
    });

    it('a DynamoDB grant on every table', () => {
      const everyTable = [...grantsOf('worker'), { action: 'dynamodb:PutItem', resource: 'arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*' }];
      expect(misplacedGrants(derived.worker, everyTable, NOT_SENT.worker, idsOf())).toEqual([
        'dynamodb:PutItem on arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*',
      ]);
    });
  });
});
