// Lua scripts on Redis by their SHA1 (EVALSHA), loaded with EVAL the first time a server does not know one.

import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A Lua script and its SHA1, computed once. */
export class LuaScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** EVALSHA; on NOSCRIPT (a new or flushed server) EVAL, which also caches the script there. */
  async run(cmd: Redis, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await cmd.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!/NOSCRIPT/.test((err as Error).message ?? '')) throw err;
      return cmd.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

/** Lua: the server's clock in epoch ms (so the clocks of the machines calling do not matter). */
export const SERVER_NOW_MS = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/** KEYS[1]: a lock or lease key. ARGV[1]: its holder's value. Deletes the key only while it still holds that value. */
const DELETE_IF_HOLDS = new LuaScript("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0");

/** Releases a lock or lease by its holder: deletes `key` only while it holds `value` (one atomic compare). True when deleted. */
export async function deleteIfHolds(cmd: Redis, key: string, value: string): Promise<boolean> {
  return Number(await DELETE_IF_HOLDS.run(cmd, [key], [value])) === 1;
}
