// redis://, rediss:// and sentinel URLs → ioredis connections (kombu's URL form: redis://[user:password@]host[:port][/db][?options]).

import { Redis, type RedisOptions } from 'ioredis';
import { BrokerUnavailableError, UsageError } from '../errors.js';
import { withDeadline } from '../util/deadline.js';
import { REDIS_TRANSPORT_OPTIONS as TRANSPORT_QUERY_OPTIONS } from '../urls.js';
import { redact } from '../util/redact.js';
import { watchFailover } from './redis-failover.js';
import { isSentinelUrl, parseSentinelUrl } from './redis-sentinel-url.js';

/** What a broker URL says: where to connect, and the transport options in its query string. */
export interface RedisTarget {
  options: RedisOptions;
  /** `?visibility_timeout=<seconds>` (kombu's transport option of that name), ms; undefined when absent. */
  visibilityTimeoutMs?: number;
  /**
   * `?delayed_delivery=false`: countdown/eta messages are LPUSHed onto their list at once, as Celery's client
   * does, for queues that only Python workers consume (they hold such a message until its eta). By default
   * (true) they wait in asynx's delayed zset, which only asynx processes move.
   */
  delayedDelivery?: boolean;
}

const KNOWN = [...TRANSPORT_QUERY_OPTIONS, 'ssl_cert_reqs'];

function badUrl(url: string, why: string): UsageError {
  return new UsageError(
    'asynx.config.badRedisUrl',
    `Redis URL '${redact(url)}' ${why}: use redis://[:password@]host[:port][/db][?visibility_timeout=<seconds>] (rediss:// for TLS, redis+sentinel://host1:26379,host2:26379[/db]?master_name=<name> through Sentinel)`,
    { option: 'brokerUrl', value: redact(url) },
  );
}

function visibilityMs(url: string, v: string): number {
  const s = Number(v);
  if (!Number.isFinite(s) || s <= 0) throw badUrl(url, `has visibility_timeout=${v}, not a positive number of seconds`);
  return Math.round(s * 1000);
}

function flag(url: string, name: string, v: string): boolean {
  const t = v.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(t)) return true;
  if (['false', '0', 'no', 'off'].includes(t)) return false;
  throw badUrl(url, `has ${name}=${v}, not true or false`);
}

/** `redis+sentinel://…` / `sentinel://…;sentinel://…`: every connection asks the sentinels for the master. */
function parseSentinelTarget(url: string): RedisTarget {
  const { options, query } = parseSentinelUrl(url, 'brokerUrl', TRANSPORT_QUERY_OPTIONS);
  const target: RedisTarget = { options };
  const v = query.get('visibility_timeout');
  if (v !== undefined) target.visibilityTimeoutMs = visibilityMs(url, v);
  const d = query.get('delayed_delivery');
  if (d !== undefined) target.delayedDelivery = flag(url, 'delayed_delivery', d);
  return target;
}

/**
 * Parses a `redis://` / `rediss://` URL, or a sentinel one (`redis+sentinel://`, kombu's `sentinel://`); an
 * unknown query option or a bad value is a UsageError.
 */
export function parseRedisTarget(url: string): RedisTarget {
  if (isSentinelUrl(url)) return parseSentinelTarget(url);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw badUrl(url, 'does not parse');
  }
  const tls = u.protocol === 'rediss:';
  const db = u.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw badUrl(url, `names database '${db}', which is not a number`);
  const options: RedisOptions = {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    db: db === '' ? 0 : Number(db),
  };
  if (u.username) options.username = decodeURIComponent(u.username);
  if (u.password) options.password = decodeURIComponent(u.password);
  const target: RedisTarget = { options };
  for (const [k, v] of u.searchParams) {
    if (!KNOWN.includes(k)) throw badUrl(url, `has option '${k}', which asynx does not know (known: ${KNOWN.join(', ')})`);
    if (k === 'visibility_timeout') target.visibilityTimeoutMs = visibilityMs(url, v);
    if (k === 'delayed_delivery') target.delayedDelivery = flag(url, k, v);
  }
  if (tls) {
    const reqs = (u.searchParams.get('ssl_cert_reqs') ?? 'required').toLowerCase();
    options.tls = { servername: options.host!, rejectUnauthorized: !['none', 'cert_none'].includes(reqs) };
  }
  return target;
}

/**
 * A connection that reconnects by itself (ioredis, backoff capped at 2 s) and queues commands while it is
 * away; callers bound their waits. `blocking` connections never give up on a command (a BRPOP waits for the
 * reconnect and is sent again). On a sentinel target each (re)connect asks the sentinels for the master, so
 * after a failover the same supervision lands on the new one, at once when the sentinels announce it
 * (see watchFailover).
 */
export function openRedis(target: RedisTarget, name: string, opts: { connectTimeoutMs: number; blocking?: boolean }): Redis {
  const conn = new Redis({
    ...target.options,
    lazyConnect: true,
    connectionName: name,
    connectTimeout: opts.connectTimeoutMs,
    enableOfflineQueue: true,
    maxRetriesPerRequest: opts.blocking ? null : 20,
    retryStrategy: (times) => Math.min(100 * times, 2_000),
  });
  watchFailover(conn, target.options);
  return conn;
}

/** Lets go of a connection: QUIT when it is up, bounded by `ms`; then disconnect() (the drop of one that did not answer, or was not up). */
export async function closeRedis(conn: Redis, ms = 1_000): Promise<void> {
  if (conn.status === 'ready') await withDeadline(conn.quit(), ms, () => new BrokerUnavailableError(`Redis did not answer QUIT within ${ms} ms`)).catch(() => undefined);
  conn.disconnect();
}
