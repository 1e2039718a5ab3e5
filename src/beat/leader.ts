// Leader election among schedulers: exactly one of the `asynx beat` / `asynx worker -B` processes of a cluster sends.
//
// SQLite broker: a lease row in the broker file (`beat_lease`), taken and renewed by one conditional
// upsert ("mine, or expired"); the leader renews it every `renewMs` and leads only while its lease is
// unexpired by its own clock, so a leader killed -9 is replaced once its lease runs out (`ttlMs`).
// Redis broker: the same renewed lease as a key (`redis-lease.ts`).
// RabbitMQ: a queue with `x-single-active-consumer` that every scheduler consumes from, holding one
// token message. The broker delivers the token only to the single active consumer, which keeps it
// unacknowledged; when that consumer's connection dies the broker promotes the next consumer and
// redelivers the token to it, so the new leader learns it leads by receiving the token.

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Channel, ChannelModel } from 'amqplib';
import type { Db } from '../sqlite/database.js';
import { closeDatabase, retryWhileBusy } from '../sqlite/database.js';
import { openBeatDb } from './store.js';

/** Tells one scheduler whether it leads now. */
export interface Leadership {
  /** A unique name for this scheduler (`host:pid:random`). */
  readonly holder: string;
  /** True while this scheduler may send. */
  isLeader(): boolean;
  /** Starts taking part; `onChange` runs whenever {@link isLeader} may have changed. */
  start(onChange: () => void): Promise<void>;
  /** Stops taking part and hands the lead over at once when held. Idempotent. */
  close(): Promise<void>;
}

