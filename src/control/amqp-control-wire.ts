// The remote-control client's side of AMQP, as kombu's Mailbox: fanout request, a private reply queue, tickets.

import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { randomUUID } from 'node:crypto';
import { AmqpConnection } from '../amqp/connection.js';
import { Releasers } from '../util/close-once.js';
import type { ControlWire } from './control-wire.js';
import { replyExchangeName, requestExchangeName } from './request.js';
import { pyAmqpSafe } from '../amqp/field-table.js';
import { ReplyCollectors } from './reply-collectors.js';

/** Kombu's reply queue arguments with Celery's defaults: control_queue_expires 10 s, control_queue_ttl 300 s. */
const REPLY_QUEUE_ARGS = { 'x-expires': 10_000, 'x-message-ttl': 300_000 } as const;

/**
 * Connects and declares, as kombu does: exchange `<ns>.pidbox` (fanout, not durable), exchange
 * `reply.<ns>.pidbox` (direct, not durable) and this client's queue `<oid>.reply.<ns>.pidbox`
 * (auto-delete) bound with routing key `<oid>`, the request's `reply_to.routing_key`. Replies are matched
 * to their request by the `ticket` header; replies for no open ticket are dropped.
 */
export async function amqpControlWire(brokerUrl: string, opts: { connectTimeoutMs: number; namespace: string }): Promise<ControlWire> {
  const exchange = requestExchangeName(opts.namespace);
  const replyExchange = replyExchangeName(opts.namespace);
  const conn = new AmqpConnection(brokerUrl, { connectTimeoutMs: opts.connectTimeoutMs, connectionName: 'asynx control' });
  const collectors = new ReplyCollectors();
  let channel: Channel | null = null;
  const oid = randomUUID();
  const onReply = (msg: ConsumeMessage | null): void => {
    if (!msg) return;
    const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
    collectors.deliver(headers.ticket, msg.content.toString('utf8'), headers.clock);
  };
  conn.onOpen(async (c: ChannelModel) => {
    const deadline = Date.now() + opts.connectTimeoutMs;
    const what = 'declare the remote-control reply queue';
    const ch = await conn.bounded(c.createChannel(), deadline, what);
    ch.on('error', () => undefined);
    await conn.bounded(ch.assertExchange(exchange, 'fanout', { durable: false }), deadline, what);
    await conn.bounded(ch.assertExchange(replyExchange, 'direct', { durable: false }), deadline, what);
    const queue = `${oid}.${replyExchange}`;
    await conn.bounded(ch.assertQueue(queue, { durable: false, autoDelete: true, arguments: { ...REPLY_QUEUE_ARGS } }), deadline, what);
    await conn.bounded(ch.bindQueue(queue, replyExchange, oid), deadline, what);
    await conn.bounded(ch.consume(queue, onReply, { noAck: true }), deadline, what);
    channel = ch;
  });
  conn.onLost(() => (channel = null));
  const releasers = new Releasers();
  releasers.add('close the AMQP connection', () => conn.close());
  releasers.add('stop reconnecting', conn.hold());
  try {
    await conn.get(Date.now() + opts.connectTimeoutMs, 'open the remote-control client');
  } catch (err) {
    await releasers.close();
    throw err;
  }
  return {
    async send(req, headers, collect) {
      await conn.get(Date.now() + opts.connectTimeoutMs, 'send a remote-control request');
      const ch = channel;
      if (!ch) throw conn.unavailable('send a remote-control request', Date.now());
      // Our own reply queue's routing key, whatever the caller put there.
      if (req.reply_to) req.reply_to = { exchange: replyExchange, routing_key: oid };
      await collectors.send(collect, () => {
        ch.publish(exchange, '', Buffer.from(JSON.stringify(req)), {
          contentType: 'application/json',
          contentEncoding: 'utf-8',
          deliveryMode: 2,
          priority: 0,
          headers: pyAmqpSafe(headers),
        });
      });
    },
    close: () => releasers.close(),
  };
}
