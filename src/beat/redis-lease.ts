// Leader election on a Redis broker: the key `asynx.beat.leader` holds the leader's name with a PX expiry.
//
// Every `renewMs` each scheduler runs one Lua script: SET NX PX takes a free key; else, only while the key
// names this scheduler, PEXPIRE renews it. The holder deletes it with the same compare when it stops, so
// no scheduler ever renews or releases a lease another one holds. The expiry runs on Redis's clock, the
// holder's view of it on a monotonic clock counted from before each call, so the holder's ends first: a
// leader killed -9 is replaced once the key expires (`ttlMs`) and a follower's next try comes (`renewMs`),
// whatever the hosts' wall clocks say.

import type { Redis } from 'ioredis';
import { boundedRedis, closeRedis, connectRedis } from '../transports/redis-pubsub.js';
import { deleteIfHolds } from '../transports/redis-script.js';
import { RenewedLease, type SqliteLeaseOptions } from './leader.js';

/** The key holding the leading scheduler's name. */
export const REDIS_LEADER_KEY = 'asynx.beat.leader';

/** Take the key when free (SET NX PX), else renew it (PEXPIRE) only while it names ARGV[1]; 1 when ARGV[1] holds it. */
const TAKE = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0`;

/** Options of {@link RedisLease}. */
export interface RedisLeaseOptions extends SqliteLeaseOptions {
  /** Bound on connecting, ms. */
  connectTimeoutMs: number;
}

/**
 * The renewed lease of a Redis broker (see the file header); the URL's db holds the key. The clock
 * defaults to a monotonic one (`performance.now()`): only durations are compared with Redis's expiry.
 */
export class RedisLease extends RenewedLease {
  private conn: Redis | null = null;
  private readonly connectTimeoutMs: number;

  constructor(readonly url: string, opts: RedisLeaseOptions) {
    super({ ...opts, now: opts.now ?? (() => performance.now()) });
    this.connectTimeoutMs = opts.connectTimeoutMs;
  }

  protected async open(): Promise<void> {
    this.conn = await connectRedis(this.url, 'asynx-beat-leader', { connectTimeoutMs: this.connectTimeoutMs });
  }

  protected async take(): Promise<boolean> {
    // One bounded try per renewal: a call that hangs (Redis away) must not outlive the lease it would renew.
    const ms = Math.max(100, Math.min(this.renewMs, this.ttlMs / 2));
    return Number(await boundedRedis(this.url, this.conn!.eval(TAKE, 1, REDIS_LEADER_KEY, this.holder, Math.round(this.ttlMs)), ms, 'renew the beat lease')) === 1;
  }

  protected async release(): Promise<void> {
    if (this.conn) await boundedRedis(this.url, deleteIfHolds(this.conn, REDIS_LEADER_KEY, this.holder), 1_000, 'release the beat lease');
  }

  protected async shut(): Promise<void> {
    const conn = this.conn;
    this.conn = null;
    if (conn) await closeRedis(conn);
  }
}
