// The scheduler: while it leads, sends each periodic entry once per due time, applying the catch-up policy.
//
// Every tick (at the next due time, at most `maxSleepMs` apart) the leader reads each entry's last due
// time from the store and sends the due times since then. Each one is claimed in the store BEFORE it is
// sent, and a claim only moves an entry forward, so a crash loses at most that one run and two leaders
// never send one due time twice. When this scheduler becomes the leader (start-up, or a takeover), the
// due times missed until then follow the entry's `catchUp`; from then on it sends each due time as it
// comes. A tick that comes more than {@link RESUME_AFTER_MS} after the previous one (the host slept, the
// clock jumped, the event loop was blocked) is treated the same way. An entry that never ran starts from
// now: its first run is its next due time.

import { EventEmitter } from 'node:events';
import type { Asynx } from '../app/app.js';
import { errorMessage } from '../errors.js';
import { parseBrokerUrl } from '../urls.js';
import { MAX_CATCH_UP, type PeriodicEntry } from './entry.js';
import { AmqpLeadership, SqliteLease, type Leadership } from './leader.js';
import { duesBetween } from './schedule.js';
import { SqliteScheduleStore, type ScheduleStore } from './store.js';

/** Header carrying a periodic run's due time (ISO-8601, UTC) in the task message. */
export const SCHEDULED_AT_HEADER = 'x-asynx-scheduled-at';
/** Header carrying the name of the periodic entry that sent the task. */
export const PERIODIC_ENTRY_HEADER = 'x-asynx-periodic';

/** A gap between two ticks past which the due times in it count as missed (catch-up policy), ms. */
export const RESUME_AFTER_MS = 30_000;

/** Events of a {@link Beat}. */
export interface BeatEventMap {
  /** This scheduler became the leader: it sends from now on. */
  'beat:leader': [{ holder: string; at: number }];
  /** This scheduler lost (or gave up) the lead. */
  'beat:follower': [{ holder: string; at: number }];
  /** One due time sent. `late` is true for a missed run sent by the catch-up policy. */
  'beat:sent': [{ entry: string; task: string; dueAt: number; taskId: string; late: boolean }];
  /** Missed due times skipped by the catch-up policy (`none`, `latest`, or past the bound of `all`). */
  'beat:skipped': [{ entry: string; count: number; through: number }];
  /** A store, election or publish step failed; the scheduler goes on at the next tick. */
  'beat:error': [{ entry: string | null; message: string }];
}

/** Options of {@link Beat}. */
export interface BeatOptions {
  /** Entries to run. @defaultValue the app's (`app.periodic()` and the config file's `periodic` section) */
  entries?: PeriodicEntry[];
  /** Last-run state. @defaultValue the broker's: a table in the SQLite file, the hash `asynx.beat.schedule` on Redis, or a file (`scheduleFile`) for RabbitMQ */
  store?: ScheduleStore;
  /** Leader election. @defaultValue the broker's: a lease row (SQLite), a lease key (Redis), or a single-active-consumer queue (RabbitMQ) */
  leadership?: Leadership;
  /** RabbitMQ: the state file. @defaultValue `.asynx/beat-schedule.json` under the app's cwd */
  scheduleFile?: string;
  /** Longest sleep between two ticks, ms. @defaultValue 1000 */
  maxSleepMs?: number;
  /** The clock, epoch ms (tests inject one). @defaultValue Date.now */
  now?: () => number;
}

/** A running scheduler; {@link Beat.close} stops it. */
export class Beat extends EventEmitter<BeatEventMap> {
  private store: ScheduleStore | null = null;
  private leadership: Leadership | null = null;
  private entries: PeriodicEntry[] = [];
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private again = false;
  private leading = false;
  /** Whether the store's {@link ScheduleStore.sync} ran in this lead. */
  private synced = false;
  private lastTickAt: number | null = null;
  /** Entries whose missed due times still wait for the catch-up decision of this lead. */
  private pendingCatchUp = new Set<string>();
  private closing: Promise<void> | null = null;
  private readonly now: () => number;
  private readonly maxSleepMs: number;

  constructor(readonly app: Asynx, private readonly opts: BeatOptions = {}) {
    super();
    this.now = opts.now ?? Date.now;
    this.maxSleepMs = opts.maxSleepMs ?? 1_000;
  }

  /** The entries this scheduler runs (known after {@link start}). */
  get schedule(): readonly PeriodicEntry[] {
    return this.entries;
  }

  /** Opens the store, joins the election and starts ticking. */
  async start(): Promise<void> {
    this.entries = this.opts.entries ?? (await this.app.periodicEntries());
    const config = await this.app.config();
    const broker = parseBrokerUrl(config.brokerUrl, this.app.cwd);
    if (broker.kind === 'sqlite') {
      this.store = this.opts.store ?? new SqliteScheduleStore(broker.path);
      this.leadership = this.opts.leadership ?? new SqliteLease(broker.path);
    } else if (broker.kind === 'redis') {
      const [{ RedisScheduleStore }, { RedisLease }] = await Promise.all([import('./redis-store.js'), import('./redis-lease.js')]);
      this.store = this.opts.store ?? new RedisScheduleStore(broker.url, { connectTimeoutMs: config.connectTimeoutMs, publishTimeoutMs: config.publishTimeoutMs });
      this.leadership = this.opts.leadership ?? new RedisLease(broker.url, { connectTimeoutMs: config.connectTimeoutMs });
    } else {
      const { AmqpScheduleStore } = await import('./amqp-store.js');
      this.store = this.opts.store ?? new AmqpScheduleStore(broker.url, this.opts.scheduleFile ?? `${this.app.cwd}/.asynx/beat-schedule.json`, { connectTimeoutMs: config.connectTimeoutMs, publishTimeoutMs: config.publishTimeoutMs });
      this.leadership = this.opts.leadership ?? new AmqpLeadership(broker.url, { connectTimeoutMs: config.connectTimeoutMs });
    }
    await this.app.connect();
    await this.leadership.start(() => this.kick());
    this.kick();
  }

