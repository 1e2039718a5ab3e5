// The redis:// result backend beyond the shared contract: Celery's keys and TTLs, reconnects, chord counters
// in Celery's .j/.s layout (counted once, fired once), and a chord run by an asynx worker with its results on Redis.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Asynx, chord, UsageError } from '../../src/index.js';
import { BrokerUnavailableError, TimeoutError } from '../../src/errors.js';
import { resolveConfig } from '../../src/config.js';
import type { ChordPart, ResultBackend } from '../../src/results/backend.js';
import { createResultBackend } from '../../src/results/factory.js';
import { RedisResultBackend } from '../../src/results/redis.js';
import { encodeMeta } from '../../src/results/redis-meta.js';
import { canvasTasks, CANVAS_APP } from '../helpers/canvas.js';
import { redisSkip, startRedis, type RedisServer } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli, startWorker, type RunningWorker } from '../helpers/worker.js';

const skip = redisSkip();

describe('redis:// result backend', { skip }, () => {
  let server: RedisServer;
  let url: string;
  let admin: Redis;
  const open: ResultBackend[] = [];
  const make = (opts: { expiresMs?: number } = {}) => {
    const b = new RedisResultBackend(url, { expiresMs: opts.expiresMs ?? 86_400_000, connectTimeoutMs: 5_000, publishTimeoutMs: 5_000 });
    open.push(b);
    return b;
  };
  const tmp = tempDir('asynx-redis-backend-');
  let worker: RunningWorker | null = null;

  before(async () => {
    server = await startRedis();
    url = `${server.url}/2`;
    admin = new Redis({ host: server.host, port: server.port, db: 2, lazyConnect: true });
    await admin.connect();
  });
  after(async () => {
    for (const b of open) await b.close().catch(() => undefined);
    await worker?.stop().catch(() => undefined);
    admin?.disconnect();
    await server?.dispose();
    tmp.cleanup();
  });

  test('resultBackend redis://host:port/db from the config picks this backend, on that database; a bad URL is a UsageError', async () => {
    const b = await createResultBackend(resolveConfig({ brokerUrl: 'sqlite://./x.db', resultBackend: url, resultExpires: 60 }));
    open.push(b);
    assert.equal(b.kind, 'redis');
    const id = randomUUID();
    await b.store({ taskId: id }, { task_id: id, status: 'SUCCESS', result: 7, traceback: null, children: [] });
    assert.ok(await admin.exists(`celery-task-meta-${id}`), 'written in database 2');
    const ttl = await admin.ttl(`celery-task-meta-${id}`);
    assert.ok(ttl > 55 && ttl <= 60, `resultExpires 60 s is the TTL (got ${ttl})`);
    assert.throws(() => new RedisResultBackend(`${server.url}/two`, { expiresMs: 1, connectTimeoutMs: 1, publishTimeoutMs: 1 }), (e: unknown) => e instanceof UsageError && e.code === 'asynx.config.badRedisBackend');
    assert.throws(() => new RedisResultBackend(`${server.url}/0?ssl_cert_reqs=none`, { expiresMs: 1, connectTimeoutMs: 1, publishTimeoutMs: 1 }), /rediss:\/\//);
    const env = await createResultBackend(resolveConfig({ brokerUrl: 'sqlite://./x.db' }, { resultBackend: 'rediss://127.0.0.1:1/0?ssl_cert_reqs=none' }));
    assert.equal(env.kind, 'redis');
    await env.close();
  });

  test('the CLI reads it: asynx result <id> --result-backend redis://…, and ASYNX_RESULT_BACKEND', { timeout: 60_000 }, async () => {
    const id = randomUUID();
    await make().store({ taskId: id }, { task_id: id, status: 'FAILURE', result: { exc_type: 'ValueError', exc_message: ['cli'], exc_module: 'builtins' }, traceback: 'tb', children: [] });
    const broker = `sqlite://${join(tmp.dir, 'cli.db')}`;
    const flag = await runCli(['result', id, '-b', broker, '--result-backend', url]);
    assert.equal(flag.code, 1, flag.stderr);
    assert.deepEqual(JSON.parse(flag.stdout), { id, state: 'FAILURE', result: { exc_type: 'ValueError', exc_message: ['cli'], exc_module: 'builtins' }, traceback: 'tb' });
    const env = await runCli(['result', id, '-b', broker], { ASYNX_RESULT_BACKEND: url });
    assert.equal(JSON.parse(env.stdout).state, 'FAILURE');
  });

  test('a result expires with its TTL (Redis removes it); resultExpires 0 stores it without one', async () => {
    const b = make({ expiresMs: 300 });
    const id = randomUUID();
    await b.store({ taskId: id }, { task_id: id, status: 'SUCCESS', result: 1, traceback: null, children: [] });
    assert.equal((await b.get(id))?.result, 1);
    const pttl = await admin.pttl(`celery-task-meta-${id}`);
    assert.ok(pttl > 0 && pttl <= 300, `PTTL ${pttl}`);
    await sleep(450);
    assert.equal(await b.get(id), null);
    const forever = make({ expiresMs: 0 });
    const id2 = randomUUID();
    await forever.store({ taskId: id2 }, { task_id: id2, status: 'SUCCESS', result: 2, traceback: null, children: [] });
    assert.equal(await admin.ttl(`celery-task-meta-${id2}`), -1);
  });

  test("Celery's rule too: nothing overwrites SUCCESS (a redelivered run's FAILURE), a FAILURE can be replaced by a later ready state", async () => {
    const b = make();
    const [s, f] = [randomUUID(), randomUUID()];
    await b.store({ taskId: s }, { task_id: s, status: 'SUCCESS', result: 'first', traceback: null, children: [] });
    await b.store({ taskId: s }, { task_id: s, status: 'FAILURE', result: { exc_type: 'ValueError', exc_message: ['late'], exc_module: 'builtins' }, traceback: null, children: [] });
    assert.equal((await b.get(s))?.result, 'first');
    await b.store({ taskId: f }, { task_id: f, status: 'FAILURE', result: { exc_type: 'ValueError', exc_message: ['x'], exc_module: 'builtins' }, traceback: 'tb', children: [] });
    await b.store({ taskId: f }, { task_id: f, status: 'STARTED', result: null, traceback: null, children: [] });
    assert.equal((await b.get(f))?.status, 'FAILURE');
    await b.store({ taskId: f }, { task_id: f, status: 'SUCCESS', result: 3, traceback: null, children: [] });
    assert.equal((await b.get(f))?.status, 'SUCCESS');
  });

  test('a wait whose connections drop while the result is published re-subscribes and re-reads it', { timeout: 30_000 }, async () => {
    const b = make();
    const id = randomUUID();
    const states: string[] = [];
    const waiting = b.wait(id, 20_000, (x) => states.push(x.status));
    const key = `celery-task-meta-${id}`;
    // Subscribed (PUBSUB NUMSUB 1) before the drop.
    for (let i = 0; i < 200 && Number(((await admin.call('PUBSUB', 'NUMSUB', key)) as [string, number])[1]) === 0; i++) await sleep(10);
    const meta = encodeMeta({ task_id: id, status: 'SUCCESS', result: 'after the drop', traceback: null, children: [] });
    // One transaction: both of the backend's connections are cut (not this one: SKIPME), then the result is
    // stored and published to nobody.
    const replies = await admin.multi().call('CLIENT', 'KILL', 'TYPE', 'pubsub').call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes').set(key, meta, 'EX', 60).publish(key, meta).exec();
    assert.ok(Number(replies?.[1]?.[1]) >= 1, 'the command connection was cut too');
    assert.equal(replies?.[3]?.[1], 0, 'the PUBLISH reached no subscriber');
    const done = await waiting;
    assert.equal(done.result, 'after the drop');
    assert.deepEqual(states, ['SUCCESS']);
    // And the subscriber is back for later waits.
    const id2 = randomUUID();
    const next = b.wait(id2, 10_000);
    await sleep(50);
    await make().store({ taskId: id2 }, { task_id: id2, status: 'SUCCESS', result: 'next', traceback: null, children: [] });
    assert.equal((await next).result, 'next');
  });

  test('with Redis gone, get/store fail within publishTimeout as BrokerUnavailableError and a wait ends at its timeout', { timeout: 30_000 }, async () => {
    const other = await startRedis();
    const b = new RedisResultBackend(`${other.url}/0`, { expiresMs: 60_000, connectTimeoutMs: 1_000, publishTimeoutMs: 800 });
    open.push(b);
    await b.connect();
    const id = randomUUID();
    const waiting = b.wait(id, 1_500).then(() => 'resolved', (e: Error) => e);
    await sleep(100);
    await other.dispose();
    let t0 = Date.now();
    await assert.rejects(b.get(id), (e: unknown) => e instanceof BrokerUnavailableError);
    assert.ok(Date.now() - t0 < 3_000, `get failed after ${Date.now() - t0} ms`);
    t0 = Date.now();
    await assert.rejects(b.store({ taskId: id }, { task_id: id, status: 'SUCCESS', result: 1, traceback: null, children: [] }), (e: unknown) => e instanceof BrokerUnavailableError);
    assert.ok(Date.now() - t0 < 3_000, `store failed after ${Date.now() - t0} ms`);
    const ended = await waiting;
    assert.ok(ended instanceof TimeoutError, String(ended));
  });

  const part = (groupId: string, groupIndex: number, result: unknown, taskId = `${groupId}-${groupIndex}`): ChordPart => ({ groupId, groupIndex, taskId, status: 'SUCCESS', result, body: { task: 'c.tsum', args: [], kwargs: {}, options: {} } });

  test("chord counters in Celery's layout: .s the size, .j a sorted set of [1, id, state, result] by group_index; a redelivered member counts once; only the completer fires, until sent", async () => {
    const b = make();
    const gid = randomUUID();
    await b.chords!.create(gid, 3, { task: 'c.tsum' });
    assert.equal(await admin.get(`celery-taskset-meta-${gid}.s`), '3');
    assert.ok((await admin.ttl(`celery-taskset-meta-${gid}.s`)) > 86_000);
    assert.equal(await b.chords!.partReturn(part(gid, 2, 'c')), null);
    assert.equal(await b.chords!.partReturn(part(gid, 0, 'a')), null);
    // Member 0 redelivered: its re-run gave another result; still one entry for group_index 0.
    assert.equal(await b.chords!.partReturn(part(gid, 0, 'a again')), null);
    assert.equal(await admin.zcard(`celery-taskset-meta-${gid}.j`), 2);
    const firing = await b.chords!.partReturn(part(gid, 1, 'b'));
    assert.ok(firing, 'the third member completes the chord');
    assert.deepEqual(firing.parts.map((p) => [p.groupIndex, p.taskId, p.result]), [[0, `${gid}-0`, 'a'], [1, `${gid}-1`, 'b'], [2, `${gid}-2`, 'c']]);
    assert.deepEqual(firing.body, { task: 'c.tsum', args: [], kwargs: {}, options: {} });
    const raw = await admin.zrange(`celery-taskset-meta-${gid}.j`, '0', '-1', 'WITHSCORES');
    assert.deepEqual(JSON.parse(raw[0]!), [1, `${gid}-0`, 'SUCCESS', 'a']);
    assert.equal(raw[1], '0');
    // Before markSent: the completer redelivered fires again (it may have crashed before sending); another member does not.
    assert.ok(await b.chords!.partReturn(part(gid, 1, 'b')));
    assert.equal(await b.chords!.partReturn(part(gid, 2, 'c')), null);
    await b.chords!.markSent(gid);
    assert.equal(await admin.exists(`celery-taskset-meta-${gid}.j`, `celery-taskset-meta-${gid}.s`, `celery-taskset-meta-${gid}.c`), 0, 'Celery deletes the counters once the body is sent');
    assert.equal(await b.chords!.partReturn(part(gid, 1, 'b')), null, 'after it was sent nothing fires');
  });

  test('members finishing at once on two connections: exactly one fires the body', async () => {
    const [x, y] = [make(), make()];
    const gid = randomUUID();
    const n = 40;
    await x.chords!.create(gid, n, {});
    const results = await Promise.all(Array.from({ length: n }, (_, i) => (i % 2 ? x : y).chords!.partReturn(part(gid, i, i))));
    const fired = results.filter((r) => r !== null);
    assert.equal(fired.length, 1);
    assert.deepEqual(fired[0]!.parts.map((p) => p.result), Array.from({ length: n }, (_, i) => i));
  });

  test('a chord run by an asynx worker (SQLite broker) with its counters and results on Redis', { timeout: 60_000 }, async () => {
    const broker = `sqlite://${join(tmp.dir, 'broker.db')}`;
    worker = await startWorker({ brokerUrl: broker, app: CANVAS_APP, args: ['-c', '2'], env: { ASYNX_RESULT_BACKEND: url } });
    const app = new Asynx({ configFile: false, brokerUrl: broker, resultBackend: url });
    try {
      const t = canvasTasks(app);
      const r = await chord([t.add.s(1, 2), t.add.s(3, 4), t.mul.s(5, 6)], t.tsum.s()).applyAsync();
      assert.equal(await r.get({ timeout: 30 }), 3 + 7 + 30);
      const failing = await chord([t.add.s(1, 1), t.fail.s('x')], t.tsum.s()).applyAsync();
      await assert.rejects(failing.get({ timeout: 30 }), (e: Error) => e.name === 'ChordError' && /raised ValueError\('bad x'\)/.test(e.message));
    } finally {
      await app.close();
    }
  });
});
