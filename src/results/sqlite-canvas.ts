// Saved groups (Celery's celery-taskset-meta-<gid>) and chord counters, in the SQLite result store's file.

import type { Db } from '../sqlite/database.js';
import type { ChordFiring, ChordPart, ChordStore } from './backend.js';

/** Tables beside `results`. A chord's parts are keyed by (group, group_index): a redelivered member is counted once. */
export const CANVAS_SCHEMA = `
CREATE TABLE IF NOT EXISTS tasksets (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  date_done INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chords (
  group_id TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  body TEXT NOT NULL,
  done INTEGER NOT NULL DEFAULT 0,
  completed_by TEXT,
  sent INTEGER NOT NULL DEFAULT 0,
  expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chord_parts (
  group_id TEXT NOT NULL,
  group_index INTEGER NOT NULL,
  task_id TEXT NOT NULL,
  status TEXT NOT NULL,
  result TEXT,
  PRIMARY KEY (group_id, group_index)
);
`;

/** Celery's key for a saved group. */
export function tasksetKey(groupId: string): string {
  return `celery-taskset-meta-${groupId}`;
}

/** Adds `results.group_id` to a file made before it existed (another process may add it at the same time). */
export function migrateResults(db: Db): void {
  const cols = db.prepare('PRAGMA table_info(results)').all() as Array<{ name: string }>;
  if (cols.some((c) => c.name === 'group_id')) return;
  try {
    db.exec('ALTER TABLE results ADD COLUMN group_id TEXT');
  } catch (err) {
    if (!/duplicate column/i.test((err as Error).message)) throw err;
  }
}

/** Statements for tasksets, on an open database. */
export function groupStatements(db: Db) {
  const put = db.prepare('INSERT OR REPLACE INTO tasksets (key, value, date_done, expires_at) VALUES (?, ?, ?, ?)');
  const get = db.prepare('SELECT value FROM tasksets WHERE key = ?');
  const del = db.prepare('DELETE FROM tasksets WHERE key = ?');
  return {
    /** Celery's form: `{"result": [[gid, null], [[[id, null], null], …]]}` (GroupResult.as_tuple()). */
    save(groupId: string, ids: string[], expiresMs: number): void {
      const now = Date.now();
      const value = { result: [[groupId, null], ids.map((id) => [[id, null], null])] };
      put.run(tasksetKey(groupId), JSON.stringify(value), now, now + expiresMs);
    },
    restore(groupId: string): string[] | null {
      const row = get.get(tasksetKey(groupId)) as { value: string } | undefined;
      if (!row) return null;
      const parsed = JSON.parse(row.value) as { result?: [unknown, Array<[[string, unknown], unknown]>] };
      const members = parsed.result?.[1];
      return Array.isArray(members) ? members.map((m) => m[0][0]) : [];
    },
    delete(groupId: string): void {
      del.run(tasksetKey(groupId));
    },
  };
}

/**
 * The chord counter: one row per chord, one per member outcome. `partReturn` runs in one IMMEDIATE
 * transaction, so two members finishing at once on two nodes are serialised by SQLite, and only the one whose
 * insert completes the count is told to fire. No `chord_unlock` task polls anything.
 */
/** Also removes expired chords and saved groups (`cleanup`, with the results). */
export function sqliteChordStore(db: Db, run: <T>(what: string, fn: () => T) => Promise<T>, expiresMs: number): ChordStore & { cleanup(now: number): number } {
  const create = db.prepare('INSERT OR IGNORE INTO chords (group_id, size, body, expires_at) VALUES (?, ?, ?, ?)');
  const insertPart = db.prepare('INSERT OR IGNORE INTO chord_parts (group_id, group_index, task_id, status, result) VALUES (?, ?, ?, ?, ?)');
  const count = db.prepare('UPDATE chords SET done = done + 1 WHERE group_id = ?');
  // Whoever completes the count claims the chord; a redelivery of that same member may fire again until `sent`.
  const claim = db.prepare(`UPDATE chords SET completed_by = ? WHERE group_id = ? AND done >= size AND completed_by IS NULL`);
  const row = db.prepare('SELECT body, completed_by, sent FROM chords WHERE group_id = ?');
  const parts = db.prepare('SELECT group_index, task_id, status, result FROM chord_parts WHERE group_id = ? ORDER BY group_index');
  const sent = db.prepare('UPDATE chords SET sent = 1 WHERE group_id = ?');
  const expiredChords = db.prepare('DELETE FROM chords WHERE expires_at < ?');
  const orphanParts = db.prepare('DELETE FROM chord_parts WHERE group_id NOT IN (SELECT group_id FROM chords)');
  const expiredSets = db.prepare('DELETE FROM tasksets WHERE expires_at < ?');
  const partReturn = db.transaction((p: ChordPart): ChordFiring | null => {
    if (insertPart.run(p.groupId, p.groupIndex, p.taskId, p.status, JSON.stringify(p.result ?? null)).changes === 1) count.run(p.groupId);
    claim.run(p.taskId, p.groupId);
    const r = row.get(p.groupId) as { body: string; completed_by: string | null; sent: number } | undefined;
    if (!r || r.completed_by !== p.taskId || r.sent === 1) return null;
    const list = (parts.all(p.groupId) as Array<{ group_index: number; task_id: string; status: string; result: string | null }>).map((x) => ({
      groupId: p.groupId,
      groupIndex: x.group_index,
      taskId: x.task_id,
      status: x.status,
      result: x.result === null ? null : (JSON.parse(x.result) as unknown),
    }));
    return { body: JSON.parse(r.body) as Record<string, unknown>, parts: list };
  });
  return {
    async create(groupId, size, body) {
      await run('create a chord in', () => create.run(groupId, size, JSON.stringify(body), Date.now() + expiresMs));
    },
    partReturn(part) {
      return run('count a chord member in', () => partReturn.immediate(part));
    },
    async markSent(groupId) {
      await run('mark a chord sent in', () => sent.run(groupId));
    },
    cleanup(now) {
      const n = expiredChords.run(now).changes;
      if (n) orphanParts.run();
      return n + expiredSets.run(now).changes;
    },
  };
}
