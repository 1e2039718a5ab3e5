// Worker lifecycle races through real processes and in-process: stop during start, second TERM, idempotent stop.

import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Asynx, Worker, type WorkerState } from '../../src/index.js';
import { statusPathFor } from '../../src/process/status-file.js';
import { PreforkPool as Pool } from '../../src/worker/pool/prefork.js';
import { FIXTURE_APP, runCli } from '../helpers/worker.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { exitWithin, nextEvent, recordStates, spawnWorker, waitForStatus, type SpawnedWorker } from '../helpers/worker-events.js';
import { queued } from '../helpers/sqlite-queue.js';

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('worker lifecycle races', () => {
  const tmp = tempDir();
  let n = 0;
  const spawned: SpawnedWorker[] = [];
  const clients: Asynx[] = [];
  function fresh() {
    const db = join(tmp.dir, `l${++n}.db`);
    const brokerUrl = `sqlite://${db}`;
    return { db, brokerUrl, pidfile: join(tmp.dir, `l${n}.pid`) };
  }
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const w of spawned.splice(0)) w.kill();
  });
  after(() => tmp.cleanup());

  it('TERM while the app module is still importing: clean stop, exit 0, no pidfile or status file, never running', async () => {
    const { brokerUrl, pidfile } = fresh();
    const w = spawnWorker(['-c', '1', '--pidfile', pidfile], { ASYNX_BROKER_URL: brokerUrl, ASYNX_TEST_IMPORT_DELAY_MS: '1500', ASYNX_TEST_IMPORT_DELAY_IN: 'main' });
    spawned.push(w);
    const rec = recordStates(pidfile);
    await waitForStatus(pidfile, 'starting', (s) => s.state === 'starting');
    w.proc.kill('SIGTERM');
    const code = await exitWithin(w);
    rec.stop();
    assert.equal(code, 0, w.output());
    assert.equal(existsSync(pidfile), false, 'pidfile removed');
    assert.equal(existsSync(statusPathFor(pidfile)), false, 'status file removed');
    assert.ok(!rec.states.includes('running'), `states seen: ${rec.states.join(' → ')}`);
    assert.doesNotMatch(w.output(), / ready\.$/m);
  });

  it('TERM while pool children are still loading the app: clean stop, exit 0, never running', async () => {
    const { brokerUrl, pidfile } = fresh();
    const w = spawnWorker(['-c', '2', '--pidfile', pidfile], { ASYNX_BROKER_URL: brokerUrl, ASYNX_TEST_IMPORT_DELAY_MS: '2000', ASYNX_TEST_IMPORT_DELAY_IN: 'child' });
    spawned.push(w);
    const rec = recordStates(pidfile);
    await waitForStatus(pidfile, 'starting', (s) => s.state === 'starting');
    await waitFor('pool children forked', () => childPids(w.proc.pid!).length === 2, 10_000, 10);
    w.proc.kill('SIGTERM');
    const code = await exitWithin(w);
    rec.stop();
    assert.equal(code, 0, w.output());
    assert.equal(existsSync(pidfile), false);
    assert.equal(existsSync(statusPathFor(pidfile)), false);
    assert.ok(!rec.states.includes('running'), `states seen: ${rec.states.join(' → ')}`);
    assert.doesNotMatch(w.output(), / ready\.$/m);
  });

  it('a second TERM goes cold while a long task runs: exit 1, the task back in its queue', async () => {
    const { db, brokerUrl, pidfile } = fresh();
    const w = spawnWorker(['-c', '1', '--pidfile', pidfile], { ASYNX_BROKER_URL: brokerUrl });
    spawned.push(w);
    await waitForStatus(pidfile, 'running', (s) => s.state === 'running');
    const c = new Asynx({ brokerUrl, configFile: false });
    clients.push(c);
    await c.sendTask('t.sleep', [8000]);
    await waitForStatus(pidfile, 'task running', (s) => s.active === 1);
    w.proc.kill('SIGTERM');
    await waitForStatus(pidfile, 'draining', (s) => s.state === 'draining');
    w.proc.kill('SIGTERM');
    const code = await exitWithin(w, 5000);
    assert.equal(code, 1, w.output());
    assert.match(w.output(), /Cold shutdown: t\.sleep\[/);
    assert.equal(queued(db), 1, 'the terminated task is back in the queue');
    assert.equal(existsSync(pidfile), false);
  });

  it('asynx worker -- key=value: overrides reach the main process and the pool children', async () => {
    const { brokerUrl, pidfile } = fresh();
    const w = spawnWorker(['-c', '1', '--pidfile', pidfile, '--', 'prefetchMultiplier=3', 'acks_late=true'], { ASYNX_BROKER_URL: brokerUrl });
    spawned.push(w);
    const s = await waitForStatus(pidfile, 'running', (st) => st.state === 'running');
    assert.equal(s.prefetch, 3, 'concurrency 1 × prefetchMultiplier 3');
    const c = new Asynx({ brokerUrl, configFile: false });
    clients.push(c);
    assert.equal(await (await c.sendTask('t.config', ['prefetchMultiplier'])).get({ timeout: 10 }), 3, 'a pool child resolved the override');
    assert.equal(await (await c.sendTask('t.config', ['acksLate'])).get({ timeout: 10 }), true, 'snake_case key');
    w.proc.kill('SIGTERM');
    assert.equal(await exitWithin(w), 0);
  });

  it('asynx worker -- with an unknown key (or an override without --) exits 64 naming it', async () => {
    const { brokerUrl } = fresh();
    const bad = await runCli(['worker', '-A', FIXTURE_APP, '--', 'prefetchMultiplier=2', 'bogusKey=1'], { ASYNX_BROKER_URL: brokerUrl });
    assert.equal(bad.code, 64, bad.stderr);
    assert.match(bad.stderr, /Unknown config key 'bogusKey'/);
    const stray = await runCli(['worker', '-A', FIXTURE_APP, 'prefetchMultiplier=2'], { ASYNX_BROKER_URL: brokerUrl });
    assert.equal(stray.code, 64, stray.stderr);
    assert.match(stray.stderr, /only after --/);
  });
});

