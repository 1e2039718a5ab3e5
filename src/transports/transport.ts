// Transport: the broker contract that the SQLite and AMQP transports implement, and that the worker uses.

import type { WireMessage } from '../protocol/message.js';

/** A message handed to a consumer. It stays unacknowledged (and invisible to others) until ack or reject. */
export interface Delivery {
  /** Opaque per-transport handle (SQLite row id, AMQP delivery tag). */
  readonly tag: string;
  readonly queue: string;
  /** Properties, headers and body text exactly as received: nothing is validated here. */
  readonly message: { properties: Record<string, unknown>; headers: unknown; body: string };
  /** True when the broker delivered this message before (to a worker that died or gave it back). */
  readonly redelivered: boolean;
  /** How many times it has been handed out, this time included (1 on first delivery). */
  readonly deliveryCount: number;
  /**
   * Set when the broker's item is not a message in the transport's format (a Redis list item that is not a
   * kombu envelope): what is wrong with it. `message` then carries the item as its body and whatever headers
   * could be read; the worker dead-letters it with this reason.
   */
  readonly malformed?: string;
}

/** Called for each delivery; must not throw (the worker catches its own errors). */
export type DeliveryHandler = (delivery: Delivery) => void;

/** A running consumer on one or more queues. */
export interface Consumer {
  /** Stop receiving new deliveries. Held ones stay held until acked or rejected. */
  cancel(): Promise<void>;
}

/** Options for publish. */
export interface PublishOptions {
  /** Bounded wait for the broker to accept the message, ms. */
  timeoutMs?: number;
}

/** What a transport can do natively, so callers can adapt. */
export interface TransportCapabilities {
  /** Holds eta/countdown messages in the broker until due (never delivered early). */
  delayedDelivery: boolean;
  /** Honours the `priority` property. */
  priorities: boolean;
  /**
   * Lower numbers run first (kombu's Redis transport: 0 is the highest priority), instead of higher ones
   * (RabbitMQ, SQLite). @defaultValue false
   */
  lowerPriorityFirst?: boolean;
  /** How late a delayed message may arrive (delays rounded up to this), ms. @defaultValue 0 (on time) */
  delayGranularityMs?: number;
}

/**
 * The broker contract. Every method may reject with BrokerUnavailableError.
 * Messages are at-least-once: a delivery that is neither acked nor rejected before its
 * consumer goes away is delivered again.
 */
export interface Transport {
  readonly kind: string;
  readonly capabilities: TransportCapabilities;
  /** Connects (idempotent). Rejects with BrokerUnavailableError within the configured timeout. */
  connect(): Promise<void>;
  /** Makes sure a queue exists (and its bindings, where the broker has them). */
  declareQueue(queue: string): Promise<void>;
  /** Publishes one task message to a queue; resolves once the broker holds it durably. */
  publish(queue: string, message: WireMessage, opts?: PublishOptions): Promise<void>;
  /** Starts consuming; at most `prefetch` deliveries are unacknowledged at any time. */
  consume(queues: string[], prefetch: number, onDelivery: DeliveryHandler): Promise<Consumer>;
  /** Acknowledges: the message is gone for good. */
  ack(delivery: Delivery): Promise<void>;
  /** Gives the message back to its queue (requeue) or moves it to the dead-letter store with a reason. */
  reject(delivery: Delivery, opts: { requeue: boolean; reason?: string }): Promise<void>;
  /** Deletes every ready message in the given queues; resolves to the count removed. */
  purge(queues: string[]): Promise<number>;
  /** Messages waiting (ready or delayed) in a queue, where the broker can tell. */
  count(queue: string): Promise<number>;
  /** Closes connections; held deliveries go back to their queues. Idempotent. */
  close(): Promise<void>;
  /**
   * Optional (SQLite, Redis): one shared token bucket of capacity 1 per `key`, updated atomically. Takes the token
   * and resolves to 0 when one start may happen now, else to the ms until the next token (nothing taken).
   */
  takeRateToken?(key: string, intervalMs: number): Promise<number>;
  /**
   * Optional (SQLite, Redis): publishes unless a task holding `key` is still waiting or running, atomically.
   * Resolves to null when sent, else to the id of the task that holds the key (nothing sent).
   */
  publishUnique?(queue: string, message: WireMessage, key: string, opts?: PublishOptions): Promise<string | null>;
  /** Optional (SQLite, Redis): a worker took the task holding `key`: it counts as running while this process renews it. */
  holdDedupe?(key: string, taskId: string): Promise<void>;
  /** Optional (SQLite, Redis): the task holding `key` ended here: the key is free unless a message of it still waits (a retry). */
  releaseDedupe?(key: string, taskId: string): Promise<void>;
}
