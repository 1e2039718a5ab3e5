// A node's remote-control mailbox on the SQLite broker: polls control_requests, answers into control_replies.

import { LamportClock } from '../events/clock.js';
import { closeDatabase, retryWhileBusy } from '../sqlite/database.js';
import { openDb } from '../transports/sqlite-db.js';
import { answerRequest, isForNode, parseRequest, replyAddress, type ControlHandler } from './request.js';
import { MAILBOX_POLL_MS, mailboxStore, type RequestRow } from './sqlite-mailbox-store.js';

/** Options of {@link startSqliteMailbox}. */
export interface SqliteMailboxOptions {
  /** The node's Lamport clock. @defaultValue a private clock */
  clock?: LamportClock;
  /** How often to look for requests, ms. @defaultValue 50 */
  pollMs?: number;
  /** How often expired rows are deleted, ms. @defaultValue 5000 */
  pruneMs?: number;
}

/** A running mailbox. */
export interface SqliteMailbox {
  /** Stops polling and closes the connection. Idempotent (one promise). */
  close(): Promise<void>;
}

/** A statement's own wait on another process's lock, ms (it blocks the event loop; retries are async). */
const STATEMENT_BUSY_MS = 50;

/**
 * Starts answering the requests written to the broker file at `path` after this call. Each poll costs one
 * `PRAGMA data_version` when no other connection wrote to the file; otherwise one indexed SELECT of the
 * requests after the last one seen. A request for other nodes (destination, glob/pcre pattern) or past its
 * `expires_at` is skipped; a request with a `reply_to` gets a `control_replies` row `{node: answer}` under
 * its ticket, expiring with the request. Expired rows (of any client, also a killed one) are pruned here.
 */
export async function startSqliteMailbox(path: string, nodeName: string, handlers: Record<string, ControlHandler>, opts: SqliteMailboxOptions = {}): Promise<SqliteMailbox> {
  const clock = opts.clock ?? new LamportClock();
  const db = openDb(path, STATEMENT_BUSY_MS);
  let store;
  let lastId: number;
  try {
    store = mailboxStore(db);
    lastId = await retryWhileBusy(() => store!.lastRequestId(), { path, what: 'open the remote-control mailbox', timeoutMs: 10_000 });
  } catch (err) {
    closeDatabase(db, path);
    throw err;
  }
  const s = store;
  let version: unknown = null;
  let busy = false;
  let closed = false;
  let lastPrune = 0;
  const pruneMs = opts.pruneMs ?? 5_000;

  const handle = async (row: RequestRow): Promise<void> => {
    if (row.expires_at > 0 && Date.now() > row.expires_at) return;
    const req = parseRequest(row.body);
    if (!req || !isForNode(req, nodeName)) return;
    clock.adjust(row.clock);
    const { reply, afterReply } = await answerRequest(handlers, req);
    const to = replyAddress(req);
    if (!to || typeof req.ticket !== 'string' || closed) return afterReply();
    const ticket = req.ticket;
    const body = JSON.stringify({ [nodeName]: reply });
    const expiresAt = row.expires_at;
    // The client stops reading at expires_at: past it, an answer is noise (the AMQP reply would sit unread too).
    await retryWhileBusy(() => s.insertReply(ticket, nodeName, body, clock.tick(), expiresAt), { path, what: 'answer a remote-control request', timeoutMs: Math.max(0, expiresAt - Date.now()) }).catch(() => undefined);
    afterReply();
  };

  const poll = async (): Promise<void> => {
    const now = Date.now();
    if (now - lastPrune >= pruneMs) {
      lastPrune = now;
      try {
        s.prune(now);
      } catch {
        // locked: the next prune tries again
      }
    }
    const v = db.pragma('data_version', { simple: true });
    if (v === version) return;
    const rows = s.requestsAfter(lastId);
    version = rows.length === 100 ? null : v; // a full page: read on at the next tick
    for (const row of rows) {
      lastId = row.id;
      await handle(row);
      if (closed) return;
    }
  };

  const timer = setInterval(() => {
    if (busy || closed) return;
    busy = true;
    poll()
      .catch(() => undefined) // a locked file: the next tick reads again (version was not advanced)
      .finally(() => (busy = false));
  }, opts.pollMs ?? MAILBOX_POLL_MS);
  timer.unref();

  let closing: Promise<void> | null = null;
  return {
    close() {
      closing ??= (async () => {
        closed = true;
        clearInterval(timer);
        // A handler still running (bounded: a stuck one must not hold the stop).
        for (const until = Date.now() + 2_000; busy && Date.now() < until; ) await new Promise((r) => setTimeout(r, 5));
        closeDatabase(db, path);
      })();
      return closing;
    },
  };
}
