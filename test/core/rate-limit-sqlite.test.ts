// Rate limits and dedupe on the SQLite broker, with real worker processes: the Celery #8119 trap avoided, the
// rate_limit control command enforced, a global limit shared by two nodes, per-call limits, dedupe.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openControlClient, type ControlClient } from '../../src/control/client.js';
import { Asynx, isAsynxError } from '../../src/index.js';
import { assertNoStarvation, linesOf, RATE_APP, readRecord, sendMany } from '../helpers/rate-record.js';
import { assertDedupeLifecycle, assertDedupeRace, assertGlobalRate } from '../helpers/shared-limits.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';

/** Rejects with an AsynxError of this code. */
async function rejectsWith(p: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  await assert.rejects(async () => (typeof p === 'function' ? p() : p), (err: unknown) => isAsynxError(err) && err.code === code);
}

describe('bad rate limits and dedupe options are refused with typed errors', () => {
  const app = new Asynx({ configFile: false, brokerUrl: 'sqlite://:memory:' });
  after(() => app.close());

  test('at task definition', () => {
    for (const bad of ['10/x', 'fast', '-1', '/s', { rate: '1/s', global: 'yes' }, { rate: [] }, true]) {
      assert.throws(() => app.task(`bad.${randomUUID()}`, () => 1, { rateLimit: bad as never }), (err: unknown) => isAsynxError(err) && err.code === 'asynx.rateLimit.invalid' && /'10\/s'/.test(err.message));
    }
    for (const good of ['10/s', '100/m', '2/h', 5, '0.5', '', 0, { rate: '3/m', global: true }]) app.task(`good.${randomUUID()}`, () => 1, { rateLimit: good });
  });

  test('at a call, before anything is sent', async () => {
    await rejectsWith(app.sendTask('t.x', [], {}, { rateLimit: 'abc' }), 'asynx.rateLimit.invalid');
    await rejectsWith(app.sendTask('t.x', [], {}, { dedupe: true }), 'asynx.dedupe.noKey');
    await rejectsWith(app.sendTask('t.x', [], {}, { dedupeKey: '' }), 'asynx.call.badOption');
  });
});

test('dedupe: four clients (four connections to one file) racing on one key send one message', async () => {
  const tmp = tempDir('asynx-dedupe-race-');
  const brokerUrl = `sqlite://${join(tmp.dir, 'broker.db')}`;
  const apps = [0, 1, 2, 3].map(() => new Asynx({ brokerUrl, configFile: false }));
  try {
    await assertDedupeRace(apps, 'race');
  } finally {
    await Promise.all(apps.map((a) => a.close()));
    tmp.cleanup();
  }
});

