// Opens the event sink for a broker: the SQLite transport's events table, the celeryev exchange on RabbitMQ or its channels on Redis.

import type { SqliteTransport } from '../transports/sqlite.js';
import type { Transport } from '../transports/transport.js';
import { parseBrokerUrl } from '../urls.js';
import type { CeleryEvent } from './event.js';
import type { EventSink, EventSinkOptions } from './sink.js';

function isSqlite(t: Transport): t is SqliteTransport {
  return t.kind === 'sqlite' && typeof (t as Partial<SqliteTransport>).appendEvents === 'function';
}

/** Events into the embedded broker's `events` table, written with the transport's own batches. */
class SqliteEventSink implements EventSink {
  constructor(private readonly transport: SqliteTransport) {}

  send(event: CeleryEvent): void {
    this.transport.appendEvents([event]);
  }

  buffer(event: CeleryEvent): void {
    this.send(event);
  }

  async close(): Promise<void> {
    // The transport writes what is queued when it closes.
  }
}

/**
 * The sink for a connected transport: the SQLite transport's events table, (Redis) a {@link RedisEventSink}
 * PUBLISHing on kombu's `/{db}.celeryev/<routing key>` channels, or (RabbitMQ) an
 * {@link AmqpEventSink} on a connection of its own. The AMQP one waits (bounded) for its first connect;
 * when the broker does not answer in time it keeps the events and sends them once it connects.
 */
export async function openEventSink(transport: Transport, brokerUrl: string, opts: EventSinkOptions): Promise<EventSink> {
  if (isSqlite(transport)) return new SqliteEventSink(transport);
  if (transport.kind === 'redis') {
    const { RedisEventSink } = await import('./redis-sink.js');
    return new RedisEventSink(parseBrokerUrl(brokerUrl).url, opts);
  }
  const { AmqpEventSink } = await import('./amqp-sink.js');
  const sink = new AmqpEventSink(parseBrokerUrl(brokerUrl).url, opts);
  await sink.ready(Date.now() + opts.connectTimeoutMs).catch(() => undefined);
  return sink;
}
