// RabbitMQ transport (amqplib): Celery's topology, publisher confirms, manual acks, reconnects, eta ladder.

import { randomBytes } from 'node:crypto';
import type { Channel, ConsumeMessage } from 'amqplib';
import { BrokerUnavailableError } from '../errors.js';
import { Releasers } from '../util/close-once.js';
import { redact } from '../util/redact.js';
import { parseCeleryTime } from '../protocol/codec.js';
import type { WireMessage } from '../protocol/message.js';
import { AmqpConnection } from '../amqp/connection.js';
import { AmqpPublisher, declareError } from './amqp-publisher.js';
import { bodyText, declareTaskQueue, etaOf, fromMessageProperties, toPublishOptions } from './amqp-topology.js';
import type { Consumer, Delivery, DeliveryHandler, PublishOptions, Transport, TransportCapabilities } from './transport.js';

/** Options of the AMQP transport. */
export interface AmqpTransportOptions {
  /** Bound on connecting (and on waiting for a reconnect before a consume starts), ms. */
  connectTimeoutMs: number;
  /** Bound on a publish: connect/reconnect, declare, and the broker's confirm, ms. */
  publishTimeoutMs: number;
  /**
   * Declare task queues with `x-max-priority` (enables priorities). Every client and worker,
   * Python ones included, must declare the queue with the same value. @defaultValue unset
   */
  maxPriority?: number;
  /** Queue that rejected (not requeued) messages are moved to. @defaultValue `asynx.dead` */
  deadLetterQueue?: string;
}

/** What the transport keeps for a delivery it handed out and that is not settled yet. */
interface Held {
  ch: Channel;
  msg: ConsumeMessage;
  queue: string;
}

/**
 * A consumer channel's unsettled deliveries, by delivery tag: all of them in delivery order (`open`), and the
 * acked ones whose frame is not sent yet (`due`). One `ack(multiple)` frame settles a run of due tags at the
 * low end of `open`; a due tag above a delivery still open gets a frame of its own.
 */
interface ChannelAcks {
  open: Set<number>;
  due: Map<number, ConsumeMessage>;
}

interface ConsumerState {
  queues: string[];
  prefetch: number;
  onDelivery: DeliveryHandler;
  ch: Channel | null;
  tags: string[];
  starting: Promise<void> | null;
  cancelled: boolean;
  release: () => void;
}

/**
 * The RabbitMQ transport. Deliveries carry tags unique for the life of this object
 * (`<instance>:<n>`), so settling a delivery whose channel died with a lost connection is a
 * no-op: the broker has already put the message back, and nothing is acknowledged twice.
 *
 * Rejected messages (requeue: false) are republished, with confirm, to the dead-letter queue
 * (`asynx.dead` unless configured) with headers `x-asynx-reason`, `x-asynx-queue` and
 * `x-asynx-rejected-at` (ISO time), then acknowledged.
 */
export class AmqpTransport implements Transport {
  readonly kind = 'amqp';
  readonly capabilities: TransportCapabilities;
  private readonly conn: AmqpConnection;
  private readonly instance = randomBytes(4).toString('hex');
  private seq = 0;
  private readonly publisher: AmqpPublisher;
  private readonly consumers = new Set<ConsumerState>();
  private readonly held = new Map<string, Held>();
  private readonly redeliveries = new Map<string, number>();
  /** Cleanup registered at creation, run once, newest first, by close(). */
  private readonly releasers = new Releasers();
  private readonly deadQueue: string;
  private readonly acks = new Map<Channel, ChannelAcks>();
  private ackFlushing = false;
  /** Ack frames sent and messages they settled (diagnostics; the multiple-ack test reads them). */
  readonly ackStats = { frames: 0, messages: 0 };

  constructor(
    readonly url: string,
    private readonly opts: AmqpTransportOptions,
  ) {
    // The delay ladder counts whole seconds, rounded up (see amqp-topology.ts).
    this.capabilities = { delayedDelivery: true, priorities: opts.maxPriority !== undefined, delayGranularityMs: 1000 };
    this.deadQueue = opts.deadLetterQueue ?? 'asynx.dead';
    this.conn = new AmqpConnection(url, { connectTimeoutMs: opts.connectTimeoutMs, connectionName: 'asynx transport' });
    this.publisher = new AmqpPublisher(this.conn, url, opts);
    this.conn.onOpen(() => this.onOpen());
    this.conn.onLost(() => this.onLost());
    // Closing the connection (last) hands every unsettled delivery back to its queue.
    this.releasers.add('close the AMQP connection', () => this.conn.close());
    this.releasers.add('stop publishing and consuming', () => {
      this.flushAcks();
      this.publisher.closed = true;
      for (const c of this.consumers) {
        c.cancelled = true;
        c.release();
      }
      this.consumers.clear();
      this.held.clear();
    });
  }

