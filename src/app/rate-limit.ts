// Rate limits as users write them (`'10/s'`, `{ rate: '10/s', global: true }`) → checked form, and the headers that carry them.

import { UsageError } from '../errors.js';

/**
 * A rate limit: Celery's rate string (`'10/s'`, `'100/m'`, `'2/h'`; a bare number such as `10` or `'10'`
 * means per second), or an object with `global: true` to share one limit across every worker node on the
 * same SQLite broker file or Redis server (refused on RabbitMQ). `0` or `''` means no limit.
 *
 * Per worker (Celery's behaviour) unless `global`: each node keeps one token bucket of capacity 1 per task
 * name, so starts are evenly spaced (`'100/m'` = at least 600 ms between two starts on one node).
 * @see README "Rate limits"
 */
export type RateLimit = string | number | { rate: string | number; global?: boolean };

/** A checked rate limit. */
export interface ResolvedRateLimit {
  /** As given, normalised to text (`'10/s'`), for `inspect registered` and the message header. */
  text: string;
  /** Tasks per second (> 0). */
  perSecond: number;
  /** Shared by every node on the same SQLite file or Redis server. */
  global: boolean;
}

/** Header carrying a per-call rate limit (`{ rate, global }`); a message without it uses the task's limit. */
export const RATE_LIMIT_HEADER = 'asynx_rate_limit';

/** The error for a rate limit that cannot be read: says where it was given and what is accepted. */
export function badRateLimit(where: string, value: unknown, why: string): UsageError {
  const shown = typeof value === 'string' ? `'${value}'` : typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
  return new UsageError('asynx.rateLimit.invalid', `${where}: rateLimit ${shown} ${why}; write '10/s', '100/m', '2/h' or a number per second (0 = no limit)`, { where, value: shown });
}

/**
 * Checks a Celery rate string and returns tasks per second (0 = no limit), or why it is wrong.
 * Celery's `rate()`: `ops/modifier`, modifier s, m or h, default s.
 */
export function rateOf(text: string): { perSecond: number } | { error: string } {
  const [ops = '', modifier = 's'] = text.split('/', 2);
  const per = ({ s: 1, m: 60, h: 3600 } as Record<string, number>)[modifier.trim() || 's'];
  if (per === undefined) return { error: `has an unknown unit '${modifier}' (s, m or h)` };
  const n = ops.trim() === '' ? Number.NaN : Number(ops);
  if (!Number.isFinite(n) || n < 0) return { error: `has a count '${ops}' that is not a number ≥ 0` };
  return { perSecond: n / per };
}

/**
 * Checks a rate limit given at `where` (a task definition, a call). Null = no limit (unset, `0`, `''`).
 * Throws UsageError `asynx.rateLimit.invalid`.
 */
export function resolveRateLimit(where: string, value: RateLimit | null | undefined): ResolvedRateLimit | null {
  if (value === undefined || value === null) return null;
  let rate: unknown = value;
  let global = false;
  if (typeof value === 'object') {
    if (typeof value.global !== 'undefined' && typeof value.global !== 'boolean') throw badRateLimit(where, value, 'has a global that is not true or false');
    rate = value.rate;
    global = value.global ?? false;
  }
  if (typeof rate === 'number') rate = String(rate);
  if (typeof rate !== 'string') throw badRateLimit(where, value, 'is not a rate');
  const text = rate.trim();
  if (text === '') return null;
  const r = rateOf(text);
  if ('error' in r) throw badRateLimit(where, value, r.error);
  if (r.perSecond === 0) return null;
  return { text, perSecond: r.perSecond, global };
}

/** The error for a `global` rate limit on a broker that cannot share one (RabbitMQ today). */
export function globalRateUnsupported(task: string, broker: string): UsageError {
  return new UsageError(
    'asynx.rateLimit.globalUnsupported',
    `Task '${task}': a global rate limit needs a shared store, and the ${broker} broker has none in asynx yet: use the SQLite or Redis broker, drop global (the limit is then per worker, as in Celery), or route the task to a queue consumed by one worker`,
    { task, broker },
  );
}
