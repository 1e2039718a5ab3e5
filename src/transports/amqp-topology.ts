// Celery's AMQP topology (spec §1), the delay-queue ladder for eta messages, and property mapping.

import type { Channel, ConsumeMessage, Options } from 'amqplib';
import { pyAmqpSafe } from '../amqp/field-table.js';

/**
 * Delay ladder, after Celery 5.5 / kombu's native delayed delivery: level `k` is a queue
 * `asynx.delay.<k>` whose messages wait `2^k` seconds (per-queue TTL), then dead-letter to
 * exchange `asynx.delay.<k-1>`. Each level's topic exchange routes by one bit of the routing
 * key `b27.b26…b0.<queue>`: bit set → into the level's queue, bit clear → straight on to the
 * next level. After level 0 the message reaches `asynx.delay.deliver`, which every target
 * queue is bound to with `*.*…(28 words).<queue>`, so it lands in its queue when due.
 * Messages never wait in worker memory, hold no prefetch slot, survive restarts (quorum
 * queues with at-least-once dead-lettering), and are at most ~1 s late (delays round up).
 */
export const DELAY_LEVELS = 28;
/** Longest delay one pass through the ladder gives, seconds (~8.5 years); longer etas go round again. */
export const MAX_DELAY_S = 2 ** DELAY_LEVELS - 1;
export const DELAY_DELIVER_EXCHANGE = 'asynx.delay.deliver';

/** Exchange and queue name of ladder level `k`. */
export function delayLevelName(k: number): string {
  return `asynx.delay.${k}`;
}

/** Routing key that sends a message through the ladder for `delayS` seconds to `queue`. */
export function delayRoutingKey(delayS: number, queue: string): string {
  const bits: string[] = [];
  for (let k = DELAY_LEVELS - 1; k >= 0; k--) bits.push(Math.floor(delayS / 2 ** k) % 2 === 1 ? '1' : '0');
  return `${bits.join('.')}.${queue}`;
}

/**
 * The level a `delayS` message enters the ladder at: its highest set bit. Every level above would pass it on
 * with its bit clear, and each exchange-to-exchange hop costs RabbitMQ a topic match of the 29-word key (from
 * the top, 1 h countdowns parked at ~350/s; from their entry level at ~3,600/s on the bench machine).
 */
export function delayEntryLevel(delayS: number): number {
  let k = DELAY_LEVELS - 1;
  while (k > 0 && Math.floor(delayS / 2 ** k) % 2 === 0) k--;
  return k;
}

/** Binding pattern selecting bit `k` = `bit` of a ladder routing key. */
export function levelPattern(k: number, bit: '0' | '1'): string {
  return [...Array<string>(DELAY_LEVELS - 1 - k).fill('*'), bit, '#'].join('.');
}

/** Binding pattern of a target queue on the deliver exchange: any 28 bits, then exactly the queue name. */
export function deliverPattern(queue: string): string {
  return [...Array<string>(DELAY_LEVELS).fill('*'), queue].join('.');
}

/** Arguments of ladder level `k`'s queue. */
function levelQueueOptions(k: number): Options.AssertQueue {
  return {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-message-ttl': 2 ** k * 1000,
      'x-dead-letter-exchange': k > 0 ? delayLevelName(k - 1) : DELAY_DELIVER_EXCHANGE,
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
    },
  };
}

/** Runs `steps` spread over `chs` (a channel answers one declaration at a time): each channel takes every n-th. */
async function spread(chs: Channel[], steps: ((ch: Channel) => Promise<unknown>)[]): Promise<void> {
  await Promise.all(chs.map(async (ch, i) => {
    for (let j = i; j < steps.length; j += chs.length) await steps[j]!(ch);
  }));
}

/**
 * Declares the ladder (idempotent; once per connection is enough): exchanges, then queues, then bindings,
 * each phase spread over the given channels. On a fresh broker the 28 quorum queues are most of the cost
 * (about 1 s declared one after another on the bench machine), and a first delayed publish waits for it.
 */
