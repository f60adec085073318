/**
 * Local mode's grouped writes. Every invocation runs in this process, and the
 * local DynamoDB is the fleet's alone, so this process is the table's only
 * writer: results recorded at the same time can go in one write
 * (lambdas/adapters/insert-coalescer.ts), counts in one UpdateItem, registry
 * puts in one BatchWriteItem. That is what lets a local DynamoDB keep up with
 * thousands of tasks a second. On AWS each stays its own request.
 *
 * The coalescers are imported here, and only here: the adapters receive them
 * through the composition root (lambdas/adapters/write-grouping.ts), so no
 * deployed Lambda bundle contains them.
 */
import { CounterCoalescer } from '../../lambdas/adapters/counter-coalescer';
import { InsertCoalescer, sharedInsertCoalescer } from '../../lambdas/adapters/insert-coalescer';
import { PutCoalescer } from '../../lambdas/adapters/put-coalescer';
import { installWriteGrouping, type WriteGrouping } from '../../lambdas/adapters/write-grouping';

/** The grouped writes of a process that is its tables' only writer. */
export const localWriteGrouping: WriteGrouping = {
  // One coalescer per table for the whole process, so the process is one writer.
  results: (tableName, identify, target) => sharedInsertCoalescer(tableName, () => new InsertCoalescer(identify, target, true)),
  counters: (identify, write) => new CounterCoalescer(identify, write),
  puts: (keyOf, putOne, putMany) => new PutCoalescer(keyOf, putOne, putMany),
};

/** Installs local mode's grouped writes for every handler this process runs. Call before the first invocation. */
export function groupLocalWrites(): void {
  installWriteGrouping(localWriteGrouping);
}
