// The full remote control of an asynx node, driven by Python Celery's own `celery inspect` / `celery control`
// on a private RabbitMQ: each reply has the shape a Python Celery 5.2 worker gives (keys captured from one).

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { CeleryEvent } from '../../src/events/event.js';
import { receiveEvents } from '../../src/events/receiver.js';
import { celerySkip, pythonClient, runPython } from '../helpers/celery.js';
import { childPidsOf } from '../helpers/process.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { waitFor } from '../helpers/tmp.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';

const INTEROP_APP = fileURLToPath(new URL('../fixtures/interop-app.mjs', import.meta.url));
const NODE = 'asynx-rc@localhost';

/** Key sets of a Python Celery 5.2.6 worker's replies (prefork pool, AMQP broker). */
const STATS_KEYS = ['broker', 'clock', 'pid', 'pool', 'prefetch_count', 'rusage', 'total', 'uptime'];
const POOL_KEYS = ['max-concurrency', 'max-tasks-per-child', 'processes', 'put-guarded-by-semaphore', 'timeouts', 'writes'];
const WRITES_KEYS = ['all', 'avg', 'inqueues', 'raw', 'strategy', 'total'];
const BROKER_KEYS = ['alternates', 'connect_timeout', 'failover_strategy', 'heartbeat', 'hostname', 'insist', 'login_method', 'port', 'ssl', 'transport', 'transport_options', 'uri_prefix', 'userid', 'virtual_host'];
const RUSAGE_KEYS = ['idrss', 'inblock', 'isrss', 'ixrss', 'majflt', 'maxrss', 'minflt', 'msgrcv', 'msgsnd', 'nivcsw', 'nsignals', 'nswap', 'nvcsw', 'oublock', 'stime', 'utime'];
const QUEUE_KEYS = ['alias', 'auto_delete', 'binding_arguments', 'bindings', 'consumer_arguments', 'durable', 'exchange', 'exclusive', 'expires', 'max_length', 'max_length_bytes', 'max_priority', 'message_ttl', 'name', 'no_ack', 'no_declare', 'queue_arguments', 'routing_key'];
const EXCHANGE_KEYS = ['arguments', 'auto_delete', 'delivery_mode', 'durable', 'name', 'no_declare', 'passive', 'type'];
const INFO_KEYS = ['acknowledged', 'args', 'delivery_info', 'hostname', 'id', 'kwargs', 'name', 'time_start', 'type', 'worker_pid'];

const keys = (o: unknown) => Object.keys(o as object).sort();
const skip = rabbitSkip() || celerySkip();

