// kombu's ack emulation on Redis: the unacked hash and its time index, ack, restore, the visibility sweep under its mutex.

import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { lookupQueues } from './redis-bindings.js';
import { type Envelope, markRestored, parseEnvelope } from './redis-envelope.js';
import { listKey, UNACKED, UNACKED_INDEX, UNACKED_MUTEX, UNACKED_MUTEX_EXPIRE_MS } from './redis-keys.js';
import { deleteIfHolds, LuaScript } from './redis-script.js';

/** Removes the entry if it still holds `expected`, and pushes the restored message to every target list, atomically. */
const RESTORE = new LuaScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
for i = 3, #KEYS do
  if ARGV[4] == '1' then redis.call('LPUSH', KEYS[i], ARGV[3]) else redis.call('RPUSH', KEYS[i], ARGV[3]) end
end
return 1`);


/** Epoch seconds, as kombu scores the index. */
const nowS = () => Date.now() / 1000;

/**
 * Pops up to `max` messages from `lists` (in order: a list is emptied before the next is read) and records each
 * in `unacked` / `unacked_index`, in one atomic script: no moment exists in which a message is in neither place
 * (kombu's BRPOP, then HSET, loses a message when the worker dies in between). The delivery tag is the
 * envelope's (the fallback tag plus its index in the batch if it has none); exchange and routing key come from
 * its delivery_info (anonymous exchange, the list's queue otherwise). KEYS: unacked, unacked_index, lists.
 * ARGV: now (s), fallback tag, the queue of each list, max.
 */
const POP_AND_RECORD = new LuaScript(`
local out = {}
local max = tonumber(ARGV[#KEYS + 1])
for i = 3, #KEYS do
  while #out < max * 3 do
    local raw = redis.call('RPOP', KEYS[i])
    if not raw then break end
    local tag, ex, rk = ARGV[2] .. ':' .. (#out / 3), '', ARGV[i]
    local ok, e = pcall(cjson.decode, raw)
    local entry
    if ok and type(e) == 'table' and type(e.properties) == 'table' then
      if type(e.properties.delivery_tag) == 'string' and e.properties.delivery_tag ~= '' then tag = e.properties.delivery_tag end
      local di = e.properties.delivery_info
      if type(di) == 'table' then
        if type(di.exchange) == 'string' then ex = di.exchange end
        if type(di.routing_key) == 'string' then rk = di.routing_key end
      end
      entry = '[' .. raw .. ',' .. cjson.encode(ex) .. ',' .. cjson.encode(rk) .. ']'
    else
      entry = cjson.encode({raw, ex, rk})
    end
    redis.call('HSET', KEYS[1], tag, entry)
    redis.call('ZADD', KEYS[2], ARGV[1], tag)
    out[#out + 1] = KEYS[i]
    out[#out + 1] = raw
    out[#out + 1] = tag
  end
  if #out >= max * 3 then break end
end
return out`);

/** What {@link popAndRecord} took: the list, the item as stored, and the tag it is recorded under. */
export interface Popped {
  list: string;
  raw: string;
  tag: string;
}

/**
 * Pops and records up to `max` messages atomically (see POP_AND_RECORD); empty when every list is empty.
 * `queues[i]` is the queue of `lists[i]`.
 */
export async function popAndRecord(cmd: Redis, lists: string[], queues: string[], fallbackTag: string, max = 1): Promise<Popped[]> {
  const r = ((await POP_AND_RECORD.run(cmd, [UNACKED, UNACKED_INDEX, ...lists], [String(nowS()), fallbackTag, ...queues, Math.max(1, Math.floor(max))])) ?? []) as string[];
  const out: Popped[] = [];
  for (let i = 0; i + 2 < r.length; i += 3) out.push({ list: r[i]!, raw: r[i + 1]!, tag: r[i + 2]! });
  return out;
}

/** Moves a recorded (unacked) message whose eta is ahead into the delayed store, atomically. */
export async function parkUnacked(cmd: Redis, tag: string, delayedZset: string, delayedIndex: string, list: string, raw: string, dueMs: number): Promise<void> {
  await cmd.multi().zadd(delayedZset, dueMs, raw).sadd(delayedIndex, list).zrem(UNACKED_INDEX, tag).hdel(UNACKED, tag).exec();
}

/** Records a hand-out (HSET unacked + ZADD unacked_index, one MULTI), as kombu's QoS.append does. */
export async function appendUnacked(cmd: Redis, tag: string, e: Envelope | string, exchange: string, routingKey: string): Promise<void> {
  await cmd.multi().hset(UNACKED, tag, JSON.stringify([e, exchange, routingKey])).zadd(UNACKED_INDEX, nowS(), tag).exec();
}


/**
 * Acks made in the same turn of the event loop go out together: one MULTI with one ZREM and one HDEL of
 * every tag (one write and one round trip instead of one per message). Each ack resolves when its batch ran.
 */
export class AckBatch {
  private tags: string[] = [];
  private waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];

  constructor(private readonly cmd: Redis) {}

  ack(tag: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.tags.push(tag);
      this.waiters.push({ resolve, reject });
      if (this.tags.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const { tags, waiters } = this;
    this.tags = [];
    this.waiters = [];
    this.cmd.multi().zrem(UNACKED_INDEX, ...tags).hdel(UNACKED, ...tags).exec().then(
      () => waiters.forEach((w) => w.resolve()),
      (err: unknown) => waiters.forEach((w) => w.reject(err)),
    );
  }
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
    markRestored(e);
    restored = JSON.stringify(e);
    targets = queues.map((q) => listKey(q, e.properties?.priority));
  } else {
    // A list item that was not an envelope: back as it came.
    restored = typeof m === 'string' ? m : JSON.stringify(m);
    targets = queues;
  }
  const n = await RESTORE.run(cmd, [UNACKED, UNACKED_INDEX, ...targets], [tag, payload, restored, leftmost ? '1' : '0']);
  return n === 1;
}

/**
 * The visibility sweep: under the `unacked_mutex` lock (SET NX PX: the visibility timeout, 5 s to 300 s), restores up to `limit` entries handed
 * out more than `visibilityMs` ago, to the head of their lists, marked redelivered. Resolves to how many it
 * restored; 0 when another process holds the lock.
 */
export async function sweepUnacked(cmd: Redis, visibilityMs: number, limit = 1000): Promise<number> {
  const token = randomBytes(8).toString('hex');
  const expireMs = Math.min(UNACKED_MUTEX_EXPIRE_MS, Math.max(5_000, visibilityMs));
  const got = await cmd.set(UNACKED_MUTEX, token, 'PX', expireMs, 'NX');
  if (got !== 'OK') return 0;
  try {
    const ceil = nowS() - visibilityMs / 1000;
    const tags = await cmd.zrangebyscore(UNACKED_INDEX, '-inf', ceil, 'LIMIT', 0, limit);
    let n = 0;
    for (const tag of tags) if (await restoreByTag(cmd, tag, false)) n++;
    return n;
  } finally {
    await deleteIfHolds(cmd, UNACKED_MUTEX, token).catch(() => undefined); // only if this sweep still holds it
  }
}
