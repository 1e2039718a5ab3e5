// Opening beat's state on a SQLite broker file while another process holds its write lock (a new file, where
// workers and other schedulers are writing their schemas at the same moment): the open waits for the lock.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { SqliteScheduleStore } from '../../src/beat/store.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { ROOT } from '../helpers/worker.js';

test('a scheduler opening a new broker file while another process writes it waits for the lock (it exited 69, "Cannot open the beat state", after 50 ms)', { timeout: 30_000 }, async () => {
  const tmp = tempDir('asynx-beat-open-');
  const path = join(tmp.dir, 'broker.db');
  // Another process: a WAL file without beat's tables, its write lock held for 600 ms.
  const holder = spawn(process.execPath, ['-e', `
    const Database = require('better-sqlite3');
    const db = new Database(${JSON.stringify(path)});
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE other (x INTEGER)');
    db.exec('BEGIN IMMEDIATE');
    db.exec('INSERT INTO other VALUES (1)');
    process.stdout.write('locked\\n');
    setTimeout(() => { db.exec('COMMIT'); db.close(); }, 600);
  `], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  holder.stdout!.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => holder.once('exit', resolve));
  try {
    await waitFor('the other process to hold the lock', () => out.includes('locked') || holder.exitCode !== null, 10_000, 10);
    assert.ok(out.includes('locked'), 'the lock holder started');
    const t0 = Date.now();
    const store = new SqliteScheduleStore(path);
    try {
      assert.ok(Date.now() - t0 >= 300, `opened after ${Date.now() - t0} ms: the lock was still held`);
      assert.equal(await store.lastDue('every-second'), null);
      assert.equal(await store.claim('every-second', 1_000), true);
    } finally {
      await store.close();
    }
  } finally {
    if (holder.exitCode === null) holder.kill('SIGKILL');
    await exited;
    tmp.cleanup();
  }
});
