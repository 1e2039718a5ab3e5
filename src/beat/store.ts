// Last-run state of periodic entries: the last due time each entry was sent for, with a compare-and-set claim.
//
// A scheduler claims a due time BEFORE it sends (at most once: a crash after the claim loses that run,
// it never repeats it), and a claim succeeds only when it moves the entry forward, so two schedulers
// that both believe they lead still cannot send the same due time twice.
// SQLite broker: a `beat_schedule` table in the broker file. RabbitMQ: a JSON file (beside the pidfile,
// or `--schedule-file`), changed under a lock file, so schedulers on one host share it.

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import lockfile from 'proper-lockfile';
import { closeDatabase, openDatabase, retryWhileBusy, type Db } from '../sqlite/database.js';
import { scheduleFileError } from './beat-errors.js';

/** Where the last due time of each entry is kept. */
export interface ScheduleStore {
  /** The last due time claimed for `entry` (epoch ms), or null when it never ran. */
  lastDue(entry: string): Promise<number | null>;
  /** Records `dueMs` for `entry` if it is later than the stored one; true when this call moved it. */
  claim(entry: string, dueMs: number): Promise<boolean>;
  /** Brings in state kept elsewhere (another host's runs) before this scheduler leads; optional. */
  sync?(): Promise<void>;
  /** Releases the file or database handle. Idempotent. */
  close(): Promise<void>;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS beat_schedule (
  name TEXT PRIMARY KEY,
  last_due INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);`;

/** A statement's own wait on another process's lock, ms (longer waits are async, in retryWhileBusy). */
const STATEMENT_BUSY_MS = 50;
const BUSY_TIMEOUT_MS = 10_000;

/** Opens the broker database with the beat tables (schedule state and the scheduler lease). */
export function openBeatDb(path: string, extraSchema = ''): Db {
  return openDatabase(path, { busyTimeoutMs: STATEMENT_BUSY_MS, schema: SCHEMA + extraSchema, what: 'open the beat state', urlName: 'broker URL (-b / ASYNX_BROKER_URL)' });
}

/** State in the SQLite broker file: one row per entry, claimed by a conditional upsert. */
export class SqliteScheduleStore implements ScheduleStore {
  private readonly db: Db;
  private closed = false;
  private readonly selectStmt;
  private readonly claimStmt;

  constructor(readonly path: string) {
    this.db = openBeatDb(path);
    this.selectStmt = this.db.prepare('SELECT last_due FROM beat_schedule WHERE name = ?');
    this.claimStmt = this.db.prepare(
      `INSERT INTO beat_schedule (name, last_due, updated_at) VALUES (?, ?, ?)
       ON CONFLICT(name) DO UPDATE SET last_due = excluded.last_due, updated_at = excluded.updated_at
       WHERE beat_schedule.last_due < excluded.last_due`,
    );
  }

  lastDue(entry: string): Promise<number | null> {
    return retryWhileBusy(() => {
      const row = this.selectStmt.get(entry) as { last_due: number } | undefined;
      return row ? row.last_due : null;
    }, { path: this.path, what: 'read the beat state', timeoutMs: BUSY_TIMEOUT_MS });
  }

  claim(entry: string, dueMs: number): Promise<boolean> {
    return retryWhileBusy(() => this.claimStmt.run(entry, Math.round(dueMs), Date.now()).changes === 1, { path: this.path, what: 'write the beat state', timeoutMs: BUSY_TIMEOUT_MS });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    closeDatabase(this.db, this.path);
  }
}

interface StateFile {
  version: 1;
  entries: Record<string, { lastDue: number; updatedAt: number }>;
}

/** State in a JSON file (RabbitMQ broker), changed under a lock so schedulers on one host agree. */
export class FileScheduleStore implements ScheduleStore {
  constructor(readonly path: string) {
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (err) {
      throw scheduleFileError(path, 'create the directory of', err);
    }
  }

  /** The last due time of every entry in the file. */
  snapshot(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.read().entries).map(([name, e]) => [name, e.lastDue]));
  }

  private read(): StateFile {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, entries: {} };
      throw scheduleFileError(this.path, 'read', err);
    }
    try {
      const parsed = JSON.parse(text) as Partial<StateFile>;
      return { version: 1, entries: parsed.entries && typeof parsed.entries === 'object' ? parsed.entries : {} };
    } catch {
      // A torn or foreign file: start over rather than refuse to schedule (the lock makes tearing unlikely).
      return { version: 1, entries: {} };
    }
  }

  async lastDue(entry: string): Promise<number | null> {
    return this.read().entries[entry]?.lastDue ?? null;
  }

  async claim(entry: string, dueMs: number): Promise<boolean> {
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(this.path, { realpath: false, stale: 10_000, retries: { retries: 50, minTimeout: 10, maxTimeout: 100 } });
    } catch (err) {
      throw scheduleFileError(this.path, 'lock', err);
    }
    try {
      const state = this.read();
      const last = state.entries[entry]?.lastDue;
      if (last !== undefined && last >= dueMs) return false;
      state.entries[entry] = { lastDue: Math.round(dueMs), updatedAt: Date.now() };
      const tmp = `${this.path}.${process.pid}.tmp`;
      try {
        writeFileSync(tmp, JSON.stringify(state, null, 1));
        renameSync(tmp, this.path);
      } catch (err) {
        throw scheduleFileError(this.path, 'write', err);
      }
      return true;
    } finally {
      await release().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    // nothing held between calls
  }
}
