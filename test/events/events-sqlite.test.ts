// Celery events on the embedded SQLite broker: a real worker with -E, receiveEvents, task-sent, retention, kill -9.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inflateRawSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { Asynx } from '../../src/index.js';
import type { CeleryEvent } from '../../src/events/event.js';
import { receiveEvents, type EventReceiver } from '../../src/events/receiver.js';
import { assertClocksIncrease, assertEventShape } from '../helpers/celery-events.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { runCli, startWorker, type RunningWorker } from '../helpers/worker.js';

const NODE = 'ev1@localhost';

describe('Celery events on SQLite', () => {
  const tmp = tempDir('asynx-events-');
  const brokerUrl = `sqlite://${join(tmp.dir, 'b.db')}`;
  let worker: RunningWorker | null = null;
  let receiver: EventReceiver | null = null;
  let client: Asynx | null = null;
  const seen: CeleryEvent[] = [];

  before(async () => {
    receiver = await receiveEvents(brokerUrl, (e) => seen.push(e), { pollIntervalMs: 20 });
    worker = await startWorker({ brokerUrl, args: ['-n', NODE, '-c', '2', '-E', '--heartbeat-interval', '1.5'] });
    client = new Asynx({ brokerUrl, configFile: false, taskSendSentEvent: true });
  });
  after(async () => {
    await client?.close();
    await receiver?.close();
    if (worker) await worker.stop('SIGTERM');
    tmp.cleanup();
  });

  it('worker-online and worker-heartbeat with every field, in Celery units', async () => {
    await waitFor('worker-online and a heartbeat', () => seen.some((e) => e.type === 'worker-online') && seen.some((e) => e.type === 'worker-heartbeat'), 15_000);
    for (const e of seen.filter((x) => x.hostname === NODE)) assertEventShape(e, { hostname: NODE, pid: worker!.pid });
    const hb = seen.find((e) => e.type === 'worker-heartbeat')!;
    assert.equal(hb.freq, 1.5, 'freq: the heartbeat interval in seconds (--heartbeat-interval 1.5)');
    assert.equal(hb.sw_ident, 'asynx');
    assert.equal(typeof hb.local_received, 'number');
  });

  it('task-sent (client), received, started, succeeded and failed with every field', async () => {
    const ok = await client!.sendTask('t.add', [2, 3]);
    const bad = await client!.sendTask('t.boom');
    assert.equal(await ok.get({ timeout: 10 }), 5);
    await bad.get({ timeout: 10 }).catch(() => undefined);
    const mine = (id: string) => seen.filter((e) => e.uuid === id);
    await waitFor('the final events', () => mine(ok.id).some((e) => e.type === 'task-succeeded') && mine(bad.id).some((e) => e.type === 'task-failed'), 10_000);
    // Each process writes its events in its own batches: the client's task-sent may land after the worker's.
    const fromWorker = (id: string) => mine(id).filter((e) => e.hostname === NODE).map((e) => e.type);
    assert.deepEqual(fromWorker(ok.id), ['task-received', 'task-started', 'task-succeeded']);
    assert.deepEqual(fromWorker(bad.id), ['task-received', 'task-started', 'task-failed']);
    await waitFor('the task-sent events', () => mine(ok.id).some((e) => e.type === 'task-sent') && mine(bad.id).some((e) => e.type === 'task-sent'), 5_000);
    for (const e of [...mine(ok.id), ...mine(bad.id)]) assertEventShape(e);
    const sent = mine(ok.id).find((e) => e.type === 'task-sent')!;
    assert.equal(sent.name, 't.add');
    assert.equal(sent.queue, 'celery');
    assert.equal(sent.routing_key, 'celery');
    const received = mine(ok.id).find((e) => e.type === 'task-received')!;
    assert.equal(received.hostname, NODE);
    assert.equal(received.args, '[2, 3]', 'args as Python repr');
    assert.equal(received.kwargs, '{}');
    const succeeded = mine(ok.id).find((e) => e.type === 'task-succeeded')!;
    assert.equal(succeeded.result, '5');
    const failed = mine(bad.id).find((e) => e.type === 'task-failed')!;
    assert.equal(failed.exception, "TypeError('kaput')");
    assert.match(String(failed.traceback), /kaput/);
    assertClocksIncrease(seen.filter((e) => e.hostname === NODE));
  });

  it('replay delivers the retained events first', async () => {
    const again: CeleryEvent[] = [];
    const r = await receiveEvents(brokerUrl, (e) => again.push(e), { replay: true, pollIntervalMs: 20 });
    try {
      await waitFor('the replayed online event', () => again.some((e) => e.type === 'worker-online'), 5_000);
      assert.equal(again[0]!.type, 'worker-online', 'oldest first');
    } finally {
      await r.close();
    }
  });

  it('asynx events prints celery events --dump lines, or JSON lines', async () => {
    const text = await runCli(['events', '--replay', '--count', '6', '-b', brokerUrl]);
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.trim().split('\n');
    assert.equal(lines.length, 6, text.stdout);
    assert.match(lines[0]!, /^ev1@localhost \[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?\] started: active=0, clock=\d+, freq=1\.5, loadavg=\[[\d., ]+\], local_received=[\d.]+, pid=\d+, processed=0, sw_ident=asynx, sw_sys=\w+, sw_ver=[\d.]+, utcoffset=-?\d+$/);
    const received = lines.find((l) => l.includes('task received'));
    assert.match(received ?? '', /\] task received: t\.add\([0-9a-f-]{36}\) args=\[2, 3\] kwargs=\{\} clock=\d+, eta=None, expires=None, /);
    const json = await runCli(['events', '--replay', '--json', '--count', '2', '-b', brokerUrl]);
    assert.equal(json.code, 0, json.stderr);
    const events = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as CeleryEvent);
    assert.equal(events.length, 2);
    assert.equal(events[0]!.type, 'worker-online');
    assertEventShape(events[0]!, { hostname: NODE });
    const bad = await runCli(['events', '--count', '0', '-b', brokerUrl]);
    assert.equal(bad.code, 64, 'a bad --count is a usage error');
  });

  it('worker-offline on a warm shutdown', async () => {
    const code = await worker!.stop('SIGTERM');
    worker = null;
    assert.equal(code, 0);
    await waitFor('worker-offline', () => seen.some((e) => e.type === 'worker-offline' && e.hostname === NODE), 5_000);
    assertEventShape(seen.find((e) => e.type === 'worker-offline')!, { hostname: NODE });
  });
});

