// Celery remote control (pidbox, spec §6): answers `celery inspect ping|stats|active|registered …` on AMQP.

import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { AmqpConnection } from '../amqp/connection.js';
import { Releasers } from '../util/close-once.js';
import { mailboxHeldError } from './node-registry.js';

/** A remote-control command handler: gets the request's `arguments`, returns this node's answer. */
export type ControlHandler = (args: Record<string, unknown>) => unknown | Promise<unknown>;

/** Options of {@link startPidbox}. */
export interface PidboxOptions {
  /** Bound on the first connect, ms. @defaultValue 5000 */
  connectTimeoutMs?: number;
  /** Celery's `control_exchange`. @defaultValue `celery` */
  namespace?: string;
}

/** The running mailbox. */
export interface Pidbox {
  /** Stops answering and closes the connection. Idempotent. */
  close(): Promise<void>;
}

/** Kombu's queue arguments for a node mailbox: Celery's control_queue_expires 10 s, control_queue_ttl 300 s. */
const NODE_QUEUE_ARGS = { 'x-expires': 10_000, 'x-message-ttl': 300_000 } as const;

interface ControlRequest {
  method?: unknown;
  arguments?: unknown;
  destination?: unknown;
  pattern?: unknown;
  matcher?: unknown;
  ticket?: unknown;
  reply_to?: { exchange?: unknown; routing_key?: unknown } | null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Glob match, as kombu's `match(hostname, pattern, 'glob')`. */
function globMatch(name: string, pattern: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return re.test(name);
}

/** Whether a request is meant for `nodeName` (kombu `Node.handle_message`). */
export function isForNode(req: ControlRequest, nodeName: string): boolean {
  if (Array.isArray(req.destination) && req.destination.length > 0) return req.destination.includes(nodeName);
  if (typeof req.pattern === 'string' && req.pattern && typeof req.matcher === 'string' && req.matcher) {
    if (req.matcher === 'glob') return globMatch(nodeName, req.pattern);
    if (req.matcher === 'pcre') return new RegExp(req.pattern).test(nodeName);
    return false;
  }
  return true;
}

/**
 * Starts this node's mailbox: queue `<node>.celery.pidbox` (not durable, auto-delete, as kombu
 * declares it) bound to fanout exchange `celery.pidbox`. Requests for other nodes and expired
 * ones are ignored; replies go to `reply.celery.pidbox` with the request's routing key and
 * ticket, body `{"<node>": answer}`. `ping` answers `{"ok": "pong"}` unless a handler is given;
 * an unknown method answers `{"error": …}` as kombu does. Reconnects by itself.
 * Rejects with `asynx.worker.duplicateNode` (consuming nothing) when, at the first declare, the queue
 * already has a consumer: another live node of this name (the last line of the start-up name check).
 */
export async function startPidbox(brokerUrl: string, nodeName: string, handlers: Record<string, ControlHandler>, opts: PidboxOptions = {}): Promise<Pidbox> {
  const ns = opts.namespace ?? 'celery';
  const exchange = `${ns}.pidbox`;
  const queue = `${nodeName}.${ns}.pidbox`;
  const conn = new AmqpConnection(brokerUrl, { connectTimeoutMs: opts.connectTimeoutMs ?? 5_000, connectionName: `asynx pidbox ${nodeName}` });
  let clock = 0;
  const all: Record<string, ControlHandler> = { ping: () => ({ ok: 'pong' }), ...handlers };

  const answer = async (req: ControlRequest): Promise<unknown> => {
    const method = typeof req.method === 'string' ? req.method : '';
    const handler = Object.prototype.hasOwnProperty.call(all, method) ? all[method] : undefined;
    if (!handler) return { error: `KeyError('${method}')` };
    try {
      return await handler(isObject(req.arguments) ? req.arguments : {});
    } catch (err) {
      return { error: err instanceof Error ? `${err.name}(${JSON.stringify(err.message)})` : String(err) };
    }
  };

  const onRequest = async (ch: Channel, msg: ConsumeMessage | null): Promise<void> => {
    if (!msg) return;
    const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
    if (typeof headers.clock === 'number') clock = Math.max(clock, headers.clock) + 1;
    if (typeof headers.expires === 'number' && headers.expires > 0 && Date.now() / 1000 > headers.expires) return;
    let req: ControlRequest;
    try {
      const parsed = JSON.parse(msg.content.toString('utf8')) as unknown;
      if (!isObject(parsed)) return;
      req = parsed as ControlRequest;
    } catch {
      return; // not JSON: kombu logs and drops it
    }
    if (!isForNode(req, nodeName)) return;
    const reply = await answer(req);
    const to = req.reply_to;
    if (!to || typeof to.exchange !== 'string' || typeof to.routing_key !== 'string') return; // a cast: no reply
    try {
      await ch.assertExchange(to.exchange, 'direct', { durable: false });
      ch.publish(to.exchange, to.routing_key, Buffer.from(JSON.stringify({ [nodeName]: reply ?? null })), {
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        deliveryMode: 1,
        priority: 0,
        headers: { ticket: req.ticket ?? null, clock: ++clock },
      });
    } catch {
      // the channel went away: the caller times out, as with Celery
    }
  };

  const connectTimeoutMs = opts.connectTimeoutMs ?? 5_000;
  /** Consumers the queue had at our first declare (another node of this name), or null before it. */
  let heldBy: number | null = null;
  conn.onOpen(async (c: ChannelModel) => {
    // Each step bounded: a broker that accepts the connection but stalls must not hang the (re)connect.
    const deadline = Date.now() + connectTimeoutMs;
    const what = `declare the remote-control mailbox ${queue}`;
    const ch = await conn.bounded(c.createChannel(), deadline, what);
    ch.on('error', () => undefined);
    await conn.bounded(ch.assertExchange(exchange, 'fanout', { durable: false }), deadline, what);
    const ok = await conn.bounded(ch.assertQueue(queue, { durable: false, autoDelete: true, exclusive: false, arguments: { ...NODE_QUEUE_ARGS } }), deadline, what);
    heldBy ??= ok.consumerCount; // the first declare only: after a reconnect the count may include our old consumer
    if (heldBy > 0) return; // start() refuses: share no mailbox with a twin
    await conn.bounded(ch.bindQueue(queue, exchange, ''), deadline, what);
    await conn.bounded(ch.consume(queue, (msg) => void onRequest(ch, msg), { noAck: true }), deadline, what);
  });
  // Run newest first: stop holding the connection (no more reconnects), then close it.
  const releasers = new Releasers();
  releasers.add('close the AMQP connection', () => conn.close());
  releasers.add('stop reconnecting', conn.hold());
  try {
    await conn.get(Date.now() + connectTimeoutMs, `start the remote-control mailbox of ${nodeName}`);
    if (heldBy) throw mailboxHeldError(nodeName, queue, heldBy);
  } catch (err) {
    await releasers.close();
    throw err;
  }
  return { close: () => releasers.close() };
}
