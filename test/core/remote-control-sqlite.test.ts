// The worker's remote-control handlers on the SQLite broker, through the control client (h2's mailbox tables):
// the same replies as on RabbitMQ, and the same real effects (terminate, pool resize, a new queue).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openControlClient, type ControlClient } from '../../src/control/client.js';
import type { CeleryEvent } from '../../src/events/event.js';
import { receiveEvents } from '../../src/events/receiver.js';
import { Asynx, TaskRevokedError } from '../../src/index.js';
import { childPidsOf } from '../helpers/process.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';

const NODE = 'rc@sqlite';

describe('remote control of an asynx node on SQLite', () => {
  const tmp = tempDir('asynx-rc-');
  const brokerUrl = `sqlite://${join(tmp.dir, 'broker.db')}`;
  let worker: RunningWorker;
  let client: Asynx;
  let control: ControlClient;

  before(async () => {
    worker = await startWorker({ brokerUrl, args: ['-n', NODE, '-c', '2'] });
    client = new Asynx({ brokerUrl, configFile: false });
    control = await openControlClient(brokerUrl);
  });
  after(async () => {
    await control?.close();
    await client?.close();
    await worker?.stop();
    tmp.cleanup();
  });

  /** This node's reply to one command. */
  const ask = async (method: string, args: Record<string, unknown> = {}) => {
    const replies = await control.broadcast(method, args, { destination: [NODE], timeoutMs: 5000 });
    assert.equal(replies.length, 1, `${method}: ${JSON.stringify(replies)}`);
    return replies[0]![NODE];
  };
  const stats = async () => (await ask('stats')) as { pool: { processes: number[]; 'max-concurrency': number }; total: Record<string, number>; prefetch_count: number; broker: Record<string, unknown>; clock: string; pid: number };

  test('ping, stats (total per task name, pool, broker, prefetch), clock', async () => {
    assert.deepEqual(await ask('ping'), { ok: 'pong' });
    assert.equal(await (await client.sendTask('t.add', [1, 2])).get({ timeout: 10 }), 3);
    const s = await stats();
    assert.equal(s.pid, worker.pid);
    assert.deepEqual(s.total, { 't.add': 1 });
    assert.equal(s.pool['max-concurrency'], 2);
    assert.deepEqual([...s.pool.processes].sort(), childPidsOf(worker.pid).sort());
    assert.equal(s.broker.transport, 'sqlite');
    assert.equal(s.broker.hostname, join(tmp.dir, 'broker.db'));
    assert.equal(s.prefetch_count, 8);
    assert.ok(Number(s.clock) > 0, 'the node clock moves with requests');
    const clock = (await ask('clock')) as { clock: number };
    assert.ok(clock.clock > Number(s.clock));
  });

  test('registered, active_queues, conf, rate_limit and time_limit stored and shown', async () => {
    const names = (await ask('registered')) as string[];
    assert.ok(names.includes('t.add') && !names.some((n) => n.startsWith('asynx.')), JSON.stringify(names));
    const queues = (await ask('active_queues')) as Array<{ name: string }>;
    assert.deepEqual(queues.map((q) => q.name), ['celery']);
    assert.deepEqual(await ask('rate_limit', { task_name: 't.add', rate_limit: '5/s' }), { ok: 'new rate limit set successfully' });
    assert.deepEqual(await ask('rate_limit', { task_name: 't.add', rate_limit: '5/x' }), { error: "KeyError('x')" });
    assert.deepEqual(await ask('time_limit', { task_name: 't.nope', soft: 1 }), { error: 'unknown task' });
    assert.ok(((await ask('registered')) as string[]).includes('t.add [rate_limit=5/s]'));
    const conf = (await ask('conf')) as Record<string, unknown>;
    assert.equal(conf.broker_url, brokerUrl);
    assert.deepEqual(conf.task_annotations, { 't.add': { rate_limit: '5/s' } });
  });

  test('revoke before the task arrives: it ends REVOKED; revoked lists it', async () => {
    const id = randomUUID();
    assert.deepEqual(await ask('revoke', { task_id: [id] }), { ok: `tasks ${id} flagged as revoked` });
    assert.ok(((await ask('revoked')) as string[]).includes(id));
    const r = await client.sendTask('t.add', [1, 1], {}, { taskId: id });
    await assert.rejects(r.get({ timeout: 10 }), TaskRevokedError);
    assert.equal(await r.state(), 'REVOKED');
  });

  test('revoke with terminate (KILL): the child is killed and replaced, the task ends REVOKED', async () => {
    const r = await client.sendTask('t.sleep', [60_000]);
    const running = await waitFor('the task to run', async () => ((await ask('active')) as Array<{ id: string; worker_pid: number }>).find((t) => t.id === r.id), 20_000, 100);
    const safe = ((await ask('active', { safe: true })) as Array<{ id: string; args: unknown; kwargs: unknown }>).find((t) => t.id === r.id)!;
    assert.deepEqual([typeof safe.args, typeof safe.kwargs], ['string', 'string'], 'safe: args and kwargs as reprs (what Flower asks for)');
    assert.match(safe.args as string, /60000/);
    const found = (await ask('query_task', { ids: [r.id, 'not-here'] })) as Record<string, [string, { id: string; worker_pid: number }]>;
    assert.deepEqual(Object.keys(found), [r.id]);
    assert.equal(found[r.id]![0], 'active');
    assert.equal(found[r.id]![1].worker_pid, running.worker_pid);
    assert.deepEqual(await ask('revoke', { task_id: [r.id], terminate: true, signal: 'SIGKILL' }), { ok: `terminate: ${r.id}` });
    await assert.rejects(r.get({ timeout: 15 }), TaskRevokedError);
    assert.equal(await r.state(), 'REVOKED');
    await waitFor('the child replaced', () => !childPidsOf(worker.pid).includes(running.worker_pid) && childPidsOf(worker.pid).length === 2, 20_000);
    await waitFor('the terminate log line', () => worker.output().includes(`Terminated t.sleep[${r.id}] (SIGKILL)`), 10_000);
  });

  test('pool_grow / pool_shrink change the number of children', async () => {
    assert.deepEqual(await ask('pool_grow', { n: 2 }), { ok: 'pool will grow' });
    await waitFor('four children', () => childPidsOf(worker.pid).length === 4, 20_000);
    assert.equal((await stats()).pool['max-concurrency'], 4);
    assert.equal((await stats()).prefetch_count, 16);
    assert.deepEqual(await ask('pool_shrink', { n: 3 }), { ok: 'pool will shrink' });
    await waitFor('one child', () => childPidsOf(worker.pid).length === 1, 20_000);
    assert.deepEqual(await ask('pool_grow', {}), { ok: 'pool will grow' });
    await waitFor('two children', () => childPidsOf(worker.pid).length === 2, 20_000);
    assert.equal(await (await client.sendTask('t.add', [2, 2])).get({ timeout: 10 }), 4);
  });

  test('add_consumer runs tasks from a new queue; cancel_consumer stops it', async () => {
    assert.deepEqual(await ask('add_consumer', { queue: 'extra' }), { ok: 'add consumer extra' });
    assert.equal(await (await client.sendTask('t.add', [5, 5], {}, { queue: 'extra' })).get({ timeout: 10 }), 10);
    assert.deepEqual(await ask('cancel_consumer', { queue: 'extra' }), { ok: 'no longer consuming from extra' });
    assert.deepEqual(((await ask('active_queues')) as Array<{ name: string }>).map((q) => q.name), ['celery']);
    const r = await client.sendTask('t.add', [6, 6], {}, { queue: 'extra' });
    await assert.rejects(r.get({ timeout: 1.5 }), /TimeoutError|timed out|within/i, 'nobody consumes extra now');
  });

  test('enable_events turns task events on, disable_events off, heartbeat sends one with freq 5', async () => {
    const seen: CeleryEvent[] = [];
    const receiver = await receiveEvents(brokerUrl, (e) => seen.push(e), { cwd: tmp.dir });
    try {
      const quiet = await client.sendTask('t.add', [1, 0]);
      await quiet.get({ timeout: 10 });
      assert.deepEqual(await ask('enable_events'), { ok: 'task events enabled' });
      assert.deepEqual(await ask('enable_events'), { ok: 'task events already enabled' });
      assert.equal(((await ask('conf')) as Record<string, unknown>).worker_send_task_events, true);
      const loud = await client.sendTask('t.add', [2, 0]);
      await loud.get({ timeout: 10 });
      await waitFor('task-succeeded of the task sent after enable_events', () => seen.some((e) => e.type === 'task-succeeded' && e.uuid === loud.id), 10_000);
      // The events table is read in id order: the first task's events would have come before.
      assert.ok(!seen.some((e) => e.uuid === quiet.id), 'no task events before enable_events');
      const r = await client.sendTask('t.sleep', [60_000]);
      await waitFor('the task to run', async () => ((await ask('active')) as Array<{ id: string }>).some((t) => t.id === r.id), 20_000, 100);
      assert.deepEqual(await ask('revoke', { task_id: r.id, terminate: true, signal: 'KILL' }), { ok: `terminate: ${r.id}` });
      const revoked = await waitFor('task-revoked', () => seen.find((e) => e.type === 'task-revoked' && e.uuid === r.id), 15_000);
      assert.equal(revoked.terminated, true);
      assert.equal(revoked.expired, false);
      assert.equal(revoked.signum, 9, `Celery's signum is the signal number (KILL = 9): ${JSON.stringify(revoked)}`);
      assert.deepEqual(await ask('disable_events'), { ok: 'task events disabled' });
      assert.deepEqual(await ask('disable_events'), { ok: 'task events already disabled' });
      assert.equal(await ask('heartbeat'), null, 'Celery answers heartbeat with None');
      await waitFor('a heartbeat with freq 5', () => seen.some((e) => e.type === 'worker-heartbeat' && e.freq === 5 && e.hostname === NODE), 10_000);
    } finally {
      await receiver.close();
    }
  });

  test('an unknown method answers kombu\'s KeyError', async () => {
    assert.deepEqual(await ask('frobnicate'), { error: "KeyError('frobnicate')" });
  });

  test('pool_restart replaces every child (the HUP restart), keeping the grown size', async () => {
    assert.deepEqual(await ask('pool_grow', { n: 1 }), { ok: 'pool will grow' });
    await waitFor('three children', () => childPidsOf(worker.pid).length === 3, 20_000);
    const before = childPidsOf(worker.pid);
    assert.deepEqual(await ask('pool_restart'), { ok: 'reload started' });
    await waitFor('three new children', () => {
      const now = childPidsOf(worker.pid);
      return now.length === 3 && now.every((pid) => !before.includes(pid));
    }, 30_000);
    assert.equal(await (await client.sendTask('t.add', [7, 7])).get({ timeout: 10 }), 14);
    assert.equal((await stats()).pool['max-concurrency'], 3);
  });

  test('shutdown: the node answers, then stops warm (exit 0)', async () => {
    assert.deepEqual(await ask('shutdown'), { ok: 'shutting down' });
    assert.equal(await worker.exited, 0);
  });
});

