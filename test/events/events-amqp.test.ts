// Celery events on RabbitMQ: an asynx worker seen by asynx receiveEvents and by Celery's own EventReceiver + State.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import amqplib from 'amqplib';
import { Asynx } from '../../src/index.js';
import type { CeleryEvent } from '../../src/events/event.js';
import { receiveEvents, type EventReceiver } from '../../src/events/receiver.js';
import { PY_FIXTURES, PYTHON, celerySkip, startCeleryWorker, type CeleryWorker } from '../helpers/celery.js';
import { assertClocksIncrease, assertEventShape } from '../helpers/celery-events.js';
import { spawnProcess, type Spawned } from '../helpers/process.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { waitFor } from '../helpers/tmp.js';
import { BIN, ROOT, startWorker, type RunningWorker } from '../helpers/worker.js';

const NODE = 'evq1@localhost';

interface PyState {
  workers: Record<string, { alive: boolean; processed: number; active: number; sw_ident: string }>;
  tasks: Record<string, { state: string; runtime: number | null; worker: string | null; name: string | null; result: string | null; exception: string | null }>;
}

/** The last State snapshot the Python receiver printed. */
function lastState(py: Spawned): PyState | null {
  const lines = py.output().split('\n').filter((l) => l.startsWith('{'));
  if (!lines.length) return null;
  return (JSON.parse(lines[lines.length - 1]!) as { state: PyState }).state;
}

const skip = rabbitSkip() || celerySkip();

