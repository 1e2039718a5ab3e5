// A remote-control request as kombu's Mailbox puts it on the wire (spec §6), which node it is for, and how a node answers it.

import type { LamportClock } from '../events/clock.js';

/** A remote-control command handler: gets the request's `arguments`, returns this node's answer. */
export type ControlHandler = (args: Record<string, unknown>) => unknown | Promise<unknown>;

/** Where a node sends its reply: kombu's `reply_to` (on SQLite the exchange is only a marker). */
export interface ReplyTo {
  exchange: string;
  routing_key: string;
}

/** The body of a request (kombu `Mailbox._publish`): the same JSON on AMQP and in the SQLite mailbox. */
export interface ControlRequest {
  method?: unknown;
  arguments?: unknown;
  destination?: unknown;
  pattern?: unknown;
  matcher?: unknown;
  ticket?: unknown;
  reply_to?: { exchange?: unknown; routing_key?: unknown } | null;
}

/** Kombu's reply exchange: `reply.<namespace>.pidbox`. */
export const replyExchangeName = (namespace: string): string => `reply.${namespace}.pidbox`;
/** Kombu's request exchange: `<namespace>.pidbox`. */
export const requestExchangeName = (namespace: string): string => `${namespace}.pidbox`;

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses a request body; null for anything that is not a JSON object (kombu logs and drops it). */
export function parseRequest(text: string): ControlRequest | null {
  try {
    const parsed = JSON.parse(text) as unknown;
    return isObject(parsed) ? (parsed as ControlRequest) : null;
  } catch {
    return null;
  }
}

/**
 * A request that came with kombu's pidbox headers (AMQP properties, or the Redis envelope's headers), or null
 * when this node drops it: past its `expires` (epoch seconds), not a JSON object, or for other nodes. The
 * sender's `clock` is merged into `clock` for a request this node takes.
 */
export function admitRequest(headers: Record<string, unknown>, body: string, nodeName: string, clock: LamportClock): ControlRequest | null {
  if (typeof headers.expires === 'number' && headers.expires > 0 && Date.now() / 1000 > headers.expires) return null;
  const req = parseRequest(body);
  if (!req || !isForNode(req, nodeName)) return null;
  if (typeof headers.clock === 'number') clock.adjust(headers.clock);
  return req;
}

/** The reply address of a request, or null for a cast (no reply wanted). */
export function replyAddress(req: ControlRequest): ReplyTo | null {
  const to = req.reply_to;
  if (!to || typeof to.exchange !== 'string' || typeof to.routing_key !== 'string') return null;
  return { exchange: to.exchange, routing_key: to.routing_key };
}

/** Glob match, as kombu's `match(hostname, pattern, 'glob')`. */
function globMatch(name: string, pattern: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return re.test(name);
}

/** Whether a request is meant for `nodeName` (kombu `Node.handle_message`). */
export function isForNode(req: ControlRequest, nodeName: string): boolean {
  if (Array.isArray(req.destination) && req.destination.length > 0) return req.destination.includes(nodeName);
  if (typeof req.pattern === 'string' && req.pattern && typeof req.matcher === 'string' && req.matcher) {
    if (req.matcher === 'glob') return globMatch(nodeName, req.pattern);
    if (req.matcher === 'pcre') {
      try {
        return new RegExp(req.pattern).test(nodeName);
      } catch {
        return false;
      }
    }
    return false;
  }
  return true;
}

/** A handler's reply with an action to run once the reply has been sent (or could not be). */
export class ReplyThen {
  constructor(
    readonly reply: unknown,
    readonly afterReply: () => void,
  ) {}
}

/**
 * Replies, then acts: for `shutdown` and the like, whose action would otherwise close the mailbox
 * before the reply left it.
 */
export function replyThen(reply: unknown, afterReply: () => void): ReplyThen {
  return new ReplyThen(reply, afterReply);
}

/** What a node answers, and what it does after answering. */
export interface Answer {
  reply: unknown;
  /** Run by the mailbox after it sent the reply (or when there is none to send). */
  afterReply: () => void;
}

/**
 * This node's answer to a request: the handler's value; `ping` answers `{"ok": "pong"}` unless a
 * handler is given; an unknown method or a handler that throws answers `{"error": …}` as kombu's
 * `Node.dispatch` does (`repr(exc)`).
 */
export async function answerRequest(handlers: Record<string, ControlHandler>, req: ControlRequest): Promise<Answer> {
  const nothing = () => undefined;
  const method = typeof req.method === 'string' ? req.method : '';
  const handler = Object.prototype.hasOwnProperty.call(handlers, method) ? handlers[method] : method === 'ping' ? () => ({ ok: 'pong' }) : undefined;
  if (!handler) return { reply: { error: `KeyError('${method}')` }, afterReply: nothing };
  try {
    const value = await handler(isObject(req.arguments) ? req.arguments : {});
    if (value instanceof ReplyThen) return { reply: value.reply ?? null, afterReply: value.afterReply };
    return { reply: value ?? null, afterReply: nothing };
  } catch (err) {
    return { reply: { error: err instanceof Error ? `${err.name}(${JSON.stringify(err.message)})` : String(err) }, afterReply: nothing };
  }
}
