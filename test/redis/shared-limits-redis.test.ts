// Global rate limits and dedupe keys on Redis, shared by worker processes on one private server (db 3, not 0),
// with the checks the SQLite suites run (test/helpers/shared-limits.ts), plus a killed worker's key freed by its lease.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { Asynx } from '../../src/index.js';
import { linesOf, RATE_APP, readRecord } from '../helpers/rate-record.js';
import { redisSkip, startRedis, type RedisServer } from '../helpers/redis.js';
import { assertDedupeLifecycle, assertDedupeRace, assertGlobalRate, assertRetryKeepsKey } from '../helpers/shared-limits.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';

const skip = redisSkip();

describe('global rate limits and dedupe across workers on one Redis', { skip }, () => {
  let server: RedisServer;
  let tmp: { dir: string; cleanup: () => void };
  let record: string;
  /** db 3, and a 2 s visibility timeout: the lease of a held dedupe key. */
  let brokerUrl: string;
  const workers: RunningWorker[] = [];
  const clients: Asynx[] = [];
  let client: Asynx;

  before(async () => {
    server = await startRedis();
    tmp = tempDir('asynx-redis-shared-');
    record = join(tmp.dir, 'record.txt');
    brokerUrl = `${server.url}/3?visibility_timeout=2`;
    for (const n of ['a', 'b']) workers.push(await startWorker({ brokerUrl, app: RATE_APP, args: ['-n', `${n}@shared`, '-c', '2'], env: { ASYNX_TEST_RECORD: record } }));
    client = new Asynx({ brokerUrl, configFile: false });
    clients.push(client);
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await Promise.all(workers.map((w) => w.stop('SIGTERM').catch(() => undefined)));
    await server?.dispose();
    tmp?.cleanup();
  });

  test('5/s over 30 tasks across 2 nodes holds the combined rate', { timeout: 45_000 }, () => assertGlobalRate(client, record, workers.map((w) => w.pid)));

  test('four clients racing on one key send one message; the keys live in the URL db, under _asynx.dedupe.', async () => {
    const apps = [0, 1, 2, 3].map(() => new Asynx({ brokerUrl, configFile: false }));
    clients.push(...apps);
    await assertDedupeRace(apps, 'race');
    const r = new Redis({ host: server.host, port: server.port, db: 3, lazyConnect: true });
    try {
      const sent = (await r.lrange('race', 0, -1)).map((m) => JSON.parse(m).headers).find((h) => h.asynx_dedupe === 'race-0');
      assert.equal(await r.hget('_asynx.dedupe.race-0', 'task'), sent?.id, 'the key names the task sent');
      await r.select(0);
      assert.equal(await r.exists('_asynx.dedupe.race-0'), 0, 'nothing in db 0');
    } finally {
      r.disconnect();
    }
  });

  test('a second send while the task waits (delayed) or runs sends nothing; after it ended a new one is sent', { timeout: 45_000 }, () => assertDedupeLifecycle(client, record));

  test('a retried deduped task keeps its key through its next attempt; a failed one frees it', { timeout: 60_000 }, () => assertRetryKeepsKey(client, record));

  test('a priority message blocks from its own list; on an acks-late worker the key goes once the message is acked', { timeout: 45_000 }, async () => {
    const key = 'late';
    const first = await client.sendTask('r.plain', [300], {}, { dedupeKey: key, queue: 'late', priority: 9 });
    assert.equal((await client.sendTask('r.plain', [0], {}, { dedupeKey: key, queue: 'late', priority: 9 })).id, first.id, 'waiting in late\\x06\\x169');
    assert.equal(await (await client.transport()).count('late'), 1);
    const w = await startWorker({ brokerUrl, app: RATE_APP, args: ['-n', 'late@shared', '-c', '1', '-Q', 'late'], env: { ASYNX_TEST_RECORD: record, ASYNX_ACKS_LATE: 'true' } });
    workers.push(w);
    assert.equal(await first.get({ timeout: 20 }), 300);
    const r = new Redis({ host: server.host, port: server.port, db: 3, lazyConnect: true });
    try {
      await waitFor('the key deleted after the late ack', async () => (await r.exists(`_asynx.dedupe.${key}`)) === 0, 5_000, 20);
    } finally {
      r.disconnect();
    }
    const next = await client.sendTask('r.plain', [0], {}, { dedupeKey: key, queue: 'late' });
    assert.notEqual(next.id, first.id);
    assert.equal(await next.get({ timeout: 20 }), 0);
    await w.stop('SIGTERM');
  });

  test('a worker killed -9 while running a deduped task frees the key when its lease (the visibility timeout) ends', { timeout: 45_000 }, async () => {
    const w = await startWorker({ brokerUrl, app: RATE_APP, args: ['-n', 'k@shared', '-c', '1', '-Q', 'kill'], env: { ASYNX_TEST_RECORD: record } });
    workers.push(w);
    const key = 'killed';
    const first = await client.sendTask('r.plain', [60_000], {}, { dedupeKey: key, queue: 'kill' });
    await waitFor('the task started', () => linesOf(readRecord(record), 'r.plain', 'start').some((l) => l.id === first.id), 20_000, 20);
    await sleep(1_000); // past a renewal of the lease
    assert.equal((await client.sendTask('r.plain', [0], {}, { dedupeKey: key, queue: 'kill' })).id, first.id, 'held while it runs');
    await w.stop('SIGKILL');
    const killedAt = Date.now();
    assert.equal((await client.sendTask('r.plain', [0], {}, { dedupeKey: key, queue: 'kill' })).id, first.id, 'still held: the lease runs');
    let next = first.id;
    while (next === first.id && Date.now() - killedAt < 10_000) {
      await sleep(100);
      next = (await client.sendTask('r.plain', [0], {}, { dedupeKey: key, queue: 'kill' })).id;
    }
    const freedMs = Date.now() - killedAt;
    assert.notEqual(next, first.id, 'freed after the lease');
    assert.ok(freedMs <= 3_500, `freed within the 2 s lease (took ${freedMs} ms)`);
    assert.equal(await (await client.transport()).count('kill'), 1, 'one new message sent');
  });
});
