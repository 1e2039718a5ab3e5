// Interop with real Python Celery through the asynx CLI worker and app on a private RabbitMQ (issue 4, item 5 a–d).

import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import amqplib from 'amqplib';
import { Asynx } from '../../src/index.js';
import { celerySkip, pythonClient, runPython, startCeleryWorker, type CeleryWorker } from '../helpers/celery.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';

const skip = rabbitSkip() || celerySkip();
const INTEROP_APP = fileURLToPath(new URL('../fixtures/interop-app.mjs', import.meta.url));

async function waitForText(what: string, get: () => string, re: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!re.test(get())) {
    if (Date.now() > deadline) assert.fail(`${what}: ${re} not seen within ${timeoutMs} ms:\n${get().slice(-3000)}`);
    await sleep(100);
  }
}

describe('Celery interop through the asynx worker and app', { skip }, () => {
  let node: RabbitNode;
  const stops: Array<() => Promise<unknown>> = [];
  const asynxWorker = async (name: string, queues: string[]): Promise<RunningWorker> => {
    const w = await startWorker({ brokerUrl: node.url, app: INTEROP_APP, args: ['-n', name, '-c', '2', '-Q', queues.join(','), '--result-backend', 'rpc://'], env: { ASYNX_RESULT_BACKEND: 'rpc://' } });
    stops.push(() => w.stop('SIGTERM', 20_000));
    return w;
  };
  const pyWorker = async (name: string, queues: string[]): Promise<CeleryWorker> => {
    const w = await startCeleryWorker({ brokerUrl: node.url, nodeName: name, queues, concurrency: 1 });
    stops.push(() => w.stop());
    return w;
  };
  const asynxClient = () => {
    const app = new Asynx({ configFile: false, brokerUrl: node.url, resultBackend: 'rpc://' });
    stops.push(() => app.close());
    return app;
  };

  before(async () => {
    node = await startRabbit();
  });
  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await node?.dispose();
  });

  test('(a) a Python client apply_async (args, kwargs, countdown, eta, expires, retries, priority, queue) runs on an asynx worker; Python reads the results', { timeout: 150_000 }, async () => {
    const w = await asynxWorker('js-a@localhost', ['celery', 'a-other']);
    const started = Date.now();
    const out = await pythonClient(node.url, [
      { task: 'add', args: [2, 3] },
      { task: 'add', args: [1], kwargs: { b: 41 } },
      { task: 'info', args: [1], options: { countdown: 2 } },
      { task: 'info', args: [2], options: { eta_in: 2 } },
      { task: 'info', args: [3], options: { expires: 60, retries: 2, priority: 5 } },
      { task: 'info', args: [4], options: { queue: 'a-other' } },
      { task: 'info', args: [5], options: { countdown: 3, expires: 1 } },
      { task: 'boom' },
      { task: 'flaky', args: [21] },
    ]);
    assert.equal(out[0].ok, 5, JSON.stringify(out[0]));
    assert.equal(out[1].ok, 42, JSON.stringify(out[1]));
    for (const i of [2, 3]) {
      assert.equal((out[i].ok as { by: string }).by, 'js', JSON.stringify(out[i]));
      assert.ok(out[i].elapsed >= 1.9, `call ${i} done after ${out[i].elapsed}s, before its countdown/eta`);
    }
    assert.deepEqual(out[4].ok, { by: 'js', args: [3], kwargs: {}, retries: 2, id: out[4].id, parent_id: null, root_id: out[4].id });
    assert.equal((out[5].ok as { args: number[] }).args[0], 4, 'queue=a-other consumed by the -Q worker');
    assert.equal(out[6].error, 'TaskRevokedError', `expired before its eta: ${JSON.stringify(out[6])}`);
    assert.equal(out[7].error, 'ValueError');
    assert.equal(out[7].message, 'kaput');
    assert.deepEqual(out[8].ok, { value: 42, retries: 1, by: 'js' });
    assert.ok(Date.now() - started < 120_000);
    assert.match(w.output(), /Task add\[/);
  });

  test('(b) an asynx client calls tasks on a Python worker; results and exceptions come back', { timeout: 120_000 }, async () => {
    await pyWorker('py-b@localhost', ['b-py']);
    const app = asynxClient();
    const opts = { queue: 'b-py' };
    const add = await app.sendTask<number>('add', [2, 3], {}, opts);
    const kw = await app.sendTask<number>('add', [1], { b: 41 }, opts);
    const boom = await app.sendTask('boom', [], {}, opts);
    const later = await app.sendTask<{ by: string; retries: number }>('info', [1], { k: 'v' }, { ...opts, countdown: 2, retries: 3 });
    const flaky = await app.sendTask('flaky', [21], {}, opts);
    // Header integers past 127 (amqplib's 'short' type is a short *string* to py-amqp): the worker must decode them.
    const wide = await app.sendTask<{ retries: number }>('info', [-5, 40_000], {}, { ...opts, retries: 200, timeLimit: 300, softTimeLimit: 250 });
    const started = Date.now();
    assert.equal(await add.get({ timeout: 20 }), 5);
    assert.equal(await kw.get({ timeout: 20 }), 42);
    await assert.rejects(boom.get({ timeout: 20 }), (err: Error) => {
      assert.equal(err.name, 'ValueError');
      assert.equal(err.message, 'kaput');
      return true;
    });
    const info = await later.get({ timeout: 20 });
    assert.equal(info.by, 'py');
    assert.equal(info.retries, 3);
    assert.ok(Date.now() - started >= 1_500, 'countdown honoured by the Python worker');
    assert.deepEqual(await flaky.get({ timeout: 30 }), { value: 42, retries: 1, by: 'py' });
    assert.equal((await wide.get({ timeout: 20 })).retries, 200);
  });

  test('(c) a task that retries across both: Python attempt 1 → asynx attempt 2, and asynx attempt 1 → Python attempt 2', { timeout: 150_000 }, async () => {
    // Python first: the Python worker fails attempt 1 and republishes with an eta; it stops before
    // the retry is due (warm shutdown gives the reserved message back), and an asynx worker runs it.
    const py = await pyWorker('py-c@localhost', ['c-both']);
    const fromPython = pythonClient(node.url, [{ task: 'flaky', args: [21], options: { queue: 'c-both' } }], { resultTimeoutS: 60 });
    await waitForText('python retry', () => py.output(), /flaky\[[^\]]+\] retry: Retry in 1s/, 30_000);
    await py.stop();
    const js = await asynxWorker('js-c@localhost', ['c-both']);
    const [r1] = await fromPython;
    assert.deepEqual(r1.ok, { value: 42, retries: 1, by: 'js' }, JSON.stringify(r1));
    await js.stop('SIGTERM', 20_000);

    // asynx first: attempt 1 fails on the asynx worker, whose retry waits in the broker's delay
    // ladder; the asynx worker stops, a Python worker picks the retry up when due.
    const js2 = await asynxWorker('js-c2@localhost', ['c-both']);
    const app = asynxClient();
    const res = await app.sendTask('flaky', [21], {}, { queue: 'c-both' });
    await waitForText('asynx retry', () => js2.output(), /flaky\[[^\]]+\] retry/, 30_000);
    await js2.stop('SIGTERM', 20_000);
    await pyWorker('py-c2@localhost', ['c-both']);
    assert.deepEqual(await res.get({ timeout: 60 }), { value: 42, retries: 1, by: 'py' });
  });

  test('a pickle message from a Python client is refused, never run: dead-lettered, and the caller gets a FAILURE', { timeout: 120_000 }, async () => {
    const w = await asynxWorker('js-p@localhost', ['p-q']);
    const [r] = await pythonClient(node.url, [{ task: 'add', args: [1, 2], options: { queue: 'p-q', serializer: 'pickle' } }]);
    assert.equal(r.state, 'FAILURE', JSON.stringify(r));
    assert.equal(r.error, 'ProtocolError');
    assert.match(r.message ?? '', /application\/x-python-serialize/);
    assert.doesNotMatch(w.output(), /Task add\[[^\]]+\] succeeded/);
    const conn = await amqplib.connect(node.url);
    try {
      const ch = await conn.createChannel();
      // Other tests may have dead-lettered messages too: find this one by id.
      let dead: amqplib.GetMessage | false = false;
      for (let i = 0; i < 100; i++) {
        const m = await ch.get('asynx.dead', { noAck: true });
        if (!m) await sleep(50);
        else if (m.properties.headers?.id === r.id) {
          dead = m;
          break;
        }
      }
      assert.ok(dead, 'the message is in asynx.dead');
      assert.equal(dead.properties.contentType, 'application/x-python-serialize');
      assert.equal(dead.properties.headers?.id, r.id);
      assert.match(String(dead.properties.headers?.['x-asynx-reason']), /contentType/);
    } finally {
      await conn.close();
    }
  });

  test('(d) celery inspect ping is answered by an asynx node', { timeout: 90_000 }, async () => {
    await asynxWorker('js-d@localhost', ['d-q']);
    const r = await runPython(['-m', 'celery', '-A', 'capp', 'inspect', 'ping', '-d', 'js-d@localhost', '-t', '5', '-j'], { brokerUrl: node.url, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()!), { 'js-d@localhost': { ok: 'pong' } });
    const reg = await runPython(['-m', 'celery', '-A', 'capp', 'inspect', 'registered', '-d', 'js-d@localhost', '-t', '5', '-j'], { brokerUrl: node.url, timeoutMs: 60_000 });
    assert.equal(reg.code, 0, reg.stderr);
    const names = (JSON.parse(reg.stdout.trim().split('\n').pop()!) as Record<string, string[]>)['js-d@localhost'];
    for (const t of ['add', 'boom', 'flaky', 'info', 'sleep']) assert.ok(names.includes(t), `registered lists ${t}: ${names.join(', ')}`);
  });
});
