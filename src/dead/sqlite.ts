// Dead letters of the embedded SQLite broker: the `dead_letters` table, read and moved back in transactions.

import { parseCeleryTime } from '../protocol/codec.js';
import { MSG_DELAYED, MSG_READY, openDb, type Db } from '../transports/sqlite-db.js';
import { deadLettersClosed, deadLetterNotFound, describeMessage, listLimit, type DeadLetter, type DeadLetterDetail, type DeadLetters, type ListDeadLettersOptions, type RequeueOptions, type RequeueOutcome } from './dead-letters.js';

interface Row {
  id: number;
  queue: string;
  reason: string;
  deliveries: number;
  properties: string;
  headers: string;
  body: string;
  created_at: number;
}

function parseObject(text: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function detail(r: Row): DeadLetterDetail {
  const d = describeMessage(parseObject(r.headers), r.body);
  return {
    id: String(r.id),
    queue: r.queue,
    reason: r.reason,
    deliveries: r.deliveries,
    task: d.task,
    taskId: d.taskId,
    argsRepr: d.argsRepr,
    deadLetteredAt: new Date(r.created_at).toISOString(),
    kwargsRepr: d.kwargsRepr,
    properties: parseObject(r.properties),
    headers: d.headers,
    body: r.body,
  };
}

function summary(r: Row): DeadLetter {
  const { kwargsRepr: _k, properties: _p, headers: _h, body: _b, ...rest } = detail(r);
  return rest;
}

/**
 * The `dead_letters` table of a SQLite broker file. Ids are row ids; `show` and `requeue` also take a
 * task id. A requeue inserts the message into `messages` (ready, or delayed until a future eta) with
 * its delivery count at 0 and deletes the row, in one transaction: it is never in both places. Rows
 * that are copies of one task message (same task id) go back once.
 */
export class SqliteDeadLetters implements DeadLetters {
  readonly kind = 'sqlite';
  private db: Db | null;

  constructor(readonly path: string) {
    this.db = openDb(path);
  }

  private get d(): Db {
    if (!this.db) throw deadLettersClosed(this.path);
    return this.db;
  }

  private find(id: string): Row[] {
    return this.d.prepare("SELECT * FROM dead_letters WHERE CAST(id AS TEXT) = ? OR json_extract(headers, '$.id') = ? ORDER BY id").all(id, id) as Row[];
  }

  async list(opts: ListDeadLettersOptions = {}): Promise<DeadLetter[]> {
    const limit = listLimit(opts);
    const rows = (opts.queue === undefined
      ? this.d.prepare('SELECT * FROM dead_letters ORDER BY id LIMIT ?').all(limit)
      : this.d.prepare('SELECT * FROM dead_letters WHERE queue = ? ORDER BY id LIMIT ?').all(opts.queue, limit)) as Row[];
    return rows.map(summary);
  }

  async show(id: string): Promise<DeadLetterDetail> {
    const row = this.find(id)[0];
    if (!row) throw deadLetterNotFound(id, this.path);
    return detail(row);
  }

  async requeue(id: string | 'all', opts: RequeueOptions = {}): Promise<RequeueOutcome> {
    const db = this.d;
    const insert = db.prepare('INSERT INTO messages (queue, priority, state, visible_at, properties, headers, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    const remove = db.prepare('DELETE FROM dead_letters WHERE id = ?');
    const requeued: RequeueOutcome['requeued'] = [];
    db.transaction(() => {
      const rows = id === 'all' ? (db.prepare('SELECT * FROM dead_letters ORDER BY id').all() as Row[]) : this.find(id);
      if (!rows.length && id !== 'all') throw deadLetterNotFound(id, this.path);
      const now = Date.now();
      const sent = new Set<string>();
      for (const r of rows) {
        const props = parseObject(r.properties);
        const headers = parseObject(r.headers);
        const taskId = typeof headers.id === 'string' ? headers.id : null;
        // Copies of one task message (dead-lettered twice): one goes back, every copy leaves the store.
        if (taskId !== null && sent.has(taskId)) {
          remove.run(r.id);
          continue;
        }
        if (taskId !== null) sent.add(taskId);
        const priority = typeof props.priority === 'number' ? props.priority : 0;
        let visibleAt = now;
        if (typeof headers.eta === 'string' && headers.eta !== '') {
          try {
            visibleAt = Math.max(now, parseCeleryTime(headers.eta, 'eta'));
          } catch {
            // the worker reports the bad header when it gets the message
          }
        }
        const queue = opts.queue ?? r.queue;
        insert.run(queue, priority, visibleAt > now ? MSG_DELAYED : MSG_READY, visibleAt, r.properties, r.headers, r.body, now);
        remove.run(r.id);
        requeued.push({ id: String(r.id), taskId, queue });
      }
    }).immediate();
    return { requeued };
  }

  async purge(opts: { queue?: string } = {}): Promise<number> {
    const r = opts.queue === undefined ? this.d.prepare('DELETE FROM dead_letters').run() : this.d.prepare('DELETE FROM dead_letters WHERE queue = ?').run(opts.queue);
    return r.changes;
  }

  async close(): Promise<void> {
    this.db?.close();
    this.db = null;
  }
}
