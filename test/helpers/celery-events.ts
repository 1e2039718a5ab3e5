// Checks Celery events against ../shared/docs/celery-events.md: the common fields with their units, and each type's own fields.

import assert from 'node:assert/strict';
import type { CeleryEvent } from '../../src/events/event.js';

/** Fields beyond the common set, per type (celery-events.md "Fields each event carries"). */
export const FIELDS: Record<string, string[]> = {
  'worker-online': ['freq', 'active', 'processed', 'loadavg', 'sw_ident', 'sw_ver', 'sw_sys'],
  'worker-heartbeat': ['freq', 'active', 'processed', 'loadavg', 'sw_ident', 'sw_ver', 'sw_sys'],
  'worker-offline': ['freq', 'active', 'processed', 'loadavg', 'sw_ident', 'sw_ver', 'sw_sys'],
  'task-sent': ['uuid', 'name', 'args', 'kwargs', 'retries', 'eta', 'expires', 'root_id', 'parent_id', 'queue', 'exchange', 'routing_key'],
  'task-received': ['uuid', 'name', 'args', 'kwargs', 'root_id', 'parent_id', 'retries', 'eta', 'expires'],
  'task-started': ['uuid'],
  'task-succeeded': ['uuid', 'result', 'runtime'],
  'task-failed': ['uuid', 'exception', 'traceback'],
  'task-retried': ['uuid', 'exception', 'traceback'],
  'task-revoked': ['uuid', 'terminated', 'signum', 'expired'],
  'task-rejected': ['uuid', 'requeue'],
};

/** Python's `time.timezone // 3600` for this process's zone (hours west of UTC). */
export function expectedUtcoffset(): number {
  return Math.floor(new Date().getTimezoneOffset() / 60);
}

/**
 * Asserts the common fields (float epoch seconds near now, hostname, Python-signed utcoffset, pid, integer
 * clock) and every field the doc lists for the event's type, with their types.
 */
export function assertEventShape(e: CeleryEvent, opts: { hostname?: string; pid?: number } = {}): void {
  const what = `${e.type} ${JSON.stringify(e).slice(0, 300)}`;
  assert.equal(typeof e.timestamp, 'number', what);
  const now = Date.now() / 1000;
  assert.ok(e.timestamp > now - 600 && e.timestamp < now + 5, `timestamp is epoch seconds (not ms): ${what}`);
  assert.equal(typeof e.hostname, 'string', what);
  if (opts.hostname) assert.equal(e.hostname, opts.hostname, what);
  assert.equal(e.utcoffset, expectedUtcoffset(), `utcoffset in Python's sign: ${what}`);
  assert.ok(Number.isInteger(e.pid) && e.pid > 0, what);
  if (opts.pid) assert.equal(e.pid, opts.pid, what);
  assert.ok(Number.isInteger(e.clock) && e.clock > 0, `clock: ${what}`);
  const fields = FIELDS[e.type];
  assert.ok(fields, `a known event type: ${what}`);
  for (const f of fields) assert.ok(Object.hasOwn(e, f), `${e.type} has ${f}: ${what}`);
  if (e.type.startsWith('worker-')) {
    assert.equal(typeof e.freq, 'number', what);
    assert.ok(Number.isInteger(e.active) && Number.isInteger(e.processed), what);
    assert.ok(Array.isArray(e.loadavg) && e.loadavg.length === 3 && e.loadavg.every((x) => typeof x === 'number'), what);
    assert.equal(typeof e.sw_ident, 'string', what);
    assert.equal(typeof e.sw_ver, 'string', what);
    assert.equal(typeof e.sw_sys, 'string', what);
  }
  if (e.type === 'task-received' || e.type === 'task-sent') {
    assert.equal(typeof e.args, 'string', `args is a repr: ${what}`);
    assert.equal(typeof e.kwargs, 'string', `kwargs is a repr: ${what}`);
    assert.ok(Number.isInteger(e.retries), what);
  }
  if (e.type === 'task-succeeded') {
    assert.equal(typeof e.result, 'string', `result is a repr: ${what}`);
    assert.ok(typeof e.runtime === 'number' && e.runtime >= 0 && e.runtime < 60, `runtime in seconds: ${what}`);
  }
  if (e.type === 'task-failed' || e.type === 'task-retried') {
    assert.equal(typeof e.exception, 'string', what);
    assert.equal(typeof e.traceback, 'string', what);
  }
}

/**
 * Asserts that each sender's clock values only increase, in the order received, within each event group
 * (task events are buffered and sent as lists, so a worker event may overtake them, as with Celery).
 */
export function assertClocksIncrease(events: CeleryEvent[]): void {
  const last = new Map<string, number>();
  for (const e of events) {
    const key = `${e.hostname}/${e.pid}/${e.type.split('-')[0]}`;
    const prev = last.get(key);
    if (prev !== undefined) assert.ok(e.clock > prev, `clock of ${e.hostname} increases: ${prev} then ${e.clock} (${e.type})`);
    last.set(key, e.clock);
  }
}
