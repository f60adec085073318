/**
 * Least privilege for task code: a worker function may write only the
 * partitions the worker path writes (its results, its batch's counters, its
 * registry entry), never the config, the capacity, an idempotency key, a
 * batch record, the admission queue or the stats.
 *
 * IAM cannot run locally, so these tests read the synthesized policy and
 * evaluate it for the requests the worker's own adapter code sends (through a
 * recording client) and for the requests it must never be able to send.
 *
 * - `dynamodb:LeadingKeys` holds the partition keys a request touches, and
 *   restricts which items a principal may access:
 *   https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html
 * - `ForAllValues` holds when every value of a multivalued key matches, and
 *   also when the request has no such key at all, hence the `Null` check:
 *   https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
 * - `StringLike`: `*` matches any run of characters, `?` exactly one:
 *   https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
 */
import { BatchGetCommand, BatchWriteCommand, DeleteCommand, GetCommand, PutCommand, QueryCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { WORKER_TABLE_ACTIONS } from '../../infra/fleet';
import { localWriteGrouping } from '../../infra/local/write-grouping';
import { DynamoBatchRepository } from '../../lambdas/adapters/batch-repository';
import { DynamoCapacityStore } from '../../lambdas/adapters/capacity-store';
import { DynamoFleetActivity } from '../../lambdas/adapters/fleet-activity';
import { DynamoIdempotencyStore } from '../../lambdas/adapters/idempotency-store';
import { BATCH_RECORD_PARTITION_PATTERN, WORKER_PARTITION_PATTERNS, batchKey, configKey, counterKey, countedKey, queueKey, resultKey, statsKey } from '../../lambdas/adapters/table-layout';
import { COUNTER_SHARDS, RESULT_SHARDS } from '../../lambdas/domain/batch';
import { emptyCapacity } from '../../lambdas/domain/capacity';
import { STATS_SHARDS, WORKER_SHARDS } from '../../lambdas/domain/fleet-activity';
import { asArray, logicalIdOf, synth, type Resources } from './synth';

/** One DynamoDB request as IAM sees it: the action and the partition keys it touches. */
interface TableRequest {
  action: string;
  leadingKeys: string[];
}

const ACTION_OF: Record<string, string> = {
  PutCommand: 'dynamodb:PutItem',
  UpdateCommand: 'dynamodb:UpdateItem',
  DeleteCommand: 'dynamodb:DeleteItem',
  GetCommand: 'dynamodb:GetItem',
  QueryCommand: 'dynamodb:Query',
  ScanCommand: 'dynamodb:Scan',
  BatchGetCommand: 'dynamodb:BatchGetItem',
  BatchWriteCommand: 'dynamodb:BatchWriteItem',
};

type Command = PutCommand | UpdateCommand | DeleteCommand | GetCommand | QueryCommand | ScanCommand | BatchGetCommand | BatchWriteCommand;

/** The partition keys a document-client command touches, as DynamoDB puts them in dynamodb:LeadingKeys. */
function toRequest(command: Command): TableRequest {
  const action = ACTION_OF[command.constructor.name];
  if (!action) throw new Error(`no IAM action known for ${command.constructor.name}`);
  const input = command.input as {
    Item?: { pk: string };
    Key?: { pk: string };
    KeyConditionExpression?: string;
    ExpressionAttributeValues?: Record<string, unknown>;
    RequestItems?: Record<string, { Keys?: { pk: string }[] } | { PutRequest?: { Item: { pk: string } }; DeleteRequest?: { Key: { pk: string } } }[]>;
  };
  const keys: string[] = [];
  if (input.Item) keys.push(input.Item.pk);
  if (input.Key) keys.push(input.Key.pk);
  if (input.KeyConditionExpression) keys.push(String(input.ExpressionAttributeValues?.[':pk']));
  for (const entry of Object.values(input.RequestItems ?? {})) {
    if (Array.isArray(entry)) for (const write of entry) keys.push((write.PutRequest?.Item ?? write.DeleteRequest?.Key)?.pk ?? '');
    else for (const key of entry.Keys ?? []) keys.push(key.pk);
  }
  return { action, leadingKeys: [...new Set(keys)] };
}

/** A document client that records what it is sent and answers as an empty table would. */
function recordingClient(): { client: DynamoDBDocumentClient; sent: TableRequest[] } {
  const sent: TableRequest[] = [];
  const client = {
    send: async (command: Command) => {
      sent.push(toRequest(command));
      if (command instanceof BatchGetCommand) return { Responses: {}, UnprocessedKeys: {} };
      if (command instanceof BatchWriteCommand) return { UnprocessedItems: {} };
      if (command instanceof DeleteCommand) return { Attributes: { attempt: 0 } };
      return {};
    },
  };
  return { client: client as unknown as DynamoDBDocumentClient, sent };
}

/** IAM's StringLike: `*` any run of characters, `?` exactly one, everything else literal. */
const stringLike = (pattern: string, value: string) =>
  new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's').test(value);

