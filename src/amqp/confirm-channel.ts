// One confirm channel per user of an AmqpConnection, opened on demand, and bounded confirmed publishes on it.

import type { ConfirmChannel, Options } from 'amqplib';
import { AsynxError } from '../errors.js';
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

  /** Closes the channel if open (for close()); errors are the caller's to ignore. */
  async close(): Promise<void> {
    const ch = this.ch;
    this.reset();
    if (ch) await ch.close();
  }
}

/** The broker refused (nacked) a message, or the channel closed before its confirm. */
export function nackError(err: unknown, what: string): AsynxError {
  if (err instanceof AsynxError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new AsynxError('asynx.broker.notConfirmed', `Cannot ${what}: RabbitMQ did not accept the message (${detail}). It is sent again while the publish timeout lasts; if this persists, check the broker log and the queue's limits (x-max-length, x-overflow)`, { cause: err });
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
