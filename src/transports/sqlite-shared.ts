// What several workers share through the SQLite broker file besides queues: global rate-limit buckets and dedupe keys.

import type { Db } from './sqlite-db.js';

/** Prepared statements over the `rate_buckets` and `dedupe` tables. */
export class SqliteShared {
  private readonly bucketSeed;
  private readonly bucketTake;
  private readonly bucketNext;
  private readonly dedupeGet;
  private readonly dedupeWaiting;
  private readonly dedupePut;
  private readonly dedupeHold;
  private readonly dedupeFree;
  private readonly dedupeDrop;
  private readonly dedupeRenew;

  constructor(private readonly db: Db, private readonly owner: string) {
    this.bucketSeed = db.prepare('INSERT OR IGNORE INTO rate_buckets (key, next_at) VALUES (?, 0)');
    // One statement, so the check and the take are one atomic step under SQLite's write lock.
    this.bucketTake = db.prepare('UPDATE rate_buckets SET next_at = @now + @interval WHERE key = @key AND next_at <= @now');
    this.bucketNext = db.prepare('SELECT next_at FROM rate_buckets WHERE key = ?');
    this.dedupeGet = db.prepare('SELECT task_id, lease_until FROM dedupe WHERE key = ?');
    // instr() first: a cheap text filter before parsing the headers (the transport writes them with JSON.stringify).
    this.dedupeWaiting = db.prepare(`SELECT 1 FROM messages WHERE instr(headers, @needle) > 0 AND json_extract(headers, '$.id') = @id LIMIT 1`);
    this.dedupePut = db.prepare('INSERT OR REPLACE INTO dedupe (key, task_id, owner, lease_until, created_at) VALUES (?, ?, NULL, 0, ?)');
    this.dedupeHold = db.prepare('UPDATE dedupe SET owner = ?, lease_until = ? WHERE key = ? AND task_id = ?');
    this.dedupeFree = db.prepare('UPDATE dedupe SET owner = NULL, lease_until = 0 WHERE key = ? AND task_id = ?');
    this.dedupeDrop = db.prepare('DELETE FROM dedupe WHERE key = ? AND task_id = ?');
    this.dedupeRenew = db.prepare('UPDATE dedupe SET lease_until = ? WHERE owner = ? AND lease_until > 0');
  }

  /** In one transaction: takes the bucket's token (0) or says how long until the next one, ms. */
  takeToken(key: string, intervalMs: number, now = Date.now()): number {
    return this.db.transaction(() => {
      this.bucketSeed.run(key);
      if (this.bucketTake.run({ key, now, interval: Math.max(1, Math.round(intervalMs)) }).changes === 1) return 0;
      const row = this.bucketNext.get(key) as { next_at: number } | undefined;
      return Math.max(1, (row?.next_at ?? now) - now);
    }).immediate();
  }

  private waiting(taskId: string): boolean {
    return this.dedupeWaiting.get({ needle: `"id":${JSON.stringify(taskId)}`, id: taskId }) !== undefined;
  }

  /**
   * Inside the caller's transaction: the task holding `key` when it is still live (waiting in messages,
   * or running under a lease), else null after claiming the key for `taskId`.
   */
  claimKey(key: string, taskId: string, now = Date.now()): string | null {
    const row = this.dedupeGet.get(key) as { task_id: string; lease_until: number } | undefined;
    if (row && (row.lease_until >= now || this.waiting(row.task_id))) return row.task_id;
    this.dedupePut.run(key, taskId, now);
    return null;
  }

  /** A worker of this process runs the task: live while {@link renew} extends the lease. */
  hold(key: string, taskId: string, leaseMs: number): void {
    this.dedupeHold.run(this.owner, Date.now() + leaseMs, key, taskId);
  }

  /** The task ended: the key goes, unless a message of the task still waits (a retry keeps it). */
  release(key: string, taskId: string): void {
    this.db.transaction(() => {
      if (this.waiting(taskId)) this.dedupeFree.run(key, taskId);
      else this.dedupeDrop.run(key, taskId);
    }).immediate();
  }

  /** Extends the leases of the keys this process holds. */
  renew(leaseMs: number): void {
    this.dedupeRenew.run(Date.now() + leaseMs, this.owner);
  }
}
