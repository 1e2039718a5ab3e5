// kombu's fanout exchanges on Redis (pidbox, celeryev): PUBLISH on `/{db}.<exchange>/<routing key>`, PSUBSCRIBE to receive.

import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { BrokerUnavailableError } from '../errors.js';
import { withDeadline } from '../util/deadline.js';
import { redact } from '../util/redact.js';
import { closeRedis, openRedis, parseRedisTarget, type RedisTarget } from './redis-connection.js';
import { fromEnvelope, parseEnvelope } from './redis-envelope.js';
import { bindingKey, listKey, parseBinding } from './redis-keys.js';

export { closeRedis } from './redis-connection.js';

/**
 * The pub/sub channel kombu publishes a fanout message on: `/{db}.<exchange>/<routing key>`, or
 * `/{db}.<exchange>` when the routing key is empty (kombu's default `fanout_prefix` and `fanout_patterns`).
 * A binding's `#` becomes `*` on the subscribing side, as kombu turns it into a glob.
 */
export function fanoutChannel(db: number, exchange: string, routingKey: string): string {
  return routingKey ? `/${db}.${exchange}/${routingKey.replace(/#/g, '*')}` : `/${db}.${exchange}`;
}

/** The database number of a `redis://` URL (the `{db}` of a fanout channel). */
export function redisDb(url: string): number {
  return parseRedisTarget(url).options.db ?? 0;
}

/** What a pub/sub or reply message carries. */
export interface PackedMessage {
  exchange: string;
  routingKey: string;
  /** JSON text. */
  body: string;
  headers: Record<string, unknown>;
  /** AMQP delivery mode kombu records: 1 transient, 2 persistent. @defaultValue 2 */
  deliveryMode?: number;
}

/** kombu's JSON envelope of a message (body base64), as it PUBLISHes or LPUSHes it. */
export function packMessage(m: PackedMessage): string {
  return JSON.stringify({
    body: Buffer.from(m.body, 'utf8').toString('base64'),
    'content-encoding': 'utf-8',
    'content-type': 'application/json',
    headers: m.headers,
    properties: {
      delivery_mode: m.deliveryMode ?? 2,
      priority: 0,
      delivery_info: { exchange: m.exchange, routing_key: m.routingKey },
      body_encoding: 'base64',
      delivery_tag: randomUUID(),
    },
  });
}

/** The headers and body text of a kombu envelope; null when `raw` is not one. */
export function unpackMessage(raw: string): { headers: Record<string, unknown>; body: string } | null {
  const e = parseEnvelope(raw);
  if (!e) return null;
  const m = fromEnvelope(e);
  return { headers: (m.headers ?? {}) as Record<string, unknown>, body: m.body };
}

/** LPUSH onto KEYS[2] only while ARGV[1] is still a member of the binding set KEYS[1]. */
const PUSH_IF_BOUND = "if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return redis.call('LPUSH', KEYS[2], ARGV[2]) end return 0";

/**
 * Routes `raw` through the direct exchange `exchange` with `routingKey`, as kombu does: LPUSH onto each
 * bound queue's list (priority 0). Each push checks, in the same step, that the binding is still there,
 * so a reply landing just after its client deleted its list and binding does not leave a list behind.
 * Returns how many queues got it.
 */
export async function pushDirect(cmd: Redis, exchange: string, routingKey: string, raw: string): Promise<number> {
  let n = 0;
  for (const m of await cmd.smembers(bindingKey(exchange))) {
    const b = parseBinding(m);
    if (!b || b.routingKey !== routingKey) continue;
    n += Number((await cmd.eval(PUSH_IF_BOUND, 2, bindingKey(exchange), listKey(b.queue, 0), m, raw)) !== 0);
  }
  return n;
}

/** Runs `p` bounded by `ms`; a timeout or an error becomes BrokerUnavailableError naming `what`. */
export async function boundedRedis<T>(url: string, p: Promise<T>, ms: number, what: string): Promise<T> {
  try {
    return await withDeadline(p, ms, () => new BrokerUnavailableError(`Could not ${what} on Redis ${redact(url)} within ${ms} ms: is it running? (check brokerUrl)`));
  } catch (err) {
    if (err instanceof BrokerUnavailableError) throw err;
    throw new BrokerUnavailableError(`Could not ${what} on Redis ${redact(url)}: ${(err as Error).message}`, { cause: err });
  }
}

/** A connection to `url` (reconnecting by itself), ready within `connectTimeoutMs` or rejected. */
export async function connectRedis(url: string, name: string, opts: { connectTimeoutMs: number; blocking?: boolean; target?: RedisTarget }): Promise<Redis> {
  const conn = openRedis(opts.target ?? parseRedisTarget(url), name, { connectTimeoutMs: opts.connectTimeoutMs, ...(opts.blocking ? { blocking: true } : {}) });
  conn.on('error', () => undefined);
  try {
    await boundedRedis(url, conn.connect(), opts.connectTimeoutMs, `connect (${name})`);
  } catch (err) {
    conn.disconnect();
    throw err;
  }
  return conn;
}

/**
 * PSUBSCRIBEs to `patterns` on a connection of its own; `onMessage` gets each message's channel and payload.
 * After a lost connection the client subscribes again by itself (messages published meanwhile are lost:
 * pub/sub keeps nothing, as with kombu).
 */
export async function subscribeFanout(url: string, name: string, patterns: string[], onMessage: (channel: string, payload: string) => void, opts: { connectTimeoutMs: number }): Promise<{ close(): Promise<void> }> {
  const sub = await connectRedis(url, name, opts);
  sub.on('pmessage', (_pattern: string, channel: string, payload: string) => {
    try {
      onMessage(channel, payload);
    } catch {
      // a handler's bug must not stop the subscription
    }
  });
  try {
    await boundedRedis(url, sub.psubscribe(...patterns), opts.connectTimeoutMs, `subscribe to ${patterns.join(', ')}`);
  } catch (err) {
    sub.disconnect();
    throw err;
  }
  return { close: () => closeRedis(sub) };
}