describe('rate limits on one SQLite worker', () => {
  const tmp = tempDir('asynx-rate-');
  const brokerUrl = `sqlite://${join(tmp.dir, 'broker.db')}`;
  const record = join(tmp.dir, 'record.txt');
  let worker: RunningWorker;
  let client: Asynx;
  let control: ControlClient;
  let limited: Set<string>;
  let free: Set<string>;

  before(async () => {
    client = new Asynx({ brokerUrl, configFile: false });
    // Queued before the worker starts: the queue holds 100 limited tasks, then 100 unlimited ones.
    limited = await sendMany(client, 'r.limited', 100);
    free = await sendMany(client, 'r.free', 100);
    worker = await startWorker({ brokerUrl, app: RATE_APP, args: ['-n', 'rate@sqlite', '-c', '4'], env: { ASYNX_TEST_RECORD: record } });
    control = await openControlClient(brokerUrl);
  });
  after(async () => {
    await control?.close();
    await client?.close();
    await worker?.stop();
    tmp.cleanup();
  });

  test('10/s over 100 tasks takes ≥ 9 s, and 100 unlimited tasks sent after them are not held up (Celery #8119)', async () => {
    await waitFor('100 limited tasks ended', () => linesOf(readRecord(record), 'r.limited', 'end', limited).length === 100, 40_000, 100);
    assertNoStarvation(readRecord(record), limited, free);
  });

  test('the rate_limit control command changes the enforced rate of the running worker', async () => {
    const ask = async (args: Record<string, unknown>) => (await control.broadcast('rate_limit', args, { destination: ['rate@sqlite'], timeoutMs: 5000 }))[0]?.['rate@sqlite'];
    assert.deepEqual(await ask({ task_name: 'r.limited', rate_limit: '1/s' }), { ok: 'new rate limit set successfully' });
    const slow = await sendMany(client, 'r.limited', 4, [300]);
    await waitFor('4 tasks at 1/s ended', () => linesOf(readRecord(record), 'r.limited', 'end', slow).length === 4, 20_000, 50);
    let lines = readRecord(record).filter((l) => slow.has(l.id));
    // At 1/s a 300 ms task ends before the next one starts: strictly alternating start/end.
    assert.deepEqual(lines.map((l) => l.event), ['start', 'end', 'start', 'end', 'start', 'end', 'start', 'end']);
    const starts = linesOf(lines, 'r.limited', 'start').map((l) => l.at);
    assert.ok(starts[3]! - starts[0]! >= 2_700, `4 starts at 1/s span ≥ 3 s (got ${starts[3]! - starts[0]!} ms)`);

    assert.deepEqual(await ask({ task_name: 'r.limited', rate_limit: '0' }), { ok: 'rate limit disabled successfully' });
    const fast = await sendMany(client, 'r.limited', 4, [1500]);
    await waitFor('4 unlimited tasks ended', () => linesOf(readRecord(record), 'r.limited', 'end', fast).length === 4, 20_000, 50);
    lines = readRecord(record).filter((l) => fast.has(l.id));
    // No limit, 4 pool slots: all four start before the first ends (the task's own 10/s would space them 100 ms apart but no more than 1.5 s).
    assert.deepEqual(lines.map((l) => l.event), ['start', 'start', 'start', 'start', 'end', 'end', 'end', 'end']);
    const registered = (await control.broadcast('registered', {}, { destination: ['rate@sqlite'], timeoutMs: 5000 }))[0]?.['rate@sqlite'] as string[];
    assert.ok(registered.includes('r.free'), JSON.stringify(registered));
    assert.ok(registered.includes('r.shared [rate_limit=5/s]'), JSON.stringify(registered));
  });

  test('a per-call rateLimit spaces the calls that carry it', async () => {
    const ids = await sendMany(client, 'r.plain', 5, [0], { rateLimit: '2/s' });
    await waitFor('5 per-call limited tasks ended', () => linesOf(readRecord(record), 'r.plain', 'end', ids).length === 5, 20_000, 50);
    const starts = linesOf(readRecord(record), 'r.plain', 'start', ids).map((l) => l.at).sort((a, b) => a - b);
    assert.ok(starts[4]! - starts[0]! >= 1_700, `5 starts at 2/s span ≥ 2 s (got ${starts[4]! - starts[0]!} ms)`);
  });

  test('dedupe: a second send while the task waits or runs sends nothing; after it ended a new one is sent', () => assertDedupeLifecycle(client, record));
});

describe('a global rate limit shared by two nodes on one SQLite file', () => {
  const tmp = tempDir('asynx-rate-global-');
  const brokerUrl = `sqlite://${join(tmp.dir, 'broker.db')}`;
  const record = join(tmp.dir, 'record.txt');
  const workers: RunningWorker[] = [];
  let client: Asynx;

  before(async () => {
    for (const n of ['a', 'b']) workers.push(await startWorker({ brokerUrl, app: RATE_APP, args: ['-n', `${n}@global`, '-c', '2'], env: { ASYNX_TEST_RECORD: record } }));
    client = new Asynx({ brokerUrl, configFile: false });
  });
  after(async () => {
    await client?.close();
    await Promise.all(workers.map((w) => w.stop()));
    tmp.cleanup();
  });

  test('5/s over 30 tasks across 2 nodes holds the combined rate', () => assertGlobalRate(client, record, workers.map((w) => w.pid)));
});