interface PolicyStatement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, string | string[]>>;
}

/**
 * Whether one of `statements` (a role's, all Allow) allows `request` on the
 * table. Only the condition operators Fleet uses are understood; any other
 * fails the test rather than being skipped.
 */
function allows(statements: PolicyStatement[], tableArn: unknown, request: TableRequest): boolean {
  const covers = (granted: string) => new RegExp(`^${granted.replace(/\*/g, '.*')}$`, 'i').test(request.action);
  return statements.some((statement) => {
    if (statement.Effect !== 'Allow' || !asArray(statement.Action).some(covers)) return false;
    if (!asArray(statement.Resource).some((resource) => JSON.stringify(resource) === JSON.stringify(tableArn))) return false;
    return Object.entries(statement.Condition ?? {}).every(([operator, keys]) =>
      Object.entries(keys).every(([key, expected]) => {
        if (key !== 'dynamodb:LeadingKeys') throw new Error(`this evaluator does not know the condition key ${key}`);
        const values = request.leadingKeys;
        if (operator === 'Null') return String(expected) === String(values.length === 0);
        if (operator === 'ForAllValues:StringLike') return values.every((value) => asArray(expected).some((pattern) => stringLike(pattern, value)));
        throw new Error(`this evaluator does not know the condition operator ${operator}`);
      }),
    );
  });
}

