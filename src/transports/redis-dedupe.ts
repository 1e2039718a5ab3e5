// Dedupe keys on Redis: claim-and-publish in one script, holds under a lease the worker renews, release unless a message still waits.

import type { Redis } from 'ioredis';
import { DEDUPE_HEADER } from '../protocol/message.js';
import type { Envelope } from './redis-envelope.js';
import { DEDUPE_KEY_PREFIX, DELAYED_INDEX, DELAYED_KEY_PREFIX, delayedKey, SEP, UNACKED } from './redis-keys.js';
import { LuaScript, SERVER_NOW_MS } from './redis-script.js';

/**
 * Lua shared by the scripts. A key is a hash: `task` (its holder), `owner` and `lease` (epoch ms, server time;
 * 0 = not held by a worker), and where the task's last message went: `list`, `raw` (the item as pushed), `tag`
 * (its delivery tag, the field of `unacked` once handed out), `queue`.
 *
 * waiting(): does a message of the holder task still exist, ready, delayed or handed out (a retry, a
 * hand-back, a late ack)? The copy last pushed is looked up (ZSCORE, LPOS while it may still be in its list or
 * zset, HEXISTS in `unacked` once a worker took it: no Lua loop). With `scan` (before a new send claims the
 * key), when that copy is gone, the queue's lists, delayed zsets and `unacked` are scanned for the task id
 * too, one pass over them: a copy put back by a restore carries a redelivered mark, so it is not the same item.
 * The scan reads at most 10,000 items at each end of a list, 10,000 of a zset and of `unacked`: past that, a copy it did not reach
 * counts as gone (the new send goes out, so the task may run twice), rather than stalling Redis.
 */
const COMMON = `${SERVER_NOW_MS}
local UNACKED, DELAYED, SEP = ARGV[1], ARGV[2], ARGV[3]
local SCAN_MAX = 10000
local function record(key)
  local v = redis.call('HMGET', key, 'task', 'owner', 'lease', 'list', 'raw', 'tag', 'queue')
  if not v[1] then return nil end
  return { task = v[1], owner = v[2] or '', lease = tonumber(v[3]) or 0, list = v[4] or '', raw = v[5] or '', tag = v[6] or '', queue = v[7] or '' }
end
local function is_of(item, id)
  if not string.find(item, id, 1, true) then return false end
  local ok, e = pcall(cjson.decode, item)
  if not ok or type(e) ~= 'table' then return false end
  if e[1] ~= nil then e = e[1] end
  return type(e) == 'table' and type(e.headers) == 'table' and e.headers.id == id
end
local function waiting(r, scan)
  if r.tag ~= '' and redis.call('HEXISTS', UNACKED, r.tag) == 1 then return true end
  if r.raw ~= '' and r.list ~= '' then
    if redis.call('ZSCORE', DELAYED .. r.list, r.raw) then return true end
    if type(redis.pcall('LPOS', r.list, r.raw)) == 'number' then return true end
  end
  if not scan then return false end
  -- Bounded: a restored copy goes to one end of its list (the consuming end for a sweep, the far end for a
  -- requeue), so SCAN_MAX items at each end are searched; a deeper list, zset or unacked hash is not read
  -- whole inside a script (Redis would stall).
  if r.queue ~= '' then
    for _, step in ipairs({'', SEP .. '3', SEP .. '6', SEP .. '9'}) do
      local l = r.queue .. step
      local n = redis.call('LLEN', l)
      local ranges = n <= 2 * SCAN_MAX and {{0, -1}} or {{0, SCAN_MAX - 1}, {-SCAN_MAX, -1}}
      for _, range in ipairs(ranges) do
        for _, m in ipairs(redis.call('LRANGE', l, range[1], range[2])) do if is_of(m, r.task) then return true end end
      end
      for _, m in ipairs(redis.call('ZRANGE', DELAYED .. l, 0, SCAN_MAX - 1)) do if is_of(m, r.task) then return true end end
    end
  end
  if redis.call('HLEN', UNACKED) <= SCAN_MAX then
    for _, m in ipairs(redis.call('HVALS', UNACKED)) do if is_of(m, r.task) then return true end end
  end
  return false
end
local function push(list, zset, index, raw, due)
  if due ~= '' then
    redis.call('ZADD', zset, due, raw)
    redis.call('SADD', index, list)
  else
    redis.call('LPUSH', list, raw)
  end
end
`;

/** KEYS: dedupe key, list, its delayed zset, the delayed index. ARGV 4..8: task, raw, tag, queue, due ms or ''. */
const PUBLISH_UNIQUE = new LuaScript(`${COMMON}
local now = now_ms()
local r = record(KEYS[1])
if r and (r.lease > now or waiting(r, true)) then return r.task end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'task', ARGV[4], 'owner', '', 'lease', 0, 'list', KEYS[2], 'raw', ARGV[5], 'tag', ARGV[6], 'queue', ARGV[7])
push(KEYS[2], KEYS[3], KEYS[4], ARGV[5], ARGV[8])
return false`);

/** A further message of the holder (a retry, a hand-back): pushed, and the key now points at it. Same KEYS and ARGV. */
const PUBLISH_TRACKED = new LuaScript(`${COMMON}
if redis.call('HGET', KEYS[1], 'task') == ARGV[4] then
  redis.call('HSET', KEYS[1], 'list', KEYS[2], 'raw', ARGV[5], 'tag', ARGV[6], 'queue', ARGV[7])
end
push(KEYS[2], KEYS[3], KEYS[4], ARGV[5], ARGV[8])
return 1`);

/**
 * KEYS: dedupe keys. ARGV 4..: owner, lease ms, '1' to renew (only keys this owner holds) or '0' to take
 * them, then one task per key. Sets the lease of each key held by its task; returns 1 per key done, else 0.
 */
