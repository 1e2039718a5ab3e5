// Options → resolved config: defaults < config file < env ASYNX_* < explicit overrides; durations in ms.

import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from './errors.js';

/** App options. Every field is optional; see {@link resolveConfig} for defaults. */
export interface AsynxOptions {
  /** Broker URL. @defaultValue `sqlite://./.asynx/asynx.db` */
  brokerUrl?: string;
  /** Result backend URL (`sqlite://…`, `rpc://`, or `none`). @defaultValue the broker's SQLite file, or `rpc://` on AMQP */
  resultBackend?: string;
  /** Queue for tasks that name none. @defaultValue `celery` (Celery's default, for interop) */
  defaultQueue?: string;
  /** How long stored results are kept, seconds. @defaultValue 86400 */
  resultExpires?: number;
  /** Publish timeout: a publish that the broker has not accepted by then fails. ms or `'5s'`. @defaultValue 5000 */
  publishTimeout?: number | string;
  /** Connect timeout for the broker. @defaultValue 5000 */
  connectTimeout?: number | string;
  /** Run tasks in-process, synchronously with the call (for unit tests). @defaultValue false */
  eager?: boolean;
  /** Lease on a claimed SQLite message before it returns to its queue if not renewed. @defaultValue 30000 */
  visibilityTimeout?: number | string;
  /** Prefetch window per pool slot. @defaultValue 4 */
  prefetchMultiplier?: number;
  /** Default acks-late for all tasks. @defaultValue false */
  acksLate?: boolean;
  /** Body size kept by the HTTP dispatch task, bytes. @defaultValue 65536 */
  httpMaxBodyBytes?: number;
  /** When set, the HTTP dispatch task refuses hosts not in this list. @defaultValue unset (any host) */
  httpAllowedHosts?: string[];
  /** Deliveries after which a message that keeps killing its worker is dead-lettered. @defaultValue 5 */
  maxDeliveries?: number;
  /**
   * AMQP: declare task queues with `x-max-priority` so priorities work. Every client and worker
   * (Python ones included: `task_queue_max_priority`) must use the same value. @defaultValue unset
   */
  maxPriority?: number;
}

/** Every option filled in, durations in ms. */
export interface ResolvedConfig {
  brokerUrl: string;
  resultBackend: string;
  defaultQueue: string;
  resultExpiresMs: number;
  publishTimeoutMs: number;
  connectTimeoutMs: number;
  eager: boolean;
  visibilityTimeoutMs: number;
  prefetchMultiplier: number;
  acksLate: boolean;
  httpMaxBodyBytes: number;
  httpAllowedHosts: string[] | null;
  maxDeliveries: number;
  maxPriority: number | null;
}

export const DEFAULT_SQLITE_URL = 'sqlite://./.asynx/asynx.db';

/** `30`, `'30'` → 30 000 ms when unit is s; `'250ms'`, `'5s'`, `'2m'`, `'1h'` → ms. */
export function parseDuration(value: number | string, option: string, unit: 's' | 'ms' = 'ms'): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new UsageError('asynx.config.badDuration', `Option ${option} must be a non-negative duration, got ${value}`, { option, value });
    return unit === 's' ? value * 1000 : value;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(value);
  if (!m) throw new UsageError('asynx.config.badDuration', `Option ${option}: '${value}' is not a duration (use e.g. 500ms, 30s, 5m)`, { option, value });
  const n = Number(m[1]);
  const u = m[2] ?? unit;
  const mult = u === 'ms' ? 1 : u === 's' ? 1000 : u === 'm' ? 60_000 : 3_600_000;
  return n * mult;
}

/** How each option is written as text (env vars, `asynx worker -- key=value`): the one settings table. */
export const OPTION_KINDS = {
  brokerUrl: 'string',
  resultBackend: 'string',
  defaultQueue: 'string',
  resultExpires: 'duration',
  publishTimeout: 'duration',
  connectTimeout: 'duration',
  eager: 'boolean',
  visibilityTimeout: 'duration',
  prefetchMultiplier: 'number',
  acksLate: 'boolean',
  httpMaxBodyBytes: 'number',
  httpAllowedHosts: 'list',
  maxDeliveries: 'number',
  maxPriority: 'number',
} as const satisfies Record<keyof AsynxOptions, 'string' | 'number' | 'boolean' | 'duration' | 'list'>;

