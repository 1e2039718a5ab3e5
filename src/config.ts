// Options → resolved config: defaults < config file < env ASYNX_* < explicit overrides; durations in ms.
// Durations follow src/util/duration.ts: a bare number is seconds, a string may carry a unit ('250ms').

import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from './errors.js';
import { parseBackendUrl, parseBrokerUrl, REDIS_TRANSPORT_OPTIONS } from './urls.js';
import { durationMs, type Duration } from './util/duration.js';

export { sqlitePath } from './urls.js';

/** App options. Every field is optional; see {@link resolveConfig} for defaults. */
export interface AsynxOptions {
  /** Broker URL. @defaultValue `sqlite://./.asynx/asynx.db` */
  brokerUrl?: string;
  /** Result backend URL (`sqlite://…`, `rpc://`, `redis://host:port/db`, or `none`). @defaultValue the broker's SQLite file, the broker's Redis on Redis, or `rpc://` on AMQP */
  resultBackend?: string;
  /** Queue for tasks that name none. @defaultValue `celery` (Celery's default, for interop) */
  defaultQueue?: string;
  /** How long stored results are kept (a {@link Duration}: seconds, or `'1d'`). @defaultValue 86400 (one day) */
  resultExpires?: Duration;
  /** Publish timeout: a publish that the broker has not accepted by then fails. @defaultValue 5 (seconds) */
  publishTimeout?: Duration;
  /** Connect timeout for the broker. @defaultValue 5 (seconds) */
  connectTimeout?: Duration;
  /** Run tasks in-process, synchronously with the call (for unit tests). @defaultValue false */
  eager?: boolean;
  /** Lease on a claimed SQLite message before it returns to its queue if not renewed. @defaultValue 30 (seconds) */
  visibilityTimeout?: Duration;
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
  /** Workers send `task-*` Celery events (Celery's `worker_send_task_events`; `asynx worker -E` turns it on too). @defaultValue false */
  workerSendTaskEvents?: boolean;
  /** Clients send a `task-sent` Celery event for each task they publish (Celery's `task_send_sent_event`). @defaultValue false */
  taskSendSentEvent?: boolean;
  /** SQLite broker: Celery events kept in the `events` table (older ones are deleted as new ones arrive). @defaultValue 10000 */
  eventsMaxCount?: number;
  /** SQLite broker: events older than this are deleted from the `events` table (a {@link Duration}). @defaultValue 3600 (one hour) */
  eventsMaxAge?: Duration;
  /**
   * Periodic entries, by name: `{ cleanup: { task: 'cleanup', schedule: { cron: '30 2 * * *', tz: 'Europe/Berlin' }, args: [7] } }`,
   * as `app.periodic()` takes them (checked when a scheduler starts). An entry here wins over the app's of the same name.
   * @defaultValue `{}`
   */
  periodic?: Record<string, PeriodicConfigInput>;
}

/** One entry of the config file's `periodic` section (see `app.periodic()`). */
export interface PeriodicConfigInput {
  task: string;
  schedule: { every: Duration } | { cron: string; tz?: string };
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  options?: Record<string, unknown>;
  catchUp?: 'none' | 'latest' | 'all';
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
  workerSendTaskEvents: boolean;
  taskSendSentEvent: boolean;
  eventsMaxCount: number;
  eventsMaxAgeMs: number;
  /** The `periodic` section as given (checked by the scheduler). */
  periodic: Record<string, PeriodicConfigInput>;
}

export const DEFAULT_SQLITE_URL = 'sqlite://./.asynx/asynx.db';

