// The one duration rule of asynx: a bare number is seconds (Celery's convention); a string may carry a unit.

import { UsageError } from '../errors.js';

/**
 * A duration as users write it: `30` or `'30'` (seconds), `'250ms'`, `'30s'`, `'5m'`, `'1h'`, `'1d'`.
 * The same rule holds in the API, config files, `ASYNX_*` variables and CLI flags.
 */
export type Duration = number | string;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PATTERN = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)?\s*$/;

/** True when `value` is a well-formed duration (see {@link Duration}). */
export function isDuration(value: unknown): value is Duration {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0;
  return typeof value === 'string' && PATTERN.test(value);
}

/**
 * Milliseconds for a {@link Duration}. `option` names the option in the error, so a user sees which
 * setting to fix: `Option publishTimeout: 'abc' is not a duration …` (code `asynx.config.badDuration`).
 */
export function durationMs(value: unknown, option: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw badDuration(option, value);
    return value * 1000;
  }
  if (typeof value !== 'string') throw badDuration(option, value);
  const m = PATTERN.exec(value);
  if (!m) throw badDuration(option, value);
  return Number(m[1]) * UNIT_MS[m[2] ?? 's']!;
}

/** Like {@link durationMs}, but `undefined` and `null` give `null` (option not set). */
export function optionalDurationMs(value: unknown, option: string): number | null {
  return value === undefined || value === null ? null : durationMs(value, option);
}

/** Seconds for a {@link Duration} (what Celery's wire and Python users expect). */
export function durationSeconds(value: unknown, option: string): number {
  return durationMs(value, option) / 1000;
}

function badDuration(option: string, value: unknown): UsageError {
  const shown = typeof value === 'string' ? `'${value}'` : String(value);
  return new UsageError('asynx.config.badDuration', `Option ${option}: ${shown} is not a duration: use a number of seconds (30) or a string with a unit (250ms, 30s, 5m, 1h)`, { option, value });
}