describe('Celery events on RabbitMQ from an asynx worker', { skip, timeout: 180_000 }, () => {
  let node: RabbitNode;
  let worker: RunningWorker | null = null;
  let receiver: EventReceiver | null = null;
  let client: Asynx | null = null;
  let py: Spawned | null = null;
  const seen: CeleryEvent[] = [];
  const ids: Record<string, string> = {};
  /** Raw messages on the celeryev exchange: routing key, body, delivery mode, hostname header. */
  const wire: Array<{ key: string; body: unknown; deliveryMode: unknown; hostname: unknown }> = [];
  let raw: amqplib.ChannelModel | null = null;

  before(async () => {
    node = await startRabbit();
    receiver = await receiveEvents(node.url, (e) => seen.push(e));
    raw = await amqplib.connect(node.url);
    const ch = await raw.createChannel();
    const q = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(q.queue, 'celeryev', '#');
    await ch.consume(q.queue, (m) => {
      if (m) wire.push({ key: m.fields.routingKey, body: JSON.parse(m.content.toString()), deliveryMode: m.properties.deliveryMode, hostname: (m.properties.headers ?? {}).hostname });
    }, { noAck: true });
    py = spawnProcess(PYTHON, ['events_state.py'], { cwd: PY_FIXTURES, env: { ...process.env, PYTHONPATH: PY_FIXTURES, BROKER_URL: node.url, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' }, group: true });
    await waitFor('the Python receiver', () => py!.isDone() || /^READY$/m.test(py!.output()), 30_000);
    assert.ok(!py.isDone(), py.output());
    worker = await startWorker({ brokerUrl: node.url, args: ['-n', NODE, '-c', '2', '-E'] });
    client = new Asynx({ brokerUrl: node.url, configFile: false, taskSendSentEvent: true });
  });
  after(async () => {
    await client?.close();
    await receiver?.close();
    await raw?.close().catch(() => undefined);
    if (worker) await worker.stop('SIGTERM');
    await py?.stop('SIGTERM', 5_000);
    await node?.dispose();
  });

  it('worker-online and heartbeats with every field; Celery State sees the node alive', async () => {
    await waitFor('online and a heartbeat', () => seen.some((e) => e.type === 'worker-online') && seen.some((e) => e.type === 'worker-heartbeat'), 15_000);
    for (const e of seen) assertEventShape(e, { hostname: NODE, pid: worker!.pid });
    await waitFor('State: alive', () => lastState(py!)?.workers[NODE]?.alive === true, 15_000);
    assert.equal(lastState(py!)!.workers[NODE]!.sw_ident, 'asynx');
  });

  it('task events as task.multi lists; State has each task with its final state, runtime and worker', async () => {
    const rs = [await client!.sendTask('t.add', [1, 2]), await client!.sendTask('t.add', [3, 4]), await client!.sendTask('t.sleep', [50])];
    const bad = await client!.sendTask('t.boom');
    for (const r of rs) await r.get({ timeout: 15 });
    await bad.get({ timeout: 15 }).catch(() => undefined);
    for (const r of rs) ids[r.id] = 'SUCCESS';
    ids[bad.id] = 'FAILURE';
    const final = (id: string) => seen.some((e) => e.uuid === id && (e.type === 'task-succeeded' || e.type === 'task-failed'));
    await waitFor('every final event', () => Object.keys(ids).every(final), 10_000);
    for (const id of Object.keys(ids)) {
      // The client's task-sent travels on another connection: it may arrive after the worker's events.
      const types = seen.filter((e) => e.uuid === id && e.hostname === NODE).map((e) => e.type);
      assert.deepEqual(types, ['task-received', 'task-started', ids[id] === 'SUCCESS' ? 'task-succeeded' : 'task-failed'], id);
      assert.equal(seen.filter((e) => e.uuid === id && e.type === 'task-sent').length, 1, `one task-sent for ${id}`);
    }
    for (const e of seen) assertEventShape(e);
    assertClocksIncrease(seen);
    assert.equal(seen.find((e) => e.uuid === rs[0]!.id && e.type === 'task-succeeded')!.result, '3');
    await waitFor('State: every task final', () => Object.keys(ids).every((id) => lastState(py!)?.tasks[id]?.state === ids[id]), 10_000);
    const st = lastState(py!)!;
    for (const id of Object.keys(ids)) {
      const t = st.tasks[id]!;
      assert.equal(t.worker, NODE, `worker of ${id}`);
      if (ids[id] === 'SUCCESS') assert.ok(typeof t.runtime === 'number' && t.runtime >= 0 && t.runtime < 10, `runtime of ${id}: ${t.runtime}`);
    }
    assert.ok(st.tasks[rs[2]!.id]!.runtime! >= 0.04, 'the 50 ms sleep ran ≥ 40 ms');
    assert.equal(st.tasks[bad.id]!.exception, "TypeError('kaput')");
    assert.equal(st.tasks[rs[0]!.id]!.name, 't.add');
    // On the wire, as Celery sends them: worker events one per message, task events as task.multi lists.
    const fromWorker = wire.filter((m) => m.hostname === NODE);
    assert.ok(fromWorker.some((m) => m.key === 'worker.heartbeat' && !Array.isArray(m.body)));
    const multi = fromWorker.filter((m) => m.key === 'task.multi');
    assert.ok(multi.length > 0 && multi.every((m) => Array.isArray(m.body) && m.body.length >= 1 && m.body.length <= 24), JSON.stringify(wire.map((m) => m.key)));
    assert.ok(fromWorker.every((m) => m.deliveryMode === 1 || m.deliveryMode === undefined), 'non-persistent');
    assert.ok(!fromWorker.some((m) => m.key.startsWith('task.') && m.key !== 'task.multi'), 'no task event alone');
    assert.ok(wire.some((m) => m.key === 'task.sent' && (m.body as CeleryEvent).hostname.startsWith('gen')), `the client sends task-sent as gen<pid>@host: ${JSON.stringify(wire.filter((m) => m.hostname !== NODE))}`);
  });

  it('after a warm shutdown: worker-offline, and State sees the node not alive', async () => {
    const code = await worker!.stop('SIGTERM');
    worker = null;
    assert.equal(code, 0);
    await waitFor('worker-offline', () => seen.some((e) => e.type === 'worker-offline'), 10_000);
    assertEventShape(seen.find((e) => e.type === 'worker-offline')!, { hostname: NODE });
    await waitFor('State: not alive', () => lastState(py!)?.workers[NODE]?.alive === false, 10_000);
  });
});

describe('asynx events against a Python Celery worker (celery worker -E) on RabbitMQ', { skip, timeout: 180_000 }, () => {
  let node: RabbitNode;
  let py: CeleryWorker | null = null;
  let dump: Spawned | null = null;
  let client: Asynx | null = null;
  before(async () => {
    node = await startRabbit();
    py = await startCeleryWorker({ brokerUrl: node.url, nodeName: 'pyev@localhost', queues: ['pyq'], concurrency: 1, extraArgs: ['-E'] });
    client = new Asynx({ brokerUrl: node.url, configFile: false });
  });
  after(async () => {
    await client?.close();
    await dump?.stop('SIGKILL', 5_000);
    await py?.stop();
    await node?.dispose();
  });

  it('prints the Python node\'s heartbeat (woken by the receiver) and its task events as celery events --dump does', async () => {
    dump = spawnProcess(process.execPath, [BIN, 'events', '-b', node.url], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' } });
    await waitFor('capturing', () => dump!.isDone() || /capturing/.test(dump!.output()), 15_000);
    // The receiver broadcasts the heartbeat command at start: the Python worker answers with a worker-heartbeat.
    await waitFor('the Python heartbeat', () => /^pyev@localhost \[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?\] heartbeat: .*sw_ident=py-celery/m.test(dump!.output()), 15_000);
    const r = await client!.sendTask('add', [2, 2], {}, { queue: 'pyq' });
    assert.equal(await r.get({ timeout: 20 }), 4);
    const line = (type: string) => new RegExp(`^pyev@localhost \\[[^\\]]+\\] ${type}: add\\(${r.id}\\) args=`, 'm');
    await waitFor('the task lines', () => line('task received').test(dump!.output()) && line('task succeeded').test(dump!.output()), 15_000);
    assert.match(dump.output(), line('task started'));
    assert.match(dump.output(), new RegExp(`task succeeded: add\\(${r.id}\\) .*result=4.*runtime=`));
    const code = await dump.stop('SIGTERM', 10_000);
    dump = null;
    assert.equal(code, 0, 'TERM stops it with exit 0');
  });
});
