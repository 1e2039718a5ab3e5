// Reads Celery events from a broker: an exclusive celeryev.<uuid> queue on RabbitMQ, kombu's pub/sub channels on Redis, the events table on SQLite.

import { randomUUID } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import type { ChannelModel, ConsumeMessage } from 'amqplib';
import { AmqpConnection } from '../amqp/connection.js';
import { closeDatabase } from '../sqlite/database.js';
import { openDb } from '../transports/sqlite-db.js';
import { parseBrokerUrl } from '../urls.js';
import { Releasers } from '../util/close-once.js';
import { declareEventExchange, EVENT_EXCHANGE } from './amqp-sink.js';
import type { CeleryEvent } from './event.js';
import { pyAmqpSafe } from '../amqp/field-table.js';

/** Options of {@link receiveEvents}. */
export interface ReceiveOptions {
  /** Directory for a relative `sqlite://` path. @defaultValue process.cwd() */
  cwd?: string;
  /** Bound on the first connect (RabbitMQ), ms. @defaultValue 5000 */
  connectTimeoutMs?: number;
  /** SQLite: deliver the events still retained in the table first, then the new ones. @defaultValue false */
  replay?: boolean;
  /** SQLite: pause between reads of the table, ms. @defaultValue 100 */
  pollIntervalMs?: number;
  /** RabbitMQ and Redis: broadcast the `heartbeat` control command once consuming, to wake the workers (as Celery's receiver does). @defaultValue true */
  wakeup?: boolean;
}

/** A running receiver. */
export interface EventReceiver {
  /** Stops receiving (the RabbitMQ queue is deleted with its consumer). Idempotent. */
  close(): Promise<void>;
}

/** Celery's `event_queue_ttl` (5 s) and `event_queue_expires` (60 s) as RabbitMQ queue arguments. */
const QUEUE_ARGS = { 'x-message-ttl': 5_000, 'x-expires': 60_000 } as const;

type Handler = (e: CeleryEvent) => void;

function isEvent(v: unknown): v is CeleryEvent {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as { type?: unknown }).type === 'string';
}

/** Hands each event of a message body (one event or a list, as Celery's receiver accepts) to `onEvent`. */
function deliver(body: unknown, onEvent: Handler): void {
  const received = Date.now() / 1000;
  for (const e of Array.isArray(body) ? body : [body]) {
    if (!isEvent(e)) continue;
    // The event was just parsed and is ours: set the field in place (a spread copy costs more than the parse).
    e.local_received = received;
    try {
      onEvent(e);
    } catch {
      // A handler's bug must not stop the receiver.
    }
  }
}

/**
 * Calls `onEvent` for every Celery event on the broker, from asynx and Python Celery nodes alike, each
 * with `local_received` (float epoch seconds) added as Celery's receiver adds it; `timestamp` is left as
 * the sender wrote it. RabbitMQ: declares `celeryev.<uuid>` (auto-delete, message TTL 5 s, expires 60 s)
 * bound to the `celeryev` topic exchange with `#`, reconnecting by itself. Redis: PSUBSCRIBE to
 * `/{db}.celeryev/*`, the channels kombu publishes celeryev on there (resubscribing after a reconnect;
 * events published meanwhile are lost, as for Celery's receiver). SQLite: reads the `events`
 * table by id, from the newest row (or from the oldest retained one with `replay`).
 */
export async function receiveEvents(brokerUrl: string, onEvent: Handler, opts: ReceiveOptions = {}): Promise<EventReceiver> {
  const broker = parseBrokerUrl(brokerUrl, opts.cwd);
  if (broker.kind === 'sqlite') return receiveSqlite(broker.path, onEvent, opts);
  if (broker.kind === 'redis') return receiveRedis(broker.url, onEvent, opts);
  return receiveAmqp(broker.url, onEvent, opts);
}

/** The `heartbeat` broadcast Celery's receiver sends to wake the workers (a cast, expiring in 1 s). */
function wakeupRequest(): string {
  return JSON.stringify({ method: 'heartbeat', arguments: {}, destination: null, pattern: null, matcher: null });
}

