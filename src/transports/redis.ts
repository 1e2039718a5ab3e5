// Redis transport (ioredis), a peer of kombu's: its envelope, lists and ack emulation, plus a delayed store for eta.

import { randomBytes, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AsynxError, BrokerUnavailableError } from '../errors.js';
import { parseCeleryTime } from '../protocol/codec.js';
import { DEDUPE_HEADER, type WireMessage } from '../protocol/message.js';
import { Releasers } from '../util/close-once.js';
import { withDeadline } from '../util/deadline.js';
import { redact } from '../util/redact.js';
import { etaOf } from './amqp-topology.js';
import { declareBinding } from './redis-bindings.js';
import { closeRedis, openRedis, parseRedisTarget, type RedisTarget } from './redis-connection.js';
import { RedisConsumer } from './redis-consumer.js';
import { addDelayed, countDelayed, DelayedMover, purgeDelayed } from './redis-delayed.js';
import { deliveryCountOf, deliveryTagOf, type Envelope, fromEnvelope, isRedelivered, readEnvelope, routeOf, toEnvelope, wrapRawItem } from './redis-envelope.js';
import { DedupeHolds, publishTracked, publishUnique, type Push } from './redis-dedupe.js';
import { DELAYED_INDEX, delayedKey, listKey, listKeys } from './redis-keys.js';
import { AckBatch, appendUnacked, deadLetterUnacked, parkUnacked, popAndRecord, renewUnacked, restoreByTag, sweepUnacked } from './redis-qos.js';
import { takeToken } from './redis-rate.js';
import type { Consumer, Delivery, DeliveryHandler, PublishOptions, Transport, TransportCapabilities } from './transport.js';

/** kombu's default visibility timeout: an unacked message is restored this long after it was handed out, ms. */
export const DEFAULT_VISIBILITY_TIMEOUT_MS = 3_600_000;

/** Options of the Redis transport. */
export interface RedisTransportOptions {
  /** Bound on connecting, ms. */
  connectTimeoutMs: number;
  /** Bound on a publish (and on each other command), ms. */
  publishTimeoutMs: number;
  /**
   * How long a handed-out message may stay unacked before a sweep (of any worker on this Redis, Python ones
   * included) puts it back, ms. Deliveries this process holds are renewed while it lives, so only those of a
   * dead consumer come back. @defaultValue the URL's `?visibility_timeout=` (seconds), else 3600 s (kombu's)
   */
  visibilityTimeoutMs?: number;
  /** List that rejected (not requeued) messages are moved to. @defaultValue `asynx.dead` */
  deadLetterQueue?: string;
  /** How often the delayed store is checked for due messages other processes parked, ms. @defaultValue 250 */
  delayPollMs?: number;
}

interface ConsumerState {
  consumer: RedisConsumer;
  blocking: Redis;
  held: number;
  onDelivery: DeliveryHandler;
}

/** A delivery handed out and not settled yet. */
interface Held {
  state: ConsumerState;
  /** The kombu delivery tag: the field of the `unacked` hash. */
  redisTag: string;
  queue: string;
  envelope: Envelope | null;
  /** The headers of an item that is no envelope, where they could be read (they go with it to the dead list). */
  headers: Record<string, unknown>;
  raw: string;
  /** False when the unacked entry could not be written (Redis went away after the pop). */
  recorded: boolean;
}

/**
 * The Redis transport, on kombu's layout so Python Celery clients and workers share the queues: a task is a
 * JSON envelope LPUSHed onto the list named after its queue (`queue\x06\x16<3|6|9>` for lower priority steps;
 * as on kombu, **0 is the highest priority**). A consumer pops ready messages with a Lua script that records
 * them in `unacked` / `unacked_index` in the same step, and waits with BRPOP on a connection of its own when
 * every list is empty. An entry stays there until acked; a sweep under `unacked_mutex` restores those older
 * than the visibility timeout, and close() restores this process's own.
 *
 * eta/countdown messages wait in a zset per list (`_asynx.delayed.<list>`, scored by due time) and are moved
 * to their list atomically (one Lua script) when due, by any asynx transport on the Redis that consumes or has
 * published a delayed message; one that a Python client LPUSHed with a future `eta` is moved there when popped,
 * so it never waits unacked past the visibility timeout (kombu#337's duplicates). Rejected (not requeued)
 * messages go to the `asynx.dead` list with headers `x-asynx-reason`, `x-asynx-queue`, `x-asynx-rejected-at`.
 *
 * Global rate limits and dedupe keys are shared by every asynx process on the server (same db): buckets in
 * `_asynx.rate.<key>`, dedupe keys in `_asynx.dedupe.<key>`, each updated by one Lua script on the server's
 * clock. A worker holds the key of a task it took under a lease of the visibility timeout, renewed while it
 * lives, so a killed worker's key frees when the lease ends (unless a message of the task still waits).
 */