describe('an async-pool node on SQLite whose only queue is cancelled', () => {
  test('stays up, answers ping, and consumes again after add_consumer (it exited with status 0 before)', async () => {
    const tmp = tempDir('asynx-rc-async-');
    const brokerUrl = `sqlite://${join(tmp.dir, 'broker.db')}`;
    const node = 'rc-async@sqlite';
    const w = await startWorker({ brokerUrl, args: ['-n', node, '-P', 'async', '-c', '4', '-Q', 'only'] });
    const client = new Asynx({ brokerUrl, configFile: false });
    const control = await openControlClient(brokerUrl);
    try {
      const ask = async (method: string, args: Record<string, unknown> = {}) => (await control.broadcast(method, args, { destination: [node], timeoutMs: 5000 }))[0]?.[node];
      assert.deepEqual(await ask('cancel_consumer', { queue: 'only' }), { ok: 'no longer consuming from only' });
      const r = await client.sendTask('t.add', [3, 4], {}, { queue: 'only' });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(w.proc.exitCode, null, `the node exited: ${w.output()}`);
      assert.deepEqual(await ask('ping'), { ok: 'pong' });
      assert.deepEqual(await ask('add_consumer', { queue: 'only' }), { ok: 'add consumer only' });
      assert.equal(await r.get({ timeout: 10 }), 7);
    } finally {
      await control.close();
      await client.close();
      await w.stop();
      tmp.cleanup();
    }
  });
});
