// Celery events on one private Redis, over kombu's pub/sub channels: an asynx worker seen by Celery's own
// EventReceiver + State and by asynx receiveEvents; a Python worker's events seen by `asynx events`.

import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { CeleryEvent } from '../../src/events/event.js';
import { receiveEvents, type EventReceiver } from '../../src/events/receiver.js';
import { unpackMessage } from '../../src/transports/redis-pubsub.js';
import { PY_FIXTURES, PYTHON, celerySkip, runPython, startCeleryWorker, type CeleryWorker } from '../helpers/celery.js';
import { assertEventShape } from '../helpers/celery-events.js';
import { spawnProcess, type Spawned } from '../helpers/process.js';
import { redisSkip, startRedis, type RedisServer } from '../helpers/redis.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { BIN, ROOT, startWorker, type RunningWorker } from '../helpers/worker.js';

const APP = fileURLToPath(new URL('../fixtures/redis-interop-app.mjs', import.meta.url));
const NODE = 'evr1@localhost';
const PY_NODE = 'pyevr@localhost';

interface PyState {
  workers: Record<string, { alive: boolean; processed: number; sw_ident: string }>;
  tasks: Record<string, { state: string; worker: string | null; name: string | null }>;
}

/** The last State snapshot the Python receiver printed. */
function lastState(py: Spawned): PyState | null {
  const lines = py.output().split('\n').filter((l) => l.startsWith('{'));
  if (!lines.length) return null;
  return (JSON.parse(lines[lines.length - 1]!) as { state: PyState }).state;
}

const skip = redisSkip() || celerySkip();

