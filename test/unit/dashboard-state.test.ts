// The dashboard's pure parts: the cluster state folded from events (Celery's heartbeat rule, late events), the
// per-minute history, and option resolution (loopback, credentials).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CeleryEvent } from '../../src/events/event.js';
import { History } from '../../src/dashboard/history.js';
import { isLoopback, parseAuth, resolveDashboardOptions } from '../../src/dashboard/options.js';
import { ClusterState } from '../../src/dashboard/state.js';
import { isAsynxError } from '../../src/errors.js';

const ev = (type: string, fields: Record<string, unknown> = {}): CeleryEvent => ({ type, timestamp: 1000, hostname: 'w1@h', utcoffset: 0, pid: 42, clock: 1, ...fields });

describe('ClusterState', () => {
  it('a node is alive until last heartbeat + freq × 2, and offline at once on worker-offline', () => {
    let now = 1_000_000;
    const s = new ClusterState({ now: () => now });
    s.apply(ev('worker-online', { freq: 2, sw_ident: 'py-celery', sw_ver: '5.2.6', active: 0, processed: 0, loadavg: [0.1, 0.2, 0.3] }), now);
    assert.equal(s.isAlive('w1@h'), true);
    now += 3_999;
    assert.equal(s.isAlive('w1@h'), true);
    now += 2;
    assert.equal(s.isAlive('w1@h'), false, 'past 2 × freq (4 s)');
    s.apply(ev('worker-heartbeat', { freq: 5, processed: 7 }), now);
    now += 9_000;
    assert.equal(s.isAlive('w1@h'), true, 'freq comes from the last heartbeat (5 s → 10 s window)');
    s.apply(ev('worker-offline', { freq: 5 }), now);
    assert.equal(s.isAlive('w1@h'), false);
    const w = s.worker('w1@h')!;
    assert.deepEqual([w.software, w.version, w.processed, w.pid, w.offline], ['py-celery', '5.2.6', 7, 42, true]);
  });

  it('a task folds its events; a late started does not move a finished task back', () => {
    const s = new ClusterState();
    s.apply(ev('task-received', { uuid: 'u1', name: 't.add', args: '(2, 3)', kwargs: '{}', retries: 0, timestamp: 10 }));
    s.apply(ev('task-succeeded', { uuid: 'u1', result: '5', runtime: 0.25, timestamp: 12 }));
    s.apply(ev('task-started', { uuid: 'u1', timestamp: 11 }));
    const t = s.task('u1')!;
    assert.deepEqual([t.state, t.name, t.args, t.result, t.runtime, t.worker, t.started, t.finished], ['SUCCESS', 't.add', '(2, 3)', '5', 0.25, 'w1@h', 11, 12]);
    s.apply(ev('task-failed', { uuid: 'u2', exception: "ValueError('x')", traceback: 'Traceback…', timestamp: 5 }));
    assert.equal(s.task('u2')!.state, 'FAILURE');
    s.apply(ev('task-retried', { uuid: 'u3', timestamp: 5, exception: 'Retry' }));
    s.apply(ev('task-received', { uuid: 'u3', retries: 1, timestamp: 6 }));
    assert.deepEqual([s.task('u3')!.state, s.task('u3')!.retries], ['RECEIVED', 1], 'a retried task is received again');
    assert.deepEqual(s.taskList({ state: 'SUCCESS' }).map((x) => x.uuid), ['u1']);
    // A client's task-sent written after the worker's events (each side batches its own) does not move it back.
    s.apply(ev('task-started', { uuid: 'u4', timestamp: 21 }));
    s.apply(ev('task-sent', { uuid: 'u4', name: 't.sleep', args: '[1]', timestamp: 20 }));
    assert.deepEqual([s.task('u4')!.state, s.task('u4')!.name, s.task('u4')!.sent], ['STARTED', 't.sleep', 20]);
    s.apply(ev('task-failed', { uuid: 'u1', timestamp: 13 }));
    assert.equal(s.task('u1')!.state, 'SUCCESS', 'FAILURE after SUCCESS merges only, as in Celery');
  });

  it('keeps at most maxTasks tasks, dropping the oldest', () => {
    const s = new ClusterState({ maxTasks: 3 });
    for (let i = 0; i < 5; i++) s.apply(ev('task-received', { uuid: `u${i}`, timestamp: i }));
    assert.deepEqual(s.taskList().map((t) => t.uuid), ['u4', 'u3', 'u2']);
  });

  it('stats and active_queues replies fill pool size, uptime and queues', () => {
    const s = new ClusterState();
    s.applyStats('w1@h', { pid: 9, uptime: 30, pool: { 'max-concurrency': 4, processes: [1, 2, 3, 4] } });
    s.applyActiveQueues('w1@h', [{ name: 'celery' }, { name: 'emails' }]);
    const w = s.worker('w1@h')!;
    assert.deepEqual([w.poolSize, w.uptime, w.pid, w.queues, w.alive], [4, 30, 9, ['celery', 'emails'], false]);
    assert.deepEqual(s.consumedQueues(), ['celery', 'emails']);
  });
});