/** An option name from `camelCase` or `snake_case` text, or null when asynx has no such option. */
export function optionKey(name: string): keyof AsynxOptions | null {
  const camel = name.trim().replace(/[_-]([a-z])/g, (_, c: string) => c.toUpperCase());
  return Object.hasOwn(OPTION_KINDS, camel) ? (camel as keyof AsynxOptions) : null;
}

/** Converts the text form of option `key` to its value; `source` names where it came from in errors. */
export function optionFromText(key: keyof AsynxOptions, raw: string, source: string): unknown {
  const kind = OPTION_KINDS[key];
  if (kind === 'boolean') {
    const v = raw.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    throw new UsageError('asynx.config.badBoolean', `${source}='${raw}' must be true or false`, { option: source, value: raw });
  }
  if (kind === 'list') return raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (kind === 'number') {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw new UsageError('asynx.config.badNumber', `${source}='${raw}' must be a number`, { option: source, value: raw });
    return n;
  }
  return raw; // strings, and durations (kept as text: resolveConfig applies the duration rule)
}

/**
 * Options from `key=value` pairs, as given after `--` to `asynx worker` (`prefetchMultiplier=2`,
 * `acks_late=true`). An unknown key or a pair without `=` is a UsageError that names it.
 */
export function optionsFromPairs(pairs: string[]): AsynxOptions {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError('asynx.cli.badOverride', `Config override '${pair}' is not key=value: write e.g. -- prefetchMultiplier=2`, { value: pair });
    const name = pair.slice(0, eq);
    const key = optionKey(name);
    if (!key) throw new UsageError('asynx.cli.unknownOverride', `Unknown config key '${name}' after --: asynx options are ${Object.keys(OPTION_KINDS).join(', ')}`, { option: name, value: pair });
    out[key] = optionFromText(key, pair.slice(eq + 1), name);
  }
  return out as AsynxOptions;
}

const ENV_KEYS: Record<string, keyof AsynxOptions> = {
  ASYNX_BROKER_URL: 'brokerUrl',
  ASYNX_RESULT_BACKEND: 'resultBackend',
  ASYNX_DEFAULT_QUEUE: 'defaultQueue',
  ASYNX_RESULT_EXPIRES: 'resultExpires',
  ASYNX_PUBLISH_TIMEOUT: 'publishTimeout',
  ASYNX_CONNECT_TIMEOUT: 'connectTimeout',
  ASYNX_EAGER: 'eager',
  ASYNX_VISIBILITY_TIMEOUT: 'visibilityTimeout',
  ASYNX_PREFETCH_MULTIPLIER: 'prefetchMultiplier',
  ASYNX_ACKS_LATE: 'acksLate',
  ASYNX_HTTP_MAX_BODY_BYTES: 'httpMaxBodyBytes',
  ASYNX_HTTP_ALLOWED_HOSTS: 'httpAllowedHosts',
  ASYNX_MAX_DELIVERIES: 'maxDeliveries',
  ASYNX_MAX_PRIORITY: 'maxPriority',
};

/** Options read from `ASYNX_*` environment variables. */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): AsynxOptions {
  const out: Record<string, unknown> = {};
  for (const [key, opt] of Object.entries(ENV_KEYS)) {
    const raw = env[key];
    if (raw === undefined || raw === '') continue;
    if (opt === 'eager' || opt === 'acksLate') out[opt] = raw === '1' || raw.toLowerCase() === 'true';
    else if (opt === 'httpAllowedHosts') out[opt] = raw.split(',').map((s) => s.trim()).filter(Boolean);
    else if (opt === 'resultExpires' || opt === 'prefetchMultiplier' || opt === 'httpMaxBodyBytes' || opt === 'maxDeliveries' || opt === 'maxPriority') {
      const n = Number(raw);
      if (!Number.isFinite(n)) throw new UsageError('asynx.config.badEnv', `Environment variable ${key}='${raw}' must be a number`, { option: key, value: raw });
      out[opt] = n;
    } else out[opt] = raw;
  }
  return out as AsynxOptions;
}

const CONFIG_NAMES = ['asynx.config.mjs', 'asynx.config.js', 'asynx.config.json'];