  /** Whether this scheduler leads now. */
  isLeader(): boolean {
    return this.leadership?.isLeader() ?? false;
  }

  /** Runs one tick now and resolves when it is done (the timer goes on as well): for tests and injected clocks. */
  async check(): Promise<void> {
    while (this.ticking) await this.ticking;
    this.kick();
    await this.ticking;
  }

  private kick(): void {
    if (this.closing) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.ticking = this.tick()
      .catch((err) => {
        this.emit('beat:error', { entry: null, message: errorMessage(err) });
      })
      .finally(() => {
        this.ticking = null;
        if (this.closing) return;
        if (this.again) {
          this.again = false;
          this.kick();
          return;
        }
        this.timer = setTimeout(() => this.kick(), this.sleepMs());
      });
  }

  /** Until the next due time of any entry, at most `maxSleepMs` (so an election change is seen soon). */
  private sleepMs(): number {
    const now = this.now();
    let next = now + this.maxSleepMs;
    for (const e of this.entries) next = Math.min(next, e.schedule.next(now));
    return Math.max(5, next - now);
  }

  private async tick(): Promise<void> {
    const leadership = this.leadership!;
    const leads = leadership.isLeader();
    // One clock reading per tick: a catch-up covers exactly the due times up to the `beat:leader` time.
    const now = this.now();
    if (leads !== this.leading) {
      this.leading = leads;
      if (leads) this.pendingCatchUp = new Set(this.entries.map((e) => e.name));
      this.synced = false;
      this.emit(leads ? 'beat:leader' : 'beat:follower', { holder: leadership.holder, at: now });
    }
    if (!leads) {
      this.lastTickAt = null;
      return;
    }
    if (!this.synced) {
      // Before the first send of a lead: what the previous leader recorded elsewhere (a failure retries next tick).
      await this.store!.sync?.();
      this.synced = true;
    }
    if (this.lastTickAt !== null && now - this.lastTickAt > RESUME_AFTER_MS) this.pendingCatchUp = new Set(this.entries.map((e) => e.name));
    this.lastTickAt = now;
    for (const entry of this.entries) {
      if (this.closing || !leadership.isLeader()) return;
      try {
        await this.runEntry(entry, now);
      } catch (err) {
        this.emit('beat:error', { entry: entry.name, message: errorMessage(err) });
      }
    }
  }

  private async runEntry(entry: PeriodicEntry, now: number): Promise<void> {
    const store = this.store!;
    const last = await store.lastDue(entry.name);
    const catchingUp = this.pendingCatchUp.delete(entry.name);
    if (last === null) {
      await store.claim(entry.name, now); // never ran: start from now
      return;
    }
    const { dues, dropped } = duesBetween(entry.schedule, last, now, MAX_CATCH_UP);
    if (!dues.length) return;
    let send = dues;
    if (catchingUp && entry.catchUp !== 'all') {
      const latest = dues[dues.length - 1]!;
      send = entry.catchUp === 'latest' ? [latest] : [];
      const skipped = dues.length - send.length + dropped;
      if (skipped) {
        if (!send.length && !(await store.claim(entry.name, latest))) return;
        // The newest skipped one: the one before `latest` when it is sent (older than the oldest listed when the list was cut).
        const through = !send.length ? latest : dues.length >= 2 ? dues[dues.length - 2]! : dues[0]! - 1;
        this.emit('beat:skipped', { entry: entry.name, count: skipped, through });
      }
    } else if (dropped) {
      this.emit('beat:skipped', { entry: entry.name, count: dropped, through: dues[0]! - 1 });
    }
    for (const due of send) {
      if (this.closing || !this.leadership!.isLeader()) return;
      // Claimed before the send: a crash between the two loses this run, it never sends it twice.
      if (!(await store.claim(entry.name, due))) continue;
      const result = await this.app.send(entry.task, entry.args, entry.kwargs, entry.options, {
        [SCHEDULED_AT_HEADER]: new Date(due).toISOString(),
        [PERIODIC_ENTRY_HEADER]: entry.name,
      });
      this.emit('beat:sent', { entry: entry.name, task: entry.task, dueAt: due, taskId: result.id, late: catchingUp });
    }
  }

  /** Stops ticking, waits for a send in progress, and hands the lead over. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.timer) clearTimeout(this.timer);
      await this.ticking?.catch(() => undefined);
      const wasLeading = this.leading;
      await this.leadership?.close().catch(() => undefined);
      await this.store?.close().catch(() => undefined);
      if (wasLeading) this.emit('beat:follower', { holder: this.leadership!.holder, at: this.now() });
    })();
    return this.closing;
  }
}

/**
 * Starts a {@link Beat} for `app` (the app's entries, the broker's store and election) and resolves once it
 * runs. `listen` subscribes to its events before the first tick, so the first `beat:leader` is seen.
 */
export async function startBeat(app: Asynx, opts: BeatOptions = {}, listen?: (beat: Beat) => void): Promise<Beat> {
  const beat = new Beat(app, opts);
  listen?.(beat);
  try {
    await beat.start();
  } catch (err) {
    await beat.close();
    throw err;
  }
  return beat;
}
