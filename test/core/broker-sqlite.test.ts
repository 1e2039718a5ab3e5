// The embedded broker under several real worker processes: each message claimed once; results expire.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { readFileSync, existsSync, mkdirSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Asynx, BrokerUnavailableError } from '../../src/index.js';
import { AsynxError } from '../../src/errors.js';
import { SqliteResultBackend } from '../../src/results/sqlite.js';
import { SqliteTransport } from '../../src/transports/sqlite.js';
import { buildTaskMessage } from '../../src/protocol/codec.js';
import { startWorker } from '../helpers/worker.js';
import { tempDir, waitFor } from '../helpers/tmp.js';

describe('embedded SQLite broker', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  it('two worker nodes on one file: 2,000 early-ack tasks, each run exactly once', async () => {
    const db = join(tmp.dir, 'two.db');
    const brokerUrl = `sqlite://${db}`;
    const ledger = join(tmp.dir, 'ledger.txt');
    const client = new Asynx({ brokerUrl, configFile: false });
    const ids: string[] = [];
    for (let i = 0; i < 2000; i++) ids.push((await client.sendTask('t.ledger', [ledger])).id);
    const w1 = await startWorker({ brokerUrl, args: ['-c', '2', '-n', 'one@%h'] });
    const w2 = await startWorker({ brokerUrl, args: ['-c', '2', '-n', 'two@%h'] });
    try {
      await waitFor('all tasks run', () => existsSync(ledger) && readFileSync(ledger, 'utf8').split('\n').filter(Boolean).length >= 2000, 60_000, 100);
      // Duplicates would land after the 2,000th line: read the ledger once both nodes have stopped (a
      // warm stop finishes what they hold), not after a pause.
      await Promise.all([w1.stop(), w2.stop()]);
      const seen = readFileSync(ledger, 'utf8').split('\n').filter(Boolean);
      assert.equal(seen.length, 2000, 'no duplicates');
      assert.deepEqual(new Set(seen), new Set(ids), 'none lost');
      const byNode = [w1, w2].map((w) => (w.output().match(/t\.ledger\[/g) ?? []).length);
      assert.ok(byNode[0]! > 0 && byNode[1]! > 0, `both nodes consumed: ${byNode.join(' / ')}`);
    } finally {
      await client.close();
      assert.equal(await w1.stop(), 0);
      assert.equal(await w2.stop(), 0);
    }
  });

  it('a delayed message is not claimable before its eta; then it is, once', async () => {
    const t = new SqliteTransport(join(tmp.dir, 'eta.db'));
    await t.connect();
    const { queue, message } = buildTaskMessage('x', [], {}, { countdown: 0.4 });
    const due = Date.now() + 400;
    await t.publish(queue, message);
    assert.equal(t.claim([queue], 10).length, 0);
    // Poll the claim itself (bounded) and check it was not early.
    const claimed = await waitFor('the delayed message to become claimable', () => {
      const got = t.claim([queue], 10);
      return got.length ? { got, at: Date.now() } : null;
    }, 5_000, 10);
    assert.ok(claimed.at >= due - 5, `claimed ${due - claimed.at} ms before its eta`);
    assert.equal(claimed.got.length, 1);
    assert.equal(t.claim([queue], 10).length, 0, 'leased, so not handed out again');
    await t.close();
  });

  it('results expire after resultExpires', async () => {
    const b = new SqliteResultBackend(join(tmp.dir, 'res.db'), { expiresMs: 50 });
    await b.store({ taskId: 'old' }, { task_id: 'old', status: 'SUCCESS', result: 1, traceback: null, children: [] });
    const storedBy = Date.now();
    // Expiry is a time condition: wait (bounded) until the clock is past the old result's expiry.
    await waitFor('the old result to be past its expiry', () => Date.now() > storedBy + 50, 2_000, 5);
    await b.store({ taskId: 'new' }, { task_id: 'new', status: 'SUCCESS', result: 2, traceback: null, children: [] });
    assert.equal(await b.cleanup(), 1);
    assert.equal(await b.get('old'), null);
    assert.equal((await b.get('new'))?.result, 2);
    await b.close();
  });

  it('a ready state is final: a late STARTED never overwrites SUCCESS', async () => {
    const b = new SqliteResultBackend(join(tmp.dir, 'res2.db'), { expiresMs: 60_000 });
    await b.store({ taskId: 'a' }, { task_id: 'a', status: 'SUCCESS', result: 1, traceback: null, children: [] });
    await b.store({ taskId: 'a' }, { task_id: 'a', status: 'STARTED', result: null, traceback: null, children: [] });
    assert.equal((await b.get('a'))?.status, 'SUCCESS');
    await b.close();
  });

  describe('SQLite failures are AsynxErrors with a code per kind, the driver error as cause', () => {
    /** Asserts a SqliteStorageError: code, still a BrokerUnavailableError (exit 69), message, driver cause. */
    const isStorageError = (code: string, message: RegExp, causeCode?: string) => (err: unknown) => {
      assert.ok(err instanceof AsynxError, String(err));
      assert.ok(err instanceof BrokerUnavailableError, 'callers branching on broker-unavailable still match');
      assert.equal(err.code, code);
      assert.match(err.message, message);
      if (causeCode) assert.equal((err.cause as { code?: string }).code, causeCode);
      return true;
    };

    it('a path under a regular file: asynx.sqlite.cantOpen, "check the path and permissions"', async () => {
      const file = join(tmp.dir, 'plain-file');
      writeFileSync(file, 'not a directory');
      const t = new SqliteTransport(join(file, 'sub', 'x.db'));
      await assert.rejects(t.connect(), isStorageError('asynx.sqlite.cantOpen', /Cannot open the SQLite database .*plain-file.*Check the path and permissions/, 'ENOTDIR'));
      const b = new SqliteResultBackend(join(file, 'r.db'), { expiresMs: 1_000 });
      await assert.rejects(b.get('x'), isStorageError('asynx.sqlite.cantOpen', /Cannot open the SQLite database/));
      await t.close();
      await b.close();
    });

    it('a read-only file system: asynx.sqlite.cantOpen with the driver\'s SQLITE_CANTOPEN as cause', async (tc) => {
      if (process.getuid?.() !== 0) {
        tc.skip('remounting a tmpfs read-only needs root (permission bits do not stop root)');
        return;
      }
      const mnt = join(tmp.dir, 'ro');
      mkdirSync(mnt);
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,ro', 'tmpfs', mnt], { stdio: 'pipe' });
      } catch (err) {
        tc.skip(`cannot mount a tmpfs: ${(err as Error).message.split('\n')[0]}`);
        return;
      }
      try {
        const t = new SqliteTransport(join(mnt, 'x.db'));
        await assert.rejects(t.connect(), isStorageError('asynx.sqlite.cantOpen', /read-write/, 'SQLITE_CANTOPEN'));
        await t.close();
      } finally {
        execFileSync('umount', [mnt]);
      }
    });

    it('a file that is not a database: asynx.sqlite.corrupt, "move the file aside"', async () => {
      const bad = join(tmp.dir, 'garbage.db');
      writeFileSync(bad, 'this is plain text, not a SQLite database\n'.repeat(200));
      const t = new SqliteTransport(bad);
      await assert.rejects(t.connect(), isStorageError('asynx.sqlite.corrupt', /not a valid SQLite database or is corrupt.*move the file aside/, 'SQLITE_NOTADB'));
      const b = new SqliteResultBackend(bad, { expiresMs: 1_000 });
      await assert.rejects(b.connect(), isStorageError('asynx.sqlite.corrupt', /garbage\.db/));
      await t.close();
      await b.close();
    });

    it('another connection holding BEGIN IMMEDIATE past the bound: asynx.sqlite.busy, "holds a write lock for longer than"', async () => {
      const path = join(tmp.dir, 'busy.db');
      const t = new SqliteTransport(path, { publishTimeoutMs: 300 });
      await t.connect();
      const b = new SqliteResultBackend(path, { expiresMs: 60_000, writeTimeoutMs: 300 });
      await b.connect();
      const locker = new Database(path, { timeout: 0 });
      locker.exec('BEGIN IMMEDIATE');
      try {
        const { queue, message } = buildTaskMessage('x', [], {});
        const t0 = Date.now();
        await assert.rejects(t.publish(queue, message), isStorageError('asynx.sqlite.busy', /Cannot publish: another process holds a write lock on the SQLite database .*busy\.db for longer than the busy timeout \(300 ms\)/, 'SQLITE_BUSY'));
        assert.ok(Date.now() - t0 < 5_000, 'bounded by publishTimeout, not hung');
        await assert.rejects(b.store({ taskId: 'a' }, { task_id: 'a', status: 'SUCCESS', result: 1, traceback: null, children: [] }), isStorageError('asynx.sqlite.busy', /Cannot store results: another process holds a write lock/));
      } finally {
        locker.exec('ROLLBACK');
        locker.close();
      }
      // Once the lock is gone, the same objects work again.
      const { queue, message } = buildTaskMessage('x', [], {});
      await t.publish(queue, message);
      await t.close();
      await b.close();
    });
  });

  describe('close() is idempotent and exhaustive', () => {
    /** Open descriptors of this process on `path` (the database file and its -wal/-shm). */
    const fdsOn = (path: string) => readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).startsWith(path);
      } catch {
        return false;
      }
    }).length;

    it('two concurrent close() calls share one promise and close the file once', async () => {
      const path = join(tmp.dir, 'close-twice.db');
      const t = new SqliteTransport(path);
      const b = new SqliteResultBackend(path, { expiresMs: 1_000 });
      await t.connect();
      await b.connect();
      const { queue, message } = buildTaskMessage('x', [], {});
      const publishing = t.publish(queue, message);
      const [t1, t2, b1, b2] = [t.close(), t.close(), b.close(), b.close()];
      assert.equal(t1, t2);
      assert.equal(b1, b2);
      await Promise.all([publishing, t1, t2, b1, b2]);
      assert.equal(fdsOn(path), 0, 'no descriptor left on the database files');
    });

    it('a failing step (returning leases while another process locks the file) skips nothing: the file is still closed', async () => {
      const path = join(tmp.dir, 'close-locked.db');
      const t = new SqliteTransport(path, { visibilityTimeoutMs: 60_000 });
      await t.connect();
      const { queue, message } = buildTaskMessage('x', [], {});
      await t.publish(queue, message);
      assert.equal(t.claim([queue], 1).length, 1, 'a held (leased) message');
      const locker = new Database(path, { timeout: 0 });
      locker.exec('BEGIN IMMEDIATE');
      try {
        await t.close();
      } finally {
        locker.exec('ROLLBACK');
        locker.close();
      }
      assert.equal(fdsOn(path), 0, 'the database file was closed after the failed step');
      await assert.rejects(t.count(queue), (err: unknown) => err instanceof AsynxError && /closed/.test(err.message));
    });
  });
});
