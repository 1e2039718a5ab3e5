// Embedded broker on SQLite: durable queues with leases, eta held in the table, priorities, dead letters, events.

import { randomUUID } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { deflateRawSync } from 'node:zlib';
import { BrokerUnavailableError } from '../errors.js';
import { parseCeleryTime } from '../protocol/codec.js';
import type { WireMessage } from '../protocol/message.js';
import { closeDatabase, retryWhileBusy } from '../sqlite/database.js';
import { isBusy, sqliteError } from '../sqlite/errors.js';
import { Releasers } from '../util/close-once.js';
import { MSG_DELAYED, MSG_LEASED, MSG_READY, openDb, type Db } from './sqlite-db.js';
import { SqliteShared } from './sqlite-shared.js';
import type { Consumer, Delivery, DeliveryHandler, PublishOptions, Transport, TransportCapabilities } from './transport.js';

/** Options of the SQLite transport. */
export interface SqliteTransportOptions {
  /** A claimed message returns to its queue when its lease is not renewed for this long. @defaultValue 30000 */
  visibilityTimeoutMs?: number;
  /** Bounded wait for a publish when the file is locked. @defaultValue 5000 */
  publishTimeoutMs?: number;
  /**
   * Longest pause between polls of an empty queue. Idle consumers are also woken when a message is
   * published, by this process directly and by other processes through a watch on the write-ahead log,
   * so the poll is the fallback (a file system without change notification). @defaultValue 20
   */
  maxPollIntervalMs?: number;
  /** First pause after an empty poll; it doubles up to `maxPollIntervalMs`. @defaultValue 1 */
  minPollIntervalMs?: number;
  /** Celery events kept in the `events` table: older rows are deleted as new ones are written. @defaultValue 10000 */
  eventsMaxCount?: number;
  /** Events older than this are deleted as new ones are written, ms. @defaultValue 3600000 (one hour) */
  eventsMaxAgeMs?: number;
}

/** A batch of events, ready for one row of the `events` table. */
interface EventBatch {
  n: number;
  /** The events as a JSON list, deflated. */
  body: Buffer;
}

/**
 * Queued events ride on the first publish, claim or ack transaction once the oldest is this old, ms; with
 * none coming they are written alone a little later. Not on every commit: each commit rewrites the
 * table's last page whole, so events spread over hundreds of commits a second cost far more (bench case 8).
 */
const EVENT_BATCH_MS = 100;
/** Events held while the file is locked or full; the oldest are dropped beyond this (events are best-effort). */
const EVENT_BACKLOG_MAX = 10_000;

/** A statement's own wait on another process's lock (it blocks the event loop, so it stays short), ms. */
const STATEMENT_BUSY_MS = 250;

interface Row {
  id: number;
  queue: string;
  deliveries: number;
  properties: string;
  headers: string;
  body: string;
}

/** Why an idle consumer claimed again: its poll timer, a publish in this process, a write seen on the WAL file. */
export type WakeReason = 'poll' | 'publish' | 'watch';

/** `<row id>:<delivery count>` → its two numbers. */
function parseTag(tag: string): [number, number] {
  const [id, n] = tag.split(':');
  return [Number(id), Number(n)];
}

/** The embedded broker. One instance per process; safe with many processes on one file. */
export class SqliteTransport implements Transport {
  readonly kind = 'sqlite';
  readonly capabilities: TransportCapabilities = { delayedDelivery: true, priorities: true };
  private db: Db | null = null;
  private readonly owner = randomUUID();
  private readonly visibilityMs: number;
  private readonly publishTimeoutMs: number;
  private readonly maxPollMs: number;
  private readonly minPollMs: number;
  /** Watch on the `-wal` file: another process committed (a publish, most likely). */
  private walWatcher: FSWatcher | null = null;
  /** How often idle consumers woke up, by reason (diagnostics; the wake-on-publish test reads it). */
  readonly wakeups: Record<WakeReason, number> = { poll: 0, publish: 0, watch: 0 };
  private readonly consumers = new Set<SqliteConsumer>();
  private renewTimer: NodeJS.Timeout | null = null;
  private pendingAcks: Array<[number, number]> = [];
  private pendingPublishes: Array<{ row: unknown[]; timeoutMs: number; resolve: () => void; reject: (err: unknown) => void }> = [];
  private ackFlush: Promise<void> | null = null;
  private pendingEvents: object[] = [];
  /** When the oldest queued event was queued (epoch ms). */
  private pendingSince = 0;
  private eventTimer: NodeJS.Timeout | null = null;
  private readonly eventsMaxCount: number;
  private readonly eventsMaxAgeMs: number;
  /** Events per row: a row is deleted whole, so it must be small beside maxCount. */
  private readonly eventsPerRow: number;
  private lastAgePrune = 0;
  private stmts: ReturnType<SqliteTransport['prepare']> | null = null;
  /** Global rate-limit buckets and dedupe keys. */
  private shared: SqliteShared | null = null;
  /** Cleanup registered as resources are opened; close() runs it once, newest first. */
  private readonly releasers = new Releasers();

