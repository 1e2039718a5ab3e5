// Pool behaviour through real processes: time limits, crashes, acks-late redelivery, poison messages, recycling.

import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Asynx, RemoteTaskError } from '../../src/index.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';
import { tempDir } from '../helpers/tmp.js';
import { waitForStatus } from '../helpers/worker-events.js';

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('prefork pool', () => {
  const tmp = tempDir();
  let n = 0;
  const workers: RunningWorker[] = [];
  const clients: Asynx[] = [];
  async function setup(args: string[] = ['-c', '2'], env: NodeJS.ProcessEnv = {}) {
    const brokerUrl = `sqlite://${join(tmp.dir, `p${++n}.db`)}`;
    const w = await startWorker({ brokerUrl, args, env });
    workers.push(w);
    const c = new Asynx({ brokerUrl, configFile: false, visibilityTimeout: 1 });
    clients.push(c);
    return { w, c, db: join(tmp.dir, `p${n}.db`) };
  }
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const w of workers.splice(0)) await w.stop('SIGKILL');
  });
  after(() => tmp.cleanup());

  it('runs CPU-bound tasks in parallel in separate child processes', async () => {
    const { c } = await setup(['-c', '2']);
    // Two CPU-bound tasks of 800 ms each: on a 2-child pool they must overlap in time, in two different children.
    type Span = { pid: number; start: number; end: number };
    const sent = await Promise.all([c.sendTask<Span>('t.span', [800]), c.sendTask<Span>('t.span', [800])]);
    const [a, b] = await Promise.all(sent.map((r) => r.get({ timeout: 15 })));
    assert.ok(a && b);
    assert.notEqual(a.pid, b.pid, 'two different pool children');
    for (const s of [a, b]) assert.notEqual(s.pid, workers[0]!.pid, 'tasks run outside the main process');
    assert.ok(a.start < b.end && b.start < a.end, `the two runs overlap in time: [${a.start}, ${a.end}] and [${b.start}, ${b.end}]`);
  });

  it('hard time limit kills the child, fails the task with TimeLimitExceeded, and replaces the child', async () => {
    const { w, c } = await setup(['-c', '1']);
    const before = childPids(w.pid);
    const r = await c.sendTask('t.spin', [10_000]);
    const err = await r.get({ timeout: 15 }).catch((e: unknown) => e);
    assert.ok(err instanceof RemoteTaskError);
    assert.equal(err.name, 'TimeLimitExceeded');
    assert.equal(await (await c.sendTask('t.add', [1, 2])).get({ timeout: 10 }), 3);
    assert.notDeepEqual(childPids(w.pid), before, 'a new child replaced the killed one');
  });

  it('soft time limit aborts the task signal and fails it with SoftTimeLimitExceeded', async () => {
    const { c } = await setup(['-c', '1']);
    const err = await (await c.sendTask('t.soft')).get({ timeout: 10 }).catch((e: unknown) => e);
    assert.ok(err instanceof RemoteTaskError);
    assert.equal(err.name, 'SoftTimeLimitExceeded');
  });

  it('a child that dies mid-task: FAILURE with WorkerLostError, child replaced, worker keeps going', async () => {
    const { c } = await setup(['-c', '1']);
    const err = await (await c.sendTask('t.crash')).get({ timeout: 10 }).catch((e: unknown) => e);
    assert.ok(err instanceof RemoteTaskError);
    assert.equal(err.name, 'WorkerLostError');
    assert.equal(await (await c.sendTask('t.add', [2, 2])).get({ timeout: 10 }), 4);
  });

  it('acksLate: a message whose child dies is redelivered, and dead-lettered after maxDeliveries', async () => {
    const { w, c, db } = await setup(['-c', '1'], { ASYNX_MAX_DELIVERIES: '3', ASYNX_ACKS_LATE: '1' });
    const r = await c.sendTask('t.crash');
    const err = await r.get({ timeout: 20 }).catch((e: unknown) => e);
    assert.ok(err instanceof RemoteTaskError);
    assert.equal(err.name, 'WorkerLostError');
    assert.match(err.message, /delivered 4 times/);
    const deliveries = w.output().split('\n').filter((l) => l.includes(`t.crash[${r.id}] received`)).length;
    assert.equal(deliveries, 3);
    const ro = new Database(db, { readonly: true });
    const dead = ro.prepare('SELECT reason FROM dead_letters').all() as Array<{ reason: string }>;
    ro.close();
    assert.equal(dead.length, 1);
    assert.equal(await (await c.sendTask('t.add', [1, 1])).get({ timeout: 10 }), 2, 'the rest is unaffected');
  });

  it('--max-tasks-per-child recycles children', async () => {
    const { c } = await setup(['-c', '1', '--max-tasks-per-child', '2']);
    const pids: number[] = [];
    for (let i = 0; i < 4; i++) pids.push(await (await c.sendTask<number>('t.pid')).get({ timeout: 10 }));
    assert.equal(pids[0], pids[1]);
    assert.notEqual(pids[1], pids[2]);
    assert.equal(pids[2], pids[3]);
  });

  it('--max-memory-per-child recycles a child whose RSS grew past the limit', async () => {
    const { w, c } = await setup(['-c', '1', '--max-memory-per-child', '150000']);
    const p1 = await (await c.sendTask<number>('t.big', [200])).get({ timeout: 10 });
    const p2 = await (await c.sendTask<number>('t.pid')).get({ timeout: 10 });
    assert.notEqual(p1, p2);
    assert.match(w.output(), /over max memory per child/);
  });

  it('a worker killed with SIGKILL: its leased message returns to the queue after the visibility timeout', async () => {
    const tmpDb = join(tmp.dir, 'lease.db');
    const brokerUrl = `sqlite://${tmpDb}`;
    const pidfile = join(tmp.dir, 'lease.pid');
    const w1 = await startWorker({ brokerUrl, args: ['-c', '1', '--pidfile', pidfile], env: { ASYNX_VISIBILITY_TIMEOUT: '1.5', ASYNX_ACKS_LATE: '1' } });
    workers.push(w1);
    const c = new Asynx({ brokerUrl, configFile: false });
    clients.push(c);
    const r = await c.sendTask('t.sleep', [5000]);
    await waitForStatus(pidfile, 'task running', (s) => s.active === 1);
    await w1.stop('SIGKILL');
    const w2 = await startWorker({ brokerUrl, args: ['-c', '1'], env: { ASYNX_VISIBILITY_TIMEOUT: '1.5' } });
    workers.push(w2);
    assert.equal(await r.get({ timeout: 20 }), 5000);
    assert.ok(existsSync(tmpDb));
  });
});
