// Opens the embedded SQLite database (WAL, busy timeout) and creates the broker and result tables.

import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { BrokerUnavailableError } from '../errors.js';

export type Db = Database.Database;

/** Message states in the `messages` table. */
export const MSG_READY = 0;
export const MSG_DELAYED = 1;
export const MSG_LEASED = 2;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  queue TEXT NOT NULL,
  priority INTEGER NOT NULL DEFAULT 0,
  state INTEGER NOT NULL,
  visible_at INTEGER NOT NULL,
  owner TEXT,
  deliveries INTEGER NOT NULL DEFAULT 0,
  properties TEXT NOT NULL,
  headers TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_claim ON messages (queue, state, priority DESC, id);
CREATE INDEX IF NOT EXISTS messages_due ON messages (state, visible_at);
CREATE TABLE IF NOT EXISTS dead_letters (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  queue TEXT NOT NULL,
  reason TEXT NOT NULL,
  deliveries INTEGER NOT NULL,
  properties TEXT NOT NULL,
  headers TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
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

/** Opens (creating if needed) the database file, with settings safe for many processes. */
export function openDb(path: string, busyTimeoutMs = 10_000): Db {
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path, { timeout: busyTimeoutMs });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    db.exec(SCHEMA);
    return db;
  } catch (err) {
    throw new BrokerUnavailableError(`Cannot open the SQLite database ${path}: ${(err as Error).message}. Check that its directory is writable, or set ASYNX_BROKER_URL=sqlite://<path>`, { cause: err, facts: { path } });
  }
}
