// A real worker on a fresh SQLite file: results, errors with types and tracebacks, retries, states, expiry.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Asynx, RemoteTaskError, TaskRevokedError, TimeoutError } from '../../src/index.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';
import { tempDir } from '../helpers/tmp.js';
import { waitForStatus } from '../helpers/worker-events.js';

describe('worker on the SQLite broker: results', () => {
  const tmp = tempDir();
  const brokerUrl = `sqlite://${join(tmp.dir, 'a.db')}`;
  const pidfile = join(tmp.dir, 'a.pid');
  let worker: RunningWorker;
  let client: Asynx;

  before(async () => {
    worker = await startWorker({ brokerUrl, args: ['-c', '2', '--pidfile', pidfile] });
    client = new Asynx({ brokerUrl, configFile: false });
  });
  after(async () => {
    await client.close();
    const code = await worker.stop('SIGTERM');
    tmp.cleanup();
    assert.equal(code, 0, 'warm shutdown exits 0');
  });

  it('runs a task and stores its result; state goes PENDING → SUCCESS', async () => {
    const r = await client.sendTask<number>('t.add', [2, 3]);
    assert.equal(typeof r.id, 'string');
    assert.equal(await r.get({ timeout: 10 }), 5);
    assert.equal(await r.state(), 'SUCCESS');
    assert.equal(await r.ready(), true);
    assert.equal(await client.AsyncResult('never-sent').state(), 'PENDING');
  });

  it('get() rejects with the remote error type, message and traceback', async () => {
    const r = await client.sendTask('t.boom');
    const err = await r.get({ timeout: 10 }).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof RemoteTaskError);
    assert.equal(err.name, 'TypeError');
    assert.equal(err.message, 'kaput');
    assert.match(err.remoteTraceback ?? '', /TypeError: kaput/);
    assert.equal(await r.state(), 'FAILURE');
    assert.deepEqual(await r.info(), { exc_type: 'TypeError', exc_message: ['kaput'], exc_module: 'builtins' });
  });

  it('ctx.retry() runs the task again with the same id and retries + 1', async () => {
    const r = await client.sendTask<number>('t.flaky', [2]);
    assert.equal(await r.get({ timeout: 10 }), 2);
  });

  it('autoretryFor retries with backoff, then fails with the original error after maxRetries', async () => {
    const r = await client.sendTask('t.auto');
    const err = await r.get({ timeout: 10 }).catch((e: unknown) => e);
    assert.ok(err instanceof RemoteTaskError);
    assert.equal(err.name, 'RangeError');
    const attempts = worker.output().split('\n').filter((l) => l.includes(`t.auto[${r.id}] received`)).length;
    assert.equal(attempts, 3, 'first attempt + 2 retries');
  });

  it('updateState() makes custom states visible while the task runs', async () => {
    const r = await client.sendTask('t.progress');
    const seen: string[] = [];
    assert.equal(await r.get({ timeout: 10, onState: (s) => seen.push(s) }), 'ok');
    assert.ok(seen.includes('PROGRESS'), `states seen: ${seen.join(',')}`);
  });

  it('kwargs arrive as a trailing object argument', async () => {
    const r = await client.sendTask('t.add', [1], { b: 2 });
    // (a, b) receives a = 1, b = { b: 2 }: "1[object Object]" proves the object is passed
    assert.equal(await r.get({ timeout: 10 }), '1[object Object]');
  });

  it('a message whose expires has passed is not run and becomes REVOKED', async () => {
    const r = await client.sendTask('t.add', [1, 1], {}, { expires: new Date(Date.now() - 1000) });
    const err = await r.get({ timeout: 10 }).catch((e: unknown) => e);
    assert.ok(err instanceof TaskRevokedError);
    assert.equal(await r.state(), 'REVOKED');
  });

  it('countdown is never delivered early', async () => {
    const t0 = Date.now();
    const r = await client.sendTask('t.pid', [], {}, { countdown: 1.5 });
    await assert.rejects(r.get({ timeout: 1 }), TimeoutError);
    await r.get({ timeout: 10 });
    const ran = worker.output().split('\n').find((l) => l.includes(`t.pid[${r.id}] succeeded`));
    assert.ok(ran);
    assert.ok(Date.now() - t0 >= 1500);
  });

  it('higher priority runs first', async () => {
    // Fill both children, then queue low before high, both while the children are busy; when the first
    // child frees up (the blockers end 1 s apart) it must take the high one from the worker's buffer.
    // Start order is what priority promises: the order in which a worker *receives* two messages that
    // were published apart depends on its poll timing, so it is not asserted.
    const blockers = await Promise.all([client.sendTask('t.sleep', [800]), client.sendTask('t.sleep', [1800])]);
    await waitForStatus(pidfile, 'both children busy', (s) => s.active === 2);
    const low = await client.sendTask('t.add', [0, 1], {}, { priority: 1 });
    const high = await client.sendTask('t.add', [0, 2], {}, { priority: 9 });
    await waitForStatus(pidfile, 'both waiting in the buffer', (s) => (s.reserved ?? 0) >= 2 || s.active < 2);
    await Promise.all([low.get({ timeout: 10 }), high.get({ timeout: 10 }), ...blockers.map((b) => b.get({ timeout: 10 }))]);
    const out = worker.output();
    assert.ok(out.indexOf(`[${high.id}] received`) >= 0 && out.indexOf(`[${low.id}] received`) >= 0, 'both received');
    assert.ok(out.indexOf(`[${high.id}] succeeded`) < out.indexOf(`[${low.id}] succeeded`), 'high priority ran first');
  });

  it('an unknown task name fails with NotRegistered and is dead-lettered; the worker keeps going', async () => {
    const r = await client.sendTask('t.nope', [1]);
    const err = await r.get({ timeout: 10 }).catch((e: unknown) => e);
    assert.ok(err instanceof RemoteTaskError);
    assert.equal(err.name, 'NotRegistered');
    assert.equal(await (await client.sendTask('t.add', [1, 1])).get({ timeout: 10 }), 2);
    const db = new Database(join(tmp.dir, 'a.db'), { readonly: true });
    const dead = db.prepare("SELECT reason FROM dead_letters WHERE headers LIKE ?").get(`%${r.id}%`) as { reason: string } | undefined;
    db.close();
    assert.match(dead?.reason ?? '', /notRegistered/);
  });

  it('malformed messages (bad JSON, no headers, wrong types, pickle) are dead-lettered, never crash the worker', async () => {
    const db = new Database(join(tmp.dir, 'a.db'));
    const ins = db.prepare('INSERT INTO messages (queue, priority, state, visible_at, properties, headers, body, created_at) VALUES (?, 0, 0, 0, ?, ?, ?, 0)');
    const props = JSON.stringify({ content_type: 'application/json' });
    ins.run('celery', props, JSON.stringify({ task: 't.add', id: 'bad-json' }), '[[1, 2], {');
    ins.run('celery', props, JSON.stringify({}), '[[], {}, {}]');
    ins.run('celery', props, JSON.stringify({ task: 't.add', id: 'bad-shape' }), '{"a": 1}');
    ins.run('celery', props, JSON.stringify({ task: 't.add', id: 'bad-retries', retries: 'x' }), '[[1,2],{},{}]');
    ins.run('celery', JSON.stringify({ content_type: 'application/x-python-serialize' }), JSON.stringify({ task: 't.add', id: 'pickled' }), 'gASVAAAA');
    db.close();
    for (const id of ['bad-json', 'bad-shape', 'bad-retries', 'pickled']) {
      const err = await client.AsyncResult(id).get({ timeout: 10 }).catch((e: unknown) => e);
      assert.ok(err instanceof RemoteTaskError, id);
      assert.equal(err.name, 'ProtocolError', id);
    }
    const ro = new Database(join(tmp.dir, 'a.db'), { readonly: true });
    const n = (ro.prepare('SELECT COUNT(*) AS n FROM dead_letters').get() as { n: number }).n;
    const pickleReason = (ro.prepare("SELECT reason FROM dead_letters WHERE headers LIKE '%pickled%'").get() as { reason: string }).reason;
    ro.close();
    assert.ok(n >= 5, `dead letters: ${n}`);
    assert.match(pickleReason, /content type 'application\/x-python-serialize'/);
    assert.equal(await (await client.sendTask('t.add', [2, 2])).get({ timeout: 10 }), 4);
  });

  it('forget() removes the stored result', async () => {
    const r = await client.sendTask('t.add', [3, 3]);
    await r.get({ timeout: 10 });
    await r.forget();
    assert.equal(await r.state(), 'PENDING');
  });
});
