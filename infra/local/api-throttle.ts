/**
 * Step Functions' control-plane throttling: each API action has a token
 * bucket per account and Region; a call takes a token, tokens refill at a
 * fixed rate up to the bucket's size, and a call that finds the bucket empty
 * fails with ThrottlingException. The SDK retries it, as it must on AWS.
 *
 * The quotas are the documented defaults for US East (N. Virginia), US West
 * (Oregon) and Europe (Ireland), the Regions with the highest ones: every
 * other Region is at most as generous, so a flow that passes here may still
 * be throttled more elsewhere, never less.
 * https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html#service-limits-api-action-throttling-general
 */

export interface BucketQuota {
  /** Tokens the bucket holds when full: the burst allowed. */
  bucketSize: number;
  /** Tokens added per second. */
  refillPerSecond: number;
}

/** Standard workflows, US East (N. Virginia), US West (Oregon), Europe (Ireland). */
export const SFN_API_QUOTAS: Readonly<Record<string, BucketQuota>> = Object.freeze({
  StartExecution: { bucketSize: 1300, refillPerSecond: 300 },
  DescribeExecution: { bucketSize: 300, refillPerSecond: 15 },
  StopExecution: { bucketSize: 1000, refillPerSecond: 200 },
  RedriveExecution: { bucketSize: 1300, refillPerSecond: 300 },
  DescribeMapRun: { bucketSize: 200, refillPerSecond: 1 },
  ListMapRuns: { bucketSize: 100, refillPerSecond: 1 },
  UpdateMapRun: { bucketSize: 100, refillPerSecond: 1 },
});

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly quota: BucketQuota,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = quota.bucketSize;
    this.last = now();
  }

  /** Takes one token if there is one. */
  take(): boolean {
    const now = this.now();
    this.tokens = Math.min(this.quota.bucketSize, this.tokens + ((now - this.last) / 1000) * this.quota.refillPerSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** One bucket per action, built from quotas; an action without a quota is never throttled. */
export class ApiThrottle {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(quotas: Readonly<Record<string, BucketQuota>> = SFN_API_QUOTAS, now: () => number = Date.now) {
    for (const [action, quota] of Object.entries(quotas)) this.buckets.set(action, new TokenBucket(quota, now));
  }

  /** Whether the call may go ahead (it took a token). */
  admit(action: string): boolean {
    return this.buckets.get(action)?.take() ?? true;
  }
}