describe('History', () => {
  it('counts outcomes per minute and keeps a bounded list of queue samples', () => {
    const h = new History({ samples: 2 });
    h.count('succeeded', 60_000 * 10 + 1);
    h.count('succeeded', 60_000 * 10 + 59_000);
    h.count('failed', 60_000 * 11);
    h.sample({ celery: 1 }, 1);
    h.sample({ celery: 2 }, 2);
    h.sample({ celery: null }, 3);
    const snap = h.snapshot();
    assert.deepEqual(snap.minutes, [{ minute: 600_000, succeeded: 2, failed: 0, retried: 0 }, { minute: 660_000, succeeded: 0, failed: 1, retried: 0 }]);
    assert.deepEqual(snap.queues.map((q) => q.at), [2, 3]);
  });
});

describe('dashboard options', () => {
  it('loopback addresses', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost']) assert.equal(isLoopback(a), true, a);
    for (const a of ['0.0.0.0', '::', '192.168.1.2', 'example.com']) assert.equal(isLoopback(a), false, a);
  });

  it('credentials: user:password is basic, Bearer <token> a token; anything else is refused', () => {
    assert.deepEqual(parseAuth('admin:pa:ss'), { kind: 'basic', user: 'admin', password: 'pa:ss' });
    assert.deepEqual(parseAuth('Bearer abcdefgh12'), { kind: 'bearer', token: 'abcdefgh12' });
    for (const bad of ['nocolon', ':pw', 'user:', 'Bearer short']) assert.throws(() => parseAuth(bad), (e: unknown) => isAsynxError(e) && e.code === 'asynx.dashboard.badAuth', bad);
  });

  it('a non-loopback listen address needs credentials; the env supplies them; not listening needs none', () => {
    assert.throws(() => resolveDashboardOptions({ address: '0.0.0.0' }, {}), (e: unknown) => isAsynxError(e) && e.code === 'asynx.dashboard.authRequired');
    assert.equal(resolveDashboardOptions({ address: '0.0.0.0' }, { ASYNX_DASHBOARD_AUTH: 'a:b' }).auth?.kind, 'basic');
    assert.equal(resolveDashboardOptions({ address: '0.0.0.0', listen: false }, {}).auth, null);
    const d = resolveDashboardOptions({}, {});
    assert.deepEqual([d.address, d.port, d.readOnly, d.inspectIntervalMs, d.queueIntervalMs], ['127.0.0.1', 5555, false, 5000, 2000]);
    assert.ok(d.allowedHosts?.includes('localhost'));
    assert.throws(() => resolveDashboardOptions({ port: 70000 }, {}), (e: unknown) => isAsynxError(e) && e.code === 'asynx.dashboard.badOption');
  });
});
