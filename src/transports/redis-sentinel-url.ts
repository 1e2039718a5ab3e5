// redis+sentinel:// and kombu's sentinel://…;sentinel://… URLs → ioredis Sentinel options (the master is asked of the sentinels).

import type { RedisOptions } from 'ioredis';
import { UsageError } from '../errors.js';
import { redact } from '../util/redact.js';

/** The port a sentinel listens on when the URL gives none (Redis's default for `--sentinel`). */
export const DEFAULT_SENTINEL_PORT = 26379;

/** `redis+sentinel://…` (asynx's form) or `sentinel://…` (kombu's and Celery's). */
export function isSentinelUrl(url: string): boolean {
  return /^(redis\+sentinel|sentinel):\/\//i.test(url);
}

/** What a sentinel URL names. */
export interface SentinelTarget {
  /** ioredis options: `sentinels`, `name`, `db`, the master's credentials, `sentinelPassword`, a reconnect on READONLY. */
  options: RedisOptions;
  /** The values of the caller's `extra` query options that the URL gives. */
  query: Map<string, string>;
  /** The sentinels, `host:port` each. */
  sentinels: Array<{ host: string; port: number }>;
}

/** A sentinel URL that does not parse, or has an option asynx does not know. */
export function badSentinelUrl(url: string, option: 'brokerUrl' | 'resultBackend', why: string): UsageError {
  return new UsageError(
    'asynx.config.badSentinelUrl',
    `Sentinel URL '${redact(url)}' ${why}: use redis+sentinel://[:password@]host1:26379,host2:26379[/db]?master_name=<name> or Celery's sentinel://[:password@]host1:26379;sentinel://host2:26379[/db]?master_name=<name>`,
    { option, value: redact(url) },
  );
}

/** A sentinel URL without `master_name`: what to add, and where Celery keeps the same setting. */
export function sentinelMasterMissing(url: string, option: 'brokerUrl' | 'resultBackend'): UsageError {
  return new UsageError(
    'asynx.config.sentinelMasterName',
    `Sentinel URL '${redact(url)}' names no master: add ?master_name=<name>, the name of the "sentinel monitor <name> <host> <port> <quorum>" line of your sentinels (Celery's broker_transport_options / result_backend_transport_options 'master_name'), e.g. redis+sentinel://host1:26379,host2:26379/0?master_name=mymaster`,
    { option, value: redact(url) },
  );
}

/** After a failover, a connection still on the old master (now a replica) gets READONLY: reconnect, via the sentinels, and resend. */
function reconnectOnReadonly(err: Error): boolean | 1 | 2 {
  return /^READONLY\b/.test(err.message) ? 2 : false;
}

/** One host of a sentinel list: `host`, `host:port`, `[v6]` or `[v6]:port`. */
function parseHost(text: string, bad: (why: string) => UsageError): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d+))?$/.exec(text);
  if (!m) throw bad(`has the sentinel address '${text}', which is not host[:port]`);
  const port = m[3] === undefined ? DEFAULT_SENTINEL_PORT : Number(m[3]);
  if (port < 1 || port > 65_535) throw bad(`has the sentinel port ${m[3]}, which is not 1–65535`);
  return { host: (m[1] ?? m[2])!, port };
}

/** The query options read here. */
const OWN = ['master_name', 'sentinel_password', 'sentinelPassword'];

const PART = /^(?:redis\+sentinel|sentinel):\/\/(?:([^@/?]*)@)?([^/?]*)(\/[^?]*)?(?:\?(.*))?$/i;

/**
 * Parses `redis+sentinel://[[user]:password@]host1[:port],host2[:port]/<db>?master_name=<name>` or kombu's
 * `sentinel://[:password@]host1:port;sentinel://host2:port/<db>?master_name=<name>` (its parts may each carry
 * the db, the credentials and the query; where two give one, they must agree). The password is the
 * master's (and its replicas'), as in kombu; `sentinel_password` (or `sentinelPassword`) is the sentinels'
 * own, for sentinels started with `requirepass`. `extra` names the other query options the caller reads
 * (the broker's `visibility_timeout`); any other is {@link badSentinelUrl}, and a missing `master_name` is
 * {@link sentinelMasterMissing}.
 */
export function parseSentinelUrl(url: string, option: 'brokerUrl' | 'resultBackend', extra: readonly string[] = []): SentinelTarget {
  const bad = (why: string) => badSentinelUrl(url, option, why);
  const sentinels: Array<{ host: string; port: number }> = [];
  const query = new Map<string, string>();
  let db: string | undefined;
  let auth: string | undefined;
  const agree = (what: string, was: string | undefined, now: string): string => {
    if (was !== undefined && was !== now) throw bad(`gives two different ${what} in its ;-separated parts`);
    return now;
  };
  for (const part of url.split(';')) {
    const m = PART.exec(part.trim());
    if (!m) throw bad(`has the part '${redact(part)}', which is not sentinel://host[:port][/db] or redis+sentinel://host[:port],…[/db]`);
    const [, userinfo, hosts, path, q] = m;
    if (userinfo !== undefined && userinfo !== '') auth = agree('credentials', auth, userinfo);
    for (const h of hosts!.split(',')) if (h !== '') sentinels.push(parseHost(h, bad));
    const d = (path ?? '').replace(/^\/+|\/+$/g, '');
    if (d !== '') {
      if (!/^\d+$/.test(d)) throw bad(`names database '${d}', which is not a number`);
      db = agree('database numbers', db, d);
    }
    for (const [k, v] of new URLSearchParams(q ?? '')) query.set(k, agree(`values of ${k}`, query.get(k), v));
  }
  if (!sentinels.length) throw bad('names no sentinel host');
  const name = query.get('master_name');
  if (!name) throw sentinelMasterMissing(url, option);
  const options: RedisOptions = {
    sentinels,
    name,
    role: 'master',
    db: db === undefined ? 0 : Number(db),
    reconnectOnError: reconnectOnReadonly,
  };
  if (auth !== undefined) {
    const colon = auth.indexOf(':');
    const user = decodeURIComponent(colon < 0 ? auth : auth.slice(0, colon));
    const password = colon < 0 ? '' : decodeURIComponent(auth.slice(colon + 1));
    if (user) options.username = user;
    if (password) options.password = password;
  }
  const sentinelPassword = query.get('sentinel_password') ?? query.get('sentinelPassword');
  if (sentinelPassword) options.sentinelPassword = sentinelPassword;
  for (const k of OWN) query.delete(k);
  for (const k of query.keys()) if (!extra.includes(k)) throw bad(`has option '${k}', which asynx does not know here (known: ${[...OWN, ...extra].join(', ')})`);
  return { options, query, sentinels };
}
