// Global rate limits on Redis: one token bucket of capacity 1 per key, shared by every process on the server.

import type { Redis } from 'ioredis';
import { RATE_KEY_PREFIX } from './redis-keys.js';
import { LuaScript, SERVER_NOW_MS } from './redis-script.js';

/**
 * Takes the token when the bucket's next start is due (stores next = now + interval, expiring then) and
 * returns 0, else the ms until it is due. Server time: every node sees one clock.
 */
const TAKE_TOKEN = new LuaScript(`${SERVER_NOW_MS}
local now = now_ms()
local nextAt = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if nextAt <= now then
  local iv = tonumber(ARGV[1])
  redis.call('SET', KEYS[1], string.format('%.0f', now + iv), 'PX', iv)
  return 0
end
return math.max(1, nextAt - now)`);

/** The key of a global rate limit's bucket. */
export function rateKey(key: string): string {
  return RATE_KEY_PREFIX + key;
}

/** Same contract as the SQLite bucket: 0 when a start may happen now (the token is taken), else ms to wait. */
export async function takeToken(cmd: Redis, key: string, intervalMs: number): Promise<number> {
  const iv = Math.max(1, Math.round(intervalMs));
  return Number(await TAKE_TOKEN.run(cmd, [rateKey(key)], [iv]));
}
