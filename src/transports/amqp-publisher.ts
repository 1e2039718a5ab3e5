// The publishing half of the AMQP transport: one confirm channel, declarations, bounded confirmed publishes.

import type { Channel, ConfirmChannel, Options } from 'amqplib';
import { ConfirmChannelSlot, publishConfirmed, untilConfirmed } from '../amqp/confirm-channel.js';
import type { AmqpConnection } from '../amqp/connection.js';
import { AsynxError } from '../errors.js';
import { redact } from '../util/redact.js';
import { DELAY_DELIVER_EXCHANGE, MAX_DELAY_S, declareDelayLadder, declareTaskQueue, delayEntryLevel, delayLevelName, delayRoutingKey, deliverPattern } from './amqp-topology.js';

/** Channels the ladder's declarations are spread over (4 take a fresh broker's ~1 s to ~0.3 s). */
const LADDER_CHANNELS = 4;

/** Options of {@link AmqpPublisher}. */
export interface AmqpPublisherOptions {
  connectTimeoutMs: number;
  publishTimeoutMs: number;
  maxPriority?: number;
}

/** A declare failure → a clear error; AMQP 406 means the queue exists with other arguments. */
export function declareError(err: unknown, queue: string, url: string): unknown {
  if ((err as { code?: unknown }).code !== 406) return err;
  return new AsynxError(
    'asynx.broker.queueMismatch',
    `Queue '${queue}' already exists on ${redact(url)} with other arguments (${(err as Error).message}). Declare it the same way in every client and worker (x-max-priority / maxPriority must match), or delete the queue`,
    { cause: err, facts: { value: queue } },
  );
}

/**
 * Publishes with publisher confirms: a publish resolves only once the broker has the message,
 * and fails with BrokerUnavailableError when that takes longer than its timeout (reconnects
 * included). A publish whose confirm was lost with the connection is sent again on the next
 * one (at-least-once: a duplicate is possible, a loss is not).
 */
export class AmqpPublisher {
  private readonly slot: ConfirmChannelSlot;
  private readonly declared = new Set<string>();
  /** The ladder's declaration, shared by concurrent first delayed publishes (one declaration, not one each). */
  private ladderReady: Promise<void> | null = null;
  private readonly deliverBound = new Set<string>();
  closed = false;

  constructor(
    private readonly conn: AmqpConnection,
    private readonly url: string,
    private readonly opts: AmqpPublisherOptions,
  ) {
    this.slot = new ConfirmChannelSlot(conn);
  }

  /** Forgets the channel and what was declared (after a reconnect, the broker may have lost non-durable state). */
  reset(): void {
    this.slot.reset();
    this.declared.clear();
    this.deliverBound.clear();
    this.ladderReady = null;
  }

  /** The confirm channel, opened on demand. */
  channel(deadline: number, what: string): Promise<ConfirmChannel> {
    return this.slot.get(deadline, what);
  }

  private async ensureQueue(ch: Channel, queue: string): Promise<number | null> {
    if (this.declared.has(queue)) return null;
    let ready: number;
    try {
      ready = await declareTaskQueue(ch, queue, this.opts.maxPriority);
    } catch (err) {
      throw declareError(err, queue, this.url);
    }
    this.declared.add(queue);
    return ready;
  }

  /**
   * Makes the delay ladder ready for `queue`: the ladder declared once per connection (shared by concurrent
   * callers), then `queue` bound to the deliver exchange on `ch`. Consumers call it before they consume, so a
   * worker's first retry countdown or rate-limit hand-back does not wait for a fresh broker's declarations.
   */
  async ensureLadder(ch: Channel, queue: string, deadline: number, what: string): Promise<void> {
    if (!this.ladderReady) {
      const declaring = this.declareLadder(deadline, what);
      this.ladderReady = declaring;
      declaring.catch(() => {
        if (this.ladderReady === declaring) this.ladderReady = null;
      });
    }
    await this.conn.bounded(this.ladderReady, deadline, what);
    if (!this.deliverBound.has(queue)) {
      await this.conn.bounded(ch.bindQueue(queue, DELAY_DELIVER_EXCHANGE, deliverPattern(queue)), deadline, what);
      this.deliverBound.add(queue);
    }
  }

