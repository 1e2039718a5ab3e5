// Two workers with the same node name on one SQLite broker file: the second is refused (exit 73); stale claims are not.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Asynx } from '../../src/index.js';
import { AsynxError } from '../../src/errors.js';
import { Worker } from '../../src/worker/worker.js';
import { spawnProcess } from '../helpers/process.js';
import { BIN, FIXTURE_APP, runCli, startWorker, type RunningWorker } from '../helpers/worker.js';
import { tempDir, waitFor } from '../helpers/tmp.js';

describe('one node name per SQLite broker', () => {
  const tmp = tempDir();
  const workers: RunningWorker[] = [];
  after(async () => {
    for (const w of workers) await w.stop('SIGKILL', 10_000).catch(() => undefined);
    tmp.cleanup();
  });
  let n = 0;
  /** A fresh broker file and two working directories, each with its own pidfile. */
  const fresh = () => {
    const dir = join(tmp.dir, `case${++n}`);
    const [a, b] = [join(dir, 'a'), join(dir, 'b')];
    mkdirSync(a, { recursive: true });
    mkdirSync(b);
    const db = join(dir, 'broker.db');
    return { db, brokerUrl: `sqlite://${db}`, a, b };
  };
  const rows = (db: string) => {
    const h = new Database(db, { readonly: true });
    try {
      return h.prepare('SELECT name, pid, hostname, heartbeat_at FROM nodes').all() as Array<{ name: string; pid: number; hostname: string; heartbeat_at: number }>;
    } finally {
      h.close();
    }
  };
  /** `asynx worker -n <name>` run to its end (bounded): the refused one exits at once. */
  const second = (brokerUrl: string, cwd: string, name: string) =>
    runCli(['worker', '-A', FIXTURE_APP, '-n', name, '-c', '1', '--pidfile', join(cwd, 'w.pid')], { ASYNX_BROKER_URL: brokerUrl }, 20_000, cwd);

  it('a second worker named w1@host (another cwd, another pidfile) exits 73 naming the node; after a clean stop the name is free', async () => {
    const { db, brokerUrl, a, b } = fresh();
    const w1 = await startWorker({ brokerUrl, cwd: a, args: ['-n', 'w1@host', '-c', '1', '--pidfile', join(a, 'w.pid')] });
    workers.push(w1);
    assert.deepEqual(rows(db).map((r) => [r.name, r.pid]), [['w1@host', w1.pid]]);
    const dup = await second(brokerUrl, b, 'w1@host');
    assert.equal(dup.code, 73, dup.stderr);
    assert.match(dup.stderr, new RegExp(`A node named w1@host is already using this broker \\(pid ${w1.pid} on `));
    assert.match(dup.stderr, /-n othername@%h/);
    assert.equal(dup.stderr.trim().split('\n').length, 1, dup.stderr);
    // The refused node left the holder alone: it still runs tasks, and its row is still there.
    const client = new Asynx({ brokerUrl, configFile: false });
    try {
      assert.equal(await (await client.sendTask('t.add', [2, 3])).get({ timeout: 10 }), 5);
    } finally {
      await client.close();
    }
    assert.deepEqual(rows(db).map((r) => r.pid), [w1.pid]);
    // The holder keeps its claim fresh (every 2 s).
    const seen = rows(db)[0]!.heartbeat_at;
    await waitFor('a heartbeat refresh', () => rows(db)[0]!.heartbeat_at > seen, 6_000, 100);
    // Another name on the same file is fine.
    const other = await startWorker({ brokerUrl, cwd: b, args: ['-n', 'w2@host', '-c', '1'] });
    workers.push(other);
    assert.equal(await other.stop(), 0);
    assert.equal(await w1.stop(), 0);
    assert.deepEqual(rows(db), [], 'a clean stop deletes the claim');
    const again = await startWorker({ brokerUrl, cwd: b, args: ['-n', 'w1@host', '-c', '1', '--pidfile', join(b, 'w.pid')] });
    workers.push(again);
    assert.equal(await again.stop(), 0);
  });

  it('a node killed with SIGKILL leaves its row, which does not block a restart on this host (its pid is gone)', async () => {
    const { db, brokerUrl, a, b } = fresh();
    const w1 = await startWorker({ brokerUrl, cwd: a, args: ['-n', 'k1@host', '-c', '1'] });
    workers.push(w1);
    await w1.stop('SIGKILL');
    assert.deepEqual(rows(db).map((r) => r.pid), [w1.pid], 'the killed node could not clean up');
    const w2 = await startWorker({ brokerUrl, cwd: b, args: ['-n', 'k1@host', '-c', '1'] });
    workers.push(w2);
    assert.deepEqual(rows(db).map((r) => r.pid), [w2.pid]);
    assert.equal(await w2.stop(), 0);
  });

  it('a row from another machine: refused while its heartbeat is fresh, taken over once it is stale', async () => {
    const { db, brokerUrl, a } = fresh();
    const client = new Asynx({ brokerUrl, configFile: false });
    await client.sendTask('t.add', [1, 1]); // creates the file and its tables
    await client.close();
    const put = (heartbeatAt: number) => {
      const h = new Database(db);
      try {
        h.prepare('INSERT OR REPLACE INTO nodes (name, pid, hostname, token, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)').run('r1@host', 1, `not-${hostname()}`, 'x', heartbeatAt, heartbeatAt);
      } finally {
        h.close();
      }
    };
    put(Date.now() + 5_000); // fresh for the whole start-up of the next worker, whatever the machine's speed
    const dup = await second(brokerUrl, a, 'r1@host');
    assert.equal(dup.code, 73, dup.stderr);
    assert.match(dup.stderr, new RegExp(`A node named r1@host is already using this broker \\(pid 1 on not-${hostname()}`));
    put(Date.now() - 60_000); // that machine stopped refreshing a minute ago
    const w = await startWorker({ brokerUrl, cwd: a, args: ['-n', 'r1@host', '-c', '1'] });
    workers.push(w);
    assert.deepEqual(rows(db).map((r) => [r.pid, r.hostname]), [[w.pid, hostname()]]);
    assert.equal(await w.stop(), 0);
  });

  it('two workers with one name started at the same moment: exactly one runs, the other exits 73', async () => {
    const { brokerUrl, a, b } = fresh();
    const client = new Asynx({ brokerUrl, configFile: false });
    await client.sendTask('t.add', [1, 1]); // the file exists: both race for the claim, not for the schema
    await client.close();
    const spawnOne = (dir: string) =>
      spawnProcess(process.execPath, [BIN, 'worker', '-A', FIXTURE_APP, '-l', 'info', '-n', 'race@host', '-c', '1', '--pidfile', join(dir, 'w.pid')], { cwd: dir, env: { ...process.env, NO_COLOR: '1', ASYNX_BROKER_URL: brokerUrl } });
    const both = [spawnOne(a), spawnOne(b)];
    try {
      const loser = await Promise.race(both.map((p) => p.exited.then(() => p)));
      assert.equal(await loser.exited, 73, loser.output());
      assert.match(loser.output(), /A node named race@host is already using this broker/);
      const winner = both.find((p) => p !== loser)!;
      await waitFor('the other node ready', () => winner.isDone() || / ready\.$/m.test(winner.output()), 20_000);
      assert.equal(winner.isDone(), false, winner.output());
      assert.equal(await winner.stop('SIGTERM', 20_000), 0);
    } finally {
      await Promise.all(both.map((p) => p.stop('SIGKILL', 10_000).catch(() => undefined)));
    }
  });

  it('in one process: a second Worker with the same name rejects with asynx.worker.duplicateNode', async () => {
    const { brokerUrl } = fresh();
    const opts = { appUrl: pathToFileURL(FIXTURE_APP).href, concurrency: 1, nodeName: 'same@proc', childEnv: { ASYNX_BROKER_URL: brokerUrl } };
    const first = new Worker(new Asynx({ brokerUrl, configFile: false }), opts);
    const twin = new Worker(new Asynx({ brokerUrl, configFile: false }), opts);
    try {
      await first.start();
      await assert.rejects(twin.start(), (err: unknown) => err instanceof AsynxError && err.code === 'asynx.worker.duplicateNode' && err.exitCode === 73 && /same@proc/.test(err.message));
      assert.equal(twin.state, 'failed');
      assert.equal(first.state, 'running');
    } finally {
      await Promise.all([first.stop(), twin.stop()]);
    }
    const after = new Worker(new Asynx({ brokerUrl, configFile: false }), opts);
    await after.start();
    await after.stop();
  });
});