describe('worker functions write only the worker partitions (dynamodb:LeadingKeys)', () => {
  let synthesized: ReturnType<typeof synth>;
  let resources: Resources;
  let tableArn: unknown;

  beforeAll(() => {
    synthesized = synth('WorkerKeys', { workers: { thumbnail: { entry: 'examples/workers/thumbnail-worker.ts' } } });
    resources = synthesized.resources;
    tableArn = { 'Fn::GetAtt': [logicalIdOf(synthesized.stack, synthesized.stack.fleet.table), 'Arn'] };
  });

  /** Every statement of every policy attached to a function's role. */
  function statementsOf(fn: Parameters<typeof logicalIdOf>[1]): PolicyStatement[] {
    const fnResource = resources[logicalIdOf(synthesized.stack, fn)];
    const role = (fnResource?.Properties?.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    return Object.values(resources)
      .filter((r) => r.Type === 'AWS::IAM::Policy' && ((r.Properties?.Roles ?? []) as { Ref?: string }[]).some((ref) => ref.Ref === role))
      .flatMap((r) => (r.Properties?.PolicyDocument as { Statement: PolicyStatement[] }).Statement);
  }

  const workers = () => [
    ['the default worker', synthesized.stack.fleet.workerFunction],
    ['a per-type worker (thumbnail)', synthesized.stack.fleet.typeWorkerFunctions.thumbnail!],
  ] as const;

  it('lists the partitions from the key builders: result shards and the workers registry, every shard of each', () => {
    expect(WORKER_PARTITION_PATTERNS).toEqual(['BATCH#*#S??', 'WORKERS#??']);
    const batchId = '6339acef-1b2c-4d5e-8f90-123456789abc';
    const written = [
      ...Array.from({ length: RESULT_SHARDS }, (_, shard) => resultKey(batchId, shard, 'task-1').pk),
      ...Array.from({ length: COUNTER_SHARDS }, (_, shard) => counterKey(batchId, shard).pk),
    ];
    for (const pk of written) expect(WORKER_PARTITION_PATTERNS.some((pattern) => stringLike(pattern, pk)), pk).toBe(true);
    const forbidden = [configKey().pk, batchKey(batchId).pk, countedKey(batchId).pk, queueKey(-5, batchId).pk, ...Array.from({ length: STATS_SHARDS }, (_, shard) => statsKey(shard).pk)];
    for (const pk of forbidden) expect(WORKER_PARTITION_PATTERNS.some((pattern) => stringLike(pattern, pk)), pk).toBe(false);
  });

  it("carries the LeadingKeys condition on every worker role's table statement, on the table alone", () => {
    // Template assertion: the exact statement, as IAM will read it.
    synthesized.template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Effect: 'Allow',
            Action: [...WORKER_TABLE_ACTIONS],
            Resource: tableArn,
            Condition: {
              'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [...WORKER_PARTITION_PATTERNS] },
              Null: { 'dynamodb:LeadingKeys': 'false' },
            },
          },
        ]),
      },
    });
    for (const [label, fn] of workers()) {
      const tableStatements = statementsOf(fn).filter((s) => asArray(s.Action).some((action) => action.startsWith('dynamodb:')));
      expect(tableStatements, label).toHaveLength(2);
      const [statement, batchRead] = tableStatements;
      expect(statement?.Condition, label).toEqual({
        'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [...WORKER_PARTITION_PATTERNS] },
        Null: { 'dynamodb:LeadingKeys': 'false' },
      });
      expect(asArray(statement?.Resource), label).toEqual([tableArn]);
      expect(asArray(statement?.Action).sort(), label).toEqual([...WORKER_TABLE_ACTIONS].sort());
      // One read: its batch's record (BATCH#<id>), before a retry, so no retry starts once the batch is cancelled.
      expect(batchRead, label).toEqual({
        Effect: 'Allow',
        Action: 'dynamodb:GetItem',
        Resource: tableArn,
        Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [BATCH_RECORD_PARTITION_PATTERN] }, Null: { 'dynamodb:LeadingKeys': 'false' } },
      });
      expect(statementsOf(fn).every((s) => s.Effect === 'Allow'), label).toBe(true);
    }
  });

  it("allows every request the worker's own code sends, as deployed (results not grouped)", async () => {
    // Arrange: the adapter methods worker.ts calls (test/infra/iam-matches-code.test.ts checks which), on a recording client.
    const { client, sent } = recordingClient();
    const repository = new DynamoBatchRepository(client, 'WorkerKeysTable');
    const activity = new DynamoFleetActivity(client, 'WorkerKeysTable');
    const batchId = '6339acef-1b2c-4d5e-8f90-123456789abc';

    // Act: a success and a failure per task on many tasks, so every shard is touched.
    for (let i = 0; i < 200; i++) {
      const taskId = `task-${i}`;
      await activity.registerWorker({ slot: `env${i}-0`, id: `w-${i}`, batchId, taskId, spawnedAt: 1, expiresAt: 2, attempt: 0 });
      await repository.recordResult(batchId, { taskId, success: i % 2 === 0, duration: 1, timestamp: 1, attempts: 1, workerId: `w-${i}` }, 2);
      await activity.deregisterWorker(`env${i}-0`, `w-${i}`);
      await activity.noteNextAttempt(batchId, taskId, 1, 2);
      await activity.takeNextAttempt(batchId, taskId);
    }

    // Assert: the requests reached results, counters and the registry, and the policy allows each one.
    const partitions = new Set(sent.flatMap((request) => request.leadingKeys));
    expect([...partitions].filter((pk) => pk.startsWith('WORKERS#')).length).toBe(WORKER_SHARDS);
    expect([...partitions].filter((pk) => pk.startsWith(`BATCH#${batchId}#S`)).length).toBe(RESULT_SHARDS);
    expect(new Set(sent.map((request) => request.action))).toEqual(new Set(['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem']));
    for (const [label, fn] of workers()) {
      const refused = sent.filter((request) => !allows(statementsOf(fn), tableArn, request));
      expect(refused, label).toEqual([]);
    }
  });

  it('grouped result writes (local mode only) touch only worker partitions too', async () => {
    const { client, sent } = recordingClient();
    const repository = new DynamoBatchRepository(client, 'WorkerKeysGroupedTable', { grouping: localWriteGrouping });
    const batchId = 'grouped-batch';
    // Many at once, so they go as BatchGetItem + BatchWriteItem groups.
    await Promise.all(
      Array.from({ length: 300 }, (_, i) => repository.recordResult(batchId, { taskId: `t-${i}`, success: true, duration: 1, timestamp: 1, attempts: 1, workerId: 'w' }, 2)),
    );
    expect(sent.some((request) => request.action === 'dynamodb:BatchWriteItem')).toBe(true);
    for (const pk of sent.flatMap((request) => request.leadingKeys)) {
      expect(WORKER_PARTITION_PATTERNS.some((pattern) => stringLike(pattern, pk)), pk).toBe(true);
    }
  });

  it('refuses a worker that writes the config, the capacity, an idempotency key, a batch record or the stats', async () => {
    // Arrange: the writes other functions make, sent by their own adapters.
    const { client, sent } = recordingClient();
    const repository = new DynamoBatchRepository(client, 'WorkerKeysForbiddenTable');
    const ignore = () => undefined;
    await repository.updateConfig({ maxConcurrentWorkers: 10_000 }).catch(ignore);
    await new DynamoCapacityStore(client, 'WorkerKeysForbiddenTable').save(emptyCapacity(), 0).catch(ignore);
    await new DynamoIdempotencyStore(client, 'WorkerKeysForbiddenTable').markCreated('0'.repeat(64), 'b1').catch(ignore);
    await repository.cancel('6339acef-1b2c-4d5e-8f90-123456789abc', { completedTasks: 0, failedTasks: 0, completedAt: 1, expiresAt: 2 }).catch(ignore);
    await new DynamoFleetActivity(client, 'WorkerKeysForbiddenTable').addSubmittedBatch(1).catch(ignore);
    const writes = sent.filter((request) => ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'].includes(request.action));
    expect(new Set(writes.flatMap((w) => w.leadingKeys.map((pk) => pk.replace(/#.*/, ''))))).toEqual(new Set(['FLEET', 'IDEMPOTENCY', 'BATCH', 'STATS']));

    // ...and by hand: every write action on the config item, one hidden in a BatchWriteItem, and requests naming no key.
    const byHand: TableRequest[] = [
      ...['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'].map((action) => ({ action, leadingKeys: [configKey().pk] })),
      { action: 'dynamodb:BatchWriteItem', leadingKeys: [resultKey('b1', 0, 't').pk, configKey().pk] },
      { action: 'dynamodb:PutItem', leadingKeys: [] },
      { action: 'dynamodb:Scan', leadingKeys: [] },
      { action: 'dynamodb:GetItem', leadingKeys: [configKey().pk] },
      { action: 'dynamodb:Query', leadingKeys: [resultKey('b1', 0, 't').pk] },
    ];

    // Assert: no worker role allows any of them (no Allow matches: an implicit deny).
    for (const [label, fn] of workers()) {
      const statements = statementsOf(fn);
      for (const request of [...writes, ...byHand]) expect(allows(statements, tableArn, request), `${label}: ${JSON.stringify(request)}`).toBe(false);
      // The evaluator is not refusing everything: a result write is allowed.
      expect(allows(statements, tableArn, { action: 'dynamodb:PutItem', leadingKeys: [resultKey('b1', 3, 't').pk] }), label).toBe(true);
    }
  });
});
