// Exponential backoff with a cap and jitter: one rule for task retries, HTTP retries and reconnects.

/** How a backoff delay is computed. */
export interface BackoffPolicy {
  /** Delay of the first retry (attempt 0), in any unit; the result is in the same unit. */
  base: number;
  /** Largest delay before jitter. */
  max: number;
  /**
   * `full`: uniform in [0, delay] (Celery's retry_jitter, AWS "full jitter").
   * `equal`: uniform in [delay/2, delay], so retries stay spread out but never fire at once.
   * `none`: exactly the computed delay.
   * @defaultValue 'full'
   */
  jitter?: 'full' | 'equal' | 'none';
}

/** Delay before retry number `attempt + 1` (`attempt` 0-based): `min(max, base × 2^attempt)`, then jitter. */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.max, policy.base * 2 ** Math.min(Math.max(attempt, 0), 30));
  const jitter = policy.jitter ?? 'full';
  if (jitter === 'none') return ceiling;
  if (jitter === 'equal') return ceiling / 2 + random() * (ceiling / 2);
  return random() * ceiling;
}
