// Broker and result-backend URLs parsed once into a typed form; every other module branches on `kind`.

import { resolve } from 'node:path';
import { UsageError } from './errors.js';

/** A parsed broker URL. */
export type BrokerUrl =
  | { kind: 'sqlite'; url: string; /** Absolute path of the database file. */ path: string }
  | { kind: 'amqp'; url: string; secure: boolean }
  | { kind: 'redis'; url: string; secure: boolean; /** `redis+sentinel://` or kombu's `sentinel://`: the master is asked of the sentinels. */ sentinel: boolean };

/** A parsed result-backend URL. */
export type BackendUrl =
  | { kind: 'sqlite'; url: string; path: string }
  | { kind: 'rpc'; url: string }
  | { kind: 'redis'; url: string; secure: boolean; sentinel: boolean }
  | { kind: 'none'; url: 'none' };

/** `redis://`, `rediss://`, `redis+sentinel://` or kombu's `sentinel://`. */
const REDIS = /^(rediss?|redis\+sentinel|sentinel):\/\//i;

function redisUrl(url: string): { kind: 'redis'; url: string; secure: boolean; sentinel: boolean } {
  return { kind: 'redis', url, secure: /^rediss:/i.test(url), sentinel: /^(redis\+sentinel|sentinel):/i.test(url) };
}

/** Path of the SQLite file named by a `sqlite://` URL (relative paths from `cwd`). */
export function sqlitePath(url: string, cwd = process.cwd()): string {
  const rest = url.replace(/^sqlite:\/\//, '');
  if (rest === '') throw new UsageError('asynx.config.badBroker', `SQLite URL '${url}' has no path: use sqlite://./.asynx/asynx.db or sqlite:///abs/path.db`, { option: 'brokerUrl', value: url });
  return resolve(cwd, rest);
}

/**
 * Parses `sqlite://<path>`, `amqp[s]://user:pass@host:port/vhost`, `redis[s]://[:pass@]host:port/db` or a
 * sentinel URL (`redis+sentinel://host1:26379,host2:26379/db?master_name=…`, `sentinel://…;sentinel://…`).
 */
export function parseBrokerUrl(url: string, cwd = process.cwd()): BrokerUrl {
  if (url.startsWith('sqlite://')) return { kind: 'sqlite', url, path: sqlitePath(url, cwd) };
  if (/^amqps?:\/\//.test(url)) return { kind: 'amqp', url, secure: url.startsWith('amqps:') };
  if (REDIS.test(url)) return redisUrl(url);
  throw new UsageError('asynx.config.badBroker', `Broker URL '${url}' is not supported: use sqlite://<path>, amqp://user:pass@host:port/vhost, redis://host:port/db or redis+sentinel://host:26379/db?master_name=<name>`, { option: 'brokerUrl', value: url });
}

/** Parses `sqlite://<path>`, `rpc://`, `redis[s]://host:port/db`, a sentinel URL (as for the broker) or `none`. */
export function parseBackendUrl(url: string, cwd = process.cwd()): BackendUrl {
  if (url.startsWith('sqlite://')) return { kind: 'sqlite', url, path: sqlitePath(url, cwd) };
  if (url.startsWith('rpc://')) return { kind: 'rpc', url };
  if (REDIS.test(url)) return redisUrl(url);
  if (url === 'none') return { kind: 'none', url: 'none' };
  throw new UsageError('asynx.config.badBackend', `Result backend '${url}' is not supported: use sqlite://<path>, rpc://, redis://host:port/db or none`, { option: 'resultBackend', value: url });
}

/** Query options of a Redis broker URL that belong to the transport, not to a result backend on the same Redis. */
export const REDIS_TRANSPORT_OPTIONS = ['visibility_timeout', 'delayed_delivery'] as const;