const HOLD = new LuaScript(`${COMMON}
local until_ms = string.format('%.0f', now_ms() + tonumber(ARGV[5]))
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'task', 'owner')
  if v[1] == ARGV[6 + i] and (ARGV[6] ~= '1' or v[2] == ARGV[4]) then
    redis.call('HSET', key, 'owner', ARGV[4], 'lease', until_ms)
    -- Taken: the copy pushed left its list for \`unacked\` (found there by its tag), so no LPOS over the list.
    if ARGV[6] ~= '1' then redis.call('HSET', key, 'raw', '') end
    out[i] = 1
  else
    out[i] = 0
  end
end
return out`);

/**
 * KEYS: dedupe key. ARGV 4..5: task, '1' to act only when no worker holds it (after an ack). Deletes the key
 * unless the task's last copy still waits (then it is kept, not held). 2 = deleted, 1 = kept, 0 = not its key.
 */
const RELEASE = new LuaScript(`${COMMON}
local r = record(KEYS[1])
if not r or r.task ~= ARGV[4] then return 0 end
if ARGV[5] == '1' and r.lease > now_ms() then return 0 end
if waiting(r, false) then
  redis.call('HSET', KEYS[1], 'owner', '', 'lease', 0)
  return 1
end
redis.call('DEL', KEYS[1])
return 2`);

const CONSTANTS = [UNACKED, DELAYED_KEY_PREFIX, SEP];

/** The hash of a dedupe key. */
export function dedupeKey(key: string): string {
  return DEDUPE_KEY_PREFIX + key;
}

/** A message to push: its list, the item as pushed, its delivery tag, its queue, and its due time when delayed. */
export interface Push {
  list: string;
  raw: string;
  tag: string;
  queue: string;
  dueMs: number | null;
}

function pushArgs(key: string, taskId: string, p: Push): [string[], Array<string | number>] {
  return [
    [dedupeKey(key), p.list, delayedKey(p.list), DELAYED_INDEX],
    [...CONSTANTS, taskId, p.raw, p.tag, p.queue, p.dueMs === null ? '' : Math.floor(p.dueMs)],
  ];
}

/** Claims `key` for `taskId` and pushes its message, atomically; null when sent, else the id of the task holding the key. */
export async function publishUnique(cmd: Redis, key: string, taskId: string, p: Push): Promise<string | null> {
  const r = await PUBLISH_UNIQUE.run(cmd, ...pushArgs(key, taskId, p));
  return typeof r === 'string' ? r : null;
}

/** Pushes a further message of a deduped task; when it holds `key`, the key now follows this message. */
export async function publishTracked(cmd: Redis, key: string, taskId: string, p: Push): Promise<void> {
  await PUBLISH_TRACKED.run(cmd, ...pushArgs(key, taskId, p));
}

/**
 * Marks each key held by `owner` until the lease ends (`renew`: only keys it still owns). Resolves, per key,
 * to false when its task no longer holds it (or, renewing, another worker took it over).
 */
export async function holdKeys(cmd: Redis, owner: string, leaseMs: number, holds: Array<[key: string, taskId: string]>, renew = false): Promise<boolean[]> {
  if (!holds.length) return [];
  const r = (await HOLD.run(cmd, holds.map(([k]) => dedupeKey(k)), [...CONSTANTS, owner, Math.max(1, Math.round(leaseMs)), renew ? '1' : '0', ...holds.map(([, t]) => t)])) as number[];
  return r.map((n) => Number(n) === 1);
}

/** The task ended (or its message was acked, with `onlyIfIdle`): the key goes unless a message of the task still waits. */
export async function releaseKey(cmd: Redis, key: string, taskId: string, onlyIfIdle = false): Promise<void> {
  await RELEASE.run(cmd, [dedupeKey(key)], [...CONSTANTS, taskId, onlyIfIdle ? '1' : '0']);
}

/** The dedupe keys one process holds for the tasks its worker took, under leases it renews while it lives. */
export class DedupeHolds {
  /** key → task id. */
  private readonly holds = new Map<string, string>();

  constructor(
    private readonly cmd: Redis,
    private readonly owner: string,
    private readonly leaseMs: number,
  ) {}

  /** A worker here took the task holding `key`: held under a lease from now. */
  async hold(key: string, taskId: string): Promise<void> {
    const [held] = await holdKeys(this.cmd, this.owner, this.leaseMs, [[key, taskId]]);
    if (held) this.holds.set(key, taskId);
  }

  /** The task ended here: not renewed any more, and the key goes unless a message of the task still waits. */
  async release(key: string, taskId: string): Promise<void> {
    if (this.holds.get(key) === taskId) this.holds.delete(key);
    await releaseKey(this.cmd, key, taskId);
  }

  /** Extends the leases held here; forgets the keys another worker (or another task) holds now. */
  async renew(): Promise<void> {
    if (!this.holds.size) return;
    const holds = [...this.holds];
    const still = await holdKeys(this.cmd, this.owner, this.leaseMs, holds, true);
    holds.forEach(([k, t], i) => {
      if (!still[i] && this.holds.get(k) === t) this.holds.delete(k);
    });
  }

  /**
   * A message left Redis (acked, dead-lettered): if it was a deduped task's and no worker holds the key (it was
   * released while this message still waited unacked: acks late), the key goes unless another message of it waits.
   */
  settle(e: Envelope | null): void {
    const key = e?.headers[DEDUPE_HEADER];
    const id = e?.headers.id;
    if (typeof key !== 'string' || key === '' || typeof id !== 'string') return;
    void releaseKey(this.cmd, key, id, true).catch(() => undefined);
  }
}