/** A name for this scheduler process, unique across hosts and restarts. */
export function schedulerName(): string {
  return `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
}

/** Options of a renewed lease ({@link SqliteLease}, and the Redis lease). */
export interface SqliteLeaseOptions {
  /** A lease not renewed for this long is free for another scheduler, ms. @defaultValue 3000 */
  ttlMs?: number;
  /** How often the holder renews (and a follower tries to take it), ms. @defaultValue 1000 */
  renewMs?: number;
  /** The clock, epoch ms. @defaultValue Date.now */
  now?: () => number;
}

/**
 * A lease taken and renewed every `renewMs` ("mine, or expired"), leading only while it is unexpired by
 * this scheduler's own clock: the validity is counted from before each take, so it ends no later than the
 * store's. Subclasses say how to take and release it in their store.
 */
export abstract class RenewedLease implements Leadership {
  readonly holder = schedulerName();
  private timer: NodeJS.Timeout | null = null;
  /** This scheduler leads until then (by its clock); 0 when it does not lead. */
  private validUntil = 0;
  protected readonly ttlMs: number;
  protected readonly renewMs: number;
  private readonly now: () => number;
  private onChange: () => void = () => {};
  private closing: Promise<void> | null = null;
  /** The take or renewal in flight, if any (close waits for it, so it cannot re-take a released lease). */
  private renewing: Promise<void> | null = null;
  private opened = false;

  constructor(opts: SqliteLeaseOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 3_000;
    this.renewMs = opts.renewMs ?? 1_000;
    this.now = opts.now ?? Date.now;
  }

  /** Opens the store; a failure fails {@link start}. */
  protected abstract open(): Promise<void>;
  /** Takes or renews the lease for `ttlMs` when it is this holder's or free; true when this holder has it now. */
  protected abstract take(): Promise<boolean>;
  /** Drops the lease if this holder has it (at close; a failure leaves it to expire). */
  protected abstract release(): Promise<void>;
  /** Releases the store's handle. */
  protected abstract shut(): Promise<void>;

  isLeader(): boolean {
    return this.now() < this.validUntil;
  }

  async start(onChange: () => void): Promise<void> {
    this.onChange = onChange;
    await this.open();
    if (this.closing) {
      await this.shut().catch(() => undefined); // closed while opening
      return;
    }
    this.opened = true;
    await this.renew();
    const tick = (): void => {
      this.timer = setTimeout(() => {
        void this.renew().finally(() => {
          if (!this.closing) tick();
        });
      }, this.renewMs);
    };
    if (!this.closing) tick();
  }

  private renew(): Promise<void> {
    if (!this.opened || this.closing) return Promise.resolve();
    this.renewing ??= this.renewOnce().finally(() => {
      this.renewing = null;
    });
    return this.renewing;
  }

  /** One take or renewal; a failure (file locked, Redis away) just leaves the lease to expire. */
  private async renewOnce(): Promise<void> {
    const was = this.isLeader();
    try {
      const started = this.now();
      const taken = await this.take();
      // Counted from before the write: the store may say a little later, never earlier.
      this.validUntil = taken ? started + this.ttlMs : 0;
    } catch {
      if (!this.isLeader()) this.validUntil = 0;
    }
    if (was !== this.isLeader()) this.onChange();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.timer) clearTimeout(this.timer);
      await this.renewing;
      this.validUntil = 0;
      if (!this.opened) return;
      this.opened = false;
      // Hand over at once: the next scheduler need not wait for the lease to expire.
      await this.release().catch(() => undefined);
      await this.shut().catch(() => undefined);
    })();
    return this.closing;
  }
}

const LEASE_SCHEMA = `
CREATE TABLE IF NOT EXISTS beat_lease (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);`;

/** The lease that makes one scheduler the leader on a SQLite broker file: a `beat_lease` row. */
export class SqliteLease extends RenewedLease {
  private db: Db | null = null;
  private readonly clock: () => number;

  constructor(readonly path: string, opts: SqliteLeaseOptions = {}) {
    super(opts);
    this.clock = opts.now ?? Date.now;
  }

  protected async open(): Promise<void> {
    this.db = openBeatDb(this.path, LEASE_SCHEMA);
  }

  protected take(): Promise<boolean> {
    const db = this.db!;
    const started = this.clock();
    return retryWhileBusy(
      () =>
        db
          .prepare(
            `INSERT INTO beat_lease (name, holder, expires_at) VALUES ('beat', ?, ?)
             ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE beat_lease.holder = excluded.holder OR beat_lease.expires_at <= ?`,
          )
          .run(this.holder, started + this.ttlMs, started).changes === 1,
      { path: this.path, what: 'renew the beat lease', timeoutMs: Math.max(100, this.renewMs / 2) },
    );
  }

  protected async release(): Promise<void> {
    try {
      this.db?.prepare("DELETE FROM beat_lease WHERE name = 'beat' AND holder = ?").run(this.holder);
    } catch {
      // locked: the lease expires by itself
    }
  }

  protected async shut(): Promise<void> {
    const db = this.db;
    this.db = null;
    if (db) closeDatabase(db, this.path);
  }
}

/** The queue every scheduler on a RabbitMQ broker consumes from; its single active consumer leads. */
export const LEADER_QUEUE = 'asynx.beat.leader';

/** Options of {@link AmqpLeadership}. */
export interface AmqpLeadershipOptions {
  connectTimeoutMs: number;
}

/** Leadership by RabbitMQ's single active consumer (see the file header). */
export class AmqpLeadership implements Leadership {
  readonly holder = schedulerName();
  private leading = false;
  private conn: import('../amqp/connection.js').AmqpConnection | null = null;
  private release: (() => void) | null = null;
  private onChange: () => void = () => {};
  private closing: Promise<void> | null = null;

  constructor(readonly url: string, private readonly opts: AmqpLeadershipOptions) {}

  isLeader(): boolean {
    return this.leading;
  }

  private set(leading: boolean): void {
    if (this.leading === leading) return;
    this.leading = leading;
    this.onChange();
  }

  async start(onChange: () => void): Promise<void> {
    this.onChange = onChange;
    const { AmqpConnection } = await import('../amqp/connection.js');
    const conn = new AmqpConnection(this.url, { connectTimeoutMs: this.opts.connectTimeoutMs, connectionName: `asynx beat ${this.holder}`, maxBackoffMs: 2_000 });
    this.conn = conn;
    conn.onOpen(async (model: ChannelModel) => {
      const ch: Channel = await model.createChannel();
      ch.on('error', () => undefined);
      ch.on('close', () => this.set(false));
      // Only ready messages count towards x-max-length: one token waits, at most one is held by the leader.
      await ch.assertQueue(LEADER_QUEUE, { durable: false, autoDelete: false, arguments: { 'x-single-active-consumer': true, 'x-max-length': 1 } });
      await ch.prefetch(1);
      // Every scheduler puts a token in: the queue may be new (first start, broker restart).
      ch.sendToQueue(LEADER_QUEUE, Buffer.from(this.holder), { persistent: false });
      await ch.consume(LEADER_QUEUE, (msg) => {
        if (msg) this.set(true); // kept unacknowledged: the token stays ours until our connection closes
        else this.set(false); // cancelled by the broker (queue deleted)
      }, { noAck: false });
    });
    conn.onLost(() => this.set(false));
    this.release = conn.hold();
    await conn.get(Date.now() + this.opts.connectTimeoutMs, 'join the beat leader election');
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.release?.();
      this.leading = false;
      await this.conn?.close().catch(() => undefined);
    })();
    return this.closing;
  }
}
