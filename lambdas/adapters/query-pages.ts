/**
 * A Query's every page, following LastEvaluatedKey: the one loop every
 * adapter that reads a whole partition (or index partition) uses.
 */
import { QueryCommand, type DynamoDBDocumentClient, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';

type Item = Record<string, unknown>;

/** The items of each page, a page at a time (for work done per page, such as deleting it). */
export async function* queryPages(client: DynamoDBDocumentClient, input: Omit<QueryCommandInput, 'ExclusiveStartKey'>): AsyncGenerator<Item[]> {
  let start: Item | undefined;
  do {
    const page = await client.send(new QueryCommand({ ...input, ExclusiveStartKey: start }));
    yield page.Items ?? [];
    start = page.LastEvaluatedKey;
  } while (start);
}

/** Every item the Query matches, page after page. */
export async function* queryItems(client: DynamoDBDocumentClient, input: Omit<QueryCommandInput, 'ExclusiveStartKey'>): AsyncGenerator<Item> {
  for await (const items of queryPages(client, input)) yield* items;
}
