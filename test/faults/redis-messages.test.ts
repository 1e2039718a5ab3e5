// Fault: malformed messages on Redis (one private redis-server), LPUSHed raw onto the queue's list between
// good ones: the task-message faults every broker shares (malformed.ts, the RabbitMQ row's driver), plus list
// items that are not kombu envelopes (not JSON, not an object, no body, no properties, headers not an object),
// a body that is not base64 and a priority that is not a number. Each ends in the `asynx.dead` list with its
// reason, none runs, every good task completes once.

import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { toEnvelope } from '../../src/transports/redis-envelope.js';
import { redisSkip, startRedis, type RedisServer } from '../helpers/redis.js';
import { Nodes, scratch, waitFor } from './harness.js';
import { type Bad, type DeadLetter, goodWire, malformedRow, type Outgoing, type TaskWire } from './malformed.js';

const skip = redisSkip();
const DEAD = 'asynx.dead';

/** The kombu envelope of a task message, body bytes as given, as JSON. */
function envelope(queue: string, w: TaskWire): Record<string, unknown> {
  const e = toEnvelope(queue, { properties: w.properties, headers: w.headers, body: '' } as never) as unknown as Record<string, unknown>;
  e.body = (Buffer.isBuffer(w.body) ? w.body : Buffer.from(w.body, 'utf8')).toString('base64');
  return e;
}

/** Redis-only kinds: list items a kombu client would never LPUSH. */
function redisBads(queue: string): Bad[] {
  const mangled = (f: (e: Record<string, unknown>) => void) => (ledger: string): Outgoing => {
    const g = goodWire([ledger, 0]);
    const e = envelope(queue, g);
    f(e);
    return { item: JSON.stringify(e), id: g.id };
  };
  return [
    { kind: 'list item not JSON', reason: /badEnvelope/, hasId: false, make: () => ({ item: '{"body": "W1tdLCB7fSwge31d", "headers": {', id: null }) },
    { kind: 'list item not an object', reason: /badEnvelope/, hasId: false, make: () => ({ item: '[1, 2, 3]', id: null }) },
    { kind: 'envelope without body', reason: /badEnvelope/, hasId: true, make: mangled((e) => delete e.body) },
    { kind: 'envelope without properties', reason: /badEnvelope/, hasId: true, make: mangled((e) => delete e.properties) },
    { kind: 'headers not an object', reason: /badEnvelope/, hasId: false, make: mangled((e) => (e.headers = 'id=1')) },
    { kind: 'body not base64', reason: /badJson/, hasId: true, make: mangled((e) => (e.body = '%%% not base64 %%%')) },
    { kind: 'priority not a number', reason: /badPriority/, hasId: true, make: mangled((e) => ((e.properties as Record<string, unknown>).priority = 'high')) },
  ];
}

describe('fault: malformed messages LPUSHed raw (Redis)', { skip }, () => {
  const tmp = scratch('redis-bad');
  const nodes = new Nodes();
  let redis: RedisServer;
  let conn: Redis | null = null;
  before(async () => {
    redis = await startRedis();
    conn = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await conn.connect();
  });
  after(async () => {
    await nodes.stopAll();
    await conn?.quit().catch(() => conn?.disconnect());
    await redis?.dispose();
    tmp.cleanup();
  });

  /** Drains the dead-letter list (bounded), once it holds at least `atLeast` items. */
  async function drainDead(atLeast: number, timeoutMs: number): Promise<DeadLetter[]> {
    await waitFor(`${atLeast} items in ${DEAD}`, async () => (await conn!.llen(DEAD)) >= atLeast, timeoutMs, 200);
    const items = await conn!.lrange(DEAD, 0, -1);
    await conn!.del(DEAD);
    return items.map((raw) => {
      const e = JSON.parse(raw) as { body: string; headers: Record<string, unknown>; properties: Record<string, unknown> };
      const h = e.headers;
      const size = e.properties.body_encoding === 'base64' ? Buffer.from(e.body, 'base64').length : Buffer.byteLength(e.body);
      return { reason: String(h['x-asynx-reason'] ?? ''), queue: String(h['x-asynx-queue'] ?? ''), id: typeof h.id === 'string' ? h.id : null, size };
    });
  }

  it('each bad item is dead-lettered with its reason; every good task completes once', async () => {
    const queue = 'q-bad';
    let pending: Array<Promise<unknown>> = [];
    await malformedRow(
      {
        broker: 'redis',
        url: redis.url,
        queue,
        deadName: DEAD,
        note: 'LPUSHed raw',
        extra: redisBads(queue),
        // One connection keeps the order; flush() waits for the replies.
        send: (out) => void pending.push(conn!.lpush(queue, 'wire' in out ? JSON.stringify(envelope(queue, out.wire)) : out.item)),
        flush: async () => {
          const p = pending;
          pending = [];
          await Promise.all(p);
        },
        drainDead,
      },
      { dir: tmp.dir, nodes },
    );
  });
});
