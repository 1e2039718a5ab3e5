// The Redis broker's node claim: a key per live worker name, SET NX with a lease the node renews, deleted at stop.

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { isAlive } from '../process/proc.js';
import { boundedRedis, closeRedis, connectRedis } from '../transports/redis-pubsub.js';
import { deleteIfHolds } from '../transports/redis-script.js';
import { settlesWithin } from '../util/deadline.js';
import { redact } from '../util/redact.js';
import { duplicateNodeError, type NodeClaimOptions } from './duplicate-node.js';

/** A held name: {@link RedisNodeClaim.close} stops the renewal and deletes the key if it is still ours. */
export interface RedisNodeClaim {
  close(): Promise<void>;
}

/** The key holding a node name's claim (asynx's, beside kombu's keys in the broker's database). */
export function nodeClaimKey(nodeName: string): string {
  return `_asynx.node.${nodeName}`;
}

/** What a claim key holds. */
interface ClaimValue {
  token: string;
  pid: number;
  hostname: string;
  startedAt: number;
}

/** KEYS: the claim. ARGV: the value we expect there, the value to write, lease ms. SET only while the key still holds ARGV[1]. */
const TAKE_OVER = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) and 1 end return 0";
/** KEYS: the claim. ARGV: our value, lease ms. Renews our lease; writes the claim again when the key is gone (a restarted or failed-over Redis lost it); 0 when another holds it. */
const RENEW = "local v = redis.call('GET', KEYS[1]) if v == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end return 0";

/** Names held by Worker instances of this process, per broker URL: the pid check cannot tell them apart. */
const heldHere = new Set<string>();

function parseValue(raw: string): ClaimValue | null {
  try {
    const v = JSON.parse(raw) as Partial<ClaimValue>;
    return typeof v.pid === 'number' && typeof v.hostname === 'string' ? (v as ClaimValue) : null;
  } catch {
    return null;
  }
}

/** Why the claim `raw` still holds the name, or null when its holder is gone (a dead pid on this host). */
function liveHolder(raw: string, key: string, heldKey: string, pttlMs: number): string | null {
  const v = parseValue(raw);
  if (!v) return `its claim ${key} holds '${raw.slice(0, 60)}'`;
  if (v.hostname === hostname() && (v.pid === process.pid ? !heldHere.has(heldKey) : !isAlive(v.pid))) return null;
  const lapses = pttlMs >= 0 ? `, lapsing in ${(pttlMs / 1000).toFixed(1)} s unless renewed` : '';
  return `pid ${v.pid} on ${v.hostname}, claim ${key}${lapses}`;
}

/**
 * Claims `nodeName` on the Redis at `url`: `SET _asynx.node.<name> <value> NX PX <lease>`, so of two nodes
 * claiming at once only one wins. Refuses (`asynx.worker.duplicateNode`) while another live node holds it;
 * a claim whose pid is gone on this host is taken over at once (one compare-and-set), one from another
 * host only once its lease lapsed. The lease (`staleMs`, 10 s) is renewed every `refreshMs` (2 s); a node
 * killed with SIGKILL leaves a claim that lapses by itself. close() deletes the key if it is still ours.
 */
export async function claimRedisNode(url: string, nodeName: string, opts: NodeClaimOptions & { connectTimeoutMs: number }): Promise<RedisNodeClaim> {
  const refreshMs = opts.refreshMs ?? 2_000;
  const leaseMs = opts.staleMs ?? 5 * refreshMs;
  const key = nodeClaimKey(nodeName);
  const heldKey = `${redact(url)}\0${nodeName}`;
  const value = JSON.stringify({ token: randomUUID(), pid: process.pid, hostname: hostname(), startedAt: Date.now() } satisfies ClaimValue);
  const conn: Redis = await connectRedis(url, `asynx-node-claim-${nodeName}`, { connectTimeoutMs: opts.connectTimeoutMs });
  const what = `claim the node name ${nodeName}`;
  try {
    // Bounded: each miss means the key changed hands or lapsed in between.
    for (let attempt = 0; ; attempt++) {
      if ((await boundedRedis(url, conn.set(key, value, 'PX', leaseMs, 'NX'), opts.connectTimeoutMs, what)) === 'OK') break;
      const [raw, pttl] = await boundedRedis(url, Promise.all([conn.get(key), conn.pttl(key)]), opts.connectTimeoutMs, what);
      if (raw === null) continue;
      const holder = liveHolder(raw, key, heldKey, pttl);
      if (holder) {
        const v = parseValue(raw);
        throw duplicateNodeError(nodeName, holder, { key, ...(v ? { pid: v.pid, hostname: v.hostname } : {}) });
      }
      if (Number(await boundedRedis(url, conn.eval(TAKE_OVER, 1, key, raw, value, leaseMs), opts.connectTimeoutMs, what)) === 1) break;
      if (attempt >= 3) throw duplicateNodeError(nodeName, `its claim ${key} changed hands ${attempt + 1} times while this node tried to take it`, { key });
    }
  } catch (err) {
    await closeRedis(conn);
    throw err;
  }
  heldHere.add(heldKey);
  const timer = setInterval(() => {
    // A failed renewal (Redis away) is tried again at the next tick, well within the lease.
    void conn.eval(RENEW, 1, key, value, leaseMs).catch(() => undefined);
  }, refreshMs);
  timer.unref();
  let closing: Promise<void> | null = null;
  return {
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        heldHere.delete(heldKey);
        await settlesWithin(deleteIfHolds(conn, key, value), 1_000); // only our own claim
        await closeRedis(conn);
      })();
      return closing;
    },
  };
}
