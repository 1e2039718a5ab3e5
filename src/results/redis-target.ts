// redis://, rediss:// and sentinel result-backend URLs → ioredis options (Celery's form: redis://[user:password@]host[:port][/db][?options]).

import { readFileSync } from 'node:fs';
import type { RedisOptions } from 'ioredis';
import { UsageError } from '../errors.js';
import { isSentinelUrl, parseSentinelUrl } from '../transports/redis-sentinel-url.js';
import { redact } from '../util/redact.js';

/** Query options Celery's Redis result backend takes for TLS (rediss://), the only ones asynx reads. */
const TLS_KEYS = ['ssl_cert_reqs', 'ssl_ca_certs', 'ssl_certfile', 'ssl_keyfile'] as const;

function badUrl(url: string, why: string): UsageError {
  return new UsageError(
    'asynx.config.badRedisBackend',
    `Result backend '${redact(url)}' ${why}: use redis://[:password@]host[:port][/db] (rediss://…?ssl_cert_reqs=required for TLS, redis+sentinel://host1:26379,host2:26379[/db]?master_name=<name> through Sentinel)`,
    { option: 'resultBackend', value: redact(url) },
  );
}

function readPem(url: string, key: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw badUrl(url, `has ${key}=${path}, which cannot be read (${(err as Error).message})`);
  }
}

/**
 * Parses a `redis://` / `rediss://` result-backend URL as Celery does: the path is the database number
 * (default 0), `rediss://` is TLS with `ssl_cert_reqs` (`required` by default here; `none` or `optional`
 * skip the certificate check, as `CERT_NONE` / `CERT_OPTIONAL` do in Celery) and `ssl_ca_certs`,
 * `ssl_certfile`, `ssl_keyfile` as PEM file paths. Any other query option is a UsageError. A sentinel URL
 * (`redis+sentinel://…?master_name=…`, or Celery's `sentinel://…;sentinel://…`) gives Sentinel options:
 * each connection asks the sentinels for the master.
 */
export function redisBackendOptions(url: string): RedisOptions {
  if (isSentinelUrl(url)) return parseSentinelUrl(url, 'resultBackend').options;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw badUrl(url, 'does not parse');
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw badUrl(url, 'is not a redis:// or rediss:// URL');
  const db = u.pathname.replace(/^\/+|\/+$/g, '');
  if (db !== '' && !/^\d+$/.test(db)) throw badUrl(url, `names database '${db}', which is not a number`);
  const host = u.hostname.replace(/^\[|\]$/g, '') || 'localhost';
  const options: RedisOptions = { host, port: u.port ? Number(u.port) : 6379, db: db === '' ? 0 : Number(db) };
  if (u.username) options.username = decodeURIComponent(u.username);
  if (u.password) options.password = decodeURIComponent(u.password);
  const tls = u.protocol === 'rediss:';
  for (const k of u.searchParams.keys()) {
    if (!(TLS_KEYS as readonly string[]).includes(k)) throw badUrl(url, `has option '${k}', which asynx does not know (known: ${TLS_KEYS.join(', ')})`);
    if (!tls) throw badUrl(url, `has TLS option '${k}' but the scheme is redis://, not rediss://`);
  }
  if (tls) {
    const q = (k: string) => u.searchParams.get(k) ?? undefined;
    const reqs = (q('ssl_cert_reqs') ?? 'required').toLowerCase().replace(/^cert_/, '');
    if (!['required', 'optional', 'none'].includes(reqs)) throw badUrl(url, `has ssl_cert_reqs=${q('ssl_cert_reqs')}, not required, optional or none`);
    const ca = q('ssl_ca_certs');
    const cert = q('ssl_certfile');
    const key = q('ssl_keyfile');
    options.tls = {
      servername: host,
      rejectUnauthorized: reqs === 'required',
      ...(ca ? { ca: readPem(url, 'ssl_ca_certs', ca) } : {}),
      ...(cert ? { cert: readPem(url, 'ssl_certfile', cert) } : {}),
      ...(key ? { key: readPem(url, 'ssl_keyfile', key) } : {}),
    };
  }
  return options;
}