  private get closing(): boolean {
    return this.releasers.closed;
  }

  // ---- connection lifecycle -------------------------------------------------------------

  private async onOpen(): Promise<void> {
    this.publisher.reset();
    // Consumers resume once the connection is handed to waiters (after the open hooks).
    setImmediate(() => this.resumeConsumers());
  }

  private onLost(): void {
    this.publisher.reset();
    // Every held delivery died with its channel: the broker requeues them; settling them is a no-op.
    this.held.clear();
    this.acks.clear();
    for (const c of this.consumers) c.ch = null;
  }

  private resumeConsumers(): void {
    for (const c of this.consumers) if (!c.cancelled && !c.ch && !c.starting) this.startConsumer(c, Date.now() + this.opts.connectTimeoutMs).catch(() => undefined);
  }

  async connect(): Promise<void> {
    if (this.closing) throw new BrokerUnavailableError(`The AMQP transport to ${redact(this.url)} is closed: create a new one`);
    await this.conn.get(Date.now() + this.opts.connectTimeoutMs, `connect to RabbitMQ`);
  }

  async declareQueue(queue: string): Promise<void> {
    await this.publisher.declare(queue);
  }

  // ---- publishing -----------------------------------------------------------------------

  async publish(queue: string, message: WireMessage, opts: PublishOptions = {}): Promise<void> {
    const options = toPublishOptions(message.properties as unknown as Record<string, unknown>, message.headers);
    const eta = etaOf(message.headers, parseCeleryTime);
    await this.publisher.publish(queue, Buffer.from(message.body, 'utf8'), options, eta, opts.timeoutMs ?? this.opts.publishTimeoutMs, `publish task ${message.headers.id ?? ''} to queue '${queue}'`);
  }

  // ---- consuming ------------------------------------------------------------------------

  async consume(queues: string[], prefetch: number, onDelivery: DeliveryHandler): Promise<Consumer> {
    if (this.closing) throw new BrokerUnavailableError('Cannot consume: the AMQP transport is closed');
    const c: ConsumerState = { queues: [...queues], prefetch, onDelivery, ch: null, tags: [], starting: null, cancelled: false, release: this.conn.hold() };
    this.consumers.add(c);
    try {
      await this.startConsumer(c, Date.now() + this.opts.connectTimeoutMs);
    } catch (err) {
      c.cancelled = true;
      c.release();
      this.consumers.delete(c);
      throw err;
    }
    return { cancel: () => this.cancelConsumer(c) };
  }

  private startConsumer(c: ConsumerState, deadline: number): Promise<void> {
    if (c.starting) return c.starting;
    c.starting = (async () => {
      const what = `consume from ${c.queues.map((q) => `'${q}'`).join(', ')}`;
      const conn = await this.conn.get(deadline, what);
      const ch = await this.conn.bounded(conn.createChannel(), deadline, what);
      ch.on('error', () => undefined);
      ch.on('close', () => this.onConsumerChannelClosed(c, ch));
      try {
        await this.conn.bounded(ch.prefetch(c.prefetch, c.queues.length > 1), deadline, what);
        for (const q of c.queues) {
          try {
            await this.conn.bounded(declareTaskQueue(ch, q, this.opts.maxPriority), deadline, what);
          } catch (err) {
            throw declareError(err, q, this.url);
          }
        }
        // The delay ladder before the first delivery: retries with a countdown and rate-limit hand-backs
        // publish into it, and on a fresh broker its declarations would hold those deliveries' prefetch slots.
        for (const q of c.queues) await this.publisher.ensureLadder(ch, q, deadline, what);
        const tags: string[] = [];
        // Current before the first delivery: an early ack settles a delivery before ch.consume() resolves,
        // and closeIdleChannel() must not take this channel for an idle one and close it.
        c.ch = ch;
        for (const q of c.queues) {
          if (c.cancelled) break;
          tags.push((await this.conn.bounded(ch.consume(q, (msg) => this.onMessage(c, ch, q, msg), { noAck: false }), deadline, what)).consumerTag);
        }
        c.tags = tags;
      } catch (err) {
        if (c.ch === ch) c.ch = null;
        await ch.close().catch(() => undefined);
        throw err;
      }
      if (c.cancelled) {
        if (c.ch === ch) c.ch = null;
        await ch.close().catch(() => undefined);
        return;
      }
    })().finally(() => {
      c.starting = null;
    });
    return c.starting;
  }