async function receiveRedis(url: string, onEvent: Handler, opts: ReceiveOptions): Promise<EventReceiver> {
  const { closeRedis, connectRedis, fanoutChannel, packMessage, redisDb, subscribeFanout, unpackMessage } = await import('../transports/redis-pubsub.js');
  const connectTimeoutMs = opts.connectTimeoutMs ?? 5_000;
  const db = redisDb(url);
  // A binding of `#`, as Celery's receiver binds its queue: kombu subscribes to `/{db}.celeryev/*` for it.
  const sub = await subscribeFanout(url, 'asynx-event-receiver', [fanoutChannel(db, EVENT_EXCHANGE, '#')], (_channel, payload) => {
    const msg = unpackMessage(payload);
    if (!msg) return;
    let body: unknown;
    try {
      body = JSON.parse(msg.body);
    } catch {
      return; // not JSON: Celery's receiver refuses it too
    }
    deliver(body, onEvent);
  }, { connectTimeoutMs });
  if (opts.wakeup ?? true) {
    try {
      const cmd = await connectRedis(url, 'asynx-event-receiver-wakeup', { connectTimeoutMs });
      const raw = packMessage({ exchange: 'celery.pidbox', routingKey: '', body: wakeupRequest(), headers: { clock: 1, expires: Date.now() / 1000 + 1 }, deliveryMode: 1 });
      await cmd.publish(fanoutChannel(db, 'celery.pidbox', ''), raw).catch(() => undefined);
      await closeRedis(cmd);
    } catch {
      // no wakeup: the workers' next heartbeat shows them anyway
    }
  }
  return { close: () => sub.close() };
}

async function receiveAmqp(url: string, onEvent: Handler, opts: ReceiveOptions): Promise<EventReceiver> {
  const connectTimeoutMs = opts.connectTimeoutMs ?? 5_000;
  const queue = `celeryev.${randomUUID()}`;
  const conn = new AmqpConnection(url, { connectTimeoutMs, connectionName: 'asynx-event-receiver' });
  let clock = 0;
  conn.onOpen(async (c: ChannelModel) => {
    const deadline = Date.now() + connectTimeoutMs;
    const what = `declare the event queue ${queue}`;
    const ch = await conn.bounded(c.createChannel(), deadline, what);
    ch.on('error', () => undefined);
    await conn.bounded(declareEventExchange(ch), deadline, what);
    await conn.bounded(ch.assertQueue(queue, { durable: false, autoDelete: true, arguments: { ...QUEUE_ARGS } }), deadline, what);
    await conn.bounded(ch.bindQueue(queue, EVENT_EXCHANGE, '#'), deadline, what);
    await conn.bounded(
      ch.consume(queue, (msg: ConsumeMessage | null) => {
        if (!msg) return;
        let body: unknown;
        try {
          body = JSON.parse(msg.content.toString('utf8'));
        } catch {
          return; // not JSON: Celery's receiver refuses it too
        }
        deliver(body, onEvent);
      }, { noAck: true }),
      deadline,
      what,
    );
    if (opts.wakeup ?? true) {
      // Celery's receiver broadcasts `heartbeat` so that workers announce themselves at once.
      await conn.bounded(ch.assertExchange('celery.pidbox', 'fanout', { durable: false }), deadline, what);
      ch.publish('celery.pidbox', '', Buffer.from(wakeupRequest()), {
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        deliveryMode: 1,
        headers: pyAmqpSafe({ clock: ++clock, expires: Date.now() / 1000 + 1 }),
      });
    }
  });
  const releasers = new Releasers();
  releasers.add('close the AMQP connection', () => conn.close());
  releasers.add('stop reconnecting', conn.hold());
  try {
    await conn.get(Date.now() + connectTimeoutMs, 'start receiving Celery events');
  } catch (err) {
    await releasers.close();
    throw err;
  }
  return { close: () => releasers.close() };
}

async function receiveSqlite(path: string, onEvent: Handler, opts: ReceiveOptions): Promise<EventReceiver> {
  const db = openDb(path, 250);
  const releasers = new Releasers();
  releasers.add('close the database file', () => closeDatabase(db, path));
  // Each row is a deflated JSON list of events (src/transports/sqlite-db.ts).
  const next = db.prepare('SELECT id, body FROM events WHERE id > ? ORDER BY id LIMIT 100');
  let cursor = opts.replay ? 0 : ((db.prepare('SELECT MAX(id) AS id FROM events').get() as { id: number | null }).id ?? 0);
  const pollMs = opts.pollIntervalMs ?? 100;
  let timer: NodeJS.Timeout | null = null;
  const poll = (): void => {
    timer = null;
    if (releasers.closed) return;
    let more = false;
    try {
      const rows = next.all(cursor) as Array<{ id: number; body: Buffer }>;
      more = rows.length === 100;
      for (const r of rows) {
        cursor = r.id;
        let body: unknown;
        try {
          body = JSON.parse(inflateRawSync(r.body).toString('utf8'));
        } catch {
          continue; // not written by asynx: skip it
        }
        deliver(body, onEvent);
      }
    } catch {
      more = false; // locked, or a broken file: try again at the next poll rather than die
    }
    timer = setTimeout(poll, more ? 0 : pollMs);
  };
  releasers.add('stop polling', () => {
    if (timer) clearTimeout(timer);
    timer = null;
  });
  timer = setTimeout(poll, 0);
  return { close: () => releasers.close() };
}
