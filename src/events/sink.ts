// What a Celery event sink is: where a node's events go (celeryev on RabbitMQ, the events table on SQLite).

import type { CeleryEvent } from './event.js';

/** A destination for Celery events. Sending never throws and never waits: events are best-effort. */
export interface EventSink {
  /** Sends one event on its own (worker events, `task-sent`). */
  send(event: CeleryEvent): void;
  /** Buffers a task event: buffered events leave together (one `task.multi` list on RabbitMQ), within 100 ms. */
  buffer(event: CeleryEvent): void;
  /** Sends what is buffered, then lets go of the connection. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link openEventSink}. */
export interface EventSinkOptions {
  /** Node name, for the AMQP `hostname` header and the connection name. */
  hostname: string;
  /** Bound on the first connect (RabbitMQ), ms. */
  connectTimeoutMs: number;
}