export class RedisTransport implements Transport {
  readonly kind = 'redis';
  readonly capabilities: TransportCapabilities;
  private readonly target: RedisTarget;
  private readonly cmd: Redis;
  private readonly visibilityMs: number;
  private readonly deadList: string;
  private readonly instance = randomBytes(4).toString('hex');
  private seq = 0;
  private readonly held = new Map<string, Held>();
  /** Dedupe keys this process holds, their leases renewed with the held deliveries. */
  private readonly dedupe: DedupeHolds;
  private readonly consumers = new Set<ConsumerState>();
  private readonly declared = new Set<string>();
  private readonly mover: DelayedMover;
  /** Acks of one event-loop turn, sent as one MULTI. */
  private readonly acks: AckBatch;
  private readonly releasers = new Releasers();
  private timers: NodeJS.Timeout[] = [];
  private everReady = false;

  constructor(
    readonly url: string,
    private readonly opts: RedisTransportOptions,
  ) {
    this.target = parseRedisTarget(url);
    this.visibilityMs = opts.visibilityTimeoutMs ?? this.target.visibilityTimeoutMs ?? DEFAULT_VISIBILITY_TIMEOUT_MS;
    this.deadList = opts.deadLetterQueue ?? 'asynx.dead';
    const pollMs = opts.delayPollMs ?? 250;
    this.capabilities = { delayedDelivery: true, priorities: true, lowerPriorityFirst: true, delayGranularityMs: pollMs };
    this.cmd = openRedis(this.target, `asynx-${this.instance}`, { connectTimeoutMs: opts.connectTimeoutMs });
    this.cmd.on('error', () => undefined);
    this.cmd.on('ready', () => {
      if (this.everReady) this.redeclare();
      this.everReady = true;
    });
    this.mover = new DelayedMover(this.cmd, pollMs);
    this.acks = new AckBatch(this.cmd);
    this.dedupe = new DedupeHolds(this.cmd, this.instance, this.visibilityMs);
    this.releasers.add('close the Redis connection', () => closeRedis(this.cmd));
    this.releasers.add('restore held deliveries', () => this.restoreHeld());
    this.releasers.add('stop consuming', async () => {
      for (const t of this.timers) clearInterval(t);
      this.timers = [];
      await this.mover.stop();
      await Promise.all([...this.consumers].map((c) => this.stopConsumer(c)));
    });
  }

  private get closing(): boolean {
    return this.releasers.closed;
  }

  private closedError(what: string): BrokerUnavailableError {
    return new BrokerUnavailableError(`Cannot ${what}: the Redis transport to ${redact(this.url)} is closed; create a new one`);
  }

