// Celery events on RabbitMQ: the `celeryev` topic exchange, non-persistent, task events batched as `task.multi` lists.

import type { Channel, ChannelModel } from 'amqplib';
import { AmqpConnection } from '../amqp/connection.js';
import { Releasers } from '../util/close-once.js';
import { eventRoutingKey, type CeleryEvent } from './event.js';
import { TaskMultiBatch } from './task-multi.js';
import type { EventSink, EventSinkOptions } from './sink.js';

/** Celery's event exchange (`event_exchange`): topic, durable, as kombu declares `Exchange('celeryev', type='topic')`. */
export const EVENT_EXCHANGE = 'celeryev';
/** Messages kept while the connection is down; the oldest go first beyond this. */
const OFFLINE_MAX = 1_000;

interface Outbound {
  routingKey: string;
  body: Buffer;
}

/** Declares the event exchange as Celery does (a different declaration would be refused with 406). */
export async function declareEventExchange(ch: Channel): Promise<void> {
  await ch.assertExchange(EVENT_EXCHANGE, 'topic', { durable: true, autoDelete: false });
}

/**
 * Publishes as Celery's EventDispatcher: worker events one message each (routing key `worker.heartbeat`),
 * task events buffered and sent together as one message whose body is a JSON list (routing key
 * `task.multi`) once 24 are waiting (Celery's buffer limit) or 100 ms after the first. Non-persistent
 * (`delivery_mode` 1), header `hostname`. No publisher confirms: like Celery, an event lost with a
 * connection is lost; messages made while disconnected wait (up to 1000) for the next connection.
 */
export class AmqpEventSink implements EventSink {
  private readonly conn: AmqpConnection;
  private ch: Channel | null = null;
  private readonly outbound: Outbound[] = [];
  private readonly taskEvents = new TaskMultiBatch((events) => this.write({ routingKey: 'task.multi', body: Buffer.from(JSON.stringify(events)) }));
  private readonly headers: Record<string, string>;
  private readonly releasers = new Releasers();

  constructor(url: string, opts: EventSinkOptions) {
    this.headers = { hostname: opts.hostname };
    this.conn = new AmqpConnection(url, { connectTimeoutMs: opts.connectTimeoutMs, connectionName: `asynx events ${opts.hostname}` });
    this.conn.onOpen((c) => this.onOpen(c));
    this.conn.onLost(() => (this.ch = null));
    this.releasers.add('close the events connection', () => this.conn.close());
    this.releasers.add('stop reconnecting', this.conn.hold());
    this.releasers.add('close the events channel', async () => {
      const ch = this.ch;
      this.ch = null;
      // A channel close is answered after the broker has taken every publish before it.
      await ch?.close().catch(() => undefined);
    });
    this.releasers.add('send buffered events', () => this.taskEvents.flush());
  }

  private async onOpen(c: ChannelModel): Promise<void> {
    const ch = await c.createChannel();
    ch.on('error', () => undefined);
    ch.on('close', () => {
      if (this.ch === ch) this.ch = null;
    });
    await declareEventExchange(ch);
    this.ch = ch;
    const waiting = this.outbound.splice(0);
    for (const m of waiting) this.write(m);
  }

  /** Resolves once connected (the first time), or rejects at `deadline` (epoch ms). */
  async ready(deadline: number): Promise<void> {
    await this.conn.get(deadline, 'open the Celery events connection');
  }

  private write(m: Outbound): void {
    const ch = this.ch;
    if (!ch) {
      this.outbound.push(m);
      if (this.outbound.length > OFFLINE_MAX) this.outbound.shift();
      return;
    }
    try {
      ch.publish(EVENT_EXCHANGE, m.routingKey, m.body, { contentType: 'application/json', contentEncoding: 'utf-8', deliveryMode: 1, headers: this.headers });
    } catch {
      this.outbound.push(m); // the channel closed under us: the next connection sends it
    }
  }

  send(event: CeleryEvent): void {
    if (this.releasers.closed) return;
    this.write({ routingKey: eventRoutingKey(event.type), body: Buffer.from(JSON.stringify(event)) });
  }

  buffer(event: CeleryEvent): void {
    if (this.releasers.closed) return;
    this.taskEvents.add(event);
  }

  close(): Promise<void> {
    return this.releasers.close();
  }
}
