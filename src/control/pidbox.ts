// Celery remote control (pidbox, spec §6): answers `celery inspect ping|stats|active|registered …` on AMQP.

import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { AmqpConnection } from '../amqp/connection.js';
import { LamportClock } from '../events/clock.js';
import { Releasers } from '../util/close-once.js';
import { mailboxHeldError } from './node-registry.js';
import { admitRequest, answerRequest, replyAddress, requestExchangeName, type ControlHandler } from './request.js';
import { pyAmqpSafe } from '../amqp/field-table.js';

export { isForNode, type ControlHandler } from './request.js';

/** Options of {@link startPidbox}. */
export interface PidboxOptions {
  /** Bound on the first connect, ms. @defaultValue 5000 */
  connectTimeoutMs?: number;
  /** Celery's `control_exchange`. @defaultValue `celery` */
  namespace?: string;
  /** The node's Lamport clock: adjusted by each request's `clock` header, ticked for each reply. @defaultValue a private clock */
  clock?: LamportClock;
}

/** The running mailbox. */
export interface Pidbox {
  /** Stops answering and closes the connection. Idempotent. */
  close(): Promise<void>;
}

/** Kombu's queue arguments for a node mailbox: Celery's control_queue_expires 10 s, control_queue_ttl 300 s. */
const NODE_QUEUE_ARGS = { 'x-expires': 10_000, 'x-message-ttl': 300_000 } as const;

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
  const exchange = requestExchangeName(ns);
  const queue = `${nodeName}.${ns}.pidbox`;
  const conn = new AmqpConnection(brokerUrl, { connectTimeoutMs: opts.connectTimeoutMs ?? 5_000, connectionName: `asynx pidbox ${nodeName}` });
  const clock = opts.clock ?? new LamportClock();

  const onRequest = async (ch: Channel, msg: ConsumeMessage | null): Promise<void> => {
    if (!msg) return;
    const req = admitRequest((msg.properties.headers ?? {}) as Record<string, unknown>, msg.content.toString('utf8'), nodeName, clock);
    if (!req) return;
    const { reply, afterReply } = await answerRequest(handlers, req);
    const to = replyAddress(req);
    if (!to) return afterReply(); // a cast: no reply
    try {
      await ch.assertExchange(to.exchange, 'direct', { durable: false });
      ch.publish(to.exchange, to.routing_key, Buffer.from(JSON.stringify({ [nodeName]: reply })), {
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        deliveryMode: 1,
        priority: 0,
        headers: pyAmqpSafe({ ticket: req.ticket ?? null, clock: clock.tick() }),
      });
    } catch {
      // the channel went away: the caller times out, as with Celery
    }
    afterReply();
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