  /** Declares the ladder over channels of its own, closed after (a channel answers one declaration at a time). */
  private async declareLadder(deadline: number, what: string): Promise<void> {
    const conn = await this.conn.get(deadline, what);
    const chs: Channel[] = [];
    try {
      for (let i = 0; i < LADDER_CHANNELS; i++) {
        const ch = await conn.createChannel();
        ch.on('error', () => undefined);
        chs.push(ch);
      }
      await declareDelayLadder(chs);
    } finally {
      await Promise.all(chs.map((ch) => ch.close().catch(() => undefined)));
    }
  }

  /** Declares a task queue as Celery does, bounded by the connect timeout. */
  async declare(queue: string): Promise<void> {
    const deadline = Date.now() + this.opts.connectTimeoutMs;
    const what = `declare queue '${queue}'`;
    const ch = await this.channel(deadline, what);
    await this.conn.bounded(this.ensureQueue(ch, queue), deadline, what);
  }

  /**
   * Publishes to `queue` (default exchange, routing key = queue, after declaring it), or into
   * the delay ladder when `eta` (epoch ms) is in the future. Retries across reconnects until
   * `timeoutMs` has passed.
   */
  async publish(queue: string, content: Buffer, options: Options.Publish, eta: number | null, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await untilConfirmed(
      async () => {
        const ch = await this.channel(deadline, what);
        await this.conn.bounded(this.ensureQueue(ch, queue), deadline, what);
        const delayMs = eta === null ? 0 : eta - Date.now();
        if (delayMs > 0) {
          await this.ensureLadder(ch, queue, deadline, what);
          // Whole seconds, rounded up: never early, at most ~1 s late.
          const delayS = Math.min(MAX_DELAY_S, Math.ceil(delayMs / 1000));
          // A per-message TTL would cut a ladder step short: the `expires` header is what counts.
          const { expiration: _dropped, ...rest } = options;
          await publishConfirmed(this.conn, ch, delayLevelName(delayEntryLevel(delayS)), delayRoutingKey(delayS, queue), content, rest, deadline, what);
        } else {
          await publishConfirmed(this.conn, ch, '', queue, content, options, deadline, what);
        }
      },
      { deadline, timeoutMs, what, url: this.url, closed: () => this.closed, facts: { value: queue } },
    );
  }

  /** Deletes the ready messages of each queue; resolves to the total removed. */
  async purge(queues: string[]): Promise<number> {
    const deadline = Date.now() + this.opts.publishTimeoutMs;
    const what = `purge ${queues.map((q) => `'${q}'`).join(', ')}`;
    const ch = await this.channel(deadline, what);
    let n = 0;
    for (const q of queues) {
      await this.conn.bounded(this.ensureQueue(ch, q), deadline, what);
      n += (await this.conn.bounded(ch.purgeQueue(q), deadline, what)).messageCount;
    }
    return n;
  }

  /**
   * Ready messages in a queue, by passive declare on a channel of its own (a missing queue closes that
   * channel with 404, and counts 0): counting never creates a queue or clashes with its arguments.
   */
  async count(queue: string): Promise<number> {
    const deadline = Date.now() + this.opts.publishTimeoutMs;
    const what = `count queue '${queue}'`;
    const model = await this.conn.get(deadline, what);
    const ch = await this.conn.bounded(model.createChannel(), deadline, what);
    let closed = false;
    ch.on('error', () => undefined);
    ch.on('close', () => (closed = true));
    try {
      return (await this.conn.bounded(ch.checkQueue(queue), deadline, what)).messageCount;
    } catch (err) {
      if ((err as { code?: unknown }).code === 404) return 0;
      throw declareError(err, queue, this.url);
    } finally {
      if (!closed) await ch.close().catch(() => undefined);
    }
  }

}
