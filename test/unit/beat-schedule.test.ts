// Periodic schedules: interval alignment, cron in a timezone across both DST change days, entry validation, --list rows.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Asynx } from '../../src/app/app.js';
import { periodicFromConfig, resolvePeriodicEntry } from '../../src/beat/entry.js';
import { duesBetween, formatInZone, resolveSchedule } from '../../src/beat/schedule.js';
import { listEntries } from '../../src/cli/beat.js';
import { UsageError } from '../../src/errors.js';

const iso = (ms: number) => new Date(ms).toISOString();
const at = (s: string) => Date.parse(s);

/** Every due time in [from, to) of a schedule, walked with next(): what a scheduler with that clock sends. */
function walk(schedule: ReturnType<typeof resolveSchedule>, from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = schedule.next(at(from) - 1); t < at(to); t = schedule.next(t)) out.push(iso(t));
  return out;
}

describe('cron in a timezone across DST (Europe/Berlin)', () => {
  const daily = resolveSchedule('daily', { cron: '30 2 * * *', tz: 'Europe/Berlin' });

  it('a 02:30 daily job runs once on the spring-forward day (02:30 does not exist: 03:00 CEST)', () => {
    assert.deepEqual(walk(daily, '2026-03-28T00:00:00Z', '2026-03-31T00:00:00Z'), ['2026-03-28T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z']);
  });

  it('a 02:30 daily job runs once on the fall-back day (02:30 happens twice: the first one)', () => {
    assert.deepEqual(walk(daily, '2026-10-24T00:00:00Z', '2026-10-27T00:00:00Z'), ['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
  });

  it('an hourly job runs every real hour on the fall-back day (Celery #10107 skipped one)', () => {
    const hourly = resolveSchedule('hourly', { cron: '0 * * * *', tz: 'Europe/Berlin' });
    const runs = walk(hourly, '2026-10-24T22:00:00Z', '2026-10-25T04:00:00Z');
    assert.equal(runs.length, 6);
    assert.deepEqual(runs.map((r) => formatInZone(at(r), 'Europe/Berlin').slice(11, 16)), ['00:00', '01:00', '02:00', '02:00', '03:00', '04:00']);
  });

  it('duesBetween with an injected "now" after a missed DST night gives each due time once', () => {
    const { dues, dropped } = duesBetween(daily, at('2026-03-27T12:00:00Z'), at('2026-03-30T12:00:00Z'), 100);
    assert.deepEqual(dues.map(iso), ['2026-03-28T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z']);
    assert.equal(dropped, 0);
    const last = duesBetween(daily, at('2026-03-27T12:00:00Z'), at('2026-03-30T12:00:00Z'), 1);
    assert.deepEqual([last.dues.map(iso), last.dropped], [['2026-03-30T00:30:00.000Z'], 2]);
  });

  it('formats times in the entry timezone with its offset', () => {
    assert.equal(formatInZone(at('2026-03-29T01:00:00Z'), 'Europe/Berlin'), '2026-03-29 03:00:00 GMT+02:00');
    assert.equal(formatInZone(at('2026-12-01T12:00:00Z'), 'Europe/Berlin'), '2026-12-01 13:00:00 GMT+01:00');
  });
});

describe('intervals', () => {
  it('are aligned to multiples of every since the epoch, so all schedulers agree', () => {
    const s = resolveSchedule('e', { every: '30s' });
    assert.equal(iso(s.next(at('2026-01-01T00:00:10Z'))), '2026-01-01T00:00:30.000Z');
    assert.equal(iso(s.next(at('2026-01-01T00:00:30Z'))), '2026-01-01T00:01:00.000Z');
    assert.equal(resolveSchedule('e', { every: 5 }).describe(), 'every 5s');
  });
  it('duesBetween bounds a long gap to the newest ones and counts the rest', () => {
    const s = resolveSchedule('e', { every: 1 });
    const r = duesBetween(s, at('2026-01-01T00:00:00Z'), at('2026-01-01T01:00:00Z'), 100);
    assert.equal(r.dues.length, 100);
    assert.equal(r.dropped, 3600 - 100);
    assert.equal(iso(r.dues.at(-1)!), '2026-01-01T01:00:00.000Z');
    assert.deepEqual(duesBetween(s, at('2026-01-01T00:00:00Z'), at('2026-01-01T00:00:00.500Z'), 10), { dues: [], dropped: 0 });
  });
});

describe('entries are checked with typed errors', () => {
  const bad = (fn: () => unknown, option: RegExp) =>
    assert.throws(fn, (err: unknown) => err instanceof UsageError && err.code === 'asynx.periodic.badOption' && option.test(err.message) && err.exitCode === 64);

  it('rejects bad schedules, policies and options, naming the entry and option', () => {
    bad(() => resolveSchedule('x', { cron: 'not a cron' }), /'x': schedule\.cron is not a valid cron/);
    bad(() => resolveSchedule('x', { cron: '* * * * *', tz: 'Mars/Olympus' }), /schedule\.tz must be an IANA timezone/);
    bad(() => resolveSchedule('x', { every: 'soon' }), /schedule\.every must be a duration/);
    bad(() => resolveSchedule('x', { every: 0 }), /at least 1 ms/);
    bad(() => resolveSchedule('x', { every: 5, cron: '* * * * *' }), /exactly one of every or cron/);
    bad(() => resolveSchedule('x', { every: 5, tz: 'UTC' }), /applies to cron only/);
    bad(() => resolvePeriodicEntry('x', { every: 5 }, 't', { catchUp: 'some' }), /catchUp must be one of none, latest, all/);
    bad(() => resolvePeriodicEntry('x', { every: 5 }, 't', { options: { countdown: 5 } }), /options\.countdown cannot be set/);
    bad(() => resolvePeriodicEntry('x', { every: 5 }, 't', { arg: [1] }), /arg is not a periodic option/);
    bad(() => periodicFromConfig({ x: { schedule: { every: 5 } } }), /'x': task must be/);
  });

  it('app.periodic takes a Task or a name, checks call options, refuses a duplicate name', async () => {
    const app = new Asynx({ configFile: false, eager: true });
    const t = app.task('t.one', () => 1);
    const e = app.periodic('one', { cron: '*/5 * * * *', tz: 'Europe/Berlin' }, t, { args: [1], options: { queue: 'q' } });
    assert.equal(e.task, 't.one');
    assert.equal(e.catchUp, 'latest');
    assert.throws(() => app.periodic('one', { every: 1 }, 't.one'), (err: unknown) => err instanceof UsageError && err.code === 'asynx.periodic.duplicate');
    assert.throws(() => app.periodic('two', { every: 1 }, t, { options: { priority: 900 } }), (err: unknown) => err instanceof UsageError && err.code === 'asynx.call.badOption');
    app.configure({ periodic: { one: { task: 't.one', schedule: { every: '1m' } }, cfg: { task: 't.one', schedule: { every: 10 }, catchUp: 'all' } } });
    const all = await app.periodicEntries();
    assert.deepEqual(all.map((x) => [x.name, x.schedule.describe(), x.catchUp]), [['cfg', 'every 10s', 'all'], ['one', 'every 1m', 'latest']]);
  });

  it('--list shows each next run in the entry timezone', () => {
    const entries = [resolvePeriodicEntry('nightly', { cron: '30 2 * * *', tz: 'Europe/Berlin' }, 'reports.nightly'), resolvePeriodicEntry('tick', { every: '30s' }, 'tick', { catchUp: 'none' })];
    const text = listEntries(entries, at('2026-03-28T12:00:00Z'));
    const lines = text.trimEnd().split('\n');
    assert.match(lines[0]!, /^NAME\s+TASK\s+SCHEDULE\s+NEXT RUN\s+CATCH-UP$/);
    assert.match(lines[1]!, /^nightly\s+reports\.nightly\s+cron 30 2 \* \* \* \(Europe\/Berlin\)\s+2026-03-29 03:00:00 GMT\+02:00\s+latest$/);
    assert.match(lines[2]!, /^tick\s+tick\s+every 30s\s+2026-03-28 12:00:30 GMT\+00:00\s+none$/);
  });
});
