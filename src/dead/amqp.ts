// Dead letters on RabbitMQ: the `asynx.dead` queue read by get/nack (it cannot be browsed), requeued with confirms.

import { createHash } from 'node:crypto';
import type { Channel, GetMessage } from 'amqplib';
import { parseCeleryTime } from '../protocol/codec.js';
import { AmqpConnection } from '../amqp/connection.js';
import { AmqpPublisher } from '../transports/amqp-publisher.js';
import { bodyText, etaOf, fromMessageProperties, toPublishOptions } from '../transports/amqp-topology.js';
import { deadLetterNoQueue, deadLetterNotFound, describeMessage, listLimit, type DeadLetter, type DeadLetterDetail, type DeadLetters, type ListDeadLettersOptions, type RequeueOptions, type RequeueOutcome } from './dead-letters.js';

/** Options of {@link AmqpDeadLetters}. */
export interface AmqpDeadLettersOptions {
  /** Bound on connecting, ms. */
  connectTimeoutMs: number;
  /** Bound on each confirmed publish of a requeue, ms. */
  publishTimeoutMs: number;
  /** `x-max-priority` the task queues are declared with (must match the workers'). @defaultValue unset */
  maxPriority?: number;
  /** The dead-letter queue. @defaultValue `asynx.dead` */
  queue?: string;
}

/** Headers the dead-lettering added (ours and RabbitMQ's), dropped on requeue so the message starts afresh. */
const DEAD_HEADERS = ['x-asynx-reason', 'x-asynx-queue', 'x-asynx-rejected-at', 'x-death', 'x-first-death-exchange', 'x-first-death-queue', 'x-first-death-reason', 'x-delivery-count'];

/** A message taken from the dead-letter queue and not settled yet. */
interface Taken {
  msg: GetMessage;
  letter: DeadLetterDetail;
}

function idOf(headers: Record<string, unknown>, messageId: unknown, content: Buffer): string {
  if (typeof headers.id === 'string' && headers.id !== '') return headers.id;
  if (typeof messageId === 'string' && messageId !== '') return messageId;
  return `sha-${createHash('sha256').update(content).digest('hex').slice(0, 12)}`;
}

function letterOf(msg: GetMessage): DeadLetterDetail {
  const properties = fromMessageProperties(msg as unknown as Parameters<typeof fromMessageProperties>[0]);
  const body = bodyText(msg.content, properties.content_type);
  const d = describeMessage(msg.properties.headers ?? {}, body);
  const h = d.headers;
  const text = (k: string) => (typeof h[k] === 'string' && h[k] !== '' ? (h[k] as string) : null);
  return {
    id: idOf(h, msg.properties.messageId, msg.content),
    queue: text('x-asynx-queue'),
    reason: text('x-asynx-reason') ?? 'unknown (no x-asynx-reason header)',
    deliveries: null,
    task: d.task,
    taskId: d.taskId,
    argsRepr: d.argsRepr,
    deadLetteredAt: text('x-asynx-rejected-at'),
    kwargsRepr: d.kwargsRepr,
    properties,
    headers: h,
    body,
  };
}

function summary(l: DeadLetterDetail): DeadLetter {
  const { kwargsRepr: _k, properties: _p, headers: _h, body: _b, ...rest } = l;
  return rest;
}

/**
 * The dead-letter queue of a RabbitMQ broker (`asynx.dead`). AMQP has no way to read a queue without
 * taking its messages, so every call is one pass: it counts the queue, takes at most that many
 * messages with `basic.get` (manual ack, so none is lost if this process dies: the broker puts
 * unacknowledged ones back), settles the ones the call is about (ack after a confirmed republish for
 * requeue, ack for purge) and hands every other one back with `basic.nack(requeue)`, in the order
 * taken. RabbitMQ puts a requeued message back at its old place in a classic queue, so the order is
 * kept; messages dead-lettered during the pass are not seen by it. While a pass runs (milliseconds
 * per thousand messages) the messages are invisible to other readers, and they come back marked
 * `redelivered`.
 *
 * Ids are task ids (`headers.id`), so copies of one message (dead-lettering is at-least-once) share
 * an id: `requeue(id)` sends one copy and removes them all.
 */
export class AmqpDeadLetters implements DeadLetters {
  readonly kind = 'amqp';
  private readonly conn: AmqpConnection;
  private readonly publisher: AmqpPublisher;
  private readonly queue: string;

  constructor(
    readonly url: string,
    private readonly opts: AmqpDeadLettersOptions,
  ) {
    this.queue = opts.queue ?? 'asynx.dead';
    this.conn = new AmqpConnection(url, { connectTimeoutMs: opts.connectTimeoutMs, connectionName: 'asynx dead letters' });
    this.publisher = new AmqpPublisher(this.conn, url, { connectTimeoutMs: opts.connectTimeoutMs, publishTimeoutMs: opts.publishTimeoutMs, ...(opts.maxPriority !== undefined ? { maxPriority: opts.maxPriority } : {}) });
  }