/** Finds the config file: an explicit path, else `asynx.config.{mjs,js,json}` in `cwd`. */
export function findConfigFile(cwd: string, explicit?: string): string | null {
  if (explicit) {
    const p = resolve(cwd, explicit);
    if (!existsSync(p)) throw new UsageError('asynx.config.notFound', `Config file ${p} does not exist: fix --config or ASYNX_CONFIG`, { path: p });
    return p;
  }
  for (const name of CONFIG_NAMES) {
    const p = resolve(cwd, name);
    if (existsSync(p)) return p;
  }
  return null;
}

/** Loads a config file (JSON, or an ES module whose default export is the options). */
export async function loadConfigFile(path: string): Promise<AsynxOptions> {
  try {
    if (path.endsWith('.json')) return JSON.parse(readFileSync(path, 'utf8')) as AsynxOptions;
    const mod = (await import(pathToFileURL(path).href)) as { default?: AsynxOptions };
    return mod.default ?? {};
  } catch (err) {
    throw new UsageError('asynx.config.unreadable', `Cannot load config file ${path}: ${(err as Error).message}`, { path });
  }
}

/** A copy of `o` without its undefined fields, so that merging it never blanks an earlier source. */
export function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Merges the sources in order (later wins) and validates. */
export function resolveConfig(...sources: AsynxOptions[]): ResolvedConfig {
  const o: AsynxOptions = Object.assign({}, ...sources.map(stripUndefined));
  const brokerUrl = o.brokerUrl ?? DEFAULT_SQLITE_URL;
  if (!/^(sqlite|amqps?):\/\//.test(brokerUrl)) {
    throw new UsageError('asynx.config.badBroker', `Broker URL '${brokerUrl}' is not supported: use sqlite://<path> or amqp://user:pass@host:port/vhost`, { option: 'brokerUrl', value: brokerUrl });
  }
  const defaultBackend = brokerUrl.startsWith('sqlite://') ? brokerUrl : 'rpc://';
  const resultBackend = o.resultBackend ?? defaultBackend;
  if (!/^(sqlite:\/\/|rpc:\/\/|none$)/.test(resultBackend)) {
    throw new UsageError('asynx.config.badBackend', `Result backend '${resultBackend}' is not supported: use sqlite://<path>, rpc:// or none`, { option: 'resultBackend', value: resultBackend });
  }
  const num = (v: unknown, name: string, dflt: number, min = 0): number => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new UsageError('asynx.config.badNumber', `Option ${name} must be a number ≥ ${min}, got ${String(v)}`, { option: name, value: v });
    return v;
  };
  return {
    brokerUrl,
    resultBackend,
    defaultQueue: o.defaultQueue ?? 'celery',
    resultExpiresMs: num(o.resultExpires, 'resultExpires', 86400) * 1000,
    publishTimeoutMs: parseDuration(o.publishTimeout ?? 5000, 'publishTimeout'),
    connectTimeoutMs: parseDuration(o.connectTimeout ?? 5000, 'connectTimeout'),
    eager: o.eager ?? false,
    visibilityTimeoutMs: parseDuration(o.visibilityTimeout ?? 30000, 'visibilityTimeout'),
    prefetchMultiplier: num(o.prefetchMultiplier, 'prefetchMultiplier', 4, 1),
    acksLate: o.acksLate ?? false,
    httpMaxBodyBytes: num(o.httpMaxBodyBytes, 'httpMaxBodyBytes', 65536, 1),
    httpAllowedHosts: o.httpAllowedHosts && o.httpAllowedHosts.length ? o.httpAllowedHosts : null,
    maxDeliveries: num(o.maxDeliveries, 'maxDeliveries', 5, 1),
    maxPriority: o.maxPriority === undefined ? null : num(o.maxPriority, 'maxPriority', 0, 1),
  };
}

/** Path of the SQLite file named by a `sqlite://` URL (relative paths from `cwd`). */
export function sqlitePath(url: string, cwd = process.cwd()): string {
  const rest = url.replace(/^sqlite:\/\//, '');
  if (rest === '' ) throw new UsageError('asynx.config.badBroker', `SQLite URL '${url}' has no path: use sqlite://./.asynx/asynx.db or sqlite:///abs/path.db`, { value: url });
  return resolve(cwd, rest);
}
