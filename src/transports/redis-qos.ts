// kombu's ack emulation on Redis: the unacked hash and its time index, ack, restore, the visibility sweep under its mutex.

import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { lookupQueues } from './redis-bindings.js';
import { type Envelope, markRedelivered, parseEnvelope } from './redis-envelope.js';
import { listKey, UNACKED, UNACKED_INDEX, UNACKED_MUTEX, UNACKED_MUTEX_EXPIRE_MS } from './redis-keys.js';

/** Removes the entry if it still holds `expected`, and pushes the restored message to every target list, atomically. */
const RESTORE = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
for i = 3, #KEYS do
  if ARGV[4] == '1' then redis.call('LPUSH', KEYS[i], ARGV[3]) else redis.call('RPUSH', KEYS[i], ARGV[3]) end
end
return 1`;

/** Deletes the mutex only if this sweep still holds it. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** Epoch seconds, as kombu scores the index. */
const nowS = () => Date.now() / 1000;

/** Records a hand-out (HSET unacked + ZADD unacked_index, one MULTI), as kombu's QoS.append does. */
export async function appendUnacked(cmd: Redis, tag: string, e: Envelope | string, exchange: string, routingKey: string): Promise<void> {
  await cmd.multi().hset(UNACKED, tag, JSON.stringify([e, exchange, routingKey])).zadd(UNACKED_INDEX, nowS(), tag).exec();
}

/** Acknowledges: ZREM + HDEL in one MULTI. */
export async function ackUnacked(cmd: Redis, tag: string): Promise<void> {
  await cmd.multi().zrem(UNACKED_INDEX, tag).hdel(UNACKED, tag).exec();
}

/** Moves a rejected message to the dead-letter list and drops its entry, in one MULTI. */
export async function deadLetterUnacked(cmd: Redis, tag: string, deadList: string, e: Envelope): Promise<void> {
  await cmd.multi().lpush(deadList, JSON.stringify(e)).zrem(UNACKED_INDEX, tag).hdel(UNACKED, tag).exec();
}

/** Marks held deliveries as handed out now, so no sweep (ours or a Python worker's) restores them while they run. */
export async function renewUnacked(cmd: Redis, tags: string[]): Promise<void> {
  if (!tags.length) return;
  const s = nowS();
  await cmd.zadd(UNACKED_INDEX, 'XX', ...tags.flatMap((t) => [s, t]));
}

/**
 * Puts a handed-out message back, marked redelivered: to the tail of its list (`leftmost`, consumed last) for a
 * reject with requeue, else to the head (consumed next), as kombu does. Resolves to false when the entry is
 * gone (acked, or restored by someone else meanwhile). An entry that does not parse is dropped from the index
 * and left in the hash for inspection.
 */
export async function restoreByTag(cmd: Redis, tag: string, leftmost: boolean): Promise<boolean> {
  const payload = await cmd.hget(UNACKED, tag);
  if (payload === null) {
    await cmd.zrem(UNACKED_INDEX, tag);
    return false;
  }
  let entry: unknown;
  try {
    entry = JSON.parse(payload);
  } catch {
    entry = null;
  }
  if (!Array.isArray(entry) || entry.length < 3) {
    await cmd.zrem(UNACKED_INDEX, tag);
    return false;
  }
  const [m, exchange, routingKey] = entry as [unknown, unknown, unknown];
  const rk = typeof routingKey === 'string' ? routingKey : '';
  const queues = await lookupQueues(cmd, typeof exchange === 'string' ? exchange : '', rk);
  let restored: string;
  let targets: string[];
  if (typeof m === 'object' && m !== null) {
    const e = parseEnvelope(JSON.stringify(m)) ?? (m as Envelope);
    markRedelivered(e);
    restored = JSON.stringify(e);
    targets = queues.map((q) => listKey(q, e.properties?.priority));
  } else {
    // A list item that was not an envelope: back as it came.
    restored = typeof m === 'string' ? m : JSON.stringify(m);
    targets = queues;
  }
  const n = await cmd.eval(RESTORE, 2 + targets.length, UNACKED, UNACKED_INDEX, ...targets, tag, payload, restored, leftmost ? '1' : '0');
  return n === 1;
}

/**
 * The visibility sweep: under the `unacked_mutex` lock (SET NX PX, 300 s), restores up to `limit` entries handed
 * out more than `visibilityMs` ago, to the head of their lists, marked redelivered. Resolves to how many it
 * restored; 0 when another process holds the lock.
 */
export async function sweepUnacked(cmd: Redis, visibilityMs: number, limit = 1000): Promise<number> {
  const token = randomBytes(8).toString('hex');
  const got = await cmd.set(UNACKED_MUTEX, token, 'PX', UNACKED_MUTEX_EXPIRE_MS, 'NX');
  if (got !== 'OK') return 0;
  try {
    const ceil = nowS() - visibilityMs / 1000;
    const tags = await cmd.zrangebyscore(UNACKED_INDEX, '-inf', ceil, 'LIMIT', 0, limit);
    let n = 0;
    for (const tag of tags) if (await restoreByTag(cmd, tag, false)) n++;
    return n;
  } finally {
    await cmd.eval(RELEASE, 1, UNACKED_MUTEX, token).catch(() => undefined);
  }
}
