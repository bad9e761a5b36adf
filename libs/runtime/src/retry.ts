/** How long to wait before trying again: one policy for every retry loop of the project. */
export interface BackoffPolicy {
  /** The wait before the first retry. */
  initialMs: number;
  /** No wait is longer. */
  maxMs: number;
  /**
   * Spread each wait over [½, 1] of its value, so that many partitions or processes failing at once do not retry in
   * step. @default true
   */
  jitter?: boolean;
}

/** The wait before retry number `attempt` (1 for the first): `initialMs` doubling with each attempt, capped at `maxMs`. */
export function backoffMs(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return policy.jitter === false ? base : Math.round(base * (0.5 + random() / 2));
}
