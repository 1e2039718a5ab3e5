// kombu's Redis message envelope: JSON with the body in base64, the AMQP properties and the delivery info.

import { randomUUID } from 'node:crypto';
import type { WireMessage } from '../protocol/message.js';
import { bodyText } from './amqp-topology.js';

/** The JSON object kombu LPUSHes onto a queue list. */
export interface Envelope {
  body: string;
  'content-encoding'?: string | null;
  'content-type'?: string | null;
  headers: Record<string, unknown>;
  properties: Record<string, unknown> & { delivery_info?: Record<string, unknown>; delivery_tag?: unknown; body_encoding?: unknown };
}

/**
 * Property (not a kombu one) counting how often asynx put the message back after handing it out; Celery and
 * kombu carry unknown properties along untouched, so it survives a restore by a Python worker too.
 */
const RESTORES = 'x_asynx_restores';

/** Text types travel as UTF-8, anything else byte for byte (latin1), the same rule as {@link bodyText}. */
function bodyBytes(body: string, contentType: unknown): Buffer {
  return typeof contentType === 'string' && (contentType.includes('json') || contentType.startsWith('text/')) ? Buffer.from(body, 'utf8') : Buffer.from(body, 'latin1');
}

/** An envelope carrying a list item that was no envelope, as it came (base64), with what of its headers could be read. */
export function wrapRawItem(raw: string, headers: Record<string, unknown> = {}): Envelope {
  return { body: Buffer.from(raw, 'utf8').toString('base64'), headers, properties: { body_encoding: 'base64' } };
}

/** Wraps a wire message for `queue` (published to the anonymous exchange, routing key = queue), with a fresh delivery tag. */
export function toEnvelope(queue: string, message: WireMessage): Envelope {
  const { content_type, content_encoding, ...props } = message.properties as unknown as Record<string, unknown>;
  return {
    body: bodyBytes(message.body, content_type).toString('base64'),
    'content-encoding': typeof content_encoding === 'string' ? content_encoding : 'utf-8',
    'content-type': typeof content_type === 'string' ? content_type : 'application/json',
    headers: { ...(message.headers as Record<string, unknown>) },
    properties: {
      ...props,
      delivery_mode: props.delivery_mode ?? 2,
      priority: typeof props.priority === 'number' ? props.priority : 0,
      delivery_info: { exchange: '', routing_key: queue },
      body_encoding: 'base64',
      delivery_tag: randomUUID(),
    },
  };
}

/** A list item read: the envelope, or what is wrong with it and its headers when they can be read. */
export type ReadItem = { envelope: Envelope } | { envelope: null; problem: string; headers: Record<string, unknown> | null };

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * Reads a list item: a JSON object with a body string and a properties object (headers, when present, an
 * object; missing headers read as none). Anything else says why it is not one.
 */
export function readEnvelope(raw: string): ReadItem {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (err) {
    return { envelope: null, problem: `not JSON: ${(err as Error).message}`, headers: null };
  }
  if (!isObj(v)) return { envelope: null, problem: `JSON ${Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v}, not an object`, headers: null };
  const headers = v.headers === undefined ? {} : isObj(v.headers) ? v.headers : null;
  if (headers === null) return { envelope: null, problem: `'headers' is ${typeof v.headers}, not an object`, headers: null };
  if (typeof v.body !== 'string') return { envelope: null, problem: v.body === undefined ? "no 'body'" : `'body' is ${typeof v.body}, not a string`, headers };
  if (!isObj(v.properties)) return { envelope: null, problem: v.properties === undefined ? "no 'properties'" : "'properties' is not an object", headers };
  v.headers = headers;
  return { envelope: v as unknown as Envelope };
}

/** Parses a list item; null when it is not a kombu envelope ({@link readEnvelope} says why). */
export function parseEnvelope(raw: string): Envelope | null {
  return readEnvelope(raw).envelope;
}

/** The message a Delivery carries: snake-case properties (content type and encoding included), headers, body text. */
export function fromEnvelope(e: Envelope): { properties: Record<string, unknown>; headers: unknown; body: string } {
  const { delivery_info: _info, delivery_tag: _tag, body_encoding, [RESTORES]: _n, ...rest } = e.properties;
  const properties: Record<string, unknown> = { ...rest };
  if (typeof e['content-type'] === 'string') properties.content_type = e['content-type'];
  if (typeof e['content-encoding'] === 'string') properties.content_encoding = e['content-encoding'];
  const bytes = body_encoding === 'base64' ? Buffer.from(e.body, 'base64') : Buffer.from(e.body, 'utf8');
  return { properties, headers: e.headers, body: bodyText(bytes, properties.content_type) };
}

/** Exchange and routing key the envelope was published with (kombu restores by them). */
export function routeOf(e: Envelope, queue: string): { exchange: string; routingKey: string } {
  const info = e.properties.delivery_info ?? {};
  return {
    exchange: typeof info.exchange === 'string' ? info.exchange : '',
    routingKey: typeof info.routing_key === 'string' ? info.routing_key : queue,
  };
}

/** True when kombu (or asynx) put the message back after handing it out. */
export function isRedelivered(e: Envelope): boolean {
  return e.properties.delivery_info?.redelivered === true || e.headers.redelivered === true;
}

/** Times the message was put back so far (one, when a Python worker restored it without the counter). */
function restoresOf(e: Envelope): number {
  const n = e.properties[RESTORES];
  return typeof n === 'number' && n >= 0 ? n : isRedelivered(e) ? 1 : 0;
}

/** Marks the envelope redelivered in place (both places kombu sets it) and counts the restore. */
export function markRestored(e: Envelope): void {
  e.properties[RESTORES] = restoresOf(e) + 1;
  e.headers.redelivered = true;
  e.properties.delivery_info = { ...(e.properties.delivery_info ?? {}), redelivered: true };
}

/**
 * Undoes {@link markRestored} and gives the envelope a new delivery tag, in place: the message starts afresh
 * (delivery count 1), as on a requeue from the dead letters. `routingKey` re-routes it (anonymous exchange).
 */
export function freshDelivery(e: Envelope, routingKey?: string): void {
  delete e.properties[RESTORES];
  delete e.headers.redelivered;
  const { redelivered: _r, ...info } = e.properties.delivery_info ?? {};
  e.properties.delivery_info = routingKey === undefined ? info : { ...info, exchange: '', routing_key: routingKey };
  e.properties.delivery_tag = randomUUID();
}

/** How many times the message has been handed out, this time included. */
export function deliveryCountOf(e: Envelope): number {
  return restoresOf(e) + 1;
}

/** The delivery tag kombu gave the message at publish, or a new one when it has none. */
export function deliveryTagOf(e: Envelope): string {
  const t = e.properties.delivery_tag;
  if (typeof t === 'string' && t !== '') return t;
  const tag = randomUUID();
  e.properties.delivery_tag = tag;
  return tag;
}
