// Dead letters on Redis: the `asynx.dead` list the transport LPUSHes rejected envelopes onto, read with LRANGE, moved back by Lua.

import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { parseCeleryTime } from '../protocol/codec.js';
import { etaOf } from '../transports/amqp-topology.js';
import { declareBinding } from '../transports/redis-bindings.js';
import { deliveryCountOf, type Envelope, freshDelivery, fromEnvelope, parseEnvelope, wrapRawItem } from '../transports/redis-envelope.js';
import { DELAYED_INDEX, delayedKey, listKey } from '../transports/redis-keys.js';
import { boundedRedis, closeRedis, connectRedis } from '../transports/redis-pubsub.js';
import { redact } from '../util/redact.js';
import { deadLetterNoQueue, deadLetterNotFound, deadLettersClosed, describeMessage, listLimit, type DeadLetter, type DeadLetterDetail, type DeadLetters, type ListDeadLettersOptions, type RequeueOptions, type RequeueOutcome } from './dead-letters.js';

/** Options of {@link RedisDeadLetters}. */
export interface RedisDeadLettersOptions {
  /** Bound on connecting, ms. */
  connectTimeoutMs: number;
  /** Bound on each command, ms. */
  publishTimeoutMs: number;
  /** The dead-letter list. @defaultValue `asynx.dead` */
  list?: string;
}

/** Headers the transport added when it dead-lettered the message, dropped on requeue. */
const DEAD_HEADERS = ['x-asynx-reason', 'x-asynx-queue', 'x-asynx-rejected-at'];

/**
 * Removes one copy of ARGV[1] from the dead list (the oldest: from the tail) and, in the same step, puts
 * ARGV[2] on its list (LPUSH) or, with a due time ARGV[3], in the list's delayed zset; ARGV[2] '' only
 * removes. 0 when the copy is gone (requeued or purged by another process meanwhile): nothing is pushed.
 */
const MOVE = `
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then return 0 end
if ARGV[2] ~= '' then
  if ARGV[3] == '' then
    redis.call('LPUSH', KEYS[2], ARGV[2])
  else
    redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
    redis.call('SADD', KEYS[4], KEYS[2])
  end
end
return 1`;

/** LLEN and DEL in one step. */
const PURGE_ALL = `local n = redis.call('LLEN', KEYS[1]) redis.call('DEL', KEYS[1]) return n`;

/** One item of the dead list: as stored, parsed and described. */
interface Item {
  raw: string;
  envelope: Envelope | null;
  letter: DeadLetterDetail;
}

function itemOf(raw: string): Item {
  const envelope = parseEnvelope(raw);
  const msg = envelope ? fromEnvelope(envelope) : { properties: {}, headers: {}, body: raw };
  const d = describeMessage(msg.headers, msg.body);
  const h = d.headers;
  const text = (k: string) => (typeof h[k] === 'string' && h[k] !== '' ? (h[k] as string) : null);
  return {
    raw,
    envelope,
    letter: {
      id: d.taskId ?? `sha-${createHash('sha256').update(raw).digest('hex').slice(0, 12)}`,
      queue: text('x-asynx-queue'),
      reason: text('x-asynx-reason') ?? 'unknown (no x-asynx-reason header)',
      deliveries: envelope ? deliveryCountOf(envelope) : null,
      task: d.task,
      taskId: d.taskId,
      argsRepr: d.argsRepr,
      deadLetteredAt: text('x-asynx-rejected-at'),
      kwargsRepr: d.kwargsRepr,
      properties: msg.properties,
      headers: h,
      body: msg.body,
    },
  };
}

function summary(l: DeadLetterDetail): DeadLetter {
  const { kwargsRepr: _k, properties: _p, headers: _h, body: _b, ...rest } = l;
  return rest;
}

/**
 * The dead-letter list of a Redis broker (`asynx.dead` in the URL's db), where the transport LPUSHes each
 * rejected envelope with `x-asynx-reason`, `x-asynx-queue` and `x-asynx-rejected-at` headers, in one
 * MULTI with dropping its `unacked` entry. Reading is LRANGE, so `list` and `show` leave it as it was.
 * A requeue moves each item with one Lua script (LREM from the list, LPUSH onto its queue's list or into
 * the delayed store for a future eta), so it is never in both places nor lost, and two requeues at once
 * cannot send one item twice. Ids are task ids (`headers.id`, else `sha-` and a hash of the item); copies
 * of one message share an id, and `requeue` sends one copy and removes them all. `deliveries` is how many
 * times it had been handed out when it was dead-lettered.
 */
export class RedisDeadLetters implements DeadLetters {
  readonly kind = 'redis';
  private conn: Promise<Redis> | null = null;
  private closed = false;
  private readonly deadList: string;

  constructor(
    readonly url: string,
    private readonly opts: RedisDeadLettersOptions,
  ) {
    this.deadList = opts.list ?? 'asynx.dead';
  }