describe('celery inspect / control against an asynx node (RabbitMQ)', { skip }, () => {
  let node: RabbitNode;
  let worker: RunningWorker;
  before(async () => {
    node = await startRabbit();
    worker = await startWorker({ brokerUrl: node.url, app: INTEROP_APP, args: ['-n', NODE, '-c', '2', '--result-backend', 'rpc://'], env: { ASYNX_RESULT_BACKEND: 'rpc://' } });
  });
  after(async () => {
    await worker?.stop();
    await node?.dispose();
  });

  /** `celery <inspect|control> … -d NODE`; `json` adds `-j` and parses its last line. */
  const celery = async (args: string[], json = true) => {
    const r = await runPython(['-m', 'celery', '-A', 'capp', ...args, '-d', NODE, '-t', '5', ...(json ? ['-j'] : [])], { brokerUrl: node.url, timeoutMs: 60_000 });
    assert.equal(r.code, 0, `celery ${args.join(' ')}: ${r.stdout}\n${r.stderr}`);
    return { text: r.stdout, json: json ? (JSON.parse(r.stdout.trim().split('\n').pop()!) as unknown) : null };
  };
  /** Inspect replies are `{node: reply}`. */
  const inspect = async (...args: string[]) => ((await celery(['inspect', ...args])).json as Record<string, unknown>)[NODE];
  /** Control replies are `[{node: reply}]`. */
  const control = async (...args: string[]) => {
    const list = (await celery(['control', ...args])).json as Array<Record<string, unknown>>;
    assert.equal(list.length, 1, JSON.stringify(list));
    return list[0]![NODE];
  };
  const stats = async () => (await inspect('stats')) as { pool: { processes: number[]; 'max-concurrency': number }; total: Record<string, number>; prefetch_count: number } & Record<string, unknown>;

  test('inspect ping answers pong', { timeout: 90_000 }, async () => {
    assert.deepEqual(await inspect('ping'), { ok: 'pong' });
    const plain = await celery(['inspect', 'ping'], false);
    assert.match(plain.text, new RegExp(`->\\s+${NODE}: OK\\n\\s+pong`));
  });

  test('inspect stats has the keys and shapes of a Celery worker, total per task name', { timeout: 120_000 }, async () => {
    const [r] = await pythonClient(node.url, [{ task: 'add', args: [2, 3] }]);
    assert.equal(r!.ok, 5);
    const s = await stats();
    for (const k of STATS_KEYS) assert.ok(k in s, `stats.${k} missing: ${JSON.stringify(s)}`);
    assert.equal(s.pid, worker.pid);
    assert.equal(typeof s.clock, 'string');
    assert.ok(Number.isInteger(s.uptime));
    assert.deepEqual(s.total, { add: 1 });
    assert.deepEqual(keys(s.pool), POOL_KEYS);
    assert.equal(s.pool['max-concurrency'], 2);
    assert.deepEqual([...s.pool.processes].sort(), childPidsOf(worker.pid).sort());
    assert.deepEqual(keys((s.pool as Record<string, unknown>).writes), WRITES_KEYS);
    const broker = s.broker as Record<string, unknown>;
    assert.deepEqual(keys(broker), BROKER_KEYS);
    assert.equal(broker.port, node.port);
    assert.equal(broker.transport, 'amqp');
    assert.equal(broker.userid, 'guest');
    assert.equal(broker.virtual_host, '/');
    assert.ok(!JSON.stringify(broker).includes('guest:guest'), 'no password in stats');
    assert.equal(s.prefetch_count, 8, 'concurrency 2 × prefetch multiplier 4');
    assert.deepEqual(keys(s.rusage), RUSAGE_KEYS);
    const plain = await celery(['inspect', 'stats'], false);
    assert.match(plain.text, /"max-concurrency": 2/);
  });

  test('inspect active_queues: kombu Queue.as_dict of the consumed queue', { timeout: 90_000 }, async () => {
    const q = (await inspect('active_queues')) as Array<Record<string, unknown>>;
    assert.equal(q.length, 1);
    assert.deepEqual(keys(q[0]), QUEUE_KEYS);
    assert.equal(q[0]!.name, 'celery');
    assert.equal(q[0]!.routing_key, 'celery');
    assert.deepEqual(keys(q[0]!.exchange), EXCHANGE_KEYS);
    assert.deepEqual(q[0]!.exchange, { name: 'celery', type: 'direct', arguments: null, durable: true, passive: false, auto_delete: false, delivery_mode: null, no_declare: false });
  });

  test('inspect registered, then control rate_limit: stored and shown as Celery shows it', { timeout: 90_000 }, async () => {
    assert.deepEqual(await inspect('registered'), ['add', 'boom', 'flaky', 'info', 'sleep']);
    assert.deepEqual(await control('rate_limit', 'add', '10/m'), { ok: 'new rate limit set successfully' });
    assert.deepEqual(await control('rate_limit', 'nope', '10/m'), { error: 'unknown task' });
    assert.deepEqual(await inspect('registered'), ['add [rate_limit=10/m]', 'boom', 'flaky', 'info', 'sleep']);
    const conf = (await inspect('conf')) as Record<string, unknown>;
    assert.deepEqual(conf.task_annotations, { add: { rate_limit: '10/m' } });
    const plain = await celery(['inspect', 'registered'], false);
    assert.match(plain.text, /\* add \[rate_limit=10\/m\]\n\s+\* boom/);
    assert.deepEqual(await control('rate_limit', 'add', '0'), { ok: 'rate limit disabled successfully' });
    assert.deepEqual(await inspect('registered'), ['add', 'boom', 'flaky', 'info', 'sleep']);
  });

  test('control revoke flags the id; inspect revoked lists it; the task, sent later, ends REVOKED', { timeout: 120_000 }, async () => {
    const id = randomUUID();
    assert.deepEqual(await control('revoke', id), { ok: `tasks ${id} flagged as revoked` });
    assert.ok(((await inspect('revoked')) as string[]).includes(id));
    const [r] = await pythonClient(node.url, [{ task: 'add', args: [1, 1], options: { task_id: id } }], { resultTimeoutS: 20 });
    assert.equal(r!.state, 'REVOKED', JSON.stringify(r));
    assert.equal(r!.error, 'TaskRevokedError');
    await waitFor('the discard log line', () => worker.output().includes(`Discarding revoked task: add[${id}]`), 10_000);
  });

  test('inspect conf: Celery setting names, the password masked', { timeout: 90_000 }, async () => {
    const conf = (await inspect('conf')) as Record<string, unknown>;
    assert.equal(conf.broker_url, `amqp://guest:********@127.0.0.1:${node.port}/`);
    assert.equal(conf.task_default_queue, 'celery');
    assert.equal(conf.worker_prefetch_multiplier, 4);
    assert.equal(conf.result_backend, 'rpc://');
  });

  test('control enable_events / disable_events flip task events; control heartbeat sends one with freq 5', { timeout: 120_000 }, async () => {
    const seen: CeleryEvent[] = [];
    const receiver = await receiveEvents(node.url, (e) => seen.push(e));
    try {
      assert.equal(((await inspect('conf')) as Record<string, unknown>).worker_send_task_events, false);
      assert.deepEqual(await control('enable_events'), { ok: 'task events enabled' });
      assert.deepEqual(await control('enable_events'), { ok: 'task events already enabled' });
      assert.equal(((await inspect('conf')) as Record<string, unknown>).worker_send_task_events, true);
      const [r] = await pythonClient(node.url, [{ task: 'add', args: [3, 4] }]);
      await waitFor('task-succeeded from the asynx node', () => seen.some((e) => e.type === 'task-succeeded' && e.uuid === r!.id && e.hostname === NODE), 15_000);
      assert.deepEqual(await control('disable_events'), { ok: 'task events disabled' });
      assert.equal(((await inspect('conf')) as Record<string, unknown>).worker_send_task_events, false);
      const hb = await celery(['control', 'heartbeat'], false);
      assert.match(hb.text, new RegExp(`->\\s+${NODE}: OK`));
      await waitFor('a heartbeat with freq 5', () => seen.some((e) => e.type === 'worker-heartbeat' && e.freq === 5 && e.hostname === NODE), 15_000);
    } finally {
      await receiver.close();
    }
  });

  test('control pool_grow / pool_shrink change the number of pool children', { timeout: 120_000 }, async () => {
    const before = childPidsOf(worker.pid);
    assert.equal(before.length, 2);
    assert.deepEqual(await control('pool_grow', '1'), { ok: 'pool will grow' });
    await waitFor('a third child', () => childPidsOf(worker.pid).length === 3, 20_000);
    let s = await stats();
    assert.equal(s.pool['max-concurrency'], 3);
    assert.deepEqual([...s.pool.processes].sort(), childPidsOf(worker.pid).sort());
    assert.equal(s.prefetch_count, 12, 'prefetch follows the pool as Celery does');
    assert.deepEqual(await control('pool_shrink', '2'), { ok: 'pool will shrink' });
    await waitFor('one child left', () => childPidsOf(worker.pid).length === 1, 20_000);
    s = await stats();
    assert.equal(s.pool['max-concurrency'], 1);
    assert.equal(s.pool.processes.length, 1);
    assert.deepEqual(await control('pool_grow', '1'), { ok: 'pool will grow' });
    await waitFor('two children again', () => childPidsOf(worker.pid).length === 2, 20_000);
    const [r] = await pythonClient(node.url, [{ task: 'add', args: [20, 22] }]);
    assert.equal(r!.ok, 42, 'the resized pool runs tasks');
  });

  test('control terminate KILL: the running task\'s child dies of SIGKILL, is replaced, the task ends REVOKED', { timeout: 120_000 }, async () => {
    const id = randomUUID();
    const result = pythonClient(node.url, [{ task: 'sleep', args: [60], options: { task_id: id } }], { resultTimeoutS: 90, timeoutMs: 110_000 });
    const running = await waitFor('the task to run', async () => ((await inspect('active')) as Array<Record<string, unknown>>).find((t) => t.id === id), 30_000, 300);
    assert.deepEqual(keys(running), INFO_KEYS);
    const childPid = running.worker_pid as number;
    assert.ok(childPidsOf(worker.pid).includes(childPid), `worker_pid ${childPid} is a pool child`);
    const found = (await inspect('query_task', id)) as Record<string, [string, Record<string, unknown>]>;
    assert.equal(found[id]![0], 'active');
    assert.equal(found[id]![1].id, id);
    assert.deepEqual(await control('terminate', 'KILL', id), { ok: `terminate: ${id}` });
    const [r] = await result;
    assert.equal(r!.state, 'REVOKED', JSON.stringify(r));
    assert.ok(r!.elapsed < 50, 'ended by the kill, not by the sleep');
    await waitFor('the old child gone and replaced', () => !childPidsOf(worker.pid).includes(childPid) && childPidsOf(worker.pid).length === 2, 20_000);
    await waitFor('the terminate log line', () => worker.output().includes(`Terminated sleep[${id}] (SIGKILL)`), 10_000);
    assert.deepEqual(await inspect('active'), []);
  });

  test('revoke with terminate and the default TERM signal, through the Python API', { timeout: 120_000 }, async () => {
    const id = randomUUID();
    const result = pythonClient(node.url, [{ task: 'sleep', args: [60], options: { task_id: id } }], { resultTimeoutS: 90, timeoutMs: 110_000 });
    const running = await waitFor('the task to run', async () => ((await inspect('active')) as Array<Record<string, unknown>>).find((t) => t.id === id), 30_000, 300);
    const script = `from capp import app; import json; print(json.dumps(app.control.revoke(${JSON.stringify(id)}, terminate=True, reply=True, destination=[${JSON.stringify(NODE)}], timeout=5)))`;
    const out = await runPython(['-c', script], { brokerUrl: node.url });
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(JSON.parse(out.stdout.trim()), [{ [NODE]: { ok: `terminate: ${id}` } }]);
    const [r] = await result;
    assert.equal(r!.state, 'REVOKED');
    await waitFor('the child replaced', () => !childPidsOf(worker.pid).includes(running.worker_pid as number) && childPidsOf(worker.pid).length === 2, 20_000);
    await waitFor('the terminate log line', () => worker.output().includes(`Terminated sleep[${id}] (SIGTERM)`), 10_000);
  });

  test('control add_consumer makes the worker run tasks from a new queue; cancel_consumer stops it', { timeout: 120_000 }, async () => {
    assert.deepEqual(await control('add_consumer', 'rc-extra'), { ok: 'add consumer rc-extra' });
    const names = async () => ((await inspect('active_queues')) as Array<{ name: string }>).map((q) => q.name);
    assert.deepEqual(await names(), ['celery', 'rc-extra']);
    const [r] = await pythonClient(node.url, [{ task: 'add', args: [4, 5], options: { queue: 'rc-extra' } }]);
    assert.equal(r!.ok, 9);
    assert.deepEqual(await control('cancel_consumer', 'rc-extra'), { ok: 'no longer consuming from rc-extra' });
    assert.deepEqual(await names(), ['celery']);
    const consumers = await node.ctl(['list_queues', 'name', 'consumers', '--no-table-headers', '-q']);
    assert.match(consumers, /^rc-extra\s+0$/m, consumers);
  });

  test('control time_limit applies to later runs of the task', { timeout: 120_000 }, async () => {
    assert.deepEqual(await control('time_limit', 'sleep', '1', '2'), { ok: 'time limits set successfully' });
    assert.deepEqual(await control('time_limit', 'nope', '1', '2'), { error: 'unknown task' });
    const [r] = await pythonClient(node.url, [{ task: 'sleep', args: [20] }], { resultTimeoutS: 30 });
    assert.equal(r!.state, 'FAILURE', JSON.stringify(r));
    assert.equal(r!.error, 'SoftTimeLimitExceeded');
    const reg = (await inspect('registered', 'time_limit', 'soft_time_limit')) as string[];
    assert.ok(reg.includes('sleep [time_limit=2 soft_time_limit=1]'), JSON.stringify(reg));
  });

  test('the reply clock follows a large request clock and Celery still parses the reply (no 16-bit header)', { timeout: 60_000 }, async () => {
    const script = `from capp import app; import json; app.control.mailbox.clock.adjust(1000); print(json.dumps(app.control.inspect(destination=[${JSON.stringify(NODE)}], timeout=5).clock()))`;
    const out = await runPython(['-c', script], { brokerUrl: node.url });
    assert.equal(out.code, 0, out.stderr);
    const reply = JSON.parse(out.stdout.trim().split('\n').pop()!) as Record<string, { clock: number }>;
    assert.ok(reply[NODE]!.clock > 1000, JSON.stringify(reply));
  });

  test('inspect clock, report, reserved, scheduled, and an unknown method answer as Celery does', { timeout: 90_000 }, async () => {
    const clock = (await inspect('clock')) as { clock: number };
    assert.ok(Number.isInteger(clock.clock) && clock.clock > 0, JSON.stringify(clock));
    const report = (await inspect('report')) as { ok: string };
    assert.match(report.ok, /software -> asynx:\d/);
    assert.match(report.ok, /broker_url: "amqp:\/\/guest:\*{8}@/);
    assert.deepEqual(await inspect('reserved'), []);
    assert.deepEqual(await inspect('scheduled'), []);
    const script = `from capp import app; import json; print(json.dumps(app.control.broadcast('no_such_method', reply=True, destination=[${JSON.stringify(NODE)}], timeout=5)))`;
    const out = await runPython(['-c', script], { brokerUrl: node.url });
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(JSON.parse(out.stdout.trim()), [{ [NODE]: { error: "KeyError('no_such_method')" } }]);
  });
});
