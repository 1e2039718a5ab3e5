// Last-run state on a Redis broker: the hash `asynx.beat.schedule` (entry → last due time, epoch ms), claimed by a Lua compare-and-set.
//
// Every scheduler on the Redis (any host) reads and claims the same hash, so a takeover starts from the
// runs the old leader made and needs no sync. A claim moves an entry forward only (HSET when the stored
// due time is older, in one script), so two schedulers that both think they lead still cannot claim one
// due time twice. The URL's db holds the key; a Redis that loses its data (no persistence, restarted)
// loses the state too, and each entry then starts from now.

import type { Redis } from 'ioredis';
import { boundedRedis, closeRedis, connectRedis } from '../transports/redis-pubsub.js';
import type { ScheduleStore } from './store.js';

/** The hash of every entry's last claimed due time. */
export const REDIS_SCHEDULE_KEY = 'asynx.beat.schedule';

/** HSET ARGV[1] = ARGV[2] only when the stored value is missing or older; 1 when it moved. */
const CLAIM = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and tonumber(cur) ~= nil and tonumber(cur) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`;

/** Options of {@link RedisScheduleStore}. */
export interface RedisScheduleStoreOptions {
  /** Bound on connecting, ms. */
  connectTimeoutMs: number;
  /** Bound on each read or claim, ms. */
  publishTimeoutMs: number;
}

/** State in the Redis of the broker (see the file header). */
export class RedisScheduleStore implements ScheduleStore {
  private conn: Promise<Redis> | null = null;
  private closed = false;

  constructor(readonly url: string, private readonly opts: RedisScheduleStoreOptions) {}

  /** The connection, opened on first use (a failed open is tried again on the next call). */
  private connection(): Promise<Redis> {
    this.conn ??= connectRedis(this.url, 'asynx-beat-state', { connectTimeoutMs: this.opts.connectTimeoutMs }).catch((err: unknown) => {
      this.conn = null;
      throw err;
    });
    return this.conn;
  }

  async lastDue(entry: string): Promise<number | null> {
    const conn = await this.connection();
    const v = await boundedRedis(this.url, conn.hget(REDIS_SCHEDULE_KEY, entry), this.opts.publishTimeoutMs, 'read the beat state');
    const n = v === null ? NaN : Number(v);
    return Number.isFinite(n) ? n : null;
  }

  async claim(entry: string, dueMs: number): Promise<boolean> {
    const conn = await this.connection();
    const moved = await boundedRedis(this.url, conn.eval(CLAIM, 1, REDIS_SCHEDULE_KEY, entry, String(Math.round(dueMs))), this.opts.publishTimeoutMs, 'record the beat state');
    return Number(moved) === 1;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const conn = await this.conn?.catch(() => null);
    if (conn) await closeRedis(conn);
  }
}