  /**
   * One pass over the queue: takes up to `max` messages (never more than it held at the start), lets
   * `settle` ack some of them (it returns the ones it settled), and gives every other one back in order.
   */
  private async pass<T>(max: number, settle: (taken: Taken[], ch: Channel) => Promise<{ value: T; settled: Set<Taken> }>): Promise<T> {
    const deadline = Date.now() + this.opts.connectTimeoutMs;
    const what = `read the dead-letter queue '${this.queue}'`;
    const conn = await this.conn.get(deadline, what);
    const ch = await this.conn.bounded(conn.createChannel(), deadline, what);
    ch.on('error', () => undefined);
    const taken: Taken[] = [];
    let settled = new Set<Taken>();
    try {
      let count: number;
      try {
        count = (await this.conn.bounded(ch.checkQueue(this.queue), deadline, what)).messageCount;
      } catch (err) {
        if ((err as { code?: unknown }).code !== 404) throw err;
        count = 0; // no worker has dead-lettered anything yet
      }
      for (let i = 0; i < Math.min(count, max); i++) {
        const msg = await this.conn.bounded(ch.get(this.queue, { noAck: false }), Date.now() + this.opts.connectTimeoutMs, what);
        if (msg === false) break;
        taken.push({ msg, letter: letterOf(msg) });
      }
      const out = await settle(taken, ch);
      settled = out.settled;
      return out.value;
    } finally {
      for (const t of taken) {
        if (settled.has(t)) continue;
        try {
          ch.nack(t.msg, false, true);
        } catch {
          // channel gone: the broker has put everything unacknowledged back already
        }
      }
      await ch.close().catch(() => undefined);
    }
  }

  async list(opts: ListDeadLettersOptions = {}): Promise<DeadLetter[]> {
    const limit = listLimit(opts);
    // With a queue filter the whole queue is read (matches may be anywhere); without, only `limit`.
    return this.pass(opts.queue === undefined ? limit : Number.MAX_SAFE_INTEGER, async (taken) => ({
      value: taken
        .map((t) => t.letter)
        .filter((l) => opts.queue === undefined || l.queue === opts.queue)
        .slice(0, limit)
        .map(summary),
      settled: new Set(),
    }));
  }

  async show(id: string): Promise<DeadLetterDetail> {
    const found = await this.pass(Number.MAX_SAFE_INTEGER, async (taken) => ({ value: taken.find((t) => t.letter.id === id)?.letter, settled: new Set() }));
    if (!found) throw deadLetterNotFound(id, `the RabbitMQ queue '${this.queue}'`);
    return found;
  }

  async requeue(id: string | 'all', opts: RequeueOptions = {}): Promise<RequeueOutcome> {
    return this.pass(Number.MAX_SAFE_INTEGER, async (taken, ch) => {
      const matches = taken.filter((t) => id === 'all' || t.letter.id === id);
      if (!matches.length && id !== 'all') throw deadLetterNotFound(id, `the RabbitMQ queue '${this.queue}'`);
      const settled = new Set<Taken>();
      const requeued: RequeueOutcome['requeued'] = [];
      const sent = new Map<string, string>();
      // Every target is known before anything moves: a usage error never leaves a requeue half done.
      for (const t of matches) if ((opts.queue ?? t.letter.queue) === null) throw deadLetterNoQueue(t.letter.id);
      for (const t of matches) {
        const target = (opts.queue ?? t.letter.queue)!;
        if (!sent.has(t.letter.id)) {
          const headers = { ...t.letter.headers };
          for (const k of DEAD_HEADERS) delete headers[k];
          const options = toPublishOptions(t.letter.properties, headers);
          const eta = etaOf(headers, parseCeleryTime);
          // Republish with confirm first, ack after: a crash in between leaves a copy here, never a loss.
          await this.publisher.publish(target, t.msg.content, options, eta, this.opts.publishTimeoutMs, `requeue dead letter '${t.letter.id}' to '${target}'`);
          sent.set(t.letter.id, target);
          requeued.push({ id: t.letter.id, taskId: t.letter.taskId, queue: target });
        }
        ch.ack(t.msg);
        settled.add(t);
      }
      return { value: { requeued }, settled };
    });
  }

  async purge(opts: { queue?: string } = {}): Promise<number> {
    return this.pass(Number.MAX_SAFE_INTEGER, async (taken, ch) => {
      const settled = new Set<Taken>();
      for (const t of taken) {
        if (opts.queue !== undefined && t.letter.queue !== opts.queue) continue;
        ch.ack(t.msg);
        settled.add(t);
      }
      return { value: settled.size, settled };
    });
  }

  async close(): Promise<void> {
    this.publisher.closed = true;
    await this.conn.close();
  }
}
