import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';

/**
 * Runs a conditional write. Resolves to its result, or to `undefined` when
 * DynamoDB refused it because its condition did not hold (an expected
 * outcome: a duplicate, a lost race, a stale version). Any other error is
 * thrown.
 */
export async function unlessConditionFails<T>(write: () => Promise<T>): Promise<T | undefined> {
  try {
    return await write();
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return undefined;
    throw error;
  }
}
