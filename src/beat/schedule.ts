// A periodic schedule, `{ every }` or `{ cron, tz }`, resolved once into "the next due time after t" (epoch ms).
//
// Due times are pure functions of the schedule, never of when a scheduler started: intervals are aligned
// to multiples of `every` since the Unix epoch (as BullMQ's `every`), cron times come from croner in the
// entry's IANA timezone. So every scheduler of a cluster computes the same due times, and the state
// store can dedupe them by value. croner does the DST arithmetic: a 02:30 daily job runs once on the
// spring-forward day (at 03:00, the first valid minute after the gap) and once on the fall-back day
// (the first 02:30, not the repeated one) — Celery #1604, #6438, #10107.

import { Cron } from 'croner';
import { durationMs, type Duration } from '../util/duration.js';
import { badPeriodicOption } from './beat-errors.js';

/** How often an entry runs: a fixed interval, or a cron expression in a timezone. */
export type PeriodicSchedule =
  | {
      /** Interval: seconds (`30`) or a string with a unit (`'30s'`, `'5m'`). Runs at multiples of it since the Unix epoch. */
      every: Duration;
    }
  | {
      /** Cron expression: 5 fields (`'*\/5 * * * *'`), or 6 with seconds first (`'*\/10 * * * * *'`). */
      cron: string;
      /** IANA timezone the expression is read in. @defaultValue `'UTC'` */
      tz?: string;
    };

/** A schedule checked and compiled: answers "next due time after t". */
export interface ResolvedSchedule {
  readonly kind: 'every' | 'cron';
  /** The interval, ms (kind `every`). */
  readonly everyMs: number | null;
  /** The expression (kind `cron`). */
  readonly cron: string | null;
  /** Timezone for cron, and for showing times (`asynx beat --list`). */
  readonly tz: string;
  /** The first due time strictly after `afterMs` (epoch ms). */
  next(afterMs: number): number;
  /** `every 30s` or `cron 30 2 * * * (Europe/Berlin)`. */
  describe(): string;
}

/** Cron iterations walked by {@link duesBetween} before it gives up on a very long gap. */
const MAX_CRON_STEPS = 100_000;

/** Whether `tz` is an IANA timezone this runtime knows. */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

function everyText(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** Checks and compiles the schedule of entry `entry`; a bad one is a UsageError `asynx.periodic.badOption`. */
export function resolveSchedule(entry: string, schedule: unknown): ResolvedSchedule {
  if (typeof schedule !== 'object' || schedule === null || Array.isArray(schedule)) {
    throw badPeriodicOption(entry, 'schedule', schedule, "must be { every: '30s' } or { cron: '*/5 * * * *', tz?: 'Europe/Berlin' }");
  }
  const s = schedule as Record<string, unknown>;
  const hasEvery = s.every !== undefined;
  const hasCron = s.cron !== undefined;
  if (hasEvery === hasCron) throw badPeriodicOption(entry, 'schedule', schedule, 'must have exactly one of every or cron');
  for (const key of Object.keys(s)) {
    if (!['every', 'cron', 'tz'].includes(key)) throw badPeriodicOption(entry, `schedule.${key}`, s[key], 'is not a schedule field (every, cron, tz)');
  }
  if (hasEvery) {
    if (s.tz !== undefined) throw badPeriodicOption(entry, 'schedule.tz', s.tz, 'applies to cron only (an interval is the same in every timezone)');
    let ms: number;
    try {
      ms = durationMs(s.every, 'every');
    } catch {
      throw badPeriodicOption(entry, 'schedule.every', s.every, "must be a duration: seconds (30) or a string with a unit ('30s', '5m')");
    }
    if (!(ms >= 1)) throw badPeriodicOption(entry, 'schedule.every', s.every, 'must be at least 1 ms');
    const everyMs = Math.round(ms);
    return {
      kind: 'every',
      everyMs,
      cron: null,
      tz: 'UTC',
      next: (after) => Math.floor(after / everyMs) * everyMs + everyMs,
      describe: () => `every ${everyText(everyMs)}`,
    };
  }
  if (typeof s.cron !== 'string' || s.cron.trim() === '') throw badPeriodicOption(entry, 'schedule.cron', s.cron, "must be a cron expression such as '*/5 * * * *'");
  const tz = s.tz ?? 'UTC';
  if (typeof tz !== 'string' || !isTimeZone(tz)) throw badPeriodicOption(entry, 'schedule.tz', tz, "must be an IANA timezone such as 'Europe/Berlin' or 'UTC'");
  const expr = s.cron.trim();
  let cron: Cron;
  try {
    cron = new Cron(expr, { timezone: tz, paused: true });
  } catch (err) {
    throw badPeriodicOption(entry, 'schedule.cron', s.cron, `is not a valid cron expression (${(err as Error).message})`);
  }
  if (!cron.nextRun(new Date())) throw badPeriodicOption(entry, 'schedule.cron', s.cron, 'never matches a future time');
  return {
    kind: 'cron',
    everyMs: null,
    cron: expr,
    tz,
    next: (after) => cron.nextRun(new Date(after))?.getTime() ?? Number.POSITIVE_INFINITY,
    describe: () => `cron ${expr} (${tz})`,
  };
}

/**
 * The due times in `(afterMs, untilMs]`, oldest first, at most the newest `limit` of them, and how many
 * older ones were left out. Intervals are computed directly; cron walks at most {@link MAX_CRON_STEPS}.
 */
export function duesBetween(schedule: ResolvedSchedule, afterMs: number, untilMs: number, limit: number): { dues: number[]; dropped: number } {
  if (schedule.everyMs !== null) {
    const e = schedule.everyMs;
    const first = Math.floor(afterMs / e) * e + e;
    if (first > untilMs) return { dues: [], dropped: 0 };
    const last = Math.floor(untilMs / e) * e;
    const total = (last - first) / e + 1;
    const n = Math.min(total, limit);
    const dues: number[] = [];
    for (let i = n - 1; i >= 0; i--) dues.push(last - i * e);
    return { dues, dropped: total - n };
  }
  const dues: number[] = [];
  let dropped = 0;
  let t = afterMs;
  for (let steps = 0; steps < MAX_CRON_STEPS; steps++) {
    t = schedule.next(t);
    if (!(t <= untilMs)) return { dues, dropped };
    dues.push(t);
    if (dues.length > limit) {
      dues.shift();
      dropped++;
    }
  }
  // A gap too long to walk: keep what is newest of the walked part, and count the rest as dropped.
  return { dues, dropped: dropped + 1 };
}

/** `2026-03-29 03:00:00 GMT+02:00` in `tz`: how `asynx beat --list` shows a due time. */
export function formatInZone(ms: number, tz: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: tz,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'longOffset',
  }).formatToParts(new Date(ms));
  const p = (type: string): string => parts.find((x) => x.type === type)?.value ?? '';
  return `${p('year')}-${p('month')}-${p('day')} ${p('hour')}:${p('minute')}:${p('second')} ${p('timeZoneName')}`;
}