describe('Celery events on Redis (celeryev over pub/sub)', { skip, timeout: 240_000 }, () => {
  let server: RedisServer;
  let url: string;
  let tmp: { dir: string; cleanup: () => void };
  let env: NodeJS.ProcessEnv;
  let worker: RunningWorker | null = null;
  let receiver: EventReceiver | null = null;
  let py: Spawned | null = null;
  let pyWorker: CeleryWorker | null = null;
  let dump: Spawned | null = null;
  let spy: Redis | null = null;
  const seen: CeleryEvent[] = [];
  /** Raw pub/sub traffic on the celeryev channels: channel and kombu envelope. */
  const wire: Array<{ channel: string; payload: string }> = [];

  before(async () => {
    server = await startRedis();
    url = `${server.url}/0`;
    tmp = tempDir('asynx-redis-ev-');
    env = { INTEROP_OUT: `${tmp.dir}/runs.jsonl` };
    spy = new Redis(server.port, '127.0.0.1');
    spy.on('pmessage', (_p: string, channel: string, payload: string) => wire.push({ channel, payload }));
    await spy.psubscribe('/0.celeryev/*');
    receiver = await receiveEvents(url, (e) => seen.push(e));
    py = spawnProcess(PYTHON, ['events_state.py'], { cwd: PY_FIXTURES, env: { ...process.env, PYTHONPATH: PY_FIXTURES, BROKER_URL: url, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' }, group: true });
    await waitFor('the Python receiver', () => py!.isDone() || /^READY$/m.test(py!.output()), 30_000);
    assert.ok(!py.isDone(), py.output());
    worker = await startWorker({ brokerUrl: url, app: APP, args: ['-n', NODE, '-c', '1', '-Q', 'celery', '-E'], env });
  });
  after(async () => {
    await receiver?.close();
    await dump?.stop('SIGKILL', 5_000);
    if (worker) await worker.stop('SIGTERM', 20_000);
    await pyWorker?.stop();
    await py?.stop('SIGTERM', 5_000);
    spy?.disconnect();
    await server?.dispose();
    tmp?.cleanup();
  });

  it('worker-online and heartbeats on /0.celeryev/worker.*, as kombu envelopes; Celery State sees the asynx node alive', async () => {
    await waitFor('online and a heartbeat', () => seen.some((e) => e.type === 'worker-online' && e.hostname === NODE) && seen.some((e) => e.type === 'worker-heartbeat' && e.hostname === NODE), 20_000);
    for (const e of seen.filter((x) => x.hostname === NODE)) assertEventShape(e, { hostname: NODE, pid: worker!.pid });
    const hb = wire.find((w) => w.channel === '/0.celeryev/worker.heartbeat');
    assert.ok(hb, JSON.stringify(wire.map((w) => w.channel)));
    const env = JSON.parse(hb.payload) as { properties: Record<string, unknown>; headers: Record<string, unknown> };
    assert.deepEqual(env.properties.delivery_info, { exchange: 'celeryev', routing_key: 'worker.heartbeat' });
    assert.equal(env.properties.body_encoding, 'base64');
    assert.equal(env.headers.hostname, NODE);
    await waitFor('State: alive', () => lastState(py!)?.workers[NODE]?.alive === true, 20_000);
    assert.equal(lastState(py!)!.workers[NODE]!.sw_ident, 'asynx');
  });

  it('a Python client\'s task run by the asynx node: task events as one task.multi list; State has it SUCCESS on the node', async () => {
    const sent = await runPython(['-c', "import redis_capp as c; print(c.app.send_task('add', args=(2, 3)).id)"], { brokerUrl: url, env });
    assert.equal(sent.code, 0, sent.stderr);
    const id = sent.stdout.trim();
    await waitFor('task-succeeded', () => seen.some((e) => e.type === 'task-succeeded' && e.uuid === id), 20_000);
    assert.deepEqual(seen.filter((e) => e.uuid === id).map((e) => e.type), ['task-received', 'task-started', 'task-succeeded']);
    const multi = wire.filter((w) => w.channel === '/0.celeryev/task.multi').map((w) => JSON.parse(unpackMessage(w.payload)!.body) as CeleryEvent[]);
    assert.ok(multi.length > 0 && multi.every(Array.isArray));
    assert.ok(multi.flat().some((e) => e.uuid === id));
    await waitFor('State: SUCCESS', () => lastState(py!)?.tasks[id]?.state === 'SUCCESS', 20_000);
    assert.equal(lastState(py!)!.tasks[id]!.worker, NODE);
  });

  it('worker-offline at the asynx node\'s stop; then asynx events prints a Python worker\'s heartbeat (woken by the receiver) and its task events; --count stops it', async () => {
    // The asynx node's own heartbeats would be counted too: it goes first.
    await worker!.stop('SIGTERM', 20_000);
    worker = null;
    await waitFor('worker-offline, sent before the node let go of Redis', () => seen.some((e) => e.type === 'worker-offline' && e.hostname === NODE), 10_000);
    await waitFor('State: the node offline', () => lastState(py!)?.workers[NODE]?.alive === false, 10_000);
    pyWorker = await startCeleryWorker({ brokerUrl: url, app: 'redis_capp', nodeName: PY_NODE, queues: ['py-ev'], concurrency: 1, extraArgs: ['-E'], env });
    dump = spawnProcess(process.execPath, [BIN, 'events', '-b', url, '--json', '--count', '4'], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' } });
    // The receiver broadcasts the heartbeat command at start: the Python worker answers with a worker-heartbeat.
    await waitFor('the Python heartbeat', () => dump!.isDone() || dump!.output().split('\n').some((l) => l.startsWith('{') && (JSON.parse(l) as CeleryEvent).hostname === PY_NODE), 20_000);
    const sent = await runPython(['-c', "import redis_capp as c; print(c.app.send_task('add', args=(4, 4), queue='py-ev').id)"], { brokerUrl: url, env });
    assert.equal(sent.code, 0, sent.stderr);
    const id = sent.stdout.trim();
    const { code } = await waitFor('asynx events to stop after 4', async () => (dump!.isDone() ? { code: await dump!.stop('SIGTERM', 1_000) } : null), 30_000).catch((err: Error) => {
      throw new Error(`${err.message}; it printed:\n${dump!.output()}\nthe Python worker logged:\n${pyWorker!.output().slice(-3000)}`);
    });
    const events = dump.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as CeleryEvent);
    dump = null;
    assert.equal(code, 0);
    assert.equal(events.length, 4, JSON.stringify(events));
    assert.equal(events[0]!.type, 'worker-heartbeat');
    assert.equal(events[0]!.hostname, PY_NODE);
    assert.deepEqual(events.slice(1).map((e) => [e.type, e.uuid, e.hostname]), [['task-received', id, PY_NODE], ['task-started', id, PY_NODE], ['task-succeeded', id, PY_NODE]]);
  });
});
