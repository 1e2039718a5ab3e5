// The embedded broker's tables (messages, dead letters, live node names, the remote-control mailbox, Celery events) and their message states, on the shared SQLite layer.

import { openDatabase, type Db } from '../sqlite/database.js';

export type { Db } from '../sqlite/database.js';

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
CREATE TABLE IF NOT EXISTS nodes (
  name TEXT PRIMARY KEY,
  pid INTEGER NOT NULL,
  hostname TEXT NOT NULL,
  token TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS control_requests (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  body TEXT NOT NULL,
  clock INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS control_replies (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ticket TEXT NOT NULL,
  node TEXT NOT NULL,
  body TEXT NOT NULL,
  clock INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS control_replies_ticket ON control_replies (ticket, id);
-- Celery events, in batches: each row holds n events as a JSON list, deflated (raw DEFLATE, RFC 1951),
-- so a busy worker adds a few compact rows a second instead of thousands of rows to the write-ahead log.
-- seq counts the events written so far, this row's included (the retention by count). Rows leave only
-- from the low end and the newest row is always kept, so ids only grow and readers tail the table by id.
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY,
  created_at INTEGER NOT NULL,
  n INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  body BLOB NOT NULL
);
-- Global rate limits: one token bucket of capacity 1 per key; next_at = when the next start may happen (epoch ms).
CREATE TABLE IF NOT EXISTS rate_buckets (
  key TEXT PRIMARY KEY,
  next_at INTEGER NOT NULL
);
-- Deduplicated sends: the task holding a key. It is live while a message with that task id waits in
-- messages, or while a worker holds it running (owner, lease renewed like message leases).
CREATE TABLE IF NOT EXISTS dedupe (
  key TEXT PRIMARY KEY,
  task_id TEXT NOT NULL,
  owner TEXT,
  lease_until INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
`;

/** Opens (creating if needed) the broker database file; failures are SqliteStorageErrors. */
export function openDb(path: string, busyTimeoutMs = 10_000): Db {
  return openDatabase(path, { busyTimeoutMs, schema: SCHEMA, what: 'open the broker database', urlName: 'broker URL (-b / ASYNX_BROKER_URL)' });
}
