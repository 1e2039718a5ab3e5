// Interop with Python Celery 5.2 on one private Redis: a Python client → an asynx worker (countdown, priority),
// and an asynx client → a Python worker. Runs are seen through a side-effect file (no result backend yet).

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Asynx } from '../../src/index.js';
import { celerySkip, runPython, startCeleryWorker } from '../helpers/celery.js';
import { redisSkip, startRedis, type RedisServer } from '../helpers/redis.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { startWorker } from '../helpers/worker.js';

const skip = redisSkip() || celerySkip();
const APP = fileURLToPath(new URL('../fixtures/redis-interop-app.mjs', import.meta.url));

interface Run {
  by: 'js' | 'py';
  id: string;
  sum: number;
  at: number;
}

describe('Celery interop on Redis', { skip }, () => {
  let server: RedisServer;
  let redis: Redis;
  let tmp: { dir: string; cleanup: () => void };
  let out: string;
  let url: string;
  const stops: Array<() => Promise<unknown>> = [];
  const runs = (): Run[] => (existsSync(out) ? readFileSync(out, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Run) : []);

  before(async () => {
    server = await startRedis();
    url = `${server.url}/0`;
    redis = new Redis(server.port, '127.0.0.1');
    tmp = tempDir('asynx-redis-interop-');
    out = join(tmp.dir, 'runs.jsonl');
  });
  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    redis?.disconnect();
    await server?.dispose();
    tmp?.cleanup();
  });

  test('a Python client sends add(2, 3) with countdown 1 and priority 5: an asynx worker runs it once, after the countdown, from the delayed zset', { timeout: 90_000 }, async () => {
    const w = await startWorker({ brokerUrl: url, app: APP, args: ['-n', 'js-redis@localhost', '-c', '1', '-Q', 'celery'], env: { INTEROP_OUT: out } });
    stops.push(() => w.stop('SIGTERM', 20_000));
    const sent = await runPython(['-c', "import time, redis_capp as c; t = time.time(); r = c.app.send_task('add', args=(2, 3), countdown=1, priority=5); print(r.id, t * 1000)"], { brokerUrl: url, env: { INTEROP_OUT: out } });
    assert.equal(sent.code, 0, sent.stderr);
    const [id, sentAt] = sent.stdout.trim().split(/\s+/);
    // Priority 5 is kombu's step 3: the worker took it from `celery\x06\x163` and parked it in that list's zset,
    // not in `unacked` (where kombu#337's duplicates come from).
    await waitFor('the message to wait in the delayed zset', async () => (await redis.zcard('_asynx.delayed.celery\x06\x163')) === 1 || runs().length > 0, 5_000, 10);
    assert.equal(await redis.hlen('unacked'), 0, 'nothing unacked while it waits');
    const [run] = await waitFor('the asynx worker to run it', () => (runs().length ? runs() : null), 20_000, 50);
    assert.equal(run!.by, 'js');
    assert.equal(run!.id, id);
    assert.equal(run!.sum, 5);
    assert.ok(run!.at >= Number(sentAt) + 1000 - 5, `ran ${Number(sentAt) + 1000 - run!.at} ms before its countdown`);
    await sleep(1500);
    assert.equal(runs().length, 1, 'ran once');
    await waitFor('the ack to land', async () => (await redis.hlen('unacked')) === 0, 5_000, 20);
    await w.stop('SIGTERM', 20_000);
  });

  test('a countdown of 3 x the visibility timeout (1 s, set in the URL) runs exactly once on asynx (kombu#337 runs it again each timeout)', { timeout: 90_000 }, async () => {
    const w = await startWorker({ brokerUrl: `${url}?visibility_timeout=1`, app: APP, args: ['-n', 'js-vis@localhost', '-c', '1', '-Q', 'vis-q'], env: { INTEROP_OUT: out } });
    stops.push(() => w.stop('SIGTERM', 20_000));
    const before = runs().length;
    const sent = await runPython(['-c', "import redis_capp as c; print(c.app.send_task('add', args=(20, 22), countdown=3, queue='vis-q').id)"], { brokerUrl: url, env: { INTEROP_OUT: out } });
    assert.equal(sent.code, 0, sent.stderr);
    const id = sent.stdout.trim();
    const got = await waitFor('the asynx worker to run it', () => (runs().length > before ? runs().slice(before) : null), 20_000, 50);
    assert.equal(got[0]!.id, id);
    await sleep(3_000);
    assert.equal(runs().filter((r) => r.id === id).length, 1, 'ran exactly once');
    await w.stop('SIGTERM', 20_000);
  });

  test('an asynx client sends add(4, 5) to a Python Celery worker on the same Redis, with a countdown', { timeout: 90_000 }, async () => {
    const py = await startCeleryWorker({ brokerUrl: url, app: 'redis_capp', nodeName: `py-redis-${process.pid}@localhost`, queues: ['py-q'], concurrency: 1, env: { INTEROP_OUT: out } });
    stops.push(() => py.stop());
    const app = new Asynx({ configFile: false, brokerUrl: url, resultBackend: 'none' });
    stops.push(() => app.close());
    const before = runs().length;
    const now = await app.sendTask('add', [4, 5], {}, { queue: 'py-q', priority: 2 });
    const later = await app.sendTask('add', [10, 20], {}, { queue: 'py-q', countdown: 1 });
    const got = await waitFor('the Python worker to run both', () => (runs().length >= before + 2 ? runs().slice(before) : null), 30_000, 50);
    const byId = new Map(got.map((r) => [r.id, r]));
    assert.equal(byId.get(now.id)?.by, 'py');
    assert.equal(byId.get(now.id)?.sum, 9);
    assert.equal(byId.get(later.id)?.by, 'py');
    assert.equal(byId.get(later.id)?.sum, 30);
    await sleep(1000);
    assert.equal(runs().length, before + 2, 'each ran once');
    await py.stop();
  });

  test('an asynx client with ?delayed_delivery=false sends a countdown to a queue only a Python worker consumes and exits at once: the Python worker runs it after the countdown', { timeout: 90_000 }, async () => {
    const py = await startCeleryWorker({ brokerUrl: url, app: 'redis_capp', nodeName: `py-redis2-${process.pid}@localhost`, queues: ['py-only'], concurrency: 1, env: { INTEROP_OUT: out } });
    stops.push(() => py.stop());
    const before = runs().length;
    // By default the countdown waits in asynx's delayed zset, which only asynx processes move: with the client
    // gone and no asynx worker on this Redis, it would wait there. Celery's way puts it on the list now.
    const app = new Asynx({ configFile: false, brokerUrl: `${url}?delayed_delivery=false`, resultBackend: 'none' });
    const sentAt = Date.now();
    const r = await app.sendTask('add', [6, 7], {}, { queue: 'py-only', countdown: 1 });
    await app.close();
    assert.equal(await redis.zcard('_asynx.delayed.py-only'), 0, 'not parked in the delayed zset');
    const got = await waitFor('the Python worker to run it', () => (runs().length > before ? runs().slice(before) : null), 30_000, 50);
    assert.equal(got[0]!.id, r.id);
    assert.equal(got[0]!.by, 'py');
    assert.equal(got[0]!.sum, 13);
    assert.ok(got[0]!.at >= sentAt + 1000 - 5, `ran ${sentAt + 1000 - got[0]!.at} ms before its countdown`);
    await py.stop();
  });

  test('kwargs, an absolute eta and expires both ways: each side runs add(a=…, b=…) after its eta and never the expired one', { timeout: 120_000 }, async () => {
    const w = await startWorker({ brokerUrl: url, app: APP, args: ['-n', 'js-kw@localhost', '-c', '1', '-Q', 'kw-js'], env: { INTEROP_OUT: out } });
    stops.push(() => w.stop('SIGTERM', 20_000));
    const py = await startCeleryWorker({ brokerUrl: url, app: 'redis_capp', nodeName: `py-kw-${process.pid}@localhost`, queues: ['kw-py'], concurrency: 1, env: { INTEROP_OUT: out } });
    stops.push(() => py.stop());
    const before = runs().length;
    // Python → asynx: kwargs with an eta 1 s ahead, and a task whose expires is already past.
    const sent = await runPython(['-c', [
      'import time, datetime as d, redis_capp as c',
      'now = d.datetime.now(d.timezone.utc)',
      "a = c.app.send_task('add', kwargs={'a': 7, 'b': 8}, eta=now + d.timedelta(seconds=1), queue='kw-js')",
      "b = c.app.send_task('add', args=(1, 1), expires=now - d.timedelta(seconds=5), queue='kw-js')",
      'print(a.id, b.id, now.timestamp() * 1000)',
    ].join('; ')], { brokerUrl: url, env: { INTEROP_OUT: out } });
    assert.equal(sent.code, 0, sent.stderr);
    const [pyEta, pyExpired, pySentAt] = sent.stdout.trim().split(/\s+/);
    // asynx → Python: the same two.
    const app = new Asynx({ configFile: false, brokerUrl: url, resultBackend: 'none' });
    stops.push(() => app.close());
    const jsSentAt = Date.now();
    const jsEta = await app.sendTask('add', [], { a: 20, b: 3 }, { queue: 'kw-py', eta: new Date(jsSentAt + 1000) });
    const jsExpired = await app.sendTask('add', [2, 2], {}, { queue: 'kw-py', expires: new Date(jsSentAt - 5000) });
    const got = await waitFor('both eta tasks to run', () => {
      const r = runs().slice(before);
      return r.some((x) => x.id === pyEta) && r.some((x) => x.id === jsEta.id) ? r : null;
    }, 30_000, 50);
    const byId = new Map(got.map((r) => [r.id, r]));
    assert.equal(byId.get(pyEta!)?.by, 'js');
    assert.equal(byId.get(pyEta!)?.sum, 15);
    assert.ok(byId.get(pyEta!)!.at >= Number(pySentAt) + 1000 - 50, 'asynx ran it after its eta');
    assert.equal(byId.get(jsEta.id)?.by, 'py');
    assert.equal(byId.get(jsEta.id)?.sum, 23);
    assert.ok(byId.get(jsEta.id)!.at >= jsSentAt + 1000 - 50, 'Python ran it after its eta');
    await sleep(1500);
    const ids = runs().slice(before).map((r) => r.id);
    assert.ok(!ids.includes(pyExpired!), 'asynx did not run the expired task');
    assert.ok(!ids.includes(jsExpired.id), 'Python did not run the expired task');
    assert.equal(ids.length, 2, 'each ran once');
    await py.stop();
    await w.stop('SIGTERM', 20_000);
  });
});
