// The dashboard's options: what a user writes (DashboardOptions) resolved once into ResolvedDashboardOptions.

import type { Asynx } from '../app/app.js';
import { AsynxError, ExitCode, UsageError } from '../errors.js';
import { type Duration, durationMs } from '../util/duration.js';

/** Options of {@link dashboard}. Every field is optional. */
export interface DashboardOptions {
  /** The app whose broker to watch (its config: broker URL, default queue). @defaultValue a new `Asynx({ cwd })`, configured from `ASYNX_*` and the config file */
  app?: Asynx;
  /** Broker URL; overrides the app's. */
  brokerUrl?: string;
  /** Directory relative paths (a SQLite broker file) are resolved from. @defaultValue process.cwd() */
  cwd?: string;
  /** TCP port; 0 picks a free one. @defaultValue 5555 (Flower's) */
  port?: number;
  /** Address to listen on. Anything but loopback needs `auth`. @defaultValue '127.0.0.1' */
  address?: string;
  /**
   * Credentials every request must carry: `'user:password'` for HTTP basic auth, or `'Bearer <token>'` for a
   * bearer token (header `Authorization: Bearer <token>`, or open `/?token=<token>` once in a browser).
   * Keep it out of argv: the CLI reads `ASYNX_DASHBOARD_AUTH`. @defaultValue process.env.ASYNX_DASHBOARD_AUTH, else none
   */
  auth?: string | null;
  /** Hide and refuse every action (revoke, pool, shutdown, purge). @defaultValue false */
  readOnly?: boolean;
  /** Listen on `address:port`. false: only build the request handler, for mounting in a host app. @defaultValue true */
  listen?: boolean;
  /** How often to ask the nodes for `stats` and `active_queues` (and re-send `enable_events`). @defaultValue 5 (seconds) */
  inspectInterval?: Duration;
  /** How often to count the queues. @defaultValue 2 (seconds) */
  queueInterval?: Duration;
  /** Queues to count besides the app's default queue and those the nodes consume from. @defaultValue [] */
  queues?: string[];
  /** Tasks kept in memory, oldest dropped first. @defaultValue 10000 */
  maxTasks?: number;
  /** Broadcast `enable_events` every inspect interval, as Flower does, so nodes started without -E send task events. @defaultValue true */
  enableEvents?: boolean;
  /** Host header values accepted (DNS-rebinding guard). @defaultValue loopback names when listening on loopback, any otherwise */
  allowedHosts?: string[] | null;
}

/** Parsed credentials. */
export type DashboardAuth = { kind: 'basic'; user: string; password: string } | { kind: 'bearer'; token: string };

/** {@link DashboardOptions} with every field decided; durations in ms. */
export interface ResolvedDashboardOptions {
  port: number;
  address: string;
  auth: DashboardAuth | null;
  readOnly: boolean;
  listen: boolean;
  inspectIntervalMs: number;
  queueIntervalMs: number;
  queues: string[];
  maxTasks: number;
  enableEvents: boolean;
  allowedHosts: string[] | null;
}

/** The default port: Flower's, so an operator finds it where they look. */
export const DEFAULT_PORT = 5555;

/** True for 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopback(address: string): boolean {
  const a = address.replace(/^\[|\]$/g, '').toLowerCase();
  return a === 'localhost' || a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a) || a === '::ffff:127.0.0.1';
}

/** A non-loopback address without credentials. */
export function authRequired(address: string): UsageError {
  return new UsageError(
    'asynx.dashboard.authRequired',
    `the dashboard refuses to listen on ${address} without credentials: anyone who can reach it could revoke tasks and shut nodes down. Set ASYNX_DASHBOARD_AUTH='user:password' (basic auth) or ASYNX_DASHBOARD_AUTH='Bearer <token>' and pass --auth, or listen on 127.0.0.1`,
    { option: '--auth', value: address },
  );
}

/** A credential string that is neither `user:password` nor `Bearer <token>`. */
export function badAuth(): UsageError {
  return new UsageError('asynx.dashboard.badAuth', "dashboard credentials must be 'user:password' (basic auth) or 'Bearer <token>' (at least 8 characters of token)", { option: '--auth' });
}

/** A bad number option (port, maxTasks). */
export function badDashboardOption(option: string, value: unknown, want: string): UsageError {
  return new UsageError('asynx.dashboard.badOption', `dashboard option ${option} must be ${want}, got ${JSON.stringify(value)}`, { option, value });
}

/** The port is taken or the address cannot be bound. */
export function listenFailed(address: string, port: number, cause: unknown): AsynxError {
  const code = (cause as { code?: string } | null)?.code;
  const why = code === 'EADDRINUSE' ? 'the port is in use (pick another with --port)' : code === 'EADDRNOTAVAIL' ? 'no interface has that address' : code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)' : String((cause as Error)?.message ?? cause);
  return new AsynxError('asynx.dashboard.listen', `the dashboard cannot listen on ${address}:${port}: ${why}`, { exitCode: ExitCode.cantCreate, cause, facts: { value: `${address}:${port}` } });
}

/** Parses `user:password` or `Bearer <token>`. */
export function parseAuth(spec: string): DashboardAuth {
  const bearer = /^bearer[ :](.+)$/i.exec(spec.trim());
  if (bearer) {
    const token = bearer[1]!.trim();
    if (token.length < 8) throw badAuth();
    return { kind: 'bearer', token };
  }
  const colon = spec.indexOf(':');
  if (colon <= 0 || colon === spec.length - 1) throw badAuth();
  return { kind: 'basic', user: spec.slice(0, colon), password: spec.slice(colon + 1) };
}

/** Resolves and validates; a non-loopback listen address without auth is refused here, before anything starts. */
export function resolveDashboardOptions(o: DashboardOptions, env: NodeJS.ProcessEnv = process.env): ResolvedDashboardOptions {
  const port = o.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw badDashboardOption('port', port, 'a whole number 0..65535');
  const address = o.address ?? '127.0.0.1';
  if (address.trim() === '') throw badDashboardOption('address', address, 'an IP address or host name');
  const authSpec = o.auth === undefined ? (env.ASYNX_DASHBOARD_AUTH ?? null) : o.auth;
  const auth = authSpec === null || authSpec === '' ? null : parseAuth(authSpec);
  const listen = o.listen ?? true;
  if (listen && !auth && !isLoopback(address)) throw authRequired(address);
  const maxTasks = o.maxTasks ?? 10_000;
  if (!Number.isInteger(maxTasks) || maxTasks < 1) throw badDashboardOption('maxTasks', maxTasks, 'a whole number ≥ 1');
  const loopbackHosts = ['localhost', '127.0.0.1', '[::1]'];
  return {
    port,
    address,
    auth,
    readOnly: o.readOnly ?? false,
    listen,
    inspectIntervalMs: durationMs(o.inspectInterval ?? 5, 'inspectInterval'),
    queueIntervalMs: durationMs(o.queueInterval ?? 2, 'queueInterval'),
    queues: [...(o.queues ?? [])],
    maxTasks,
    enableEvents: o.enableEvents ?? true,
    allowedHosts: o.allowedHosts !== undefined ? o.allowedHosts : listen && isLoopback(address) ? [...loopbackHosts, address] : null,
  };
}
