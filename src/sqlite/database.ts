// One way to open, configure, retry on and close a SQLite file, shared by the embedded broker and result store.

import Database from 'better-sqlite3';
import { mkdirSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isBusy, noDirectoryError, sqliteError } from './errors.js';

export type Db = Database.Database;

/** How long opening a file (journal mode and schema, once per process) keeps trying past other processes' locks, ms. */
const OPEN_BUSY_MS = 10_000;
/**
 * One attempt's own wait, ms. An attempt that fails closes its handle and the next starts after a pause, so a
 * lock this process holds (a half-done open) never makes another process wait the whole bound.
 */
const OPEN_ATTEMPT_BUSY_MS = 1_000;

/** Blocks this thread for `ms` (the open is synchronous: its waits are too). */
function pauseSync(ms: number): void {
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

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
  /** The setting that named the file, for the "fix the …" hint. @defaultValue 'broker or result backend URL' */
  urlName?: string;
}

/** Whether `path` is a directory (false when it is missing, a file, or cannot be stat'ed). */
function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Makes sure the file's directory exists. Only a missing `.asynx` folder whose parent exists (the default
 * `./.asynx/asynx.db`) is created, one level, without recursion (which spins on /proc); any other missing
 * directory is a typo in the URL and fails with `asynx.sqlite.noDirectory` naming it, creating nothing.
 */
function ensureDirectory(path: string, urlName: string): void {
  const dir = dirname(path);
  try {
    statSync(dir);
    return; // a directory, or a file the driver then refuses (SQLITE_CANTOPEN → asynx.sqlite.cantOpen)
  } catch (err) {
    // ENOTDIR (a parent is a file), EACCES …: mapped to asynx.sqlite.cantOpen by the caller.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (basename(dir) !== '.asynx' || !isDirectory(dirname(dir))) throw noDirectoryError(dir, path, urlName);
  try {
    mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !isDirectory(dir)) throw err;
  }
}

/**
 * Opens (creating the file if needed; its directory must exist, except a `.asynx` folder) with settings
 * safe for many processes on one file: WAL journal, `synchronous = NORMAL`, the schema (trying for up to 10 s
 * past other processes' locks), then the statements' own busy timeout. Every failure is a
 * SqliteStorageError (`asynx.sqlite.cantOpen`, `.readOnly`, `.corrupt`, `.full`, `.busy` …), except a missing
 * directory: a UsageError `asynx.sqlite.noDirectory` (exit 64: the URL is wrong, waiting will not help).
 */
export function openDatabase(path: string, opts: OpenDatabaseOptions): Db {
  const what = opts.what ?? 'open';
  try {
    if (path !== ':memory:') ensureDirectory(path, opts.urlName ?? 'broker or result backend URL');
  } catch (err) {
    throw sqliteError(err, { path, what, busyTimeoutMs: 0 });
  }
  // The open itself (journal mode, then the schema) waits longer than a statement: on a new file, every
  // process starting beside this one (nodes of one `multi start`, beat, clients) sets the journal mode and
  // writes the schema at once. A scheduler still exited 69 there after a single 5 s wait (cause not pinned
  // down; SQLite answers some lock races with SQLITE_BUSY at once, where waiting could deadlock): each attempt
  // that fails on a lock closes its handle, which releases whatever it held, and the open tries again after a
  // short pause (as retryWhileBusy below does, but synchronously: the open is).
  const started = Date.now();
  const deadline = started + Math.max(opts.busyTimeoutMs, OPEN_BUSY_MS);
  for (let pause = 5; ; pause = Math.min(pause * 2, 200)) {
    try {
      return openOnce(path, opts, Math.min(Math.max(opts.busyTimeoutMs, OPEN_ATTEMPT_BUSY_MS), Math.max(1, deadline - Date.now())));
    } catch (err) {
      if (!isBusy(err) || Date.now() >= deadline) throw sqliteError(err, { path, what, busyTimeoutMs: Date.now() - started });
      pauseSync(Math.min(pause, deadline - Date.now()));
    }
  }
}

/** One attempt: open, WAL, the schema, then the statements' own busy timeout; a failure closes the handle. */
function openOnce(path: string, opts: OpenDatabaseOptions, busyMs: number): Db {
  let db: Db | null = null;
  try {
    db = new Database(path, { timeout: busyMs });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(opts.schema);
    db.pragma(`busy_timeout = ${Math.round(opts.busyTimeoutMs)}`);
    return db;
  } catch (err) {
    try {
      db?.close();
    } catch {
      // closing a half-open handle: nothing more to release
    }
    throw err;
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
