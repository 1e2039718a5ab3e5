// One way to open, configure, retry on and close a SQLite file, shared by the embedded broker and result store.

import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isBusy, sqliteError } from './errors.js';

export type Db = Database.Database;

/** How to open a database file. */
export interface OpenDatabaseOptions {
  /**
   * How long one statement blocks on another process's lock before SQLITE_BUSY, ms. Keep it short: the
   * call blocks the event loop; {@link retryWhileBusy} waits longer without blocking.
   */
  busyTimeoutMs: number;
  /** DDL run at open (`CREATE TABLE IF NOT EXISTS …`), so every process agrees on the tables. */
  schema: string;
  /** Names the user of the file in error messages. @defaultValue 'open' */
  what?: string;
}

/**
 * Opens (creating the file and its directory if needed) with settings safe for many processes on one
 * file: WAL journal, `synchronous = NORMAL`, a busy timeout, then the schema. Every failure is a
 * SqliteStorageError (`asynx.sqlite.cantOpen`, `.readOnly`, `.corrupt`, `.full`, `.busy` …).
 */
export function openDatabase(path: string, opts: OpenDatabaseOptions): Db {
  const at = { path, what: opts.what ?? 'open', busyTimeoutMs: opts.busyTimeoutMs };
  let db: Db | null = null;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    db = new Database(path, { timeout: opts.busyTimeoutMs });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma(`busy_timeout = ${Math.round(opts.busyTimeoutMs)}`);
    db.exec(opts.schema);
    return db;
  } catch (err) {
    try {
      db?.close();
    } catch {
      // closing a half-open handle: nothing more to release
    }
    throw sqliteError(err, at);
  }
}

/**
 * Runs `fn`, retrying while the file is locked (SQLITE_BUSY / SQLITE_LOCKED) with short async pauses, up
 * to `timeoutMs`. Any failure (or a lock held past the bound) rejects with a SqliteStorageError.
 */
export async function retryWhileBusy<T>(fn: () => T, at: { path: string; what: string; timeoutMs: number }): Promise<T> {
  const deadline = Date.now() + at.timeoutMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    try {
      return fn();
    } catch (err) {
      if (!isBusy(err) || Date.now() >= deadline) throw sqliteError(err, { path: at.path, what: at.what, busyTimeoutMs: at.timeoutMs });
      await sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
    }
  }
}

/** Closes a handle; a failure is mapped like any other (the handle is unusable either way). */
export function closeDatabase(db: Db, path: string): void {
  try {
    db.close();
  } catch (err) {
    throw sqliteError(err, { path, what: 'close', busyTimeoutMs: 0 });
  }
}
