// Fault: another process holds the SQLite database with BEGIN EXCLUSIVE for 5 s mid-run. Claims, acks and
// publishes wait (bounded) and resume; every task completes exactly once.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import { Asynx } from '../../src/index.js';
import { spawnProcess } from '../helpers/process.js';
import { Ledger, Nodes, Progress, publishLedger, recordRow, ROOT, scaled, scratch, waitFor } from './harness.js';

const LOCK_MS = 5_000;

/** Starts a process that takes an exclusive lock on `db` for `ms`; resolves once it holds the lock. */
async function lockFor(db: string, ms: number): Promise<{ released: Promise<number> }> {
  const code = `
    const Database = require('better-sqlite3');
    const db = new Database(process.argv[1], { timeout: 10000 });
    db.exec('BEGIN EXCLUSIVE');
    process.stdout.write('locked\\n');
    setTimeout(() => { db.exec('COMMIT'); db.close(); process.exit(0); }, Number(process.argv[2]));
  `;
  const p = spawnProcess(process.execPath, ['-e', code, db, String(ms)], { cwd: ROOT });
  const released = p.exited.then((c) => (typeof c === 'number' ? c : -1));
  const kill = setTimeout(() => void p.kill9().catch(() => undefined), ms + 20_000);
  void released.then(() => clearTimeout(kill));
  await waitFor('the locker to hold the lock', () => p.stdout().includes('locked'), 15_000, 10);
  return { released };
}

describe('fault: SQLite database locked by another process for 5 s', () => {
  const tmp = scratch('lock');
  const nodes = new Nodes();
  after(async () => {
    await nodes.stopAll();
    tmp.cleanup();
  });

  it('claims, acks and publishes wait out the lock; every task completes exactly once', async () => {
    const n = scaled(10_000);
    const dbPath = join(tmp.dir, 'lock.db');
    const brokerUrl = `sqlite://${dbPath}`;
    const ledger = new Ledger(join(tmp.dir, 'lock.ledger'));
    // Publishes during the lock must wait longer than the lock lasts.
    const client = new Asynx({ brokerUrl, configFile: false, resultBackend: 'none', publishTimeout: '20s' });
    const t0 = Date.now();
    const first = await publishLedger(client, Math.floor(n / 2), ledger, 0);
    const node = await nodes.start({ dir: tmp.dir, brokerUrl, name: 'lock', concurrency: 2 });
    const progress = new Progress(ledger);
    await waitFor('30% done', () => ledger.size() >= n * 37 * 0.3 * 0.5, 120_000);
    const lock = await lockFor(dbPath, LOCK_MS);
    const lockedAt = Date.now();
    // The second half is published while the file is locked: each publish waits for the lock.
    const second = publishLedger(client, n - first.length, ledger, 0);
    const code = await lock.released;
    const releasedAt = Date.now();
    assert.equal(code, 0, 'the locker held and released the lock');
    const ids = [...first, ...(await second)];
    await ledger.waitAll(ids, 180_000);
    progress.stop();
    const { lost, duplicated } = ledger.tally(ids);
    recordRow({ fault: `SQLite locked ${(releasedAt - lockedAt) / 1000 | 0}s (BEGIN EXCLUSIVE)`, broker: 'sqlite', mode: 'acks-early (≤1)', tasks: n, lost, duplicated, dropped: 0, recoverMs: progress.resumeAfter(releasedAt), totalMs: Date.now() - t0 });
    await client.close();
    assert.equal(await node.stop(), 0);
    assert.equal(lost, 0);
    assert.equal(duplicated, 0);
    assert.ok(releasedAt - lockedAt >= LOCK_MS - 100, 'the lock was held for 5 s');
  });
});
