// Celery events on Redis: kombu turns the celeryev exchange into a fanout there, PUBLISHed on /{db}.celeryev/<routing key>.

import type { Redis } from 'ioredis';
import { closeRedis, fanoutChannel, packMessage, redisDb } from '../transports/redis-pubsub.js';
import { openRedis, parseRedisTarget } from '../transports/redis-connection.js';
import { Releasers } from '../util/close-once.js';
import { EVENT_EXCHANGE } from './amqp-sink.js';
import { eventRoutingKey, type CeleryEvent } from './event.js';
import type { EventSink, EventSinkOptions } from './sink.js';
import { TaskMultiBatch } from './task-multi.js';

/** Messages kept while Redis is away; the oldest go first beyond this. */
const OFFLINE_MAX = 1_000;

/**
 * Publishes as Celery's EventDispatcher does on Redis: each message a kombu envelope (header `hostname`,
 * delivery mode 1) PUBLISHed on `/{db}.celeryev/<routing key>` — worker events one each
 * (`/0.celeryev/worker.heartbeat`), task events buffered into one `task.multi` list (24 events or 100 ms,
 * as the AMQP sink). Pub/sub keeps nothing: an event nobody listens for is gone, as on Celery. Messages
 * made while disconnected wait (up to 1000) and leave once the connection is back.
 */
export class RedisEventSink implements EventSink {
  private readonly conn: Redis;
  private readonly db: number;
  private readonly headers: Record<string, string>;
  private readonly outbound: Array<{ routingKey: string; body: string }> = [];
  private readonly taskEvents = new TaskMultiBatch((events) => this.write('task.multi', JSON.stringify(events)));
  private readonly releasers = new Releasers();

  constructor(url: string, opts: EventSinkOptions) {
    this.db = redisDb(url);
    this.headers = { hostname: opts.hostname };
    this.conn = openRedis(parseRedisTarget(url), `asynx-events-${opts.hostname}`, { connectTimeoutMs: opts.connectTimeoutMs });
    this.conn.on('error', () => undefined);
    this.conn.on('ready', () => {
      for (const m of this.outbound.splice(0)) this.write(m.routingKey, m.body);
    });
    this.conn.connect().catch(() => undefined); // it retries by itself; events made meanwhile wait in `outbound`
    this.releasers.add('close the events connection', () => closeRedis(this.conn));
    this.releasers.add('send buffered events', () => this.taskEvents.flush());
  }

  private write(routingKey: string, body: string): void {
    if (this.conn.status !== 'ready') {
      this.outbound.push({ routingKey, body });
      if (this.outbound.length > OFFLINE_MAX) this.outbound.shift();
      return;
    }
    const raw = packMessage({ exchange: EVENT_EXCHANGE, routingKey, body, headers: this.headers, deliveryMode: 1 });
    this.conn.publish(fanoutChannel(this.db, EVENT_EXCHANGE, routingKey), raw).catch(() => undefined);
  }

  send(event: CeleryEvent): void {
    if (this.releasers.closed) return;
    this.write(eventRoutingKey(event.type), JSON.stringify(event));
  }

  buffer(event: CeleryEvent): void {
    if (this.releasers.closed) return;
    this.taskEvents.add(event);
  }

  close(): Promise<void> {
    return this.releasers.close();
  }
}
