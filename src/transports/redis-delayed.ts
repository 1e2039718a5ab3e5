// asynx's delayed store on Redis: eta messages wait in a zset per list scored by due time, moved to their list when due.

import type { Redis } from 'ioredis';
import { DELAYED_INDEX, DELAYED_KEY_PREFIX, delayedKey, listKeys } from './redis-keys.js';
import { LuaScript } from './redis-script.js';
import { settlesWithin } from '../util/deadline.js';

/**
 * One atomic pass over every list with delayed messages: LPUSHes the due ones (earliest first, at most
 * ARGV[2] per list) onto the list and removes them from the zset, drops emptied lists from the index, and
 * returns `{moved, earliest remaining due time or ''}`.
 */
const MOVE_DUE = new LuaScript(`
local moved = 0
local nextDue = nil
for _, list in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local z = ARGV[3] .. list
  local due = redis.call('ZRANGEBYSCORE', z, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
  for _, m in ipairs(due) do
    redis.call('LPUSH', list, m)
    redis.call('ZREM', z, m)
    moved = moved + 1
  end
  local first = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
  if first[2] then
    local s = tonumber(first[2])
    if nextDue == nil or s < nextDue then nextDue = s end
  else
    redis.call('SREM', KEYS[1], list)
  end
end
if nextDue == nil then return {moved, ''} end
return {moved, string.format('%.0f', nextDue)}`);

/** Parks a message (its envelope JSON) for `list` until `dueMs` (epoch ms). */
export async function addDelayed(cmd: Redis, list: string, raw: string, dueMs: number): Promise<void> {
  await cmd.multi().zadd(delayedKey(list), dueMs, raw).sadd(DELAYED_INDEX, list).exec();
}

/** Moves every due message to its list. Resolves to how many moved and when the next one is due (epoch ms), if any. */
export async function moveDue(cmd: Redis, nowMs = Date.now(), perList = 500): Promise<{ moved: number; nextDueMs: number | null }> {
  const [moved, next] = (await MOVE_DUE.run(cmd, [DELAYED_INDEX], [Math.floor(nowMs), perList, DELAYED_KEY_PREFIX])) as [number, string];
  return { moved: Number(moved), nextDueMs: next === '' ? null : Number(next) };
}

/** Messages of a queue waiting in the delayed store (all priority steps). */
export async function countDelayed(cmd: Redis, queue: string): Promise<number> {
  const p = cmd.pipeline();
  for (const l of listKeys(queue)) p.zcard(delayedKey(l));
  const res = (await p.exec()) ?? [];
  return res.reduce((n, [err, v]) => n + (err ? 0 : Number(v)), 0);
}

/** Deletes a queue's delayed messages; resolves to how many there were. */
export async function purgeDelayed(cmd: Redis, queue: string): Promise<number> {
  const p = cmd.pipeline();
  for (const l of listKeys(queue)) p.zcard(delayedKey(l)).del(delayedKey(l));
  const res = (await p.exec()) ?? [];
  return res.reduce((n, [err, v], i) => n + (i % 2 === 0 && !err ? Number(v) : 0), 0);
}

/**
 * Keeps moving due messages while started: right when the earliest known one is due, and at least every
 * `pollMs` (other processes add messages this one does not know of). Errors (Redis away) are retried.
 */
export class DelayedMover {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private stopped = true;
  private pass: Promise<void> | null = null;

  constructor(
    private readonly cmd: Redis,
    private readonly pollMs: number,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  /** Starts (idempotent); a pass runs at once. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /** Runs a pass now (after a delayed publish with an early due time, say). */
  poke(dueMs: number): void {
    if (this.stopped) return;
    this.schedule(Math.max(0, dueMs - Date.now()));
  }

  private next = Infinity;

  private schedule(inMs: number): void {
    const at = Date.now() + inMs;
    if (this.timer && at >= this.next) return;
    if (this.timer) clearTimeout(this.timer);
    this.next = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.next = Infinity;
      void this.run();
    }, inMs);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    if (this.stopped || this.running) return;
    this.running = true;
    let wait = this.pollMs;
    this.pass = (async () => {
      try {
        const { nextDueMs } = await moveDue(this.cmd);
        if (nextDueMs !== null) wait = Math.min(wait, Math.max(0, nextDueMs - Date.now()));
      } catch (err) {
        this.onError(err);
      }
    })();
    await this.pass;
    this.running = false;
    if (!this.stopped) this.schedule(wait);
  }

  /**
   * Stops; resolves once a pass in progress ended, or after 1 s (with Redis away a pass waits in ioredis's
   * offline queue through its retries; the move is one script, so an abandoned pass moved all or nothing).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pass) await settlesWithin(this.pass, 1_000);
  }
}
