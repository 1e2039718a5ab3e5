// The remote-control handler set on a recording target: Celery's reply texts, aliases, argument handling.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { answerRequest } from '../../src/control/request.js';
import { controlHandlers, type ControlTarget, type TaskEntry } from '../../src/worker/control.js';
import { signalName } from '../../src/worker/control-shapes.js';
import { RevokedSet } from '../../src/worker/revoked.js';
import { parseRate, TaskLimits } from '../../src/worker/task-limits.js';

function fakeTarget(over: Partial<ControlTarget> = {}) {
  const calls: string[] = [];
  const revoked = new RevokedSet();
  const limits = new TaskLimits();
  const tasks: TaskEntry[] = [{ name: 'b', attributes: {} }, { name: 'a', attributes: { queue: 'q1' } }, { name: 'asynx.http.dispatch', attributes: {} }, { name: 'celery.starmap', attributes: {} }];
  let clock = 7;
  const t: ControlTarget = {
    nodeName: 'me@h',
    clock: () => clock,
    forwardClock: () => ++clock,
    pid: 1,
    uptimeSec: () => 3,
    pool: () => ({ size: 2, childPids: [10, 11], writes: [3, 1], busy: 1, maxTasksPerChild: null }),
    prefetch: () => 8,
    totals: () => ({ a: 4 }),
    broker: () => ({ transport: 'sqlite' }),
    active: () => [],
    reserved: () => [],
    scheduled: () => [],
    find: () => null,
    registered: () => tasks.map((e) => ({ ...e, attributes: { ...e.attributes, rate_limit: limits.rate(e.name) } })),
    revoke: (ids) => ids.forEach((id) => revoked.add(id)),
    revokedIds: () => revoked.ids(),
    revokedEntries: () => revoked.entries(),
    mergeRevoked: (o) => revoked.merge(o),
    terminate: (id, sig) => {
      calls.push(`terminate ${id} ${sig}`);
      return id === 'running';
    },
    setRateLimit: (task, rate) => (task === 'a' || task === 'b' ? (limits.setRate(task, rate), true) : false),
    setTimeLimit: (task, soft, hard) => (calls.push(`time ${task} ${soft} ${hard}`), task === 'a'),
    resize: (n) => void calls.push(`resize ${n}`),
    addQueue: async (q) => (calls.push(`add ${q}`), true),
    removeQueue: async (q) => (calls.push(`remove ${q}`), true),
    activeQueues: () => [],
    conf: () => ({}),
    report: () => 'r',
    taskEvents: false,
    sendHeartbeat: (f) => void calls.push(`heartbeat ${f}`),
    restartPool: () => void calls.push('restart'),
    shutdown: () => void calls.push('shutdown'),
    ...over,
  };
  return { t, calls, h: controlHandlers(t), ask: async (method: string, args: Record<string, unknown> = {}) => (await answerRequest(controlHandlers(t), { method, arguments: args })).reply };
}

