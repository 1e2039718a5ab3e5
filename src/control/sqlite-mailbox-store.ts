// The SQLite broker's remote-control tables (control_requests, control_replies): the statements, and how rows expire.

import type { Db } from '../transports/sqlite-db.js';

/**
 * How long a request row without a reply (a cast such as `revoke`) stays readable, ms: long enough for
 * every node polling every {@link MAILBOX_POLL_MS} to see it, as the AMQP fanout copies it into each
 * node's queue at once.
 */
export const CAST_LIFETIME_MS = 10_000;
/** How often a node looks for new requests, ms. One `PRAGMA data_version` when nothing changed. */
export const MAILBOX_POLL_MS = 50;
/** Rows older than their expiry by this much are deleted by whoever prunes, ms. */
export const EXPIRED_GRACE_MS = 1_000;
/** Whatever their expiry, no more than this many rows are kept per table (the newest). */
export const MAX_ROWS = 1_000;

/** A request row as a node reads it. */
export interface RequestRow {
  id: number;
  body: string;
  clock: number;
  expires_at: number;
}

/** A reply row as the client reads it. */
export interface ReplyRow {
  id: number;
  node: string;
  body: string;
  clock: number;
}

/** Prepared statements over one connection. */
export interface MailboxStore {
  lastRequestId(): number;
  requestsAfter(id: number): RequestRow[];
  insertRequest(body: string, clock: number, expiresAt: number): number;
  deleteRequest(id: number): void;
  insertReply(ticket: string, node: string, body: string, clock: number, expiresAt: number): void;
  repliesAfter(ticket: string, id: number): ReplyRow[];
  deleteReplies(ticket: string): void;
  /** Deletes expired rows and all but the newest {@link MAX_ROWS} of each table; returns the rows deleted. */
  prune(now: number): number;
}

/** Prepares the mailbox statements on `db` (the tables are in the broker schema, src/transports/sqlite-db.ts). */
export function mailboxStore(db: Db): MailboxStore {
  const lastId = db.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM control_requests');
  const after = db.prepare('SELECT id, body, clock, expires_at FROM control_requests WHERE id > ? ORDER BY id LIMIT 100');
  const insertReq = db.prepare('INSERT INTO control_requests (body, clock, created_at, expires_at) VALUES (?, ?, ?, ?)');
  const deleteReq = db.prepare('DELETE FROM control_requests WHERE id = ?');
  const insertRep = db.prepare('INSERT INTO control_replies (ticket, node, body, clock, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)');
  const replies = db.prepare('SELECT id, node, body, clock FROM control_replies WHERE ticket = ? AND id > ? ORDER BY id');
  const deleteReps = db.prepare('DELETE FROM control_replies WHERE ticket = ?');
  const expiredReq = db.prepare('DELETE FROM control_requests WHERE expires_at < ?');
  const expiredRep = db.prepare('DELETE FROM control_replies WHERE expires_at < ?');
  const capReq = db.prepare('DELETE FROM control_requests WHERE id <= (SELECT MAX(id) FROM control_requests) - ?');
  const capRep = db.prepare('DELETE FROM control_replies WHERE id <= (SELECT MAX(id) FROM control_replies) - ?');
  const prune = db.transaction((now: number) => {
    const before = now - EXPIRED_GRACE_MS;
    return expiredReq.run(before).changes + expiredRep.run(before).changes + capReq.run(MAX_ROWS).changes + capRep.run(MAX_ROWS).changes;
  });
  return {
    lastRequestId: () => (lastId.get() as { id: number }).id,
    requestsAfter: (id) => after.all(id) as RequestRow[],
    insertRequest: (body, clock, expiresAt) => Number(insertReq.run(body, clock, Date.now(), expiresAt).lastInsertRowid),
    deleteRequest: (id) => void deleteReq.run(id),
    insertReply: (ticket, node, body, clock, expiresAt) => void insertRep.run(ticket, node, body, clock, Date.now(), expiresAt),
    repliesAfter: (ticket, id) => replies.all(ticket, id) as ReplyRow[],
    deleteReplies: (ticket) => void deleteReps.run(ticket),
    prune: (now) => prune.immediate(now),
  };
}
