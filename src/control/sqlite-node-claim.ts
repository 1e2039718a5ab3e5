// The SQLite broker's node registry: a `nodes` row per live worker name, claimed in one transaction, kept fresh.

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { isAlive } from '../process/proc.js';
import { closeDatabase, retryWhileBusy } from '../sqlite/database.js';
import { openDb } from '../transports/sqlite-db.js';
import { duplicateNodeError, type NodeClaimOptions } from './duplicate-node.js';

/** A held name: {@link NodeClaim.close} stops the refresh and deletes the row. */
export interface NodeClaim {
  close(): void;
}

interface NodeRow {
  pid: number;
  hostname: string;
  started_at: number;
  heartbeat_at: number;
}

/** A statement's own wait on another process's lock (it blocks the event loop; the claim retries without), ms. */
const STATEMENT_BUSY_MS = 50;
/** Bound on taking the write lock for the claim (waited out asynchronously), ms. */
const CLAIM_TIMEOUT_MS = 10_000;
/** Names held by Worker instances of this process, per file: the pid check cannot tell them apart. */
const heldHere = new Set<string>();


/** Why `row` still holds the name, or null when it is stale (old heartbeat, or a dead pid on this host). */
function liveHolder(row: NodeRow, key: string, now: number, staleMs: number): string | null {
  const ageMs = now - row.heartbeat_at;
  if (ageMs > staleMs) return null;
  if (row.hostname === hostname()) {
    if (row.pid === process.pid ? !heldHere.has(key) : !isAlive(row.pid)) return null;
  }
  return `pid ${row.pid} on ${row.hostname}, last seen ${(Math.max(0, ageMs) / 1000).toFixed(1)} s ago`;
}

/**
 * Claims `nodeName` in the broker file at `path`: refuses (`asynx.worker.duplicateNode`) when a live row
 * holds it, else writes this process's row. The heartbeat is refreshed every `refreshMs` (one UPDATE, on
 * an unref'd timer); a failed refresh (file locked) is retried at the next tick.
 */
export async function claimSqliteNode(path: string, nodeName: string, opts: NodeClaimOptions = {}): Promise<NodeClaim> {
  const refreshMs = opts.refreshMs ?? 2_000;
  const staleMs = opts.staleMs ?? 5 * refreshMs;
  const key = `${path}\0${nodeName}`;
  const token = randomUUID();
  const db = openDb(path, STATEMENT_BUSY_MS);
  try {
    const select = db.prepare('SELECT pid, hostname, started_at, heartbeat_at FROM nodes WHERE name = ?');
    const upsert = db.prepare('INSERT OR REPLACE INTO nodes (name, pid, hostname, token, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)');
    const claim = db.transaction(() => {
      const now = Date.now();
      const row = select.get(nodeName) as NodeRow | undefined;
      const holder = row ? liveHolder(row, key, now, staleMs) : null;
      if (row && holder) throw duplicateNodeError(nodeName, holder, { pid: row.pid, hostname: row.hostname, heartbeatAt: row.heartbeat_at });
      upsert.run(nodeName, process.pid, hostname(), token, now, now);
    });
    // IMMEDIATE: two nodes claiming at once are serialised by the write lock, so only one wins.
    await retryWhileBusy(() => claim.immediate(), { path, what: `claim the node name ${nodeName}`, timeoutMs: CLAIM_TIMEOUT_MS });
  } catch (err) {
    closeDatabase(db, path);
    throw err;
  }
  heldHere.add(key);
  const refresh = db.prepare('UPDATE nodes SET heartbeat_at = ? WHERE name = ? AND token = ?');
  const timer = setInterval(() => {
    try {
      refresh.run(Date.now(), nodeName, token);
    } catch {
      // locked for longer than the statement's wait: the next tick tries again, well within staleMs
    }
  }, refreshMs);
  timer.unref();
  let closed = false;
  return {
    close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      heldHere.delete(key);
      try {
        // Only our own row: a node that took over a claim we let go stale keeps its own.
        db.prepare('DELETE FROM nodes WHERE name = ? AND token = ?').run(nodeName, token);
      } finally {
        closeDatabase(db, path);
      }
    },
  };
}
