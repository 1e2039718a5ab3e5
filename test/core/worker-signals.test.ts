// Worker signals and lifecycle through real processes: warm/cold shutdown, group TERM, HUP, USR1, pidfile, detach.

import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { Asynx } from '../../src/index.js';
import { runCli, startWorker, FIXTURE_APP, type RunningWorker } from '../helpers/worker.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { waitForStatus } from '../helpers/worker-events.js';
import { queued } from '../helpers/sqlite-queue.js';

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number).sort();
  } catch {
    return [];
  }
}
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('worker signals and lifecycle', () => {
  const tmp = tempDir();
  let n = 0;
  const workers: RunningWorker[] = [];
  const clients: Asynx[] = [];
  const extraPids: number[] = [];
  function fresh() {
    const db = join(tmp.dir, `s${++n}.db`);
    const brokerUrl = `sqlite://${db}`;
    const c = new Asynx({ brokerUrl, configFile: false });
    clients.push(c);
    return { db, brokerUrl, c, pidfile: join(tmp.dir, `s${n}.pid`) };
  }
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const w of workers.splice(0)) await w.stop('SIGKILL');
    for (const pid of extraPids.splice(0)) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  after(() => tmp.cleanup());

  it('TERM: warm shutdown finishes the running task, gives prefetched messages back, removes the pidfile, exits 0', async () => {
    const { db, brokerUrl, c } = fresh();
    const pidfile = join(tmp.dir, 'w.pid');
    const w = await startWorker({ brokerUrl, args: ['-c', '1', '--pidfile', pidfile] });
    workers.push(w);
    assert.equal(readFileSync(pidfile, 'utf8').split('\n')[0], String(w.pid));
    const running = await c.sendTask('t.sleep', [1500]);
    await waitForStatus(pidfile, 'task running', (s) => s.active === 1);
    await Promise.all([1, 2, 3].map(() => c.sendTask('t.add', [1, 1])));
    await waitForStatus(pidfile, 'prefetched', (s) => s.reserved === 3);
    const code = await w.stop('SIGTERM');
    assert.equal(code, 0);
    assert.equal(await running.get({ timeout: 1 }), 1500, 'the running task finished with SUCCESS');
    assert.equal(queued(db), 3, 'the 3 prefetched messages are back in the queue');
    assert.equal(existsSync(pidfile), false);
  });

  it('TERM to the whole process group does not kill pool children mid-task', async () => {
    const { brokerUrl, c, pidfile } = fresh();
    const w = await startWorker({ brokerUrl, args: ['-c', '2', '--pidfile', pidfile], detached: true });
    workers.push(w);
    const r = await c.sendTask('t.sleep', [1200]);
    await waitForStatus(pidfile, 'task running', (s) => s.active === 1);
    process.kill(-w.pid, 'SIGTERM');
    assert.equal(await w.exited, 0);
    assert.equal(await r.get({ timeout: 1 }), 1200);
  });

  it('QUIT: cold shutdown kills the children and puts the unfinished (early-acked) task back in the queue', async () => {
    const { db, brokerUrl, c, pidfile } = fresh();
    const w = await startWorker({ brokerUrl, args: ['-c', '1', '--pidfile', pidfile] });
    workers.push(w);
    const r = await c.sendTask('t.sleep', [3000]);
    await waitForStatus(pidfile, 'task running', (s) => s.active === 1);
    const kids = childPids(w.pid);
    const code = await w.stop('SIGQUIT');
    assert.equal(code, 1);
    for (const k of kids) await waitFor(`child ${k} gone`, () => !alive(k), 5000);
    assert.equal(queued(db), 1);
    const w2 = await startWorker({ brokerUrl, args: ['-c', '1'] });
    workers.push(w2);
    assert.equal(await r.get({ timeout: 10 }), 3000);
  });

  it('INT twice: warm, then cold', async () => {
    const { db, brokerUrl, c, pidfile } = fresh();
    const w = await startWorker({ brokerUrl, args: ['-c', '1', '--pidfile', pidfile] });
    workers.push(w);
    await c.sendTask('t.sleep', [5000]);
    await waitForStatus(pidfile, 'task running', (s) => s.active === 1);
    w.proc.kill('SIGINT');
    await waitForStatus(pidfile, 'warm shutdown', (s) => s.state === 'draining');
    // The status file can be read before the log line has come through the stderr pipe.
    await waitFor('the hint that a second INT goes cold', () => /Hitting Ctrl\+C again/.test(w.output()), 5_000);
    w.proc.kill('SIGINT');
    assert.equal(await w.exited, 1);
    assert.equal(queued(db), 1);
  });

  it('USR1 logs the running tasks; HUP restarts the pool in place (same pid, new children)', async () => {
    const { brokerUrl, c, pidfile } = fresh();
    const w = await startWorker({ brokerUrl, args: ['-c', '2', '--pidfile', pidfile] });
    workers.push(w);
    const r = await c.sendTask('t.sleep', [800]);
    await waitForStatus(pidfile, 'task running', (s) => s.active === 1);
    w.proc.kill('SIGUSR1');
    await waitFor('usr1 dump', () => w.output().includes(`t.sleep[${r.id}] running for`));
    const before = childPids(w.pid);
    w.proc.kill('SIGHUP');
    await waitForStatus(pidfile, 'restarted with new children', (s) => s.state === 'running' && s.childPids.length === 2 && s.childPids.every((p) => !before.includes(p)), 15_000);
    assert.equal(await r.get({ timeout: 5 }), 800, 'the running task finished first');
    assert.equal(alive(w.pid), true);
    const afterKids = childPids(w.pid);
    assert.equal(afterKids.length, 2);
    assert.ok(afterKids.every((p) => !before.includes(p)), 'all children replaced');
    assert.equal(await (await c.sendTask('t.add', [5, 5])).get({ timeout: 10 }), 10);
  });

  it('--detach returns at once; the node writes its pidfile and logfile (%I per child), USR2 reopens the log, TERM stops it', async () => {
    const { brokerUrl, c } = fresh();
    const pidfile = join(tmp.dir, 'run', '%n.pid');
    const logfile = join(tmp.dir, 'log', '%n%I.log');
    const res = await runCli(['worker', '-A', FIXTURE_APP, '-n', 'd1@%h', '-c', '2', '--detach', '--pidfile', pidfile, '--logfile', logfile], { ASYNX_BROKER_URL: brokerUrl });
    assert.equal(res.code, 0, res.stderr);
    const pf = join(tmp.dir, 'run', 'd1.pid');
    const lf = join(tmp.dir, 'log', 'd1.log');
    await waitFor('pidfile', () => existsSync(pf), 10_000);
    const pid = Number(readFileSync(pf, 'utf8').split('\n')[0]);
    extraPids.push(pid);
    await waitFor('ready line', () => existsSync(lf) && readFileSync(lf, 'utf8').includes('ready.'), 10_000);
    assert.ok(existsSync(join(tmp.dir, 'log', 'd1-1.log')) && existsSync(join(tmp.dir, 'log', 'd1-2.log')), 'each child has its own log file');
    assert.equal(await (await c.sendTask('t.add', [4, 4])).get({ timeout: 10 }), 8);
    renameSync(lf, `${lf}.old`);
    process.kill(pid, 'SIGUSR2');
    await waitFor('reopened', () => existsSync(lf) && readFileSync(lf, 'utf8').includes('reopened'), 5000);
    process.kill(pid, 'SIGTERM');
    await waitFor('node gone', () => !alive(pid), 10_000);
    assert.equal(existsSync(pf), false);
  });

  it('a second worker with the same live pidfile refuses to start (exit 73)', async () => {
    const { brokerUrl } = fresh();
    const pidfile = join(tmp.dir, 'same.pid');
    const w = await startWorker({ brokerUrl, args: ['-n', 'same@%h', '--pidfile', pidfile] });
    workers.push(w);
    const res = await runCli(['worker', '-A', FIXTURE_APP, '-n', 'same@%h', '--pidfile', pidfile], { ASYNX_BROKER_URL: brokerUrl });
    assert.equal(res.code, 73);
    assert.match(res.stderr, /already/i);
  });
});
