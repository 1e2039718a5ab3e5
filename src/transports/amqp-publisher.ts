// The publishing half of the AMQP transport: one confirm channel, declarations, bounded confirmed publishes.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Channel, ConfirmChannel, Options } from 'amqplib';
import { AsynxError, BrokerUnavailableError } from '../errors.js';
import { type AmqpConnection, redactUrl } from './amqp-connection.js';
import { DELAY_DELIVER_EXCHANGE, DELAY_LEVELS, MAX_DELAY_S, declareDelayLadder, declareTaskQueue, delayLevelName, delayRoutingKey, deliverPattern } from './amqp-topology.js';

/** Options of {@link AmqpPublisher}. */
export interface AmqpPublisherOptions {
  connectTimeoutMs: number;
  publishTimeoutMs: number;
  maxPriority?: number;
}

/** Races `p` against `deadline` (epoch ms); the timeout error says whether the broker is unreachable, blocked or slow. */
export function withDeadline<T>(conn: AmqpConnection, p: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const waited = Math.max(0, deadline - Date.now());
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(conn.unavailable(what, deadline, waited)), waited);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** A declare failure → a clear error; AMQP 406 means the queue exists with other arguments. */
export function declareError(err: unknown, queue: string, url: string): unknown {
  if ((err as { code?: unknown }).code !== 406) return err;
  return new AsynxError(
    'asynx.broker.queueMismatch',
    `Queue '${queue}' already exists on ${redactUrl(url)} with other arguments (${(err as Error).message}). Declare it the same way in every client and worker (x-max-priority / maxPriority must match), or delete the queue`,
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
  private ch: ConfirmChannel | null = null;
  private opening: Promise<ConfirmChannel> | null = null;
  private readonly declared = new Set<string>();
  private ladderReady = false;
  private readonly deliverBound = new Set<string>();
  closed = false;

  constructor(
    private readonly conn: AmqpConnection,
    private readonly url: string,
    private readonly opts: AmqpPublisherOptions,
  ) {}

  /** Forgets the channel and what was declared (after a reconnect, the broker may have lost non-durable state). */
  reset(): void {
    this.ch = null;
    this.opening = null;
    this.declared.clear();
    this.deliverBound.clear();
    this.ladderReady = false;
  }

  /** The confirm channel, opened on demand. */
  async channel(deadline: number, what: string): Promise<ConfirmChannel> {
    for (;;) {
      if (this.ch) return this.ch;
      this.opening ??= (async () => {
        const conn = await this.conn.get(deadline, what);
        const ch = await withDeadline(this.conn, conn.createConfirmChannel(), deadline, what);
        ch.on('error', () => undefined);
        ch.on('close', () => {
          if (this.ch === ch) this.ch = null;
        });
        this.ch = ch;
        return ch;
      })().finally(() => {
        this.opening = null;
      });
      const ch = await this.opening;
      if (ch === this.ch) return ch;
    }
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

  private async ensureLadder(ch: Channel, queue: string): Promise<void> {
    if (!this.ladderReady) {
      await declareDelayLadder(ch);
      this.ladderReady = true;
    }
    if (!this.deliverBound.has(queue)) {
      await ch.bindQueue(queue, DELAY_DELIVER_EXCHANGE, deliverPattern(queue));
      this.deliverBound.add(queue);
    }
  }

  /** Declares a task queue as Celery does, bounded by the connect timeout. */
  async declare(queue: string): Promise<void> {
    const deadline = Date.now() + this.opts.connectTimeoutMs;
    const what = `declare queue '${queue}'`;
    const ch = await this.channel(deadline, what);
    await withDeadline(this.conn, this.ensureQueue(ch, queue), deadline, what);
  }

  /** Publishes and waits for the broker's confirm, bounded by `deadline`. */
  private confirm(ch: ConfirmChannel, exchange: string, key: string, content: Buffer, options: Options.Publish, deadline: number, what: string): Promise<void> {
    const confirmed = new Promise<void>((resolve, reject) => {
      try {
        ch.publish(exchange, key, content, options, (err) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()));
      } catch (err) {
        reject(err);
      }
    });
    return withDeadline(this.conn, confirmed, deadline, what);
  }

  /**
   * Publishes to `queue` (default exchange, routing key = queue, after declaring it), or into
   * the delay ladder when `eta` (epoch ms) is in the future. Retries across reconnects until
   * `timeoutMs` has passed.
   */
  async publish(queue: string, content: Buffer, options: Options.Publish, eta: number | null, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new BrokerUnavailableError(`Cannot ${what}: the AMQP transport is closed`);
      try {
        const ch = await this.channel(deadline, what);
        await withDeadline(this.conn, this.ensureQueue(ch, queue), deadline, what);
        const delayMs = eta === null ? 0 : eta - Date.now();
        if (delayMs > 0) {
          await withDeadline(this.conn, this.ensureLadder(ch, queue), deadline, what);
          // Whole seconds, rounded up: never early, at most ~1 s late.
          const delayS = Math.min(MAX_DELAY_S, Math.ceil(delayMs / 1000));
          // A per-message TTL would cut a ladder step short: the `expires` header is what counts.
          const { expiration: _dropped, ...rest } = options;
          await this.confirm(ch, delayLevelName(DELAY_LEVELS - 1), delayRoutingKey(delayS, queue), content, rest, deadline, what);
        } else {
          await this.confirm(ch, '', queue, content, options, deadline, what);
        }
        return;
      } catch (err) {
        if (err instanceof AsynxError) throw err; // timed out, closed, or a queue mismatch
        if (Date.now() >= deadline) {
          throw new BrokerUnavailableError(`Cannot ${what}: RabbitMQ at ${redactUrl(this.url)} did not confirm within ${timeoutMs} ms (${(err as Error).message}). Check that the broker is running, or raise publishTimeout (ASYNX_PUBLISH_TIMEOUT)`, {
            cause: err,
            facts: { timedOut: true, value: queue },
          });
        }
        // Channel closed or message nacked: back off briefly and send again.
        await sleep(Math.min(50 * 2 ** Math.min(attempt, 4), Math.max(0, deadline - Date.now())));
      }
    }
  }

  /** Deletes the ready messages of each queue; resolves to the total removed. */
  async purge(queues: string[]): Promise<number> {
    const deadline = Date.now() + this.opts.publishTimeoutMs;
    const what = `purge ${queues.map((q) => `'${q}'`).join(', ')}`;
    const ch = await this.channel(deadline, what);
    let n = 0;
    for (const q of queues) {
      await withDeadline(this.conn, this.ensureQueue(ch, q), deadline, what);
      n += (await withDeadline(this.conn, ch.purgeQueue(q), deadline, what)).messageCount;
    }
    return n;
  }

  /** Ready messages in a queue (a passive-safe re-declare with the same arguments). */
  async count(queue: string): Promise<number> {
    const deadline = Date.now() + this.opts.publishTimeoutMs;
    const what = `count queue '${queue}'`;
    const ch = await this.channel(deadline, what);
    try {
      return await withDeadline(this.conn, declareTaskQueue(ch, queue, this.opts.maxPriority), deadline, what);
    } catch (err) {
      throw declareError(err, queue, this.url);
    }
  }
}
