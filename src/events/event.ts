// One Celery event as it travels on the wire (celery-events.md): the common fields and the conventions behind them.

import { readFileSync } from 'node:fs';
import { type as osType } from 'node:os';

/** A Celery event: `type` plus the fields every event carries, plus the event's own fields. */
export interface CeleryEvent {
  /** `worker-heartbeat`, `task-succeeded` … */
  type: string;
  /** Float seconds since the epoch (Python's `time.time()`). */
  timestamp: number;
  /** Node name of the sender, `name@host`. */
  hostname: string;
  /** Hours *west* of UTC (Python's `time.timezone // 3600`). */
  utcoffset: number;
  pid: number;
  /** Lamport clock value of the sender. */
  clock: number;
  [field: string]: unknown;
}

/** Python's `utcoffset()`: whole hours west of UTC, so UTC+1 is -1 (floor division, as Python's `//`). */
export function utcoffsetHours(at: Date = new Date()): number {
  return Math.floor(at.getTimezoneOffset() / 60);
}

let offsetMinute = Number.NaN;
let offsetHours = 0;

/**
 * {@link utcoffsetHours} at epoch ms `ms`, computed once per minute (zone offsets change on minute
 * boundaries; a `Date` and its zone lookup per event cost about a microsecond each).
 */
export function utcoffsetHoursAt(ms: number): number {
  const minute = Math.floor(ms / 60_000);
  if (minute !== offsetMinute) {
    offsetHours = utcoffsetHours(new Date(minute * 60_000));
    offsetMinute = minute;
  }
  return offsetHours;
}

/** The AMQP routing key of an event type: `task-succeeded` → `task.succeeded`. */
export function eventRoutingKey(type: string): string {
  return type.replace(/-/g, '.');
}

/** The group of an event type (`task`, `worker`): what `enable_events` / `disable_events` switch. */
export function eventGroup(type: string): string {
  const dash = type.indexOf('-');
  return dash < 0 ? type : type.slice(0, dash);
}

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** `sw_ident`, `sw_ver`, `sw_sys` of worker events (Celery sends `py-celery`, its version, `platform.system()`). */
export const SOFTWARE_INFO = { sw_ident: 'asynx', sw_ver: pkg.version, sw_sys: osType() } as const;
