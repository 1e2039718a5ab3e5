// The pure parts of Celery events: Python reprs (args, kwargs, result), the dump line, the dispatcher's common fields.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { LamportClock } from '../../src/events/clock.js';
import { EventDispatcher } from '../../src/events/dispatcher.js';
import { EventDumper, utcText } from '../../src/events/dump.js';
import type { CeleryEvent } from '../../src/events/event.js';
import { exceptionRepr, pyStr, saferepr } from '../../src/protocol/saferepr.js';
import type { EventSink } from '../../src/events/sink.js';

describe('saferepr: Python repr of JSON values', () => {
  it('writes what Python writes', () => {
    assert.equal(saferepr([2, 3]), '[2, 3]');
    assert.equal(saferepr({ a: 1, b: [true, false, null] }), "{'a': 1, 'b': [True, False, None]}");
    assert.equal(saferepr(0.5), '0.5');
    assert.equal(saferepr(1e-7), '1e-07');
    assert.equal(saferepr('it\'s'), '"it\'s"');
    assert.equal(pyStr('a\nb\\'), "'a\\nb\\\\'");
    assert.equal(pyStr('both \' and "'), "'both \\' and \"'");
    assert.equal(exceptionRepr('TypeError', 'kaput'), "TypeError('kaput')");
  });
  it('is bounded like Celery (1024 characters, ending in ...)', () => {
    const r = saferepr(['x'.repeat(5000)]);
    assert.equal(r.length, 1024);
    assert.ok(r.endsWith('...'));
  });
  it('survives cycles', () => {
    const a: unknown[] = [1];
    a.push(a);
    assert.equal(saferepr(a), '[1, [...]]');
  });
});

describe('the dump line (celery events --dump)', () => {
  it('formats the time as Python prints a UTC datetime', () => {
    assert.equal(utcText(0), '1970-01-01 00:00:00');
    assert.equal(utcText(1.25), '1970-01-01 00:00:01.250000');
  });
  it('worker events: humanised type and sorted k=v fields', () => {
    const d = new EventDumper();
    const e: CeleryEvent = { type: 'worker-heartbeat', timestamp: 1.5, hostname: 'w@h', utcoffset: 0, pid: 7, clock: 3, freq: 2, loadavg: [0.5, 0.25, 0], sw_ident: 'asynx' };
    assert.equal(d.line(e), 'w@h [1970-01-01 00:00:01.500000] heartbeat: clock=3, freq=2, loadavg=[0.5, 0.25, 0], pid=7, sw_ident=asynx, utcoffset=0');
  });
  it('task events: name(uuid) args kwargs from task-received, remembered for later events', () => {
    const d = new EventDumper();
    const common = { timestamp: 2, hostname: 'w@h', utcoffset: 0, pid: 7 };
    assert.equal(d.line({ ...common, type: 'task-received', clock: 1, uuid: 'u1', name: 't.add', args: '[1, 2]', kwargs: '{}', eta: null }), 'w@h [1970-01-01 00:00:02] task received: t.add(u1) args=[1, 2] kwargs={} clock=1, eta=None, pid=7, utcoffset=0');
    assert.equal(d.line({ ...common, type: 'task-succeeded', clock: 2, uuid: 'u1', result: '3', runtime: 0.01 }), 'w@h [1970-01-01 00:00:02] task succeeded: t.add(u1) args=[1, 2] kwargs={} clock=2, pid=7, result=3, runtime=0.01, utcoffset=0');
  });
});

describe('EventDispatcher', () => {
  it('adds the common fields in Celery units and buffers only task events', () => {
    const sent: CeleryEvent[] = [];
    const buffered: CeleryEvent[] = [];
    const sink: EventSink = { send: (e) => sent.push(e), buffer: (e) => buffered.push(e), close: async () => undefined };
    const d = new EventDispatcher(sink, { hostname: 'w@h', clock: new LamportClock() });
    d.send('worker-heartbeat', { freq: 2 }, 1_500);
    d.send('task-started', { uuid: 'u', hostname: 'spoofed' }, 2_000);
    assert.deepEqual(sent, [{ freq: 2, type: 'worker-heartbeat', timestamp: 1.5, hostname: 'w@h', utcoffset: Math.floor(new Date(1_500).getTimezoneOffset() / 60), pid: process.pid, clock: 1 }]);
    assert.equal(buffered.length, 1);
    assert.equal(buffered[0]!.hostname, 'w@h', 'the common fields win over the event fields');
    assert.equal(buffered[0]!.clock, 2, 'each event ticks the clock');
  });
});

describe('utcoffset, cached per minute', () => {
  it('matches the uncached value on both sides of a DST change (Europe/Berlin, child process)', () => {
    const script = `import { utcoffsetHours, utcoffsetHoursAt } from ${JSON.stringify(fileURLToPath(new URL('../../src/events/event.ts', import.meta.url)))};
const out = [];
// 2026-03-29 01:00 UTC: Berlin goes from UTC+1 to UTC+2; sample each 20 s from 2 minutes before to 2 after.
const change = Date.UTC(2026, 2, 29, 1, 0, 0);
for (let ms = change - 120_000; ms <= change + 120_000; ms += 20_000) out.push([utcoffsetHoursAt(ms), utcoffsetHours(new Date(ms))]);
process.stdout.write(JSON.stringify(out));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { ...process.env, TZ: 'Europe/Berlin' }, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    const pairs = JSON.parse(r.stdout) as Array<[number, number]>;
    for (const [cached, direct] of pairs) assert.equal(cached, direct);
    assert.deepEqual([pairs[0]![1], pairs.at(-1)![1]], [-1, -2], 'the sample spans the change');
  });
});
