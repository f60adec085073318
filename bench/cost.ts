/**
 * `npm run cost`: Fleet's orchestration cost on AWS per million tasks, read
 * from the synthesized template (the state machine Fleet deploys and its
 * functions' memory and architecture) and from the constants the handlers
 * use (shards, the worker-listing mode and delay). The user's own compute, the task
 * handler's run time in the worker Lambda, is excluded.
 *
 * DynamoDB writes are counted per item written, each at least one write unit
 * (items here are under 1 KB). A write that adds, changes or removes a
 * secondary index's key also writes that index, billed the same way
 * (https://aws.amazon.com/dynamodb/pricing/on-demand/, and "Provisioned
 * throughput considerations for global secondary indexes" in the DynamoDB
 * developer guide). Fleet's per-task writes touch no index: the worker
 * registry is a table partition, not an index.
 *
 * A Distributed Map is billed one state transition for every child
 * execution it starts, EXPRESS children included
 * (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-transitions.html,
 * "Transitions in Distributed Map state"): $25 per million tasks, paid by
 * every design that runs one child per task, Fleet's and the naive one alike.
 *
 * Prices are us-east-1 list prices, given in the table printed below; change
 * PRICES to re-run for another region.
 */
import { COUNTER_SHARDS } from '../lambdas/domain/batch';
import { DEFAULT_WORKER_LISTING, WORKER_LISTING_DELAY_MS, WORKER_SHARDS, listingDelayMs } from '../lambdas/domain/fleet-activity';
import type { WorkerListingMode } from '../lambdas/domain/types';
import { resolveTemplate, synthesizeTemplate, type CfnTemplate } from '../infra/local/template';

const PRICES = {
  standardTransition: 0.025 / 1000,
  expressRequest: 1.0 / 1e6,
  expressGbSecond: 0.00001667,
  lambdaRequest: 0.2 / 1e6,
  lambdaGbSecondArm: 0.0000133334,
  lambdaGbSecondX86: 0.0000166667,
  dynamoWriteUnit: 0.625 / 1e6,
  dynamoReadUnit: 0.125 / 1e6,
  sqsRequest: 0.4 / 1e6,
};

const ASSUMPTIONS = {
  taskSeconds: 1,
  /** Worker time spent by Fleet itself per attempt: recording the result, the registry. */
  workerOverheadMs: 30,
  /** Express memory: a small child workflow fits the first 64 MB chunk. */
  expressMemoryGb: 64 / 1024,
  /** Express duration is rounded up to 100 ms. */
  expressRoundingMs: 100,
  /** Result items stay under 1 KB: one write unit. */
  resultWriteUnits: 1,
  tasksPerSecond: 10_000,
};

type Machine = { StartAt: string; States: Record<string, State> };
type State = {
  Type: string;
  Next?: string;
  End?: boolean;
  Catch?: { Next: string }[];
  Branches?: Machine[];
  ItemProcessor?: Machine & { ProcessorConfig?: { ExecutionType?: string } };
};

/**
 * States a child execution passes through when its task succeeds first time,
 * a Parallel's branch states included (each is a transition of its own).
 */
function successPath(processor: Machine): { name: string; type: string }[] {
  const path: { name: string; type: string }[] = [];
  let name: string | undefined = processor.StartAt;
  while (name) {
    const state: State | undefined = processor.States[name];
    path.push({ name, type: state?.Type ?? 'unknown' });
    for (const branch of state?.Branches ?? []) path.push(...successPath(branch));
    name = state?.End || state?.Type === 'Succeed' ? undefined : state?.Next;
  }
  return path;
}

