// Last-run state on a RabbitMQ broker: the local schedule file, mirrored to a one-message queue so that a
// scheduler on another host that takes over starts from the runs the old leader made.
//
// Each claim is written to the file (compare-and-set under its lock) and then, before the claim returns
// and so before the send, a snapshot of every entry's last due time is published with a publisher
// confirm to the durable queue `asynx.beat.state` (`x-max-length: 1`: only the newest snapshot stays).
// A scheduler that becomes the leader reads that snapshot (basic.get, then nack with requeue so it stays)
// and moves its file forward to it, so a takeover never re-sends what the old leader sent.

import type { Message } from 'amqplib';
import { AmqpConnection } from '../amqp/connection.js';
import { ConfirmChannelSlot, publishConfirmed } from '../amqp/confirm-channel.js';
import { FileScheduleStore, type ScheduleStore } from './store.js';

/** The queue holding the newest state snapshot (JSON `{ entries: { name: lastDueMs } }`). */
export const STATE_QUEUE = 'asynx.beat.state';

/** Options of {@link AmqpScheduleStore}. */
export interface AmqpScheduleStoreOptions {
  connectTimeoutMs: number;
  publishTimeoutMs: number;
}

/** State in a local file, mirrored to RabbitMQ (see the file header). */
export class AmqpScheduleStore implements ScheduleStore {
  private readonly file: FileScheduleStore;
  private readonly conn: AmqpConnection;
  private readonly slot: ConfirmChannelSlot;
  private declared: unknown = null;

  constructor(readonly url: string, path: string, private readonly opts: AmqpScheduleStoreOptions) {
    this.file = new FileScheduleStore(path);
    this.conn = new AmqpConnection(url, { connectTimeoutMs: opts.connectTimeoutMs, connectionName: 'asynx beat state', maxBackoffMs: 2_000 });
    this.slot = new ConfirmChannelSlot(this.conn);
    this.conn.onLost(() => this.slot.reset());
  }

  private async channel(what: string) {
    const deadline = Date.now() + this.opts.publishTimeoutMs;
    const ch = await this.slot.get(deadline, what);
    if (this.declared !== ch) {
      await this.conn.bounded(ch.assertQueue(STATE_QUEUE, { durable: true, autoDelete: false, arguments: { 'x-max-length': 1 } }), deadline, what);
      this.declared = ch;
    }
    return { ch, deadline };
  }

  lastDue(entry: string): Promise<number | null> {
    return this.file.lastDue(entry);
  }

  async claim(entry: string, dueMs: number): Promise<boolean> {
    if (!(await this.file.claim(entry, dueMs))) return false;
    const what = 'record the beat state on RabbitMQ';
    const { ch, deadline } = await this.channel(what);
    const body = Buffer.from(JSON.stringify({ entries: this.file.snapshot(), at: Date.now() }));
    await publishConfirmed(this.conn, ch, '', STATE_QUEUE, body, { persistent: true, contentType: 'application/json' }, deadline, what);
    return true;
  }

  async sync(): Promise<void> {
    const what = 'read the beat state from RabbitMQ';
    const { ch, deadline } = await this.channel(what);
    const msg = (await this.conn.bounded(ch.get(STATE_QUEUE, { noAck: false }), deadline, what)) as Message | false;
    if (!msg) return;
    let entries: Record<string, unknown> = {};
    try {
      entries = (JSON.parse(msg.content.toString('utf8')) as { entries?: Record<string, unknown> }).entries ?? {};
    } catch {
      // not ours, or torn: nothing to bring in
    } finally {
      ch.nack(msg, false, true); // back in the queue: the next leader reads it too
    }
    for (const [name, due] of Object.entries(entries)) if (typeof due === 'number' && Number.isFinite(due)) await this.file.claim(name, due);
  }

  async close(): Promise<void> {
    await this.conn.close().catch(() => undefined);
  }
}
