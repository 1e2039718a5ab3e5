// Task options (user form) and their resolved form, plus the retry backoff rule.

import { UsageError } from '../errors.js';
import { backoffDelay } from '../util/backoff.js';
import { durationMs, type Duration } from '../util/duration.js';
import { resolveRateLimit, type RateLimit, type ResolvedRateLimit } from './rate-limit.js';

/** An error class, or an error name (`'TypeError'`), that triggers an automatic retry. */
export type ErrorMatcher = (abstract new (...args: never[]) => Error) | string;

/** Per-task options. Durations: a bare number is seconds, a string may carry a unit (`'500ms'`, `'2m'`). */
export interface TaskOptions {
  /** Retries allowed before the task fails. `null` means unlimited. @defaultValue 3 */
  maxRetries?: number | null;
  /** Delay between retries when neither `countdown` nor backoff says otherwise. @defaultValue 180 (seconds) */
  defaultRetryDelay?: Duration;
  /** Exponential backoff: `true` (base 1 s) or a base Duration; delay = base × 2^retries. @defaultValue false */
  retryBackoff?: boolean | Duration;
  /** Largest backoff delay. @defaultValue 600 (seconds) */
  retryBackoffMax?: Duration;
  /** Full jitter on backoff (random delay between 0 and the computed one). @defaultValue true */
  retryJitter?: boolean;
  /** Errors retried automatically (classes or names). @defaultValue [] */
  autoretryFor?: ErrorMatcher[];
  /** Hard time limit: the pool child running the task is killed. @defaultValue none */
  timeLimit?: Duration;
  /** Soft time limit: the task's signal aborts and it fails with SoftTimeLimitExceeded. @defaultValue none */
  softTimeLimit?: Duration;
  /** Acknowledge after the task ran (redelivered if the worker dies) rather than before. @defaultValue app's acksLate */
  acksLate?: boolean;
  /** Store no result. @defaultValue false */
  ignoreResult?: boolean;
  /** Store a STARTED state when a worker begins the task. @defaultValue false */
  trackStarted?: boolean;
  /** Default queue. @defaultValue app's defaultQueue */
  queue?: string;
  /** Default priority 0..255 (higher first; lower first on Redis, as in Celery). @defaultValue 0 */
  priority?: number;
  /**
   * Most starts per second, minute or hour (`'10/s'`, `'100/m'`, `'2/h'`, a bare number = per second), per
   * worker node as in Celery, or shared by every node on the SQLite or Redis broker with `{ rate, global: true }`.
   * A task waiting on its limit holds no pool slot. Changed at run time by the `rate_limit` control command.
   * @defaultValue none
   * @see {@link RateLimit}
   */
  rateLimit?: RateLimit;
}

/** Options with defaults applied. Durations are numbers of seconds here, as on Celery's wire. */
export interface ResolvedTaskOptions {
  maxRetries: number | null;
  defaultRetryDelay: number;
  retryBackoff: number;
  retryBackoffMax: number;
  retryJitter: boolean;
  autoretryFor: ErrorMatcher[];
  timeLimit: number | null;
  softTimeLimit: number | null;
  acksLate: boolean | null;
  ignoreResult: boolean;
  trackStarted: boolean;
  queue: string | null;
  priority: number;
  rateLimit: ResolvedRateLimit | null;
}

/** The error for a bad task option (at definition, or given to `ctx.retry()`): names the task, option and value. */
export function badTaskOption(task: string, option: string, value: unknown, expected: string): UsageError {
  const shown = typeof value === 'string' ? `'${value}'` : String(value);
  return new UsageError('asynx.task.badOption', `Task '${task}': option ${option} ${expected}, got ${shown}`, { option, value, task });
}

/** Seconds for a duration option, or `dflt` when unset; `positive` rejects 0. */
function seconds(task: string, option: string, value: Duration | undefined, dflt: number | null, positive = false): number | null {
  if (value === undefined || value === null) return dflt;
  let s: number;
  try {
    s = durationMs(value, option) / 1000;
  } catch {
    throw badTaskOption(task, option, value, "must be a duration: a number of seconds (30) or a string with a unit ('250ms', '30s', '5m')");
  }
  if (positive && !(s > 0)) throw badTaskOption(task, option, value, 'must be a positive duration');
  return s;
}

/** Validates and fills in task options. */
export function resolveTaskOptions(task: string, o: TaskOptions = {}): ResolvedTaskOptions {
  const backoff = o.retryBackoff === true ? 1 : o.retryBackoff === false || o.retryBackoff === undefined ? 0 : seconds(task, 'retryBackoff', o.retryBackoff, 0)!;
  const priority = o.priority ?? 0;
  if (!Number.isInteger(priority) || priority < 0 || priority > 255) throw badTaskOption(task, 'priority', priority, 'must be an integer 0..255');
  const maxRetries = o.maxRetries === undefined ? 3 : o.maxRetries;
  if (maxRetries !== null && (!Number.isInteger(maxRetries) || maxRetries < 0)) throw badTaskOption(task, 'maxRetries', maxRetries, 'must be an integer ≥ 0, or null for unlimited');
  return {
    maxRetries,
    defaultRetryDelay: seconds(task, 'defaultRetryDelay', o.defaultRetryDelay, 180)!,
    retryBackoff: backoff,
    retryBackoffMax: seconds(task, 'retryBackoffMax', o.retryBackoffMax, 600)!,
    retryJitter: o.retryJitter ?? true,
    autoretryFor: o.autoretryFor ?? [],
    timeLimit: seconds(task, 'timeLimit', o.timeLimit, null, true),
    softTimeLimit: seconds(task, 'softTimeLimit', o.softTimeLimit, null, true),
    acksLate: o.acksLate ?? null,
    ignoreResult: o.ignoreResult ?? false,
    trackStarted: o.trackStarted ?? false,
    queue: o.queue ?? null,
    priority,
    rateLimit: resolveRateLimit(`Task '${task}'`, o.rateLimit),
  };
}

/** Seconds to wait before retry number `retries + 1` (Celery's exponential backoff with full jitter). */
export function backoffSeconds(opts: ResolvedTaskOptions, retries: number, random: () => number = Math.random): number {
  if (!opts.retryBackoff) return opts.defaultRetryDelay;
  return backoffDelay({ base: opts.retryBackoff, max: opts.retryBackoffMax, jitter: opts.retryJitter ? 'full' : 'none' }, retries, random);
}

/** True when `err` matches one of the matchers (by class or by name). */
export function matchesError(err: unknown, matchers: ErrorMatcher[]): boolean {
  return matchers.some((m) => {
    if (typeof m === 'string') return err instanceof Error && (err.name === m || err.constructor?.name === m);
    return err instanceof (m as unknown as new () => Error);
  });
}
