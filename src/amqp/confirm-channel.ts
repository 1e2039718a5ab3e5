// One confirm channel per user of an AmqpConnection, opened on demand, and bounded confirmed publishes on it.

import { setTimeout as sleep } from 'node:timers/promises';
import type { ConfirmChannel, Options } from 'amqplib';
import { AsynxError, BrokerUnavailableError, toAsynxError, type ErrorFacts } from '../errors.js';
import { backoffDelay } from '../util/backoff.js';
import { redact } from '../util/redact.js';
import type { AmqpConnection } from './connection.js';

/**
 * A confirm channel that is opened when first needed, shared by concurrent callers, and forgotten when
 * it closes or the connection is lost (the next caller opens a new one).
 */
export class ConfirmChannelSlot {
  private ch: ConfirmChannel | null = null;
  private opening: Promise<ConfirmChannel> | null = null;

  constructor(private readonly conn: AmqpConnection) {}

  /** Forgets the channel (after a reconnect or a loss). */
  reset(): void {
    this.ch = null;
    this.opening = null;
  }

  /** The open channel, waiting (bounded by `deadline`, epoch ms) for the connection and the channel. */
  async get(deadline: number, what: string): Promise<ConfirmChannel> {
    for (;;) {
      if (this.ch) return this.ch;
      this.opening ??= (async () => {
        const conn = await this.conn.get(deadline, what);
        const ch = await this.conn.bounded(conn.createConfirmChannel(), deadline, what);
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
}

/** Code of a publish the broker nacked, or whose channel closed before the confirm (worth sending again). */
export const NOT_CONFIRMED = 'asynx.broker.notConfirmed';

/** The broker refused (nacked) a message, or the channel closed before its confirm. */
export function nackError(err: unknown, what: string): AsynxError {
  if (err instanceof AsynxError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new AsynxError(NOT_CONFIRMED, `Cannot ${what}: RabbitMQ did not accept the message (${detail}). It is sent again while the publish timeout lasts; if this persists, check the broker log and the queue's limits (x-max-length, x-overflow)`, { cause: err });
}

/** Publishes on a confirm channel and resolves on the broker's confirm, bounded by `deadline` (epoch ms). */
export function publishConfirmed(conn: AmqpConnection, ch: ConfirmChannel, exchange: string, key: string, content: Buffer, options: Options.Publish, deadline: number, what: string): Promise<void> {
  const confirmed = new Promise<void>((resolve, reject) => {
    try {
      ch.publish(exchange, key, content, options, (err) => (err ? reject(nackError(err, what)) : resolve()));
    } catch (err) {
      reject(nackError(err, what));
    }
  });
  return conn.bounded(confirmed, deadline, what);
}

/** What {@link untilConfirmed} needs to know to bound and describe its retries. */
export interface ConfirmRetry {
  /** Epoch ms after which no attempt starts. */
  deadline: number;
  /** The publish timeout that `deadline` came from, for the message. */
  timeoutMs: number;
  /** Completes "Cannot …". */
  what: string;
  url: string;
  /** True once the owner is closed: stop retrying. */
  closed: () => boolean;
  facts?: ErrorFacts;
}

/**
 * Runs `attempt` (get a channel, publish, wait for the confirm) until it succeeds. A refusal (nack, a
 * channel lost before the confirm, a raw channel error) is sent again after a short backoff; an
 * AsynxError (unreachable, closed, a queue mismatch) is final. Out of time after refusals, the error names the last refusal as
 * its cause rather than a generic "did not answer".
 */
export async function untilConfirmed(attempt: () => Promise<void>, r: ConfirmRetry): Promise<void> {
  let refusal: Error | null = null;
  for (let n = 0; ; n++) {
    if (r.closed()) throw new BrokerUnavailableError(`Cannot ${r.what}: the AMQP client is closed`, { facts: r.facts ?? {} });
    try {
      await attempt();
      return;
    } catch (err) {
      // A raw amqplib error (a channel closed under a declare) is a refusal too: the next attempt reopens it.
      const refused = err instanceof AsynxError ? err.code === NOT_CONFIRMED : true;
      if (refused) refusal = err instanceof Error ? err : toAsynxError(err, 'asynx.broker.refused', `RabbitMQ refused to ${r.what}`);
      const outOfTime = Date.now() >= r.deadline;
      if (!refused && !(outOfTime && refusal)) throw outOfTime ? spanOf(err, r.timeoutMs) : err;
      if (outOfTime) {
        throw new BrokerUnavailableError(`Cannot ${r.what}: RabbitMQ at ${redact(r.url)} did not confirm within ${r.timeoutMs} ms (${refusal!.message}). Check the broker and the queue's limits, or raise publishTimeout (ASYNX_PUBLISH_TIMEOUT)`, {
          cause: refusal,
          facts: { timedOut: true, ...r.facts },
        });
      }
      await sleep(Math.min(backoffDelay({ base: 50, max: 800, jitter: 'none' }, n), Math.max(0, r.deadline - Date.now())));
    }
  }
}

/**
 * A step that ran out of time reports the time it had left ("did not answer within 64 ms" when earlier steps
 * used the rest); past the operation's deadline the error names the operation's whole timeout instead.
 */
function spanOf(err: unknown, timeoutMs: number): unknown {
  if (!(err instanceof BrokerUnavailableError) || !err.facts.timedOut || !/ within \d+ ms/.test(err.message)) return err;
  return new BrokerUnavailableError(err.message.replace(/ within \d+ ms/, ` within ${timeoutMs} ms`), { cause: err.cause, facts: err.facts });
}
