// Chord counters on Redis in Celery 5.2's layout (celery/backends/redis.py `set_chord_size`, `on_chord_part_return`).

import type { Redis } from 'ioredis';
import { AsynxError } from '../errors.js';
import type { ChordFiring, ChordPart, ChordStore } from './backend.js';
import { groupKey } from './redis-meta.js';

/**
 * One member's count, atomic (a Lua script runs alone on the server, as Celery's MULTI pipeline does).
 * KEYS: `.j` (sorted set of `[1, tid, state, result]` scored by group_index: Celery's default
 * `result_chord_ordered`), `.t` (Celery's INCR'd size difference, for tasks replaced into the chord), `.s`
 * (the header size, from `set_chord_size`), `.c` (asynx's: the task id that completed the count).
 * ARGV: member, group_index, task id, expiry ms (0: none).
 *
 * Beyond Celery: a member whose group_index is already in `.j` (a redelivery) is not added again, so it counts
 * once even when its re-run gave another result (Celery's ZADD dedupes only a byte-identical member). Of the
 * members that see the count complete, only the one that claims `.c` is told to fire; a redelivery of that
 * same member fires again until the body is marked sent (Celery then deletes the keys, and so does asynx).
 * A Python worker's member in the same chord is counted by Celery's own pipeline on the same keys.
 */
const PART_RETURN = `
local added = 0
if #redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], ARGV[2]) == 0 then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  added = 1
end
local count = redis.call('ZCARD', KEYS[1])
local diff = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local size = redis.call('GET', KEYS[3])
local ms = tonumber(ARGV[4])
if ms > 0 then
  redis.call('PEXPIRE', KEYS[1], ms)
  redis.call('PEXPIRE', KEYS[2], ms)
  redis.call('PEXPIRE', KEYS[3], ms)
end
if not size then return {0} end
if count < tonumber(size) + diff then return {0} end
local mine = false
if added == 1 and redis.call('SET', KEYS[4], ARGV[3], 'NX') then
  mine = true
  if ms > 0 then redis.call('PEXPIRE', KEYS[4], ms) end
elseif redis.call('GET', KEYS[4]) == ARGV[3] then
  mine = true
end
if not mine then return {0} end
return {1, redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')}
`;

type ChordRedis = Redis & {
  asynxChordPart(j: string, t: string, s: string, c: string, member: string, index: string, taskId: string, ms: string): Promise<[number, string[]?]>;
};

/** Bounds one backend operation (the backend's deadline and typed error). */
export type Bounded = <T>(what: string, fn: () => Promise<T>) => Promise<T>;

/** Registers the script on a connection (EVALSHA, loaded on first use). */
export function defineChordCommands(redis: Redis): void {
  redis.defineCommand('asynxChordPart', { numberOfKeys: 4, lua: PART_RETURN });
}

/** Decodes `.j`'s members (ZRANGE … WITHSCORES: member, score, …) into parts in group_index order. */
export function decodeChordParts(groupId: string, flat: readonly string[]): ChordPart[] {
  const parts: ChordPart[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const [, taskId, status, result] = JSON.parse(flat[i]!) as [number, string, string, unknown];
    parts.push({ groupId, groupIndex: Number(flat[i + 1]), taskId, status, result });
  }
  return parts;
}

/** Celery's `RedisBackend._set`: SET with the expiry (EX in seconds as Celery's SETEX; PX below a whole second; none when 0) and PUBLISH of the value on the key, in one MULTI. */
export async function setAndPublish(redis: Redis, key: string, value: string, expiresMs: number): Promise<void> {
  const m = redis.multi();
  if (expiresMs <= 0) m.set(key, value);
  else if (expiresMs % 1000 === 0) m.set(key, value, 'EX', expiresMs / 1000);
  else m.set(key, value, 'PX', expiresMs);
  m.publish(key, value);
  const replies = await m.exec();
  const failed = replies?.find(([err]) => err);
  if (failed) throw failed[0];
}

/** The chord store on one connection; `expiresMs` is result_expires (0: keys never expire). */
export function redisChordStore(conn: () => Promise<Redis>, run: Bounded, expiresMs: number): ChordStore {
  return {
    async create(groupId, size) {
      // Celery's `set_chord_size` is its `set`: SETEX plus PUBLISH on the key. The body is not stored: every
      // header member carries it (`embed.chord`), as in Celery.
      const key = groupKey(groupId, '.s');
      const redis = await conn();
      await run(`record chord ${groupId}`, () => setAndPublish(redis, key, String(size), expiresMs));
    },
    async partReturn(part): Promise<ChordFiring | null> {
      const g = part.groupId;
      const r = (await conn()) as ChordRedis;
      const member = JSON.stringify([1, part.taskId, part.status, part.result ?? null]);
      const [fire, flat] = await run(`count member ${part.taskId} of chord ${g}`, () =>
        r.asynxChordPart(groupKey(g, '.j'), groupKey(g, '.t'), groupKey(g, '.s'), groupKey(g, '.c'), member, String(part.groupIndex), part.taskId, String(expiresMs > 0 ? expiresMs : 0)),
      );
      if (fire !== 1) return null;
      if (!part.body) throw new AsynxError('asynx.chord.noBody', `Chord member ${part.taskId} of chord ${g} completed the chord but carries no body (embed.chord): it was not sent as a chord header member`, { facts: { taskId: part.taskId, groupId: g } });
      return { body: part.body, parts: decodeChordParts(g, flat ?? []) };
    },
    async markSent(groupId) {
      // Celery deletes the counters once the body is sent; a later redelivered member finds no `.s` and stops.
      const redis = await conn();
      await run(`clear chord ${groupId}`, () => redis.del(groupKey(groupId, '.j'), groupKey(groupId, '.t'), groupKey(groupId, '.s'), groupKey(groupId, '.c')));
    },
  };
}