  /** Runs a Redis call bounded by `ms`; a timeout or a connection error becomes BrokerUnavailableError. */
  private async bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    try {
      return await withDeadline(p, ms, () => new BrokerUnavailableError(`Could not ${what} on Redis ${redact(this.url)} within ${ms} ms: is it running? (check brokerUrl)`));
    } catch (err) {
      if (err instanceof AsynxError) throw err;
      throw new BrokerUnavailableError(`Could not ${what} on Redis ${redact(this.url)}: ${(err as Error).message}`, { cause: err });
    }
  }

  // ---- connection -------------------------------------------------------------------------

  /** Resolves once `conn` is ready, starting it if it never was; rejects after `ms`. */
  private async ready(conn: Redis, ms: number, what: string): Promise<void> {
    if (conn.status === 'ready') return;
    if (conn.status === 'wait' || conn.status === 'end') conn.connect().catch(() => undefined);
    let onReady: (() => void) | undefined;
    try {
      await this.bounded(
        new Promise<void>((resolve) => {
          onReady = resolve;
          conn.once('ready', onReady);
        }),
        ms,
        what,
      );
    } finally {
      // A timed-out wait must not leave its listener behind (publishes during an outage would pile them up).
      if (onReady) conn.off('ready', onReady);
    }
  }

  async connect(): Promise<void> {
    if (this.closing) throw this.closedError('connect');
    await this.ready(this.cmd, this.opts.connectTimeoutMs, 'connect');
  }

  /** After a reconnect (a restarted Redis lost its keys): the bindings of every queue declared here again. */
  private redeclare(): void {
    for (const q of this.declared) declareBinding(this.cmd, q).catch(() => undefined);
  }

  async declareQueue(queue: string): Promise<void> {
    if (this.closing) throw this.closedError(`declare queue '${queue}'`);
    await this.connect();
    await this.bounded(declareBinding(this.cmd, queue), this.opts.publishTimeoutMs, `declare queue '${queue}'`);
    this.declared.add(queue);
  }

  // ---- publishing -------------------------------------------------------------------------

  async publish(queue: string, message: WireMessage, opts: PublishOptions = {}): Promise<void> {
    if (this.closing) throw this.closedError(`publish to '${queue}'`);
    const ms = opts.timeoutMs ?? this.opts.publishTimeoutMs;
    const what = `publish task ${message.headers.id ?? ''} to queue '${queue}'`;
    await this.ready(this.cmd, ms, what);
    const push = this.pushOf(queue, message);
    const key = message.headers[DEDUPE_HEADER];
    if (typeof key === 'string' && key !== '') await this.bounded(publishTracked(this.cmd, key, message.headers.id, push), ms, what);
    else if (push.dueMs !== null) await this.bounded(addDelayed(this.cmd, push.list, push.raw, push.dueMs), ms, what);
    else await this.bounded(this.cmd.lpush(push.list, push.raw), ms, what);
    this.delayed(push);
  }

  /**
   * The envelope of a publish, the list it goes to, and its due time when its eta is ahead (null with
   * `?delayed_delivery=false`: the message goes onto its list now, and its consumer holds it until the eta).
   */
  private pushOf(queue: string, message: WireMessage): Push {
    const e = toEnvelope(queue, message);
    const eta = this.target.delayedDelivery === false ? null : etaOf(message.headers, parseCeleryTime);
    return { list: listKey(queue, e.properties.priority), raw: JSON.stringify(e), tag: String(e.properties.delivery_tag), queue, dueMs: eta !== null && eta > Date.now() ? eta : null };
  }

  /** After a delayed push: the mover runs, and early enough for it. */
  private delayed(push: Push): void {
    if (push.dueMs === null) return;
    this.mover.start();
    this.mover.poke(push.dueMs);
  }

  /**
   * Publishes unless a task holding the dedupe `key` still waits (ready or delayed, any priority) or runs
   * under a live lease: the check, the claim and the push are one script. Null when sent, else the holder's id.
   */
  async publishUnique(queue: string, message: WireMessage, key: string, opts: PublishOptions = {}): Promise<string | null> {
    if (this.closing) throw this.closedError(`publish to '${queue}'`);
    const ms = opts.timeoutMs ?? this.opts.publishTimeoutMs;
    const what = `publish task ${message.headers.id ?? ''} to queue '${queue}'`;
    await this.ready(this.cmd, ms, what);
    const push = this.pushOf(queue, message);
    const holder = await this.bounded(publishUnique(this.cmd, key, message.headers.id, push), ms, what);
    if (holder === null) this.delayed(push);
    return holder;
  }

  /** A worker here took the task holding `key`: it counts as running while this process renews the lease. */
  async holdDedupe(key: string, taskId: string): Promise<void> {
    if (this.closing) throw this.closedError('hold a dedupe key');
    await this.bounded(this.dedupe.hold(key, taskId), this.opts.publishTimeoutMs, `hold dedupe key '${key}'`);
  }

  /** The task holding `key` ended here: the key is free unless a message of it still waits (a retry). */
  async releaseDedupe(key: string, taskId: string): Promise<void> {
    if (this.closing) throw this.closedError('release a dedupe key');
    await this.bounded(this.dedupe.release(key, taskId), this.opts.publishTimeoutMs, `release dedupe key '${key}'`);
  }

  /** A global rate limit's bucket, shared by every process on this Redis server and db (the server's clock). */
  async takeRateToken(key: string, intervalMs: number): Promise<number> {
    if (this.closing) throw this.closedError('take a rate-limit token');
    await this.connect();
    return this.bounded(takeToken(this.cmd, key, intervalMs), this.opts.publishTimeoutMs, `take a token of rate limit '${key}'`);
  }

  // ---- consuming --------------------------------------------------------------------------

  async consume(queues: string[], prefetch: number, onDelivery: DeliveryHandler): Promise<Consumer> {
    if (this.closing) throw this.closedError('consume');
    for (const q of queues) await this.declareQueue(q);
    const blocking = openRedis(this.target, `asynx-${this.instance}-consumer`, { connectTimeoutMs: this.opts.connectTimeoutMs, blocking: true });
    blocking.on('error', () => undefined);
    try {
      await this.ready(blocking, this.opts.connectTimeoutMs, `consume from ${queues.map((q) => `'${q}'`).join(', ')}`);
    } catch (err) {
      blocking.disconnect();
      throw err;
    }
    const state = { held: 0, onDelivery, blocking } as ConsumerState;
    state.consumer = new RedisConsumer(queues, Math.max(1, prefetch), blocking, this.cmd, {
      held: () => state.held,
      pop: (lists, queues, max) => popAndRecord(this.cmd, lists, queues, randomUUID(), max),
      onItem: (list, queue, raw, tag) => this.onItem(state, list, queue, raw, tag),
      putBack: async (list, raw) => {
        await this.cmd.rpush(list, raw);
      },
      onError: () => undefined,
    });
    this.consumers.add(state);
    this.startBackground();
    state.consumer.start();
    return { cancel: () => this.stopConsumer(state) };
  }

  private async stopConsumer(state: ConsumerState): Promise<void> {
    if (!this.consumers.delete(state)) return;
    await state.consumer.cancel();
    await closeRedis(state.blocking);
  }

  /** The delayed mover, the visibility sweep and the renewal of held deliveries, once a consumer runs. */
  private startBackground(): void {
    this.mover.start();
    if (this.timers.length) return;
    const sweepMs = Math.min(10_000, Math.max(250, Math.floor(this.visibilityMs / 4)));
    const renewMs = Math.min(60_000, Math.max(100, Math.floor(this.visibilityMs / 3)));
    const sweep = setInterval(() => void sweepUnacked(this.cmd, this.visibilityMs).catch(() => undefined), sweepMs);
    const renew = setInterval(() => {
      const tags = [...this.held.values()].filter((h) => h.recorded).map((h) => h.redisTag);
      void renewUnacked(this.cmd, tags).catch(() => undefined);
      void this.dedupe.renew().catch(() => undefined);
    }, renewMs);
    sweep.unref();
    renew.unref();
    this.timers.push(sweep, renew);
  }

  /** One popped item: parked in the delayed store when its eta is ahead, else recorded as unacked and handed out. */
  private async onItem(state: ConsumerState, list: string, queue: string, raw: string, recordedTag: string | null): Promise<void> {
    const item = readEnvelope(raw);
    const e = item.envelope;
    if (e) {
      const eta = etaOf(e.headers, parseCeleryTime);
      if (eta !== null && eta > Date.now()) {
        // Parked, never handed out: from the unacked entry pop() wrote (one MULTI), or straight from BRPOP's item.
        const parked = recordedTag !== null ? () => parkUnacked(this.cmd, recordedTag, delayedKey(list), DELAYED_INDEX, list, raw, eta) : () => addDelayed(this.cmd, list, raw, eta);
        await this.withRetry(parked);
        this.mover.poke(eta);
        return;
      }
    }
    const redelivered = e ? isRedelivered(e) : false;
    const deliveryCount = e ? deliveryCountOf(e) : 1;
    let redisTag: string;
    let recorded = true;
    if (recordedTag !== null) {
      redisTag = recordedTag;
      if (e && e.properties.delivery_tag !== recordedTag) e.properties.delivery_tag = recordedTag;
    } else {
      redisTag = e ? deliveryTagOf(e) : randomUUID();
      const route = e ? routeOf(e, queue) : { exchange: '', routingKey: queue };
      recorded = await this.withRetry(() => appendUnacked(this.cmd, redisTag, e ?? raw, route.exchange, route.routingKey));
    }
    const tag = `${this.instance}:${++this.seq}`;
    const headers = item.envelope === null ? (item.headers ?? {}) : {};
    this.held.set(tag, { state, redisTag, queue, envelope: e, headers, raw, recorded });
    state.held++;
    const delivery: Delivery = {
      tag,
      queue,
      message: e ? fromEnvelope(e) : { properties: {}, headers, body: raw },
      redelivered,
      deliveryCount,
      ...(item.envelope === null ? { malformed: `list item '${list}' is not a kombu message envelope (${item.problem})` } : {}),
    };
    try {
      state.onDelivery(delivery);
    } catch {
      // The handler must not throw; the message stays held until settled or the transport closes.
    }
  }

  /** Retries a write that must not be lost (the item is already popped) for up to the publish timeout; false if it never went through. */
  private async withRetry(op: () => Promise<unknown>): Promise<boolean> {
    const until = Date.now() + this.opts.publishTimeoutMs;
    for (;;) {
      try {
        await op();
        return true;
      } catch {
        if (Date.now() > until) return false;
        await new Promise((r) => setTimeout(r, 100).unref());
      }
    }
  }

  // ---- settling ---------------------------------------------------------------------------

  private take(d: Delivery): Held | null {
    const h = this.held.get(d.tag);
    if (!h) return null;
    this.held.delete(d.tag);
    return h;
  }

  private release(h: Held): void {
    h.state.held--;
    h.state.consumer.wake();
  }

  async ack(delivery: Delivery): Promise<void> {
    const h = this.take(delivery);
    if (!h) return;
    try {
      if (h.recorded) await this.bounded(this.acks.ack(h.redisTag), this.opts.publishTimeoutMs, `ack message ${h.redisTag}`);
      this.dedupe.settle(h.envelope);
    } finally {
      this.release(h);
    }
  }

  async reject(delivery: Delivery, opts: { requeue: boolean; reason?: string }): Promise<void> {
    const h = this.take(delivery);
    if (!h) return;
    try {
      if (opts.requeue) {
        const what = `requeue message ${h.redisTag}`;
        const back = h.recorded && (await this.bounded(restoreByTag(this.cmd, h.redisTag, true), this.opts.publishTimeoutMs, what));
        // Never recorded (or its entry lost with a restarted Redis): push the copy held here.
        if (!back && !h.recorded) await this.bounded(this.cmd.lpush(h.envelope ? listKey(h.queue, h.envelope.properties.priority) : h.queue, h.raw), this.opts.publishTimeoutMs, what);
        return;
      }
      const base: Envelope = h.envelope ?? wrapRawItem(h.raw, h.headers);
      const dead: Envelope = {
        ...base,
        headers: { ...base.headers, 'x-asynx-reason': opts.reason ?? 'rejected', 'x-asynx-queue': h.queue, 'x-asynx-rejected-at': new Date().toISOString() },
      };
      await this.bounded(deadLetterUnacked(this.cmd, h.redisTag, this.deadList, dead), this.opts.publishTimeoutMs, `dead-letter message ${h.redisTag}`);
      this.dedupe.settle(h.envelope);
    } finally {
      this.release(h);
    }
  }

  /** At close: every delivery still held goes back to the head of its list, marked redelivered (kombu restores at shutdown too). */
  private async restoreHeld(): Promise<void> {
    const held = [...this.held.values()];
    this.held.clear();
    if (!held.length || this.cmd.status !== 'ready') return;
    const until = Date.now() + this.opts.publishTimeoutMs;
    for (const h of held) {
      const left = until - Date.now();
      if (left <= 0) break; // the visibility sweep restores the rest
      if (h.recorded) await withDeadline(restoreByTag(this.cmd, h.redisTag, false), left, () => new BrokerUnavailableError('restore timed out')).catch(() => undefined);
      else await withDeadline(this.cmd.rpush(h.envelope ? listKey(h.queue, h.envelope.properties.priority) : h.queue, h.raw), left, () => new BrokerUnavailableError('restore timed out')).catch(() => undefined);
    }
  }

  // ---- queue management -------------------------------------------------------------------

  async purge(queues: string[]): Promise<number> {
    if (this.closing) throw this.closedError('purge');
    await this.connect();
    let n = 0;
    for (const q of queues) {
      const p = this.cmd.pipeline();
      for (const l of listKeys(q)) p.llen(l).del(l);
      const res = (await this.bounded(p.exec(), this.opts.publishTimeoutMs, `purge '${q}'`)) ?? [];
      n += res.reduce((s, [err, v], i) => s + (i % 2 === 0 && !err ? Number(v) : 0), 0);
      n += await this.bounded(purgeDelayed(this.cmd, q), this.opts.publishTimeoutMs, `purge '${q}'`);
    }
    return n;
  }

  /** Ready messages (every priority list) plus delayed ones of the queue; handed-out (unacked) ones are not counted. */
  async count(queue: string): Promise<number> {
    if (this.closing) throw this.closedError('count');
    await this.connect();
    const p = this.cmd.pipeline();
    for (const l of listKeys(queue)) p.llen(l);
    const res = (await this.bounded(p.exec(), this.opts.publishTimeoutMs, `count '${queue}'`)) ?? [];
    const ready = res.reduce((s, [err, v]) => s + (err ? 0 : Number(v)), 0);
    return ready + (await this.bounded(countDelayed(this.cmd, queue), this.opts.publishTimeoutMs, `count '${queue}'`));
  }

  /** Closes for good: the same promise on every call; held deliveries go back to their lists. */
  close(): Promise<void> {
    return this.releasers.close();
  }
}