  private get where(): string {
    return `the Redis list '${this.deadList}' on ${redact(this.url)}`;
  }

  private connection(): Promise<Redis> {
    if (this.closed) return Promise.reject(deadLettersClosed(redact(this.url)));
    this.conn ??= connectRedis(this.url, 'asynx-dead-letters', { connectTimeoutMs: this.opts.connectTimeoutMs }).catch((err: unknown) => {
      this.conn = null;
      throw err;
    });
    return this.conn;
  }

  private async run<T>(what: string, call: (conn: Redis) => Promise<T>): Promise<T> {
    const conn = await this.connection();
    return boundedRedis(this.url, call(conn), this.opts.publishTimeoutMs, what);
  }

  /** The items, oldest first: all of them, or the oldest `limit`. */
  private async items(limit?: number): Promise<Item[]> {
    const raws = await this.run(`read the dead-letter list '${this.deadList}'`, (c) => c.lrange(this.deadList, limit === undefined ? 0 : -limit, -1));
    return raws.reverse().map(itemOf);
  }

  async list(opts: ListDeadLettersOptions = {}): Promise<DeadLetter[]> {
    const limit = listLimit(opts);
    // With a queue filter the whole list is read (matches may be anywhere); without, only the oldest `limit`.
    const items = await this.items(opts.queue === undefined ? limit : undefined);
    return items
      .map((i) => i.letter)
      .filter((l) => opts.queue === undefined || l.queue === opts.queue)
      .slice(0, limit)
      .map(summary);
  }

  async show(id: string): Promise<DeadLetterDetail> {
    const found = (await this.items()).find((i) => i.letter.id === id);
    if (!found) throw deadLetterNotFound(id, this.where);
    return found.letter;
  }

  /** Moves one item: removes it from the dead list and, unless `to` is null, pushes `to` to its queue; false when it was gone. */
  private async move(item: Item, to: { queue: string; raw: string; list: string; dueMs: number | null } | null): Promise<boolean> {
    const list = to?.list ?? '';
    const n = await this.run(`requeue dead letter '${item.letter.id}'${to ? ` to '${to.queue}'` : ''}`, (c) =>
      c.eval(MOVE, 4, this.deadList, list, delayedKey(list), DELAYED_INDEX, item.raw, to?.raw ?? '', to?.dueMs === null || !to ? '' : String(Math.round(to.dueMs))),
    );
    return Number(n) === 1;
  }

  /** The envelope to push for `item` to `queue`: dead-letter headers dropped, a fresh delivery. */
  private revived(item: Item, queue: string): { queue: string; raw: string; list: string; dueMs: number | null } {
    const e: Envelope = item.envelope ? (JSON.parse(item.raw) as Envelope) : wrapRawItem(item.raw);
    for (const k of DEAD_HEADERS) delete e.headers[k];
    freshDelivery(e, queue === item.letter.queue ? undefined : queue);
    const eta = etaOf(e.headers, parseCeleryTime);
    return { queue, raw: JSON.stringify(e), list: listKey(queue, e.properties.priority), dueMs: eta !== null && eta > Date.now() ? eta : null };
  }

  async requeue(id: string | 'all', opts: RequeueOptions = {}): Promise<RequeueOutcome> {
    const matches = (await this.items()).filter((i) => id === 'all' || i.letter.id === id);
    if (!matches.length && id !== 'all') throw deadLetterNotFound(id, this.where);
    // Every target is known before anything moves: a usage error never leaves a requeue half done.
    for (const i of matches) if ((opts.queue ?? i.letter.queue) === null) throw deadLetterNoQueue(i.letter.id);
    const requeued: RequeueOutcome['requeued'] = [];
    const sent = new Set<string>();
    const bound = new Set<string>();
    for (const i of matches) {
      const queue = (opts.queue ?? i.letter.queue)!;
      // Copies of one message: the first still there goes back, the others only leave the list.
      if (sent.has(i.letter.id)) {
        await this.move(i, null);
        continue;
      }
      if (!bound.has(queue)) {
        await this.run(`declare queue '${queue}'`, (c) => declareBinding(c, queue));
        bound.add(queue);
      }
      if (!(await this.move(i, this.revived(i, queue)))) continue;
      sent.add(i.letter.id);
      requeued.push({ id: i.letter.id, taskId: i.letter.taskId, queue });
    }
    return { requeued };
  }

  async purge(opts: { queue?: string } = {}): Promise<number> {
    if (opts.queue === undefined) return Number(await this.run(`purge the dead-letter list '${this.deadList}'`, (c) => c.eval(PURGE_ALL, 1, this.deadList)));
    let n = 0;
    for (const i of await this.items()) if (i.letter.queue === opts.queue && (await this.move(i, null))) n++;
    return n;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const conn = await this.conn?.catch(() => null);
    if (conn) await closeRedis(conn);
  }
}