  constructor(readonly path: string, opts: SqliteTransportOptions = {}) {
    this.visibilityMs = opts.visibilityTimeoutMs ?? 30_000;
    this.publishTimeoutMs = opts.publishTimeoutMs ?? 5_000;
    this.maxPollMs = opts.maxPollIntervalMs ?? 20;
    this.minPollMs = Math.min(opts.minPollIntervalMs ?? 1, this.maxPollMs);
    this.eventsMaxCount = opts.eventsMaxCount ?? 10_000;
    this.eventsMaxAgeMs = opts.eventsMaxAgeMs ?? 3_600_000;
    this.eventsPerRow = Math.max(1, Math.min(1_000, Math.floor(this.eventsMaxCount / 4)));
  }

  private prepare(db: Db) {
    return {
      insert: db.prepare('INSERT INTO messages (queue, priority, state, visible_at, properties, headers, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      promote: db.prepare(`UPDATE messages SET state = ${MSG_READY}, owner = NULL WHERE state IN (${MSG_DELAYED}, ${MSG_LEASED}) AND visible_at <= ?`),
      pick: db.prepare(`SELECT id, queue, deliveries, properties, headers, body FROM messages WHERE queue = ? AND state = ${MSG_READY} ORDER BY priority DESC, id LIMIT ?`),
      lease: db.prepare(`UPDATE messages SET state = ${MSG_LEASED}, visible_at = ?, owner = ?, deliveries = deliveries + 1 WHERE id = ?`),
      ack: db.prepare('DELETE FROM messages WHERE id = ? AND owner = ? AND deliveries = ?'),
      requeue: db.prepare(`UPDATE messages SET state = ${MSG_READY}, visible_at = ?, owner = NULL WHERE id = ? AND owner = ? AND deliveries = ?`),
      renew: db.prepare(`UPDATE messages SET visible_at = ? WHERE owner = ? AND state = ${MSG_LEASED}`),
      dead: db.prepare('INSERT INTO dead_letters (queue, reason, deliveries, properties, headers, body, created_at) SELECT queue, ?, deliveries, properties, headers, body, ? FROM messages WHERE id = ? AND owner = ? AND deliveries = ?'),
      deadRow: db.prepare('INSERT INTO dead_letters (queue, reason, deliveries, properties, headers, body, created_at) SELECT queue, ?, deliveries, properties, headers, body, ? FROM messages WHERE id = ?'),
      drop: db.prepare('DELETE FROM messages WHERE id = ?'),
      purge: db.prepare(`DELETE FROM messages WHERE queue = ? AND state IN (${MSG_READY}, ${MSG_DELAYED})`),
      count: db.prepare(`SELECT COUNT(*) AS n FROM messages WHERE queue = ?`),
      event: db.prepare('INSERT INTO events (created_at, n, seq, body) VALUES (?, ?, ?, ?)'),
      lastSeq: db.prepare('SELECT seq FROM events ORDER BY id DESC LIMIT 1'),
      // Both from the low end by id (rows are in seq and time order there); the newest row stays (ids keep growing).
      pruneCount: db.prepare('DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT 1000) AND seq - n < ? AND id < ?'),
      oldestEvent: db.prepare('SELECT created_at FROM events ORDER BY id LIMIT 1'),
      pruneAge: db.prepare('DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT 1000) AND created_at < ? AND id < ?'),
    };
  }

  async connect(): Promise<void> {
    if (this.releasers.closed) throw new BrokerUnavailableError(`The SQLite transport on ${this.path} is closed: create a new one`, { facts: { path: this.path } });
    if (this.db) return;
    // A short busy timeout: the event loop must not block for long; callers retry.
    const db = openDb(this.path, STATEMENT_BUSY_MS);
    try {
      this.stmts = this.prepare(db);
      this.shared = new SqliteShared(db, this.owner);
    } catch (err) {
      db.close();
      throw sqliteError(err, { path: this.path, what: 'prepare the broker statements', busyTimeoutMs: STATEMENT_BUSY_MS });
    }
    this.db = db;
    // Registered now, run newest first at close(): publishes in, consumers stopped, acks flushed, timer
    // cleared, held messages handed back, file closed. A failing step never skips the next.
    this.releasers.add('close the database file', () => {
      this.db = null;
      this.stmts = null;
      this.shared = null;
      closeDatabase(db, this.path);
    });
    this.releasers.add('write pending events', () => this.flushEvents());
    this.releasers.add('hand held messages back', () => {
      // Back to its queue at once rather than after the lease (locked or full: the leases expire by themselves).
      db.prepare(`UPDATE messages SET state = ${MSG_READY}, visible_at = ?, owner = NULL WHERE owner = ? AND state = ${MSG_LEASED}`).run(Date.now(), this.owner);
    });
    this.releasers.add('stop the lease renewal timer', () => {
      if (this.renewTimer) clearInterval(this.renewTimer);
      this.renewTimer = null;
    });
    this.releasers.add('stop watching the write-ahead log', () => {
      this.walWatcher?.close();
      this.walWatcher = null;
    });
    this.releasers.add('flush pending acks', async () => {
      await this.ackFlush;
    });
    this.releasers.add('stop the consumers', async () => {
      const all = [...this.consumers];
      this.consumers.clear();
      await Promise.allSettled(all.map((c) => c.stop()));
    });
    this.releasers.add('commit pending publishes', () => this.flushPublishes());
  }

  /** The open database, or the same "closed / not connected" error as {@link s}. */
  private get handle(): Db {
    void this.s;
    return this.db!;
  }

  private get s() {
    if (!this.stmts) {
      const why = this.releasers.closed ? 'is closed: create a new one' : 'is not connected: call connect() first';
      throw new BrokerUnavailableError(`The SQLite transport on ${this.path} ${why}`, { facts: { path: this.path } });
    }
    return this.stmts;
  }

  async declareQueue(_queue: string): Promise<void> {
    // Queues are rows' `queue` values: nothing to declare.
  }

  /** Runs a write, retrying while the file is locked, up to `timeoutMs`; failures are SqliteStorageErrors. */
  private withRetry<T>(what: string, timeoutMs: number, fn: () => T): Promise<T> {
    return retryWhileBusy(fn, { path: this.path, what, timeoutMs });
  }

  async publish(queue: string, message: WireMessage, opts: PublishOptions = {}): Promise<void> {
    // Queued in the caller's tick when already open, so a close() called right after still commits it.
    if (!this.db || this.releasers.closed) await this.connect();
    const row = this.rowFor(queue, message);
    // Publishes made in the same tick share one write transaction: each commit is a WAL append plus a turn of
    // the file lock that the workers' claims and acks wait for (bench case 3). Each still resolves on commit.
    return new Promise<void>((resolve, reject) => {
      this.pendingPublishes.push({ row, timeoutMs: opts.timeoutMs ?? this.publishTimeoutMs, resolve, reject });
      if (this.pendingPublishes.length === 1) setImmediate(() => void this.flushPublishes());
    });
  }

  /**
   * Publishes unless the dedupe `key` is held by a task still waiting or running (one transaction, so two
   * senders racing on one key send one message). Null when sent, else the holding task's id.
   */
  async publishUnique(queue: string, message: WireMessage, key: string, opts: PublishOptions = {}): Promise<string | null> {
    await this.connect();
    const row = this.rowFor(queue, message);
    const held = await this.withRetry('publish', opts.timeoutMs ?? this.publishTimeoutMs, () =>
      this.handle.transaction(() => {
        const holder = this.shared!.claimKey(key, message.headers.id);
        if (holder === null) this.s.insert.run(...row);
        return holder;
      }).immediate(),
    );
    if (held === null) this.wakeIdle('publish');
    return held;
  }

  async holdDedupe(key: string, taskId: string): Promise<void> {
    await this.withRetry('hold a dedupe key', 60_000, () => this.shared!.hold(key, taskId, this.visibilityMs));
  }

  async releaseDedupe(key: string, taskId: string): Promise<void> {
    await this.withRetry('release a dedupe key', 60_000, () => this.shared!.release(key, taskId));
  }

  /** A global rate limit's bucket, shared by every process on this file (see {@link SqliteShared.takeToken}). */
  async takeRateToken(key: string, intervalMs: number): Promise<number> {
    await this.connect();
    return this.withRetry('take a rate-limit token', 60_000, () => this.shared!.takeToken(key, intervalMs));
  }

  /** The `messages` row for a publish: eta → delayed, visible at its time. */
  private rowFor(queue: string, message: WireMessage): unknown[] {
    const now = Date.now();
    let visibleAt = now;
    if (message.headers.eta) {
      try {
        visibleAt = Math.max(now, parseCeleryTime(message.headers.eta, 'eta'));
      } catch {
        visibleAt = now; // the worker reports the bad header
      }
    }
    const state = visibleAt > now ? MSG_DELAYED : MSG_READY;
    const p = message.properties.priority ?? 0;
    return [queue, p, state, visibleAt, JSON.stringify(message.properties), JSON.stringify(message.headers), message.body, now];
  }

  private async flushPublishes(): Promise<void> {
    const batch = this.pendingPublishes;
    this.pendingPublishes = [];
    if (!batch.length) return;
    const events = this.takeEvents();
    try {
      await this.withRetry('publish', Math.min(...batch.map((b) => b.timeoutMs)), () =>
        this.handle.transaction(() => {
          for (const b of batch) this.s.insert.run(...b.row);
          this.writeEvents(events);
        })(),
      );
      this.wakeIdle('publish');
      for (const b of batch) b.resolve();
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  }

  /**
   * Claims up to `max` due messages from the queues, in one transaction. Acks queued but not written yet
   * ride in it (one commit instead of two); the ack flush that follows then finds them done.
   */
  claim(queues: string[], max: number): Delivery[] {
    const s = this.s;
    const db = this.handle;
    const now = Date.now();
    const out: Delivery[] = [];
    const events = this.takeEvents();
    const acks = this.pendingAcks;
    this.pendingAcks = [];
    try {
      db.transaction(() => {
        for (const [id, n] of acks) s.ack.run(id, this.owner, n);
        this.writeEvents(events);
        this.claimRows(s, queues, max, now, out);
      }).immediate();
    } catch (err) {
      // Not written: the acks go back to the flush that is already scheduled.
      this.pendingAcks = [...acks, ...this.pendingAcks];
      if (events.length) void this.writeEventsAlone(events);
      throw sqliteError(err, { path: this.path, what: 'claim', busyTimeoutMs: STATEMENT_BUSY_MS });
    }
    return out;
  }

  /** Inside a transaction: promotes due messages, then leases up to `max` from the queues into `out`. */
  private claimRows(s: ReturnType<SqliteTransport['prepare']>, queues: string[], max: number, now: number, out: Delivery[]): void {
    s.promote.run(now);
    for (const q of queues) {
      if (out.length >= max) break;
      const rows = s.pick.all(q, max - out.length) as Row[];
      for (const r of rows) {
        let message: Delivery['message'];
        try {
          message = { properties: JSON.parse(r.properties) as Record<string, unknown>, headers: JSON.parse(r.headers) as unknown, body: r.body };
        } catch (err) {
          // A row written by something else than this transport: dead-letter it here, or it would fail
          // every claim and stop the queue (test/faults/sqlite-malformed.test.ts).
          s.deadRow.run(`asynx.broker.badRow: stored properties or headers are not JSON (${(err as Error).message})`, now, r.id);
          s.drop.run(r.id);
          continue;
        }
        s.lease.run(now + this.visibilityMs, this.owner, r.id);
        out.push({
          // The delivery count makes each hand-out's tag unique: a late ack of an older
          // delivery of the same row (lease expired, handed out again) matches nothing.
          tag: `${r.id}:${r.deliveries + 1}`,
          queue: r.queue,
          message,
          redelivered: r.deliveries > 0,
          deliveryCount: r.deliveries + 1,
        });
      }
    }
  }

  /** Wakes the consumers that wait on an empty queue (not those waiting for room in their window). */
  private wakeIdle(reason: WakeReason): void {
    for (const c of this.consumers) if (c.wakeIfIdle()) this.wakeups[reason]++;
  }

  /**
   * Watches the `-wal` file (idempotent): every commit by another process writes it, so an idle consumer
   * claims at once instead of at its next poll. Without change notification (or before the file exists)
   * the poll still finds the work; a rename or error drops the watch and the next idle poll sets it again.
   */
  watchWal(): void {
    if (this.walWatcher || this.releasers.closed || this.path === ':memory:' || !this.consumers.size) return;
    let w: FSWatcher;
    try {
      w = watch(`${this.path}-wal`, { persistent: false }, (event) => {
        if (event === 'rename') drop();
        this.wakeIdle('watch');
      });
    } catch {
      return; // no WAL file yet, or no inotify: the poll finds new work
    }
    const drop = () => {
      w.close();
      if (this.walWatcher === w) this.walWatcher = null;
    };
    w.on('error', drop);
    this.walWatcher = w;
  }

  /** Counts a poll timer that woke an idle consumer. */
  polled(): void {
    this.wakeups.poll++;
  }

  async consume(queues: string[], prefetch: number, onDelivery: DeliveryHandler): Promise<Consumer> {
    await this.connect();
    const c = new SqliteConsumer(this, queues, prefetch, onDelivery, this.minPollMs, this.maxPollMs);
    this.consumers.add(c);
    this.watchWal();
    if (!this.renewTimer) {
      this.renewTimer = setInterval(() => this.renew(), Math.max(100, Math.floor(this.visibilityMs / 3)));
      this.renewTimer.unref();
    }
    c.start();
    return {
      cancel: async () => {
        await c.stop();
        this.consumers.delete(c);
      },
    };
  }

  /** Extends the lease of every message this process holds. */
  private renew(): void {
    try {
      this.s.renew.run(Date.now() + this.visibilityMs, this.owner);
      this.shared?.renew(this.visibilityMs);
    } catch {
      // locked: the next tick retries well before the lease ends
    }
  }

  /** Called by a consumer when it may claim again (a held delivery was settled). */
  private settled(): void {
    for (const c of this.consumers) c.onSettled();
  }

  async ack(delivery: Delivery): Promise<void> {
    this.pendingAcks.push(parseTag(delivery.tag));
    for (const c of this.consumers) c.release(delivery.tag);
    if (!this.ackFlush) {
      this.ackFlush = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.flushAcks());
    }
    const p = this.ackFlush;
    this.settled();
    return p;
  }

  private async flushAcks(): Promise<void> {
    const ids = this.pendingAcks;
    this.pendingAcks = [];
    this.ackFlush = null;
    if (!ids.length) return;
    const events = this.takeEvents();
    // Consumers with room claim in the same commit (the next claim would cost a commit of its own).
    let claimed: Array<[SqliteConsumer, Delivery[]]> = [];
    await this.withRetry('ack', 60_000, () => {
      claimed = [];
      this.handle.transaction(() => {
        for (const [id, n] of ids) this.s.ack.run(id, this.owner, n);
        this.writeEvents(events);
        const now = Date.now();
        for (const c of this.consumers) {
          const room = c.room();
          if (room <= 0) continue;
          const out: Delivery[] = [];
          this.claimRows(this.s, c.queues, room, now, out);
          if (out.length) claimed.push([c, out]);
        }
      }).immediate();
    });
    for (const [c, got] of claimed) c.accept(got);
  }

  /**
   * Queues Celery events for the `events` table. They are written inside a transaction the transport
   * makes anyway (a publish batch, a claim, an ack batch) once the oldest has waited 100 ms, or alone
   * after 150 ms when none comes; each write also deletes the rows beyond the retention (count and
   * age). Never throws: events are best-effort, a locked file keeps them for the next batch.
   */
  appendEvents(events: object[]): void {
    if (this.releasers.closed) return;
    if (!this.pendingEvents.length) this.pendingSince = Date.now();
    for (const e of events) this.pendingEvents.push(e);
    if (this.pendingEvents.length > EVENT_BACKLOG_MAX) this.pendingEvents.splice(0, this.pendingEvents.length - EVENT_BACKLOG_MAX);
    if (!this.eventTimer) {
      this.eventTimer = setTimeout(() => void this.flushEvents(), (EVENT_BATCH_MS * 3) / 2);
      this.eventTimer.unref();
    }
  }

  /** The queued events when they are due (or `all`), as rows to insert, leaving the queue empty; otherwise none. */
  private takeEvents(all = false): EventBatch[] {
    if (!this.pendingEvents.length || (!all && Date.now() - this.pendingSince < EVENT_BATCH_MS)) return [];
    const events = this.pendingEvents;
    this.pendingEvents = [];
    if (this.eventTimer) clearTimeout(this.eventTimer);
    this.eventTimer = null;
    const out: EventBatch[] = [];
    for (let i = 0; i < events.length; i += this.eventsPerRow) {
      const chunk = events.slice(i, i + this.eventsPerRow);
      // Level 1: similar events compress some 30× for about 3 µs each.
      out.push({ n: chunk.length, body: deflateRawSync(JSON.stringify(chunk), { level: 1 }) });
    }
    return out;
  }

  /** Inside a transaction: inserts the rows, then trims the table to the retention. */
  private writeEvents(rows: EventBatch[]): void {
    if (!rows.length) return;
    const s = this.s;
    const now = Date.now();
    let seq = (s.lastSeq.get() as { seq: number } | undefined)?.seq ?? 0;
    let last = 0;
    for (const r of rows) {
      seq += r.n;
      last = Number(s.event.run(now, r.n, seq, r.body).lastInsertRowid);
    }
    // Drop every row holding one of the events older than the newest maxCount (a few writes a second).
    if (seq > this.eventsMaxCount) s.pruneCount.run(seq - this.eventsMaxCount, last);
    if (now - this.lastAgePrune >= 1_000) {
      this.lastAgePrune = now;
      const oldest = s.oldestEvent.get() as { created_at: number } | undefined;
      if (oldest && oldest.created_at < now - this.eventsMaxAgeMs) s.pruneAge.run(now - this.eventsMaxAgeMs, last);
    }
  }

  /** Writes the queued events in a transaction of their own. */
  private flushEvents(): Promise<void> {
    return this.writeEventsAlone(this.takeEvents(true));
  }

  private async writeEventsAlone(events: EventBatch[]): Promise<void> {
    if (!events.length || !this.stmts) return;
    try {
      await this.withRetry('write events', this.publishTimeoutMs, () => this.handle.transaction(() => this.writeEvents(events))());
    } catch {
      // Locked past the publish timeout, or full: these events are lost (monitoring is best-effort).
    }
  }

  async reject(delivery: Delivery, opts: { requeue: boolean; reason?: string }): Promise<void> {
    const [id, n] = parseTag(delivery.tag);
    for (const c of this.consumers) c.release(delivery.tag);
    await this.withRetry('reject', 60_000, () =>
      this.handle.transaction(() => {
        if (!opts.requeue) this.s.dead.run(opts.reason ?? 'rejected', Date.now(), id, this.owner, n);
        if (opts.requeue) this.s.requeue.run(Date.now(), id, this.owner, n);
        else this.s.ack.run(id, this.owner, n);
      })(),
    );
    this.settled();
  }

  async purge(queues: string[]): Promise<number> {
    await this.connect();
    return this.withRetry('purge', this.publishTimeoutMs, () => {
      let n = 0;
      for (const q of queues) n += this.s.purge.run(q).changes;
      return n;
    });
  }

  async count(queue: string): Promise<number> {
    await this.connect();
    return this.withRetry('count', this.publishTimeoutMs, () => (this.s.count.get(queue) as { n: number }).n);
  }

  /** Dead-lettered messages (newest last), for tools and tests. */
  async deadLetters(): Promise<Array<{ queue: string; reason: string; deliveries: number; headers: unknown }>> {
    await this.connect();
    const rows = await this.withRetry('read dead letters', this.publishTimeoutMs, () => this.handle.prepare('SELECT queue, reason, deliveries, headers FROM dead_letters ORDER BY id').all()) as Array<{ queue: string; reason: string; deliveries: number; headers: string }>;
    return rows.map((r) => ({ ...r, headers: JSON.parse(r.headers) as unknown }));
  }

  /** Closes for good (idempotent: the same promise every call). Each step runs even when one fails. */
  close(): Promise<void> {
    return this.releasers.close();
  }
}

/** Polling consumer: claims while it has room in its prefetch window, backs off when the queue is empty. */
class SqliteConsumer {
  private readonly held = new Set<string>();
  private running = false;
  private timer: NodeJS.Timeout | null = null;
  private idleMs: number;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  /** The current pause is for an empty queue (a publish ends it), not for room in the window. */
  private idleWait = false;