  private onConsumerChannelClosed(c: ConsumerState, ch: Channel): void {
    for (const [tag, h] of this.held) if (h.ch === ch) this.held.delete(tag);
    this.acks.delete(ch);
    if (c.ch === ch) c.ch = null;
    if (c.cancelled || this.closing) return;
    // A channel error on a live connection (e.g. queue deleted): reopen after a pause.
    if (this.conn.current) {
      setTimeout(() => {
        if (!c.cancelled && !this.closing && !c.ch) this.startConsumer(c, Date.now() + this.opts.connectTimeoutMs).catch(() => undefined);
      }, 500).unref();
    }
  }

  private onMessage(c: ConsumerState, ch: Channel, queue: string, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // Cancelled by the broker (queue deleted): the close handler restarts the consumer.
      ch.close().catch(() => undefined);
      return;
    }
    let acks = this.acks.get(ch);
    if (!acks) this.acks.set(ch, (acks = { open: new Set(), due: new Map() }));
    acks.open.add(msg.fields.deliveryTag);
    const headers: unknown = msg.properties.headers ?? {};
    const eta = etaOf(headers, parseCeleryTime);
    if (eta !== null && eta > Date.now()) {
      // Not due (a Celery client published it straight to the queue, or the ladder was cut
      // short): park it in the ladder rather than in worker memory.
      void this.redelay(ch, queue, msg, eta);
      return;
    }
    const tag = `${this.instance}:${++this.seq}`;
    this.held.set(tag, { ch, msg, queue });
    const properties = fromMessageProperties(msg);
    const delivery: Delivery = {
      tag,
      queue,
      message: { properties, headers, body: bodyText(msg.content, properties.content_type) },
      redelivered: msg.fields.redelivered,
      deliveryCount: this.countDelivery(headers, msg.fields.redelivered),
    };
    try {
      c.onDelivery(delivery);
    } catch {
      // The handler must not throw; if it does, the message stays held until settled or the channel goes.
    }
  }

  /**
   * Classic queues do not count deliveries; this is a lower bound: 1, or at least 2 when
   * redelivered, counting redeliveries this process saw (by task id).
   */
  private countDelivery(headers: unknown, redelivered: boolean): number {
    if (!redelivered) return 1;
    const id = typeof headers === 'object' && headers !== null ? (headers as Record<string, unknown>).id : undefined;
    if (typeof id !== 'string') return 2;
    const n = (this.redeliveries.get(id) ?? 1) + 1;
    this.redeliveries.set(id, n);
    if (this.redeliveries.size > 10_000) this.redeliveries.delete(this.redeliveries.keys().next().value as string);
    return n;
  }

  private async redelay(ch: Channel, queue: string, msg: ConsumeMessage, eta: number): Promise<void> {
    try {
      const options = { ...toPublishOptions(fromMessageProperties(msg), msg.properties.headers ?? {}) };
      await this.publisher.publish(queue, msg.content, options, eta, this.opts.publishTimeoutMs, `delay a message in queue '${queue}'`);
      this.settleNow(ch, msg);
      ch.ack(msg);
    } catch {
      // Broker trouble: give it back; if the channel is gone the broker already has it.
      try {
        this.settleNow(ch, msg);
        ch.nack(msg, false, true);
      } catch {
        // channel closed
      }
    }
  }

  private async cancelConsumer(c: ConsumerState): Promise<void> {
    if (c.cancelled) return;
    c.cancelled = true;
    c.release();
    this.consumers.delete(c);
    if (c.starting) await c.starting.catch(() => undefined);
    const ch = c.ch;
    if (!ch) return;
    // Stop deliveries but keep the channel: held messages are settled on it later.
    for (const t of c.tags) await ch.cancel(t).catch(() => undefined);
    this.closeIdleChannel(ch);
  }

  // ---- settling -------------------------------------------------------------------------

  /**
   * Acks made in one callback and the promise chains it starts go out together once those settle (a
   * `process.nextTick`, so the frames reach amqplib in the same turn of the event loop as a single ack
   * did): a run of consecutive delivery tags as one `multiple` frame. Resolves at once, as a single ack
   * did (an AMQP ack has no confirm). Closing the transport or the consumer's channel sends queued acks first.
   */
  async ack(delivery: Delivery): Promise<void> {
    const h = this.held.get(delivery.tag);
    if (!h) return; // settled already, or its channel died (the broker requeued it)
    this.held.delete(delivery.tag);
    const acks = this.acks.get(h.ch);
    if (!acks) return; // its channel closed: the broker redelivers
    acks.due.set(h.msg.fields.deliveryTag, h.msg);
    if (!this.ackFlushing) {
      this.ackFlushing = true;
      // Not setImmediate: a turn later is a turn more in which a kill -9 redelivers a finished task.
      process.nextTick(() => this.flushAcks());
    }
  }

  /** Sends the queued acks of every channel, then closes the cancelled consumers' channels left idle. */
  private flushAcks(): void {
    this.ackFlushing = false;
    for (const [ch, acks] of this.acks) {
      if (!acks.due.size) continue;
      // The run of acked tags at the low end of the open ones: one frame for all of them.
      let last: ConsumeMessage | null = null;
      let run = 0;
      for (const tag of acks.open) {
        const msg = acks.due.get(tag);
        if (!msg) break;
        last = msg;
        run++;
      }
      try {
        if (last) {
          const multiple = run > 1;
          for (const tag of acks.open) {
            if (run-- === 0) break;
            acks.open.delete(tag);
            acks.due.delete(tag);
            this.ackStats.messages++;
          }
          ch.ack(last, multiple);
          this.ackStats.frames++;
        }
        for (const [tag, msg] of acks.due) {
          acks.open.delete(tag);
          ch.ack(msg);
          this.ackStats.frames++;
          this.ackStats.messages++;
        }
      } catch {
        // channel closed meanwhile: the broker redelivers what was not acked; nothing to do
      }
      acks.due.clear();
      this.closeIdleChannel(ch);
    }
  }

  /** A delivery settled by a frame sent right now (nack, dead-letter, redelay): no longer open. */
  private settleNow(ch: Channel, msg: ConsumeMessage): void {
    this.acks.get(ch)?.open.delete(msg.fields.deliveryTag);
  }

  async reject(delivery: Delivery, opts: { requeue: boolean; reason?: string }): Promise<void> {
    const h = this.held.get(delivery.tag);
    if (!h) return;
    if (opts.requeue) {
      this.held.delete(delivery.tag);
      try {
        this.settleNow(h.ch, h.msg);
        h.ch.nack(h.msg, false, true);
      } catch {
        // channel closed: the broker requeued it already
      }
      this.closeIdleChannel(h.ch);
      return;
    }
    const options = toPublishOptions(fromMessageProperties(h.msg), {
      ...(h.msg.properties.headers ?? {}),
      'x-asynx-reason': opts.reason ?? 'rejected',
      'x-asynx-queue': h.queue,
      'x-asynx-rejected-at': new Date().toISOString(),
    });
    delete options.expiration;
    options.deliveryMode = 2;
    // Move first, ack after: a crash in between gives a duplicate in the dead-letter queue, never a loss.
    await this.publisher.publish(this.deadQueue, h.msg.content, options, null, this.opts.publishTimeoutMs, `dead-letter a message from '${h.queue}'`);
    if (!this.held.has(delivery.tag)) return;
    this.held.delete(delivery.tag);
    try {
      this.settleNow(h.ch, h.msg);
      h.ch.ack(h.msg);
    } catch {
      // channel closed: it comes back and is dead-lettered again (at-least-once)
    }
    this.closeIdleChannel(h.ch);
  }

  /** A cancelled consumer's channel is closed once its last held delivery is settled. */
  private closeIdleChannel(ch: Channel): void {
    for (const c of this.consumers) if (c.ch === ch) return;
    for (const h of this.held.values()) if (h.ch === ch) return;
    if (this.acks.get(ch)?.due.size) return; // the ack flush closes it after sending them
    this.acks.delete(ch);
    ch.close().catch(() => undefined);
  }

  // ---- queue management -----------------------------------------------------------------

  async purge(queues: string[]): Promise<number> {
    return this.publisher.purge(queues);
  }

  /** Ready messages in the queue. Messages parked in the delay ladder are not counted (RabbitMQ cannot tell per target). */
  async count(queue: string): Promise<number> {
    return this.publisher.count(queue);
  }

  /** Closes for good: the same promise on every call; held deliveries go back to their queues. */
  close(): Promise<void> {
    return this.releasers.close();
  }
}