describe('the SQLite events table after a worker kill -9', () => {
  const tmp = tempDir('asynx-events-kill-');
  const db = join(tmp.dir, 'k.db');
  const brokerUrl = `sqlite://${db}`;
  after(() => tmp.cleanup());

  it('stays within eventsMaxCount and passes integrity_check', { timeout: 90_000 }, async () => {
    const env = { ASYNX_EVENTS_MAX_COUNT: '50' };
    const client = new Asynx({ brokerUrl, configFile: false });
    let w: RunningWorker | null = await startWorker({ brokerUrl, args: ['-n', 'k1@localhost', '-c', '2', '-E'], env });
    try {
      const results = [];
      for (let i = 0; i < 60; i++) results.push(await client.sendTask('t.add', [i, 1]));
      await results[59]!.get({ timeout: 20 });
      for (let i = 0; i < 40; i++) await client.sendTask('t.sleep', [20]);
      // Mid-stream, events still being written: killed without any cleanup.
      await waitFor('events being written', () => count(db) > 0, 5_000);
      await w.stop('SIGKILL');
      w = await startWorker({ brokerUrl, args: ['-n', 'k1@localhost', '-c', '2', '-E'], env });
      const more = await client.sendTask('t.add', [1, 1]);
      assert.equal(await more.get({ timeout: 20 }), 2);
      await w.stop('SIGTERM');
      w = null;
    } finally {
      await client.close();
      if (w) await w.stop('SIGKILL');
    }
    const conn = new Database(db, { readonly: true });
    try {
      const n = (conn.prepare('SELECT SUM(n) AS n FROM events').get() as { n: number }).n;
      const total = (conn.prepare('SELECT MAX(seq) AS n FROM events').get() as { n: number }).n;
      assert.ok(total > 100, `more events were written (${total}) than the table keeps`);
      assert.ok(n > 0 && n <= 50, `the table holds at most eventsMaxCount events, has ${n}`);
      assert.equal((conn.prepare('PRAGMA integrity_check').get() as { integrity_check: string }).integrity_check, 'ok');
      const rows = conn.prepare('SELECT body FROM events ORDER BY id').all() as Array<{ body: Buffer }>;
      const events = rows.flatMap((r) => JSON.parse(inflateRawSync(r.body).toString('utf8')) as CeleryEvent[]);
      assert.equal(events.length, n, 'every row decodes');
      assert.equal(events.at(-1)!.type, 'worker-offline', 'the restarted worker wrote its events after the kill');
    } finally {
      conn.close();
    }
  });
});

function count(path: string): number {
  const c = new Database(path, { readonly: true });
  try {
    return (c.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n;
  } finally {
    c.close();
  }
}
