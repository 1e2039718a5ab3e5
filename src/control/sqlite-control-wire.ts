// The remote-control client's side of the SQLite broker: write a request row, poll the reply rows of its ticket.

import { setTimeout as sleep } from 'node:timers/promises';
import { closeDatabase, retryWhileBusy } from '../sqlite/database.js';
import { openDb } from '../transports/sqlite-db.js';
import type { ControlWire } from './control-wire.js';
import { CAST_LIFETIME_MS, mailboxStore } from './sqlite-mailbox-store.js';

/** How often the client looks for replies, ms. */
const REPLY_POLL_MS = 20;
/** A statement's own wait on another process's lock, ms. */
const STATEMENT_BUSY_MS = 50;

/**
 * The client over the broker file at `path` (opened here, closed by `close()`). A request with a reply
 * expires with its timeout and is deleted, with its replies, once the replies are in; a cast lives
 * {@link CAST_LIFETIME_MS} so every polling node sees it. Expired rows of earlier clients are pruned first.
 */
export function sqliteControlWire(path: string): ControlWire {
  const db = openDb(path, STATEMENT_BUSY_MS);
  const store = mailboxStore(db);
  return {
    async send(req, headers, collect) {
      const now = Date.now();
      await retryWhileBusy(() => store.prune(now), { path, what: 'prune the remote-control tables', timeoutMs: 2_000 }).catch(() => undefined);
      const expiresAt = collect ? Math.round(headers.expires * 1000) : now + CAST_LIFETIME_MS;
      const body = JSON.stringify(req);
      const id = await retryWhileBusy(() => store.insertRequest(body, headers.clock, expiresAt), { path, what: 'send a remote-control request', timeoutMs: 10_000 });
      if (!collect) return;
      let seen = 0;
      let count = 0;
      const deadline = Date.now() + collect.timeoutMs;
      try {
        while (Date.now() < deadline) {
          await sleep(Math.min(REPLY_POLL_MS, Math.max(0, deadline - Date.now())));
          let rows;
          try {
            rows = store.repliesAfter(collect.ticket, seen);
          } catch {
            continue; // locked for longer than the statement's wait: read again at the next tick
          }
          for (const row of rows) {
            seen = row.id;
            let reply: unknown;
            try {
              reply = JSON.parse(row.body);
            } catch {
              continue;
            }
            if (typeof reply !== 'object' || reply === null || Array.isArray(reply)) continue;
            collect.onReply(reply as Record<string, unknown>, row.clock);
            if (collect.limit !== null && ++count >= collect.limit) return;
          }
        }
      } finally {
        const ticket = collect.ticket;
        await retryWhileBusy(() => {
          store.deleteRequest(id);
          store.deleteReplies(ticket);
        }, { path, what: 'delete a remote-control request', timeoutMs: 2_000 }).catch(() => undefined); // left behind, it expires and is pruned
      }
    },
    async close() {
      closeDatabase(db, path);
    },
  };
}