describe('remote-control handlers', () => {
  test('revoke: Celery texts with and without terminate; a bad signal is an error reply', async () => {
    const { ask, calls, t } = fakeTarget();
    assert.deepEqual(await ask('revoke', { task_id: ['x', 'y'] }), { ok: 'tasks x, y flagged as revoked' });
    assert.deepEqual(await ask('revoke', { task_id: 'z' }), { ok: 'tasks z flagged as revoked' });
    assert.deepEqual(t.revokedIds(), ['x', 'y', 'z']);
    assert.deepEqual(await ask('revoke', { task_id: 'running', terminate: true }), { ok: 'terminate: running' });
    assert.deepEqual(await ask('revoke', { task_id: 'gone', terminate: true, signal: 'KILL' }), { ok: 'terminate: tasks unknown' });
    assert.deepEqual(await ask('terminate', { task_id: 'running', signal: 'SIGUSR1' }), { ok: 'terminate: running' });
    assert.deepEqual(calls, ['terminate running SIGTERM', 'terminate gone SIGKILL', 'terminate running SIGUSR1']);
    assert.match(((await ask('revoke', { task_id: 'x', terminate: true, signal: 'kill' })) as { error: string }).error, /uppercase/);
  });

  test('shutdown: the reply goes out first, the stop runs after it (a stop first would close the mailbox)', async () => {
    const { calls, t } = fakeTarget();
    const answer = await answerRequest(controlHandlers(t), { method: 'shutdown', arguments: {} });
    assert.deepEqual(answer.reply, { ok: 'shutting down' });
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(calls, [], 'nothing stopped before the mailbox sent the reply');
    answer.afterReply();
    assert.deepEqual(calls, ['shutdown']);
  });

  test('registered: sorted, built-ins hidden unless asked, Celery\'s `name [attr=value]`', async () => {
    const { ask } = fakeTarget();
    assert.deepEqual(await ask('registered'), ['a', 'b']);
    assert.deepEqual(await ask('dump_tasks', { builtins: true }), ['a', 'asynx.http.dispatch', 'b', 'celery.starmap']);
    assert.deepEqual(await ask('registered', { taskinfoitems: ['queue'] }), ['a [queue=q1]', 'b']);
    assert.deepEqual(await ask('rate_limit', { task_name: 'b', rate_limit: '3/h' }), { ok: 'new rate limit set successfully' });
    assert.deepEqual(await ask('registered'), ['a', 'b [rate_limit=3/h]']);
    assert.deepEqual(await ask('rate_limit', { task_name: 'b', rate_limit: '' }), { ok: 'rate limit disabled successfully' });
    assert.deepEqual(await ask('registered'), ['a', 'b']);
    assert.deepEqual(await ask('rate_limit', { task_name: 'zz', rate_limit: '1' }), { error: 'unknown task' });
    assert.deepEqual(await ask('rate_limit', { task_name: 'a', rate_limit: 'fast' }), { error: 'Invalid rate limit string: ValueError("could not convert string to float: \'fast\'")' });
    assert.match(((await ask('rate_limit', { rate_limit: '1' })) as { error: string }).error, /^UsageError\(.*task_name/);
  });

  test('time_limit, pool, consumers, events switches and heartbeat reach the target', async () => {
    const { ask, calls, t } = fakeTarget();
    assert.deepEqual(await ask('time_limit', { task_name: 'a', soft: 1.5, hard: '3' }), { ok: 'time limits set successfully' });
    assert.deepEqual(await ask('time_limit', { task_name: 'nope' }), { error: 'unknown task' });
    assert.match(((await ask('time_limit', { task_name: 'a', hard: 'soon' })) as { error: string }).error, /seconds/);
    assert.deepEqual(await ask('pool_grow', { n: 2 }), { ok: 'pool will grow' });
    assert.deepEqual(await ask('pool_shrink'), { ok: 'pool will shrink' });
    assert.deepEqual(await ask('add_consumer', { queue: 'q2' }), { ok: 'add consumer q2' });
    assert.deepEqual(await ask('cancel_consumer', { queue: 'q2' }), { ok: 'no longer consuming from q2' });
    assert.deepEqual(await ask('enable_events'), { ok: 'task events enabled' });
    assert.equal(t.taskEvents, true);
    assert.deepEqual(await ask('disable_events'), { ok: 'task events disabled' });
    assert.equal(await ask('heartbeat'), null);
    assert.deepEqual(await ask('pool_restart'), { ok: 'reload started' });
    assert.deepEqual(calls, ['time a 1.5 3', 'time nope null null', 'resize 2', 'resize -1', 'add q2', 'remove q2', 'heartbeat 5', 'restart']);
  });

  test('stats: Celery\'s keys, clock as a string, writes as shares', async () => {
    const { ask } = fakeTarget();
    const s = (await ask('stats')) as Record<string, any>;
    assert.deepEqual(Object.keys(s).filter((k) => k !== 'sw_ident').sort(), ['broker', 'clock', 'pid', 'pool', 'prefetch_count', 'rusage', 'total', 'uptime']);
    assert.equal(s.clock, '7');
    assert.deepEqual(s.total, { a: 4 });
    assert.deepEqual(s.pool.writes, { total: 4, avg: '0.50', all: '0.75, 0.25', raw: '3, 1', strategy: 'fair', inqueues: { total: 2, active: 1 } });
    assert.equal(s.pool['max-tasks-per-child'], 'N/A');
  });

  test('hello: nothing for its own node; revoked ids and a forwarded clock for another', async () => {
    const { ask, t } = fakeTarget();
    assert.equal(await ask('hello', { from_node: 'me@h' }), null);
    const r = (await ask('hello', { from_node: 'other@h', revoked: { old: Date.now() / 1000 - 5 } })) as { revoked: Record<string, number>; clock: number };
    assert.deepEqual(Object.keys(r.revoked), ['old']);
    assert.equal(r.clock, 8);
    assert.deepEqual(t.revokedIds(), ['old']);
  });

  test('aliases answer as their command; an unknown method is kombu\'s KeyError', async () => {
    const { h, ask } = fakeTarget();
    for (const [alias, name] of [['dump_conf', 'conf'], ['dump_active', 'active'], ['dump_reserved', 'reserved'], ['dump_schedule', 'scheduled'], ['dump_revoked', 'revoked'], ['dump_tasks', 'registered']]) assert.equal(h[alias], h[name], alias);
    assert.deepEqual(await ask('ping'), { ok: 'pong' });
    assert.deepEqual(await ask('clock'), { clock: 7 });
    assert.deepEqual(await ask('nope'), { error: "KeyError('nope')" });
  });
});

describe('remote-control pieces', () => {
  test('RevokedSet keeps the newest ids within its bound and forgets expired ones', () => {
    const s = new RevokedSet(3, 1000);
    for (const id of ['a', 'b', 'c', 'd']) s.add(id);
    assert.deepEqual(s.ids(), ['b', 'c', 'd']);
    s.add('old', Date.now() - 2000);
    assert.equal(s.has('old'), false);
    assert.ok(!s.ids().includes('old'));
  });

  test('parseRate and signalName read what Celery reads', () => {
    assert.deepEqual(parseRate('10/m'), { perSecond: 10 / 60 });
    assert.deepEqual(parseRate('5'), { perSecond: 5 });
    assert.deepEqual(parseRate('1/d'), { error: "KeyError('d')" });
    assert.equal(signalName('KILL'), 'SIGKILL');
    assert.equal(signalName('SIGTERM'), 'SIGTERM');
    assert.equal(signalName(9), 'SIGKILL');
    assert.equal(signalName('kill'), null);
    assert.equal(signalName('NOPE'), null);
  });
});
