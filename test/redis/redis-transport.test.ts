// The Redis transport against a private redis-server: kombu's keys and envelope, the visibility sweep, the
// delayed store for eta messages (also ones a Celery client LPUSHed), fair consumption, and a Redis restart.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { BrokerUnavailableError } from '../../src/errors.js';
import { buildTaskMessage, decodeTaskMessage } from '../../src/protocol/codec.js';
import { RedisTransport } from '../../src/transports/redis.js';
import type { Transport } from '../../src/transports/transport.js';
import { redisSkip, startRedis, type RedisServer } from '../helpers/redis.js';
import { waitFor } from '../helpers/tmp.js';
import { Collector } from '../helpers/transport-conformance.js';

const skip = redisSkip();
const SEP = '\x06\x16';

describe('Redis transport: kombu layout, sweep, delayed store, reconnect', { skip }, () => {
  let server: RedisServer;
  let redis: Redis;
  const open: Transport[] = [];
  let n = 0;
  const q = (label: string) => `rt-${process.pid}-${++n}-${label}`;
  const make = async (opts: { visibilityTimeoutMs?: number; query?: string; url?: string } = {}) => {
    const t = new RedisTransport(`${opts.url ?? server.url}/0${opts.query ?? ''}`, { connectTimeoutMs: 5_000, publishTimeoutMs: 5_000, ...(opts.visibilityTimeoutMs ? { visibilityTimeoutMs: opts.visibilityTimeoutMs } : {}) });
    open.push(t);
    await t.connect();
    return t;
  };
  const msg = (queue: string, args: unknown[], o: Parameters<typeof buildTaskMessage>[3] = {}) => buildTaskMessage('t.n', args, {}, { queue, ...o }).message;

  before(async () => {
    server = await startRedis();
    redis = new Redis(server.port, '127.0.0.1');
  });
  after(async () => {
    for (const t of open) await t.close().catch(() => undefined);
    redis?.disconnect();
    await server?.dispose();
  });

  test("publish writes kombu's envelope to the priority step's list; declare writes the binding; a delivery is in unacked until acked", async () => {
    const t = await make();
    const queue = q('layout');
    await t.declareQueue(queue);
    assert.equal(await redis.sismember(`_kombu.binding.${queue}`, `${queue}${SEP}${SEP}${queue}`), 1);
    const m = msg(queue, [1, 2], { priority: 5 });
    await t.publish(queue, m);
    assert.equal(await redis.llen(queue), 0);
    const [raw] = await redis.lrange(`${queue}${SEP}3`, 0, -1);
    const e = JSON.parse(raw!);
    assert.equal(Buffer.from(e.body, 'base64').toString('utf8'), m.body);
    assert.equal(e['content-type'], 'application/json');
    assert.equal(e.headers.id, m.headers.id);
    assert.equal(e.properties.body_encoding, 'base64');
    assert.equal(e.properties.priority, 5);
    assert.deepEqual(e.properties.delivery_info, { exchange: '', routing_key: queue });
    assert.match(e.properties.delivery_tag, /^[0-9a-f-]{36}$/);
    const c = await new Collector().start(t, [queue], 1);
    const [d] = await c.waitFor(1);
    const entry = JSON.parse((await redis.hget('unacked', e.properties.delivery_tag))!);
    assert.equal(entry[1], '');
    assert.equal(entry[2], queue);
    assert.equal(entry[0].headers.id, m.headers.id);
    const score = Number(await redis.zscore('unacked_index', e.properties.delivery_tag));
    assert.ok(Math.abs(score - Date.now() / 1000) < 5, `unacked_index scores epoch seconds, got ${score}`);
    await t.ack(d!);
    assert.equal(await redis.hexists('unacked', e.properties.delivery_tag), 0);
    assert.equal(await redis.zscore('unacked_index', e.properties.delivery_tag), null);
    await c.cancel();
  });

  test('reject without requeue moves the envelope to the asynx.dead list with the reason, in one step with the unacked entry', async () => {
    const t = await make();
    const queue = q('dead');
    const m = msg(queue, ['bad']);
    await t.publish(queue, m);
    const c = await new Collector().start(t, [queue], 1);
    const [d] = await c.waitFor(1);
    const before = await redis.llen('asynx.dead');
    await t.reject(d!, { requeue: false, reason: 'test: poison' });
    assert.equal(await redis.llen('asynx.dead'), before + 1);
    const dead = JSON.parse((await redis.lindex('asynx.dead', 0))!);
    assert.equal(dead.headers.id, m.headers.id);
    assert.equal(dead.headers['x-asynx-reason'], 'test: poison');
    assert.equal(dead.headers['x-asynx-queue'], queue);
    assert.equal(await redis.hexists('unacked', dead.properties.delivery_tag), 0);
    await c.cancel();
  });

  test('the sweep restores what a dead consumer left in unacked past the visibility timeout (URL ?visibility_timeout=), marked redelivered', async () => {
    const queue = q('sweep');
    const m = msg(queue, ['orphan']);
    const tag = randomUUID();
    const envelope = { body: Buffer.from(m.body).toString('base64'), 'content-encoding': 'utf-8', 'content-type': 'application/json', headers: m.headers, properties: { correlation_id: m.headers.id, delivery_mode: 2, delivery_info: { exchange: '', routing_key: queue }, priority: 0, body_encoding: 'base64', delivery_tag: tag } };
    // As a worker killed -9 leaves it: in the hash and the index, handed out 10 s ago, in no list.
    await redis.multi().hset('unacked', tag, JSON.stringify([envelope, '', queue])).zadd('unacked_index', Date.now() / 1000 - 10, tag).exec();
    const t = await make({ query: '?visibility_timeout=1' });
    const c = await new Collector().start(t, [queue], 1);
    const [d] = await c.waitFor(1, 10_000);
    assert.deepEqual(decodeTaskMessage(d!.message).args, ['orphan']);
    assert.equal(d!.redelivered, true);
    assert.ok(d!.deliveryCount >= 2);
    await t.ack(d!);
    assert.equal(await redis.hlen('unacked'), 0);
    await c.cancel();
  });

  test('a live consumer renews what it holds: a sweep with a short visibility timeout does not restore it', async () => {
    const queue = q('renew');
    const holder = await make({ visibilityTimeoutMs: 600 });
    await holder.publish(queue, msg(queue, ['long']));
    const c1 = await new Collector().start(holder, [queue], 1);
    const [d] = await c1.waitFor(1);
    const other = await make({ visibilityTimeoutMs: 600 });
    const c2 = await new Collector().start(other, [queue], 1);
    await sleep(2_500);
    assert.equal(c2.got.length, 0, 'not restored while its holder lives');
    assert.equal(c1.got.length, 1);
    await holder.ack(d!);
    await c1.cancel();
    await c2.cancel();
  });

  test('an eta message a Celery client LPUSHed waits in the delayed zset, not in unacked, and is delivered once when due', async () => {
    const t = await make();
    const queue = q('celery-eta');
    const etaMs = Date.now() + 1500;
    const m = msg(queue, ['py-eta']);
    const tag = randomUUID();
    // The envelope as kombu 5.2 writes it (Python's JSON spacing), eta in the headers.
    const envelope = { body: Buffer.from(m.body).toString('base64'), 'content-encoding': 'utf-8', 'content-type': 'application/json', headers: { ...m.headers, eta: new Date(etaMs).toISOString().replace('Z', '+00:00') }, properties: { correlation_id: m.headers.id, reply_to: randomUUID(), delivery_mode: 2, delivery_info: { exchange: '', routing_key: queue }, priority: 0, body_encoding: 'base64', delivery_tag: tag } };
    await redis.lpush(queue, JSON.stringify(envelope, null, 1).replace(/\n\s*/g, ' '));
    const c = await new Collector().start(t, [queue], 4);
    await waitFor('the message to be parked', async () => (await redis.zcard(`_asynx.delayed.${queue}`)) === 1, 1_000, 10);
    assert.equal(await redis.llen(queue), 0);
    assert.equal(await redis.hexists('unacked', tag), 0, 'not unacked while it waits');
    assert.equal(await t.count(queue), 1, 'count includes delayed messages');
    const [d] = await c.waitFor(1, 10_000);
    assert.ok(Date.now() >= etaMs, 'not before its eta');
    assert.deepEqual(decodeTaskMessage(d!.message).args, ['py-eta']);
    assert.equal(d!.redelivered, false);
    await t.ack(d!);
    await sleep(500);
    assert.equal(c.got.length, 1, 'delivered once');
    assert.equal(await redis.zcard(`_asynx.delayed.${queue}`), 0);
    await c.cancel();
  });

  test('consumption is fair across queues: a full queue does not starve another', async () => {
    const t = await make();
    const [qa, qb] = [q('fair-a'), q('fair-b')];
    for (let i = 0; i < 10; i++) await t.publish(qa, msg(qa, [i]));
    for (let i = 0; i < 3; i++) await t.publish(qb, msg(qb, [i]));
    const c = await new Collector().start(t, [qa, qb], 1);
    for (let i = 0; i < 6; i++) {
      const got = await c.waitFor(i + 1);
      await t.ack(got[i]!);
    }
    assert.deepEqual(c.got.slice(0, 6).map((d) => d.queue), [qa, qb, qa, qb, qa, qb]);
    await c.cancel();
    await t.purge([qa, qb]);
  });

  test('with Redis away, connect and publish fail within their bounds with BrokerUnavailableError', { timeout: 30_000 }, async () => {
    const s = await startRedis();
    const t = await make({ url: s.url });
    await s.dispose();
    const queue = q('away');
    const started = Date.now();
    await assert.rejects(t.publish(queue, msg(queue, [1]), { timeoutMs: 500 }), (e: unknown) => e instanceof BrokerUnavailableError && /redis:\/\/127\.0\.0\.1/.test(e.message));
    assert.ok(Date.now() - started < 3_000, `publish took ${Date.now() - started} ms`);
    const never = new RedisTransport(`${s.url}/0`, { connectTimeoutMs: 500, publishTimeoutMs: 500 });
    open.push(never);
    const t0 = Date.now();
    await assert.rejects(never.connect(), BrokerUnavailableError);
    assert.ok(Date.now() - t0 < 3_000, `connect took ${Date.now() - t0} ms`);
  });

  test('consuming resumes after Redis restarts on the same port', { timeout: 60_000 }, async () => {
    const s = await startRedis();
    try {
      const t = await make({ url: s.url });
      const queue = q('restart');
      await t.publish(queue, msg(queue, ['before']));
      const c = await new Collector().start(t, [queue], 2);
      await t.ack((await c.waitFor(1))[0]!);
      await s.dispose();
      const again = await startRedis({ port: s.port });
      try {
        const pub = await make({ url: again.url });
        await pub.publish(queue, msg(queue, ['after']));
        const got = await c.waitFor(2, 20_000);
        assert.deepEqual(decodeTaskMessage(got[1]!.message).args, ['after']);
        await t.ack(got[1]!);
        assert.equal(await t.count(queue), 0);
        await c.cancel();
      } finally {
        await again.dispose();
      }
    } finally {
      await s.dispose();
    }
  });
});
