// An asynx worker on Redis orders what it has prefetched as kombu orders the lists: lower priority numbers first.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Asynx } from '../../src/index.js';
import { redisSkip, startRedis, type RedisServer } from '../helpers/redis.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { startWorker } from '../helpers/worker.js';

const skip = redisSkip();
const APP = fileURLToPath(new URL('../fixtures/redis-interop-app.mjs', import.meta.url));
const PLAIN_APP = fileURLToPath(new URL('../fixtures/app.mjs', import.meta.url));

describe('asynx worker on Redis', { skip }, () => {
  let server: RedisServer;
  let tmp: { dir: string; cleanup: () => void };
  const stops: Array<() => Promise<unknown>> = [];
  before(async () => {
    server = await startRedis();
    tmp = tempDir('asynx-redis-worker-');
  });
  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await server?.dispose();
    tmp?.cleanup();
  });

  test('a priority-0 task that arrives after a priority-9 one, both waiting for the one pool slot, starts first', { timeout: 60_000 }, async () => {
    const out = join(tmp.dir, 'runs.jsonl');
    const url = `${server.url}/0`;
    const w = await startWorker({ brokerUrl: url, app: APP, args: ['-n', 'js-prio@localhost', '-c', '1', '-Q', 'celery'], env: { INTEROP_OUT: out } });
    stops.push(() => w.stop('SIGTERM', 20_000));
    const app = new Asynx({ configFile: false, brokerUrl: url, resultBackend: 'none' });
    stops.push(() => app.close());
    await app.sendTask('sleep', [1500]);
    await sleep(300); // the slot is busy
    const low = await app.sendTask('add', [9, 0], {}, { priority: 9 });
    await waitFor('the worker to prefetch the priority-9 task', () => w.output().includes(`add[${low.id}] received`), 5_000, 20);
    const high = await app.sendTask('add', [0, 0], {}, { priority: 0 });
    const runs = await waitFor('both to run', () => {
      const lines = existsSync(out) ? readFileSync(out, 'utf8').trim().split('\n').filter(Boolean) : [];
      return lines.length >= 2 ? lines.map((l) => JSON.parse(l) as { id: string }) : null;
    }, 20_000, 50);
    assert.deepEqual(runs.map((r) => r.id), [high.id, low.id], 'priority 0 ran first');
  });

  test('with no resultBackend set anywhere, results go to the broker\'s Redis (Celery keys), the URL\'s visibility_timeout aside', { timeout: 60_000 }, async () => {
    const url = `${server.url}/3?visibility_timeout=60`;
    const w = await startWorker({ brokerUrl: url, app: PLAIN_APP, args: ['-n', 'js-results@localhost', '-c', '1', '-Q', 'celery'] });
    stops.push(() => w.stop('SIGTERM', 20_000));
    const app = new Asynx({ configFile: false, brokerUrl: url });
    stops.push(() => app.close());
    assert.equal((await app.config()).resultBackend, `${server.url}/3`);
    const r = await app.sendTask('t.add', [20, 22]);
    assert.equal(await r.get({ timeout: 20 }), 42);
    const direct = new Redis({ host: '127.0.0.1', port: server.port, db: 3, lazyConnect: true });
    await direct.connect();
    const raw = (await direct.get(`celery-task-meta-${r.id}`)) ?? 'null';
    direct.disconnect();
    assert.equal((JSON.parse(raw) as { status: string; result: unknown }).result, 42, `stored under Celery's key in db 3: ${raw}`);
  });

  for (const pool of ['async', 'prefork']) {
    test(`a -P ${pool} worker whose Redis has gone away stops on SIGTERM within 15 s, exit 0 (it waited through ioredis's retries before)`, { timeout: 60_000 }, async () => {
      const own = await startRedis();
      const w = await startWorker({ brokerUrl: `${own.url}/0`, app: PLAIN_APP, args: ['-n', `gone-${pool}@localhost`, '-P', pool, '-c', '2'] });
      stops.push(() => w.stop('SIGKILL', 5_000));
      await own.dispose();
      await sleep(1_000); // the consumer is waiting on a dead connection
      const t0 = Date.now();
      const code = await w.stop('SIGTERM', 15_000);
      assert.equal(code, 0, `after ${Date.now() - t0} ms: ${w.output().slice(-800)}`);
      assert.ok(Date.now() - t0 < 15_000);
    });
  }
});
