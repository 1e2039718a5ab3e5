// Task options (user form) and their resolved form, plus the retry backoff rule.

import { UsageError } from '../errors.js';
import { backoffDelay } from '../util/backoff.js';

/** An error class, or an error name (`'TypeError'`), that triggers an automatic retry. */
export type ErrorMatcher = (abstract new (...args: never[]) => Error) | string;

/** Per-task options. */
export interface TaskOptions {
  /** Retries allowed before the task fails. `null` means unlimited. @defaultValue 3 */
  maxRetries?: number | null;
  /** Seconds between retries when neither `countdown` nor backoff says otherwise. @defaultValue 180 */
  defaultRetryDelay?: number;
  /** Exponential backoff: `true` (base 1 s) or a base in seconds; delay = base × 2^retries. @defaultValue false */
  retryBackoff?: boolean | number;
  /** Largest backoff delay, seconds. @defaultValue 600 */
  retryBackoffMax?: number;
  /** Full jitter on backoff (random delay between 0 and the computed one). @defaultValue true */
  retryJitter?: boolean;
  /** Errors retried automatically (classes or names). @defaultValue [] */
  autoretryFor?: ErrorMatcher[];
  /** Hard time limit, seconds: the pool child running the task is killed. @defaultValue none */
  timeLimit?: number;
  /** Soft time limit, seconds: the task's signal aborts and it fails with SoftTimeLimitExceeded. @defaultValue none */
  softTimeLimit?: number;
  /** Acknowledge after the task ran (redelivered if the worker dies) rather than before. @defaultValue app's acksLate */
  acksLate?: boolean;
  /** Store no result. @defaultValue false */
  ignoreResult?: boolean;
  /** Store a STARTED state when a worker begins the task. @defaultValue false */
  trackStarted?: boolean;
  /** Default queue. @defaultValue app's defaultQueue */
  queue?: string;
  /** Default priority 0..255 (higher first). @defaultValue 0 */
  priority?: number;
}

/** Options with defaults applied. */
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
}

function positive(name: string, task: string, v: number | undefined): number | null {
  if (v === undefined) return null;
  if (typeof v !== 'number' || !(v > 0)) throw new UsageError('asynx.task.badOption', `Task '${task}': option ${name} must be a positive number of seconds, got ${String(v)}`, { option: name, value: v, task });
  return v;
}

/** Validates and fills in task options. */
export function resolveTaskOptions(task: string, o: TaskOptions = {}): ResolvedTaskOptions {
  const backoff = o.retryBackoff === true ? 1 : typeof o.retryBackoff === 'number' ? o.retryBackoff : 0;
  const priority = o.priority ?? 0;
  if (!Number.isInteger(priority) || priority < 0 || priority > 255) {
    throw new UsageError('asynx.task.badOption', `Task '${task}': priority must be an integer 0..255, got ${String(priority)}`, { option: 'priority', value: priority, task });
  }
  return {
    maxRetries: o.maxRetries === undefined ? 3 : o.maxRetries,
    defaultRetryDelay: o.defaultRetryDelay ?? 180,
    retryBackoff: backoff,
    retryBackoffMax: o.retryBackoffMax ?? 600,
    retryJitter: o.retryJitter ?? true,
    autoretryFor: o.autoretryFor ?? [],
    timeLimit: positive('timeLimit', task, o.timeLimit),
    softTimeLimit: positive('softTimeLimit', task, o.softTimeLimit),
    acksLate: o.acksLate ?? null,
    ignoreResult: o.ignoreResult ?? false,
    trackStarted: o.trackStarted ?? false,
    queue: o.queue ?? null,
    priority,
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