describe('worker and pool stop in-process', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  it('stop() twice returns the same promise; a failing status-file removal and app.close() skip nothing; done settles', async () => {
    const brokerUrl = `sqlite://${join(tmp.dir, 'inproc.db')}`;
    const pidfile = join(tmp.dir, 'inproc.pid');
    const app = new Asynx({ brokerUrl, configFile: false });
    // The main process needs the name registered; the pool children run the fixture's t.add.
    app.task('t.add', (a: number, b: number) => a + b);
    const client = new Asynx({ brokerUrl, configFile: false });
    const worker = new Worker(app, { appUrl: pathToFileURL(FIXTURE_APP).href, concurrency: 1, pidfile, nodeName: 'inproc@test', childEnv: { ASYNX_BROKER_URL: brokerUrl } });
    const states: WorkerState[] = [];
    worker.on('worker:state', (e) => states.push(e.to));
    const errors: string[] = [];
    worker.on('worker:error', (e) => errors.push(e.message));
    try {
      const online = nextEvent(worker, 'worker:online');
      await worker.start();
      assert.equal(worker.state, 'running');
      assert.equal((await online).hostname, 'inproc@test');
      const sent = await client.sendTask('t.add', [2, 3]);
      const isIt = (e: { taskId: string }) => e.taskId === sent.id;
      const [received, started, succeeded] = await Promise.all([nextEvent(worker, 'task:received', isIt), nextEvent(worker, 'task:started', isIt), nextEvent(worker, 'task:succeeded', isIt)]);
      assert.deepEqual([received.name, received.args, received.retries, received.eta, received.rootId], ['t.add', [2, 3], 0, null, sent.id]);
      assert.equal(started.hostname, 'inproc@test');
      assert.equal(succeeded.result, 5);
      assert.ok(succeeded.runtime >= 0);
      assert.equal(await sent.get({ timeout: 10 }), 5);
      const kids = childPids(process.pid).length;
      assert.ok(kids >= 1);
      // Sabotage two cleanup steps: the status file becomes a non-empty directory; app.close() throws.
      const status = statusPathFor(pidfile);
      rmSync(status, { force: true });
      mkdirSync(status);
      writeFileSync(join(status, 'x'), '');
      const realClose = app.close.bind(app);
      app.close = async () => {
        await realClose();
        throw new Error('close failed on purpose');
      };
      const first = worker.stop();
      assert.equal(worker.stop(), first, 'the same promise');
      assert.equal(worker.close(), first, 'close() is stop()');
      await Promise.race([worker.done, new Promise((_, reject) => setTimeout(() => reject(new Error('done did not settle')), 15_000))]);
      await first;
      assert.equal(existsSync(pidfile), false, 'the pidfile is removed although earlier steps failed');
      assert.deepEqual(worker.stopReport.failedSteps.sort(), ['app', 'status file']);
      assert.ok(errors.some((m) => m.includes('close failed on purpose')), errors.join('\n'));
      assert.deepEqual(states, ['running', 'draining', 'stopping', 'stopped']);
      assert.equal(worker.state, 'stopped');
    } finally {
      await worker.stop('cold');
      await client.close();
    }
  });

  it('Pool.close() is idempotent: the same promise, and a cold call during a warm close kills what is left', async () => {
    const pool = new Pool({ size: 2, appUrl: pathToFileURL(FIXTURE_APP).href });
    await pool.start();
    assert.equal(pool.childPids.length, 2);
    const warm = pool.close();
    assert.equal(pool.close(true), warm);
    await Promise.race([warm, new Promise((_, reject) => setTimeout(() => reject(new Error('pool close did not settle')), 10_000))]);
    assert.deepEqual(pool.childPids, []);
  });
});
