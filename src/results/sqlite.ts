// Result backend on the embedded SQLite file: a results table with expiry, polled by waiters.

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { BrokerUnavailableError, TimeoutError } from '../errors.js';
import { READY_STATES, type ResultBody } from '../protocol/message.js';
import { closeDatabase, openDatabase, retryWhileBusy, type Db } from '../sqlite/database.js';
import { Releasers } from '../util/close-once.js';
import type { ChordStore, ResultBackend, ResultTarget } from './backend.js';
import { CANVAS_SCHEMA, groupStatements, migrateResults, sqliteChordStore } from './sqlite-canvas.js';

/** The results table (Celery's task meta), next to the embedded broker's tables or in a file of its own. */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS results (
  task_id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  result TEXT,
  traceback TEXT,
  name TEXT,
  children TEXT,
  date_done INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS results_expiry ON results (expires_at);
`;

/** A statement's own wait on another process's lock (it blocks the event loop), ms; retries wait longer. */
const STATEMENT_BUSY_MS = 250;

interface ResultRow {
  task_id: string;
  status: string;
  result: string | null;
  traceback: string | null;
  name: string | null;
  children: string | null;
  date_done: number;
  group_id: string | null;
}

/** Stores results in `results` next to the embedded broker's tables. */
export class SqliteResultBackend implements ResultBackend {
  readonly kind = 'sqlite';
  readonly replyTo = randomUUID();
  private db: Db | null = null;
  private stmts: {
    upsert: import('better-sqlite3').Statement;
    get: import('better-sqlite3').Statement;
    del: import('better-sqlite3').Statement;
    expire: import('better-sqlite3').Statement;
  } | null = null;
  private groups: ReturnType<typeof groupStatements> | null = null;
  private chordStore: (ChordStore & { cleanup(now: number): number }) | null = null;
  private readonly releasers = new Releasers();

  constructor(
    readonly path: string,
    private readonly opts: { expiresMs: number; maxPollMs?: number; writeTimeoutMs?: number },
  ) {}

  async connect(): Promise<void> {
    if (this.releasers.closed) throw new BrokerUnavailableError(`The SQLite result backend on ${this.path} is closed: create a new one`, { facts: { path: this.path } });
    if (this.db) return;
    const db = openDatabase(this.path, { busyTimeoutMs: STATEMENT_BUSY_MS, schema: SCHEMA + CANVAS_SCHEMA, what: 'open the result store' });
    this.db = db;
    this.releasers.add('close the database file', () => {
      this.db = null;
      this.stmts = null;
      this.groups = null;
      this.chordStore = null;
      closeDatabase(db, this.path);
    });
    migrateResults(db);
    this.groups = groupStatements(db);
    this.chordStore = sqliteChordStore(db, (what, fn) => this.retry(what, fn), this.opts.expiresMs);
    this.stmts = {
      // A ready state is final: a late STARTED/RETRY never overwrites SUCCESS/FAILURE/REVOKED.
      upsert: this.db.prepare(`INSERT INTO results (task_id, status, result, traceback, name, children, date_done, expires_at, group_id)
        VALUES (@task_id, @status, @result, @traceback, @name, @children, @date_done, @expires_at, @group_id)
        ON CONFLICT(task_id) DO UPDATE SET status = excluded.status, result = excluded.result, traceback = excluded.traceback,
          group_id = COALESCE(excluded.group_id, results.group_id),
          name = COALESCE(excluded.name, results.name), children = excluded.children, date_done = excluded.date_done, expires_at = excluded.expires_at
        WHERE results.status NOT IN ('SUCCESS', 'FAILURE', 'REVOKED') OR excluded.status IN ('SUCCESS', 'FAILURE', 'REVOKED')`),
      get: this.db.prepare('SELECT task_id, status, result, traceback, name, children, date_done, group_id FROM results WHERE task_id = ?'),
      del: this.db.prepare('DELETE FROM results WHERE task_id = ?'),
      expire: this.db.prepare('DELETE FROM results WHERE expires_at < ?'),
    };
  }

  private get s() {
    if (!this.stmts) {
      const why = this.releasers.closed ? 'is closed: create a new one' : 'is not connected: call connect() first';
      throw new BrokerUnavailableError(`The SQLite result backend on ${this.path} ${why}`, { facts: { path: this.path } });
    }
    return this.stmts;
  }

  /** Runs `fn`, waiting out another process's lock up to writeTimeoutMs; failures are SqliteStorageErrors. */
  private retry<T>(what: string, fn: () => T): Promise<T> {
    return retryWhileBusy(fn, { path: this.path, what: `${what} results`, timeoutMs: this.opts.writeTimeoutMs ?? 30_000 });
  }

  async store(target: ResultTarget, body: ResultBody): Promise<void> {
    await this.connect();
    const now = Date.now();
    await this.retry('store', () =>
      this.s.upsert.run({
        task_id: target.taskId,
        status: body.status,
        result: JSON.stringify(body.result ?? null),
        traceback: body.traceback,
        name: target.taskName ?? body.name ?? null,
        children: JSON.stringify(body.children ?? []),
        date_done: now,
        expires_at: now + this.opts.expiresMs,
        group_id: body.group_id ?? null,
      }),
    );
  }

  async get(taskId: string): Promise<ResultBody | null> {
    await this.connect();
    const row = await this.retry('read', () => this.s.get.get(taskId) as ResultRow | undefined);
    if (!row) return null;
    return {
      task_id: row.task_id,
      status: row.status,
      result: row.result === null ? null : (JSON.parse(row.result) as unknown),
      traceback: row.traceback,
      children: row.children ? (JSON.parse(row.children) as unknown[]) : [],
      date_done: new Date(row.date_done).toISOString(),
      name: row.name,
      ...(row.group_id ? { group_id: row.group_id } : {}),
    };
  }

  async wait(taskId: string, timeoutMs: number, onState?: (body: ResultBody) => void): Promise<ResultBody> {
    const deadline = Date.now() + timeoutMs;
    let delay = 1;
    let lastStatus: string | null = null;
    for (;;) {
      const body = await this.get(taskId);
      if (body && body.status !== lastStatus) {
        lastStatus = body.status;
        onState?.(body);
      }
      if (body && READY_STATES.has(body.status)) return body;
      const left = deadline - Date.now();
      if (left <= 0) throw new TimeoutError(`The result of task ${taskId} was not ready within ${timeoutMs} ms (state ${lastStatus ?? 'PENDING'}): is a worker consuming its queue?`, { taskId });
      await sleep(Math.min(delay, left));
      delay = Math.min(delay * 2, this.opts.maxPollMs ?? 25);
    }
  }

  async forget(taskId: string): Promise<void> {
    await this.connect();
    await this.retry('forget', () => this.s.del.run(taskId));
  }

  async cleanup(): Promise<number> {
    await this.connect();
    const now = Date.now();
    return this.retry('clean up', () => this.s.expire.run(now).changes + (this.chordStore?.cleanup(now) ?? 0));
  }

  /** The chord counters, in this file (available once connected; the app connects before it sends). */
  get chords(): ChordStore | undefined {
    return this.chordStore ?? undefined;
  }

  async saveGroup(groupId: string, taskIds: string[]): Promise<void> {
    await this.connect();
    await this.retry('save a group in', () => this.groups!.save(groupId, taskIds, this.opts.expiresMs));
  }

  async restoreGroup(groupId: string): Promise<string[] | null> {
    await this.connect();
    return this.retry('restore a group from', () => this.groups!.restore(groupId));
  }

  async deleteGroup(groupId: string): Promise<void> {
    await this.connect();
    await this.retry('delete a group from', () => this.groups!.delete(groupId));
  }

  /** Closes for good; the same promise on every call. */
  close(): Promise<void> {
    return this.releasers.close();
  }
}
