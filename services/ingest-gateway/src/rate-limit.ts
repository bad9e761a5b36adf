/**
 * A token bucket per API key: `ratePerSec` tokens a second, at most `burst`
 * saved up. Pure: the clock is passed in.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
  ) {}

  /** Takes `cost` tokens for `key`; when there are not enough, says how many seconds until there are. */
  take(key: string, cost: number, now: number): { allowed: true } | { allowed: false; retryAfterSec: number } {
    if (this.ratePerSec <= 0) return { allowed: true };
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.ratePerSec);
    bucket.at = now;
    this.buckets.set(key, bucket);
    if (cost > this.burst) return { allowed: false, retryAfterSec: Math.ceil(cost / this.ratePerSec) };
    if (bucket.tokens >= cost) {
      bucket.tokens -= cost;
      return { allowed: true };
    }
    return { allowed: false, retryAfterSec: Math.max(1, Math.ceil((cost - bucket.tokens) / this.ratePerSec)) };
  }
}