function main(): void {
  const template: CfnTemplate = synthesizeTemplate();
  const resources = resolveTemplate(template);
  const definition = JSON.parse(resources.stateMachine.definition) as { States: Record<string, State> };
  const map = Object.values(definition.States).find((s) => s.Type === 'Map' && s.ItemProcessor);
  if (!map?.ItemProcessor) throw new Error('no Distributed Map in the definition');
  const childType = map.ItemProcessor.ProcessorConfig?.ExecutionType ?? 'STANDARD';
  const childStates = successPath(map.ItemProcessor);
  const worker = Object.entries(template.Resources).find(([id, r]) => r.Type === 'AWS::Lambda::Function' && id.includes('Worker'))?.[1];
  const memoryGb = ((worker?.Properties?.MemorySize as number | undefined) ?? 128) / 1024;
  const arm = ((worker?.Properties?.Architectures as string[] | undefined) ?? []).includes('arm64');
  const parentTransitionsPerBatch = Object.keys(definition.States).length;

  // Per task, for 1 s tasks that succeed first time.
  const transitionsStandard = childStates.length;
  const lambdaInvocations = childStates.filter((s) => s.type === 'Task').length; // every Task of the child is a lambda:invoke
  const overheadGbSeconds = lambdaInvocations * memoryGb * (ASSUMPTIONS.workerOverheadMs / 1000);
  // A first-time success writes its slot's registry entry once, if it runs long enough to be listed,
  // and leaves it (its result shows it is over): no delete. Retries and failures also delete it.
  const registryWritesIn = (mode: WorkerListingMode) => (ASSUMPTIONS.taskSeconds * 1000 >= listingDelayMs(mode, WORKER_LISTING_DELAY_MS) ? 1 : 0);
  const registryWrites = registryWritesIn(DEFAULT_WORKER_LISTING);
  const writesIn = (mode: WorkerListingMode) => ASSUMPTIONS.resultWriteUnits + 1 /* shard counter ADD */ + registryWritesIn(mode);
  const writesPerTask = writesIn(DEFAULT_WORKER_LISTING);
  const expressSeconds = Math.ceil(((ASSUMPTIONS.taskSeconds * 1000 + ASSUMPTIONS.workerOverheadMs) * 1.05) / ASSUMPTIONS.expressRoundingMs) * (ASSUMPTIONS.expressRoundingMs / 1000);

  const lambdaGbPrice = arm ? PRICES.lambdaGbSecondArm : PRICES.lambdaGbSecondX86;
  const CHILD_START = 'Step Functions (Distributed Map: a transition per child started)';
  const common = {
    [CHILD_START]: PRICES.standardTransition,
    'Lambda requests': lambdaInvocations * PRICES.lambdaRequest,
    'Lambda GB-s (Fleet overhead only)': overheadGbSeconds * lambdaGbPrice,
    'DynamoDB writes': writesPerTask * PRICES.dynamoWriteUnit,
    'SQS requests': 0,
  };
  const express = {
    'Step Functions (EXPRESS children: requests)': PRICES.expressRequest,
    'Step Functions (EXPRESS children: duration)': expressSeconds * ASSUMPTIONS.expressMemoryGb * PRICES.expressGbSecond,
    ...common,
  };
  // The opt-in: GET /workers lists only attempts that have run WORKER_LISTING_DELAY_MS.
  const expressLongOnly = { ...express, 'DynamoDB writes': writesIn('long-attempts') * PRICES.dynamoWriteUnit };
  const standard = {
    'Step Functions (STANDARD children: transitions)': transitionsStandard * PRICES.standardTransition,
    ...common,
  };
  // The naive design: STANDARD children, and every task bumping one batch-wide
  // counter item (plus a second transition-billed "update counter" state).
  const naive = {
    [CHILD_START]: PRICES.standardTransition,
    // One task state and the counter state: the naive child has no Parallel around its call.
    'Step Functions (STANDARD children, + counter state)': (lambdaInvocations + 1) * PRICES.standardTransition,
    'Lambda requests (+ counter Lambda)': (lambdaInvocations + 1) * PRICES.lambdaRequest,
    'Lambda GB-s (Fleet overhead only)': (overheadGbSeconds + memoryGb * 0.02) * lambdaGbPrice,
    'DynamoDB writes': (ASSUMPTIONS.resultWriteUnits + 1) * PRICES.dynamoWriteUnit,
  };
  const perMillion = (parts: Record<string, number>) => Object.values(parts).reduce((a, b) => a + b, 0) * 1e6;

  console.log('Fleet orchestration cost model (from the synthesized template)\n');
  console.log(`child workflow: ${childType}, success path ${childStates.map((s) => `"${s.name}"`).join(' → ')}`);
  console.log(`worker: ${memoryGb * 1024} MB, ${arm ? 'arm64' : 'x86_64'}; parent: ${parentTransitionsPerBatch} states per batch (negligible per task)\n`);
  console.log('Per task (1 s task, succeeds first time):');
  console.table({
    'state transitions (STANDARD children)': transitionsStandard,
    'state transitions (EXPRESS children)': 0,
    'Express requests (EXPRESS children)': 1,
    'Lambda invocations': lambdaInvocations,
    'Lambda GB-s of Fleet overhead': Number(overheadGbSeconds.toFixed(4)),
    'DynamoDB write units': writesPerTask,
    'DynamoDB read units': 0,
    'SQS requests': 0,
  });
  console.log('USD per 1,000,000 tasks (orchestration only):');
  const rows: Record<string, Record<string, string>> = {};
  for (const [label, parts] of [
    [`Fleet, EXPRESS children (default: workerListing '${DEFAULT_WORKER_LISTING}')`, express],
    ["Fleet, EXPRESS children, workerListing 'long-attempts' (opt-in)", expressLongOnly],
    ['Fleet, STANDARD children', standard],
    ['naive: STANDARD + per-task counter', naive],
  ] as const) {
    rows[label] = Object.fromEntries([...Object.entries(parts).map(([k, v]) => [k, (v * 1e6).toFixed(2)] as const), ['TOTAL', perMillion(parts).toFixed(2)] as const]);
  }
  for (const [label, row] of Object.entries(rows)) {
    console.log(`\n${label}`);
    console.table(row);
  }
  const fleetTotal = perMillion(express);
  const childStarts = PRICES.standardTransition * 1e6;
  console.log(
    `\nTotal with EXPRESS children: $${fleetTotal.toFixed(2)} per million tasks, of which $${childStarts.toFixed(2)} is the Distributed Map's ` +
      'transition per child started, paid by any design that runs one child per task.',
  );
  const own = fleetTotal - childStarts;
  console.log(`Target: Fleet's own orchestration at most $5.00 per million tasks beyond that charge → ${own <= 5 ? 'met' : 'NOT met'} ($${own.toFixed(2)})`);
  const longOnlyTotal = perMillion(expressLongOnly);
  console.log(
    `Exact worker listing (every attempt from its start) costs $${(fleetTotal - longOnlyTotal).toFixed(3)} more per million tasks ` +
      `than listing long attempts only ($${longOnlyTotal.toFixed(2)}, workerListing 'long-attempts', ${WORKER_LISTING_DELAY_MS} ms).`,
  );
  console.log(`Naive design costs ${(perMillion(naive) / fleetTotal).toFixed(1)}x Fleet's.`);

  // Exact listing, other ways: per-task write units of each for a first-time success, the rest unchanged.
  const withWrites = (units: number) => perMillion({ ...express, 'DynamoDB writes': units * PRICES.dynamoWriteUnit });
  const base = ASSUMPTIONS.resultWriteUnits + 1;
  console.log('\nExact worker listing, designs compared (USD per million 1 s tasks, EXPRESS children):');
  console.table({
    'slot registry: one put per attempt, left by a success (Fleet)': { 'write units per task': base + 1, total: withWrites(base + 1).toFixed(2) },
    'registry item per task: put + delete': { 'write units per task': base + 2, total: withWrites(base + 2).toFixed(2) },
    // Placeholder put + its index entry, completing update + the index entry it removes.
    'result item written "running", sparse GSI the result removes': { 'write units per task': base + 3, total: withWrites(base + 3).toFixed(2) },
    'none (long attempts only, the opt-in)': { 'write units per task': base, total: withWrites(base).toFixed(2) },
  });

  const rate = ASSUMPTIONS.tasksPerSecond;
  console.log(`\nHottest DynamoDB item at ${rate.toLocaleString()} tasks/s fleet-wide (one batch):`);
  console.table({
    // On AWS each invocation is alone in its environment, so every task writes a counter (no merging); each write picks one at random.
    'batch progress counter (COUNTER_SHARDS)': { shards: COUNTER_SHARDS, 'writes/s per item': rate / COUNTER_SHARDS },
    'result item (one per task)': { shards: '-', 'writes/s per item': 'once' },
    'worker registry partition (WORKER_SHARDS)': { shards: WORKER_SHARDS, 'writes/s per item': `once per attempt; partition: ${(registryWrites * rate) / WORKER_SHARDS}` },
    'batch record, capacity, stats': { shards: '-', 'writes/s per item': 'per batch event, not per task' },
  });
  console.log('\nAssumptions:');
  console.table({ ...ASSUMPTIONS, ...Object.fromEntries(Object.entries(PRICES).map(([k, v]) => [`price: ${k}`, v])) });
}

main();
