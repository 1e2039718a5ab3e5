// The remote-control client (Celery's `app.control.broadcast`): send a command to nodes, gather their replies.

import { randomUUID } from 'node:crypto';
import { LamportClock } from '../events/clock.js';
import { parseBrokerUrl } from '../urls.js';
import { badControlTimeout, badDestination, controlClientClosed } from './control-errors.js';
import type { ControlWire } from './control-wire.js';
import type { ControlRequest } from './request.js';

/** Options of {@link openControlClient}. */
export interface ControlClientOptions {
  /** Where a relative `sqlite://` path is from. @defaultValue process.cwd() */
  cwd?: string;
  /** Bound on connecting to the broker, ms. @defaultValue 5000 */
  connectTimeoutMs?: number;
  /** Celery's `control_exchange` (AMQP exchange `<namespace>.pidbox`). @defaultValue `celery` */
  namespace?: string;
}

/** Options of {@link ControlClient.broadcast}. */
export interface BroadcastOptions {
  /** Only these node names answer. @defaultValue every node */
  destination?: string[];
  /** How long to wait for replies, ms. @defaultValue 1000 (Celery's default 1 s) */
  timeoutMs?: number;
  /** Wait for replies; false sends a cast (no reply) and resolves `[]` at once. @defaultValue true */
  reply?: boolean;
  /** Stop waiting after this many replies. @defaultValue the length of `destination`, else no limit */
  limit?: number;
  /** Called with each reply as it arrives (Celery's `callback`). */
  onReply?: (reply: Record<string, unknown>) => void;
}

/** Sends remote-control commands to the nodes of one broker. */
export interface ControlClient {
  /**
   * Sends `method` with `args` (the command's keyword arguments, e.g. `{task_id, terminate, signal}` for
   * `revoke`) and resolves, after `timeoutMs` or `limit` replies, to the replies in arrival order, each
   * `{"<node>": answer}` as Celery's `broadcast(..., reply=True)` returns them. No reply is `[]`, not an error.
   */
  broadcast(method: string, args?: Record<string, unknown>, opts?: BroadcastOptions): Promise<Array<Record<string, unknown>>>;
  /**
   * Celery's `app.control.inspect(...)._request(method)`: the replies of {@link ControlClient.broadcast}
   * merged into one object `{"<node>": answer, …}`; `{}` when no node answered.
   */
  inspect(method: string, args?: Record<string, unknown>, opts?: BroadcastOptions): Promise<Record<string, unknown>>;
  /** Releases the connection. Idempotent (one promise). */
  close(): Promise<void>;
}

/** Merges `[{node: answer}, …]` into `{node: answer, …}` (Celery's `Inspect._prepare`). */
export function mergeReplies(replies: ReadonlyArray<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const r of replies) Object.assign(out, r);
  return out;
}

/** Checks and copies a destination list. */
function destinationList(value: unknown): string[] | null {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string' && v.trim() !== '')) throw badDestination(value);
  return value.map((v: string) => v.trim());
}

/**
 * Opens a remote-control client on `brokerUrl`. AMQP: kombu's Mailbox — the request goes to the fanout
 * exchange `celery.pidbox`, replies come to a private queue `<uuid>.reply.celery.pidbox` bound to
 * `reply.celery.pidbox`, so Python Celery workers answer too. Redis: kombu's pidbox there — the request is
 * PUBLISHed on `/{db}.celery.pidbox`, replies come to the list `<uuid>.reply.celery.pidbox`. SQLite (`sqlite://`): the broker file's
 * `control_requests` / `control_replies` tables, read by asynx workers on that file.
 *
 * @example
 * const control = await openControlClient('sqlite://.asynx/asynx.db');
 * const replies = await control.broadcast('ping', {}, { timeoutMs: 1000 }); // [{ 'w1@host': { ok: 'pong' } }]
 * await control.close();
 */
export async function openControlClient(brokerUrl: string, opts: ControlClientOptions = {}): Promise<ControlClient> {
  const url = parseBrokerUrl(brokerUrl, opts.cwd);
  const namespace = opts.namespace ?? 'celery';
  const connectTimeoutMs = opts.connectTimeoutMs ?? 5_000;
  let wire: ControlWire;
  if (url.kind === 'sqlite') {
    wire = (await import('./sqlite-control-wire.js')).sqliteControlWire(url.path);
  } else if (url.kind === 'redis') {
    wire = await (await import('./redis-control-wire.js')).redisControlWire(url.url, { connectTimeoutMs, namespace });
  } else {
    wire = await (await import('./amqp-control-wire.js')).amqpControlWire(brokerUrl, { connectTimeoutMs, namespace });
  }
  const clock = new LamportClock();
  const oid = randomUUID();
  let closing: Promise<void> | null = null;
  const client: ControlClient = {
    async inspect(method, args = {}, o = {}) {
      return mergeReplies(await client.broadcast(method, args, o));
    },
    async broadcast(method, args = {}, o = {}) {
      if (closing) throw controlClientClosed();
      const destination = destinationList(o.destination);
      const timeoutMs = o.timeoutMs ?? 1_000;
      if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) throw badControlTimeout(o.timeoutMs);
      const reply = o.reply ?? true;
      const ticket = randomUUID();
      const req: ControlRequest = { method, arguments: args, destination, pattern: null, matcher: null };
      if (reply) Object.assign(req, { ticket, reply_to: { exchange: `reply.${namespace}.pidbox`, routing_key: oid } });
      const replies: Array<Record<string, unknown>> = [];
      const limit = o.limit ?? (destination ? destination.length : null);
      await wire.send(req, { clock: clock.tick(), expires: (Date.now() + timeoutMs) / 1000 }, reply ? {
        ticket,
        timeoutMs,
        limit,
        onReply: (r, c) => {
          clock.adjust(c);
          replies.push(r);
          o.onReply?.(r);
        },
      } : null);
      return replies;
    },
    close() {
      closing ??= wire.close();
      return closing;
    },
  };
  return client;
}