  constructor(
    private readonly t: SqliteTransport,
    readonly queues: string[],
    private readonly prefetch: number,
    private readonly onDelivery: DeliveryHandler,
    private readonly minPollMs: number,
    private readonly maxPollMs: number,
  ) {
    this.idleMs = minPollMs;
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  release(tag: string): void {
    this.held.delete(tag);
  }

  onSettled(): void {
    if (this.wake) this.wake();
  }

  /** Ends a pause on an empty queue; true when it did. */
  wakeIfIdle(): boolean {
    if (!this.idleWait || !this.wake) return false;
    this.wake();
    return true;
  }

  /** Deliveries it would claim now: 0 while stopped or while less than half its window is free (see run()). */
  room(): number {
    const room = this.running ? this.prefetch - this.held.size : 0;
    return room > 0 && (this.held.size === 0 || room >= Math.ceil(this.prefetch / 2)) ? room : 0;
  }

  /** Takes deliveries claimed for it elsewhere (the ack flush's transaction). */
  accept(got: Delivery[]): void {
    if (!this.running) {
      for (const d of got) void this.t.reject(d, { requeue: true }).catch(() => undefined);
      return;
    }
    this.idleMs = this.minPollMs;
    for (const d of got) this.held.add(d.tag);
    for (const d of got) this.onDelivery(d);
  }

  private pause(ms: number, idle = false): Promise<void> {
    return new Promise((resolve) => {
      this.idleWait = idle;
      this.wake = () => {
        this.wake = null;
        this.idleWait = false;
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
        resolve();
      };
      this.timer = setTimeout(() => {
        if (this.idleWait) this.t.polled();
        this.wake?.();
      }, ms);
    });
  }

  private async run(): Promise<void> {
    while (this.running) {
      const room = this.prefetch - this.held.size;
      // Refill in batches: claim only when at least half the window is free (or nothing is held), so a busy
      // worker pays one claim transaction per prefetch/2 tasks instead of one per task (bench case 3).
      if (room <= 0 || (this.held.size > 0 && room < Math.ceil(this.prefetch / 2))) {
        await this.pause(50);
        continue;
      }
      let got: Delivery[] = [];
      try {
        got = this.t.claim(this.queues, room);
      } catch (err) {
        if (!isBusy(err)) {
          // A broken or full database: keep the worker alive and retry slowly.
          await this.pause(500);
          continue;
        }
      }
      if (!this.running) {
        // Cancelled while claiming: hand these straight back.
        for (const d of got) await this.t.reject(d, { requeue: true });
        break;
      }
      if (got.length) {
        this.idleMs = this.minPollMs;
        for (const d of got) this.held.add(d.tag);
        for (const d of got) this.onDelivery(d);
        await new Promise((r) => setImmediate(r));
      } else {
        this.t.watchWal();
        await this.pause(this.idleMs, true);
        this.idleMs = Math.min(this.idleMs * 2, this.maxPollMs);
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }
}
