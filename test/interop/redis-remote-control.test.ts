// Remote control on one private Redis, kombu's pidbox there: Python's `celery inspect|control` against an asynx
// node, and `asynx inspect` against a Python Celery worker.

import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { packMessage } from '../../src/transports/redis-pubsub.js';
import { celerySkip, runPython, startCeleryWorker, type CeleryWorker } from '../helpers/celery.js';
import { redisSkip, startRedis, type RedisServer } from '../helpers/redis.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { runCli, startWorker, type RunningWorker } from '../helpers/worker.js';

const skip = redisSkip() || celerySkip();
const APP = fileURLToPath(new URL('../fixtures/redis-interop-app.mjs', import.meta.url));
const NODE = 'asynx-rc@localhost';
const PY_NODE = 'py-rc@localhost';

describe('remote control on Redis (kombu pidbox over pub/sub)', { skip }, () => {
  let server: RedisServer;
  let url: string;
  let worker: RunningWorker;
  let py: CeleryWorker;
  let redis: Redis;
  let tmp: { dir: string; cleanup: () => void };

  before(async () => {
    server = await startRedis();
    url = `${server.url}/0`;
    redis = new Redis(server.port, '127.0.0.1');
    tmp = tempDir('asynx-redis-rc-');
    const env = { INTEROP_OUT: `${tmp.dir}/runs.jsonl` };
    worker = await startWorker({ brokerUrl: url, app: APP, args: ['-n', NODE, '-c', '1', '-Q', 'celery'], env });
    py = await startCeleryWorker({ brokerUrl: url, app: 'redis_capp', nodeName: PY_NODE, queues: ['py-q'], concurrency: 1, env });
  });
  after(async () => {
    await worker?.stop('SIGTERM', 20_000).catch(() => undefined);
    await py?.stop().catch(() => undefined);
    redis?.disconnect();
    await server?.dispose();
    tmp?.cleanup();
  });

  /** `celery -A redis_capp <inspect|control> … -d NODE -j`: the parsed JSON of its last line. */
  const celery = async (args: string[]) => {
    const r = await runPython(['-m', 'celery', '-A', 'redis_capp', ...args, '-d', NODE, '-t', '5', '-j'], { brokerUrl: url, timeoutMs: 60_000 });
    assert.equal(r.code, 0, `celery ${args.join(' ')}: ${r.stdout}\n${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as unknown;
  };

  test('the asynx node binds its mailbox as kombu does: <node>.celery.pidbox in _kombu.binding.celery.pidbox', { timeout: 30_000 }, async () => {
    const members = await redis.smembers('_kombu.binding.celery.pidbox');
    assert.ok(members.includes(`\x06\x16\x06\x16${NODE}.celery.pidbox`), JSON.stringify(members));
    // The channel kombu publishes on: both nodes (asynx and Python) get a request sent there.
    const cast = packMessage({ exchange: 'celery.pidbox', routingKey: '', body: JSON.stringify({ method: 'ping', arguments: {}, destination: ['nobody@nowhere'], pattern: null, matcher: null }), headers: { clock: 1, expires: 0 } });
    assert.equal(await redis.publish('/0.celery.pidbox', cast), 2);
  });

  test('celery inspect ping answers pong from the asynx node', { timeout: 90_000 }, async () => {
    assert.deepEqual(await celery(['inspect', 'ping']), { [NODE]: { ok: 'pong' } });
  });

  test('celery inspect stats: the asynx node\'s pid, pool and a redis broker', { timeout: 90_000 }, async () => {
    const s = ((await celery(['inspect', 'stats'])) as Record<string, Record<string, unknown>>)[NODE]!;
    assert.equal(s.pid, worker.pid);
    assert.equal((s.pool as Record<string, unknown>)['max-concurrency'], 1);
    assert.equal((s.broker as Record<string, unknown>).port, server.port);
    assert.equal((s.broker as Record<string, unknown>).transport, 'redis');
  });

  test('celery control rate_limit is stored on the asynx node and shown by inspect registered', { timeout: 90_000 }, async () => {
    assert.deepEqual(await celery(['control', 'rate_limit', 'add', '10/m']), [{ [NODE]: { ok: 'new rate limit set successfully' } }]);
    assert.deepEqual(await celery(['inspect', 'registered']), { [NODE]: ['add [rate_limit=10/m]', 'sleep'] });
  });

  test('asynx inspect ping reaches the Python worker and the asynx node; -d picks one', { timeout: 60_000 }, async () => {
    const all = await runCli(['inspect', 'ping', '--timeout', '3', '--json'], { ASYNX_BROKER_URL: url });
    assert.equal(all.code, 0, all.stderr);
    const replies = JSON.parse(all.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    assert.deepEqual(replies, { [NODE]: { ok: 'pong' }, [PY_NODE]: { ok: 'pong' } });
    const one = await runCli(['inspect', 'ping', '-d', PY_NODE, '--timeout', '5'], { ASYNX_BROKER_URL: url });
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, new RegExp(`${PY_NODE}: OK`));
    const stats = await runCli(['inspect', 'stats', '-d', PY_NODE, '--timeout', '5', '--json'], { ASYNX_BROKER_URL: url });
    assert.equal(stats.code, 0, stats.stderr);
    const s = (JSON.parse(stats.stdout.trim().split('\n').pop()!) as Record<string, Record<string, unknown>>)[PY_NODE]!;
    assert.equal((s.broker as Record<string, unknown>).transport, 'redis');
  });

  test('after the client closes, its reply list and binding are gone', { timeout: 30_000 }, async () => {
    // Python's client deletes its auto-delete reply queue too, so after every client above nothing is left.
    assert.deepEqual(await redis.smembers('_kombu.binding.reply.celery.pidbox'), []);
    assert.deepEqual(await redis.keys('*.reply.celery.pidbox*'), []);
  });

  test('a reply for a client that is gone (no binding) is dropped: no list is made for it', { timeout: 30_000 }, async () => {
    const before = (await redis.keys('*')).sort();
    const req = packMessage({ exchange: 'celery.pidbox', routingKey: '', body: JSON.stringify({ method: 'ping', arguments: {}, destination: [NODE], pattern: null, matcher: null, ticket: 't-gone', reply_to: { exchange: 'reply.celery.pidbox', routing_key: 'gone-client' } }), headers: { clock: 1, expires: Date.now() / 1000 + 5 } });
    assert.equal(await redis.publish('/0.celery.pidbox', req), 2);
    await new Promise((r) => setTimeout(r, 1_000));
    assert.deepEqual((await redis.keys('*')).sort(), before);
  });

  test('after a Redis restart (keys gone) the asynx node subscribes and binds again: inspect ping answers', { timeout: 90_000 }, async () => {
    await server.stop();
    await server.start();
    redis.disconnect();
    redis = new Redis(server.port, '127.0.0.1');
    await waitFor('the mailbox binding again', async () => (await redis.smembers('_kombu.binding.celery.pidbox')).includes(`\x06\x16\x06\x16${NODE}.celery.pidbox`), 20_000, 100);
    const pong = await waitFor('a pong after the restart', async () => {
      const r = await runCli(['inspect', 'ping', '-d', NODE, '--timeout', '2', '--json'], { ASYNX_BROKER_URL: url });
      return r.code === 0 ? (JSON.parse(r.stdout.trim().split('\n').pop()!) as unknown) : null;
    }, 40_000, 200);
    assert.deepEqual(pong, { [NODE]: { ok: 'pong' } });
  });
});
