// Opening a SQLite broker file while another process holds its write lock (a new file, where the nodes of one
// `multi start`, beat and clients write their schemas at the same moment): the open waits for the lock. Seen
// in clean-clone runs: a scheduler exited 69 after 50 ms, a `multi start` node failed after 250 ms, and later
// a scheduler exited 69 again with the 5 s wait. Each attempt now waits 1 s and a failed one closes its handle
// (releasing what it held) before the next, for up to 10 s in all.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { SqliteScheduleStore } from '../../src/beat/store.js';
import { SqliteTransport } from '../../src/transports/sqlite.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { ROOT } from '../helpers/worker.js';

const HOLD_MS = 600;

/** Another process: a new WAL file without asynx's tables, its write lock held for `holdMs`. Runs `open` meanwhile. */
async function whileLocked(open: (path: string) => Promise<void>, holdMs = HOLD_MS): Promise<void> {
  const tmp = tempDir('asynx-sqlite-open-');
  const path = join(tmp.dir, 'broker.db');
  const holder = spawn(process.execPath, ['-e', `
    const Database = require('better-sqlite3');
    const db = new Database(${JSON.stringify(path)});
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE other (x INTEGER)');
    db.exec('BEGIN IMMEDIATE');
    db.exec('INSERT INTO other VALUES (1)');
    process.stdout.write('locked\\n');
    setTimeout(() => { db.exec('COMMIT'); db.close(); }, ${holdMs});
  `], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  holder.stdout!.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => holder.once('exit', resolve));
  try {
    await waitFor('the other process to hold the lock', () => out.includes('locked') || holder.exitCode !== null, 10_000, 10);
    assert.ok(out.includes('locked'), 'the lock holder started');
    const t0 = Date.now();
    await open(path);
    assert.ok(Date.now() - t0 >= holdMs / 2, `opened after ${Date.now() - t0} ms: the lock was still held`);
  } finally {
    if (holder.exitCode === null) holder.kill('SIGKILL');
    await exited;
    tmp.cleanup();
  }
}

/** What a worker or client does first on the broker file: connect (the open), then one statement. */
async function connectAndCount(path: string): Promise<void> {
  const t = new SqliteTransport(path);
  try {
    await t.connect();
    assert.equal(await t.count('celery'), 0);
  } finally {
    await t.close();
  }
}

test('beat opening its state waits for the lock (it exited 69, "Cannot open the beat state", after 50 ms)', { timeout: 30_000 }, async () => {
  await whileLocked(async (path) => {
    const store = new SqliteScheduleStore(path);
    try {
      assert.equal(await store.lastDue('every-second'), null);
      assert.equal(await store.claim('every-second', 1_000), true);
    } finally {
      await store.close();
    }
  });
});

test('a worker or client connecting to the broker waits for the lock (it failed "Cannot open the broker database" after 250 ms)', { timeout: 30_000 }, async () => {
  await whileLocked(connectAndCount);
});

test('an open keeps trying past one attempt\'s wait: a lock held 6.5 s (the 5 s single wait failed)', { timeout: 60_000 }, async () => {
  await whileLocked(connectAndCount, 6_500);
});