export async function declareDelayLadder(channels: Channel | Channel[]): Promise<void> {
  const chs = Array.isArray(channels) ? channels : [channels];
  const levels = Array.from({ length: DELAY_LEVELS }, (_, k) => k);
  await spread(chs, [(ch) => ch.assertExchange(DELAY_DELIVER_EXCHANGE, 'topic', { durable: true }), ...levels.map((k) => (ch: Channel) => ch.assertExchange(delayLevelName(k), 'topic', { durable: true }))]);
  await spread(chs, levels.map((k) => (ch: Channel) => ch.assertQueue(delayLevelName(k), levelQueueOptions(k))));
  await spread(chs, levels.flatMap((k) => [
    (ch: Channel) => ch.bindQueue(delayLevelName(k), delayLevelName(k), levelPattern(k, '1')),
    (ch: Channel) => ch.bindExchange(k > 0 ? delayLevelName(k - 1) : DELAY_DELIVER_EXCHANGE, delayLevelName(k), levelPattern(k, '0')),
  ]));
}

/** Queue declaration options for a task queue, as Celery declares it (spec §1). */
export function taskQueueOptions(maxPriority?: number): Options.AssertQueue {
  return {
    durable: true,
    autoDelete: false,
    exclusive: false,
    ...(maxPriority !== undefined ? { arguments: { 'x-max-priority': maxPriority } } : {}),
  };
}

/** Declares a task queue with its same-named direct exchange and binding, as Celery does. Resolves to the ready count. */
export async function declareTaskQueue(ch: Channel, queue: string, maxPriority?: number): Promise<number> {
  await ch.assertExchange(queue, 'direct', { durable: true });
  const ok = await ch.assertQueue(queue, taskQueueOptions(maxPriority));
  await ch.bindQueue(queue, queue, queue);
  return ok.messageCount;
}

/** Snake-case properties of a wire message → amqplib publish options. */
export function toPublishOptions(props: Record<string, unknown>, headers: unknown): Options.Publish {
  const s = (k: string) => (typeof props[k] === 'string' && props[k] !== '' ? (props[k] as string) : undefined);
  const n = (k: string) => (typeof props[k] === 'number' ? (props[k] as number) : undefined);
  const out: Options.Publish = {
    contentType: s('content_type'),
    contentEncoding: s('content_encoding'),
    deliveryMode: n('delivery_mode') ?? 2,
    priority: n('priority'),
    correlationId: s('correlation_id'),
    replyTo: s('reply_to'),
    expiration: s('expiration') ?? n('expiration'),
    messageId: s('message_id'),
    timestamp: n('timestamp'),
    type: s('type'),
    appId: s('app_id'),
    headers: pyAmqpSafe(headers ?? {}),
  };
  for (const key of Object.keys(out) as Array<keyof Options.Publish>) if (out[key] === undefined) delete out[key];
  return out;
}

/** amqplib message properties → the snake-case record a Delivery carries (headers apart). */
export function fromMessageProperties(msg: ConsumeMessage): Record<string, unknown> {
  const p = msg.properties;
  const out: Record<string, unknown> = {
    content_type: p.contentType,
    content_encoding: p.contentEncoding,
    delivery_mode: p.deliveryMode,
    priority: p.priority,
    correlation_id: p.correlationId,
    reply_to: p.replyTo,
    expiration: p.expiration,
    message_id: p.messageId,
    timestamp: p.timestamp,
    type: p.type,
    user_id: p.userId,
    app_id: p.appId,
  };
  for (const key of Object.keys(out)) if (out[key] === undefined || out[key] === null) delete out[key];
  return out;
}

/** Epoch ms of a message's `eta` header, or null when unset or unparsable (the worker reports bad ones). */
export function etaOf(headers: unknown, parse: (v: string, h: string) => number): number | null {
  if (typeof headers !== 'object' || headers === null) return null;
  const eta = (headers as Record<string, unknown>).eta;
  if (typeof eta !== 'string' || eta === '') return null;
  try {
    return parse(eta, 'eta');
  } catch {
    return null;
  }
}

/** The message's text for a Delivery: UTF-8 for text types, latin1 (byte-preserving) otherwise. */
export function bodyText(content: Buffer, contentType: unknown): string {
  return typeof contentType === 'string' && (contentType.includes('json') || contentType.startsWith('text/')) ? content.toString('utf8') : content.toString('latin1');
}