function badNumber(option: string, value: unknown, message: string): UsageError {
  return new UsageError('asynx.config.badNumber', message, { option, value });
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
  workerSendTaskEvents: 'boolean',
  taskSendSentEvent: 'boolean',
  eventsMaxCount: 'number',
  eventsMaxAge: 'duration',
  periodic: 'json',
} as const satisfies Record<keyof AsynxOptions, 'string' | 'number' | 'boolean' | 'duration' | 'list' | 'json'>;

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
  if (kind === 'json') {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      throw new UsageError('asynx.config.badJson', `${source} must be JSON, e.g. ${source}='{"tick":{"task":"tick","schedule":{"every":"30s"}}}', got '${raw}'`, { option: source, value: raw });
    }
  }
  if (kind === 'number') {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw badNumber(source, raw, `${source}='${raw}' must be a number`);
    return n;
  }
  if (kind === 'duration') durationMs(raw, source); // rejects 'abc' here, naming the variable or key
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
  ASYNX_WORKER_SEND_TASK_EVENTS: 'workerSendTaskEvents',
  ASYNX_TASK_SEND_SENT_EVENT: 'taskSendSentEvent',
  ASYNX_EVENTS_MAX_COUNT: 'eventsMaxCount',
  ASYNX_EVENTS_MAX_AGE: 'eventsMaxAge',
};

/** Options read from `ASYNX_*` environment variables (text read as {@link OPTION_KINDS} says). */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): AsynxOptions {
  const out: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    out[key] = optionFromText(key, raw, name);
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
  const broker = parseBrokerUrl(brokerUrl);
  // Redis: no result backend until one is configured (Celery's default too); rpc:// needs RabbitMQ.
  const resultBackend = o.resultBackend ?? (broker.kind === 'amqp' ? 'rpc://' : broker.kind === 'redis' ? resultsOnBrokerRedis(brokerUrl) : brokerUrl);
  parseBackendUrl(resultBackend);
  const num = (v: unknown, name: string, dflt: number, min = 0): number => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw badNumber(name, v, `Option ${name} must be a number ≥ ${min}, got ${String(v)}`);
    return v;
  };
  return {
    brokerUrl,
    resultBackend,
    defaultQueue: o.defaultQueue ?? 'celery',
    resultExpiresMs: durationMs(o.resultExpires ?? 86_400, 'resultExpires'),
    publishTimeoutMs: durationMs(o.publishTimeout ?? 5, 'publishTimeout'),
    connectTimeoutMs: durationMs(o.connectTimeout ?? 5, 'connectTimeout'),
    eager: o.eager ?? false,
    visibilityTimeoutMs: durationMs(o.visibilityTimeout ?? 30, 'visibilityTimeout'),
    prefetchMultiplier: num(o.prefetchMultiplier, 'prefetchMultiplier', 4, 1),
    acksLate: o.acksLate ?? false,
    httpMaxBodyBytes: num(o.httpMaxBodyBytes, 'httpMaxBodyBytes', 65536, 1),
    httpAllowedHosts: o.httpAllowedHosts && o.httpAllowedHosts.length ? o.httpAllowedHosts : null,
    maxDeliveries: num(o.maxDeliveries, 'maxDeliveries', 5, 1),
    maxPriority: o.maxPriority === undefined ? null : num(o.maxPriority, 'maxPriority', 0, 1),
    workerSendTaskEvents: o.workerSendTaskEvents ?? false,
    taskSendSentEvent: o.taskSendSentEvent ?? false,
    eventsMaxCount: num(o.eventsMaxCount, 'eventsMaxCount', 10_000, 1),
    eventsMaxAgeMs: durationMs(o.eventsMaxAge ?? 3_600, 'eventsMaxAge'),
    periodic: o.periodic ?? {},
  };
}

/** The broker's Redis as the result backend: the same server and database, less the transport's own query options. */
function resultsOnBrokerRedis(brokerUrl: string): string {
  // By text, part by part: kombu's `sentinel://h1;sentinel://h2` and `redis+sentinel://h1,h2` are no WHATWG URLs.
  return brokerUrl
    .split(';')
    .map((part) => {
      const q = part.indexOf('?');
      if (q < 0) return part;
      const params = new URLSearchParams(part.slice(q + 1));
      for (const k of REDIS_TRANSPORT_OPTIONS) params.delete(k);
      const rest = params.toString();
      return rest ? `${part.slice(0, q)}?${rest}` : part.slice(0, q);
    })
    .join(';');
}
