// Wire-level interop with real Python Celery on a private RabbitMQ: asynx transport + rpc:// backend both ways.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildTaskMessage, decodeException, decodeTaskMessage, encodeException, tracebackOf } from '../../src/protocol/codec.js';
import type { ResultBody } from '../../src/protocol/message.js';
import { RpcResultBackend } from '../../src/results/rpc.js';
import { AmqpTransport } from '../../src/transports/amqp.js';
import type { Delivery } from '../../src/transports/transport.js';
import { celerySkip, pythonClient, startCeleryWorker, type CeleryWorker } from '../helpers/celery.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';

const skip = rabbitSkip() || celerySkip();
const opts = { connectTimeoutMs: 5_000, publishTimeoutMs: 5_000 };

describe('Celery wire interop (transport + rpc:// backend)', { skip }, () => {
  let node: RabbitNode;
  const closers: Array<() => Promise<void>> = [];
  before(async () => {
    node = await startRabbit();
  });
  after(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await node?.dispose();
  });

  test('a Python client calls; asynx decodes, replies over rpc://; Python reads results and re-raises errors', { timeout: 120_000 }, async () => {
    const queue = 'wire-py2js';
    const transport = new AmqpTransport(node.url, opts);
    const results = new RpcResultBackend(node.url, opts);
    closers.push(() => transport.close(), () => results.close());
    const seen: Array<{ d: Delivery; at: number }> = [];
    // A minimal "worker": decode, run, reply to reply_to, ack.
    await transport.consume([queue], 10, (d) => {
      seen.push({ d, at: Date.now() });
      void (async () => {
        const req = decodeTaskMessage(d.message);
        let body: ResultBody;
        if (req.expires !== null && req.expires < Date.now()) {
          body = { task_id: req.id, status: 'REVOKED', result: { exc_type: 'TaskRevokedError', exc_message: ['expired'], exc_module: 'celery.exceptions' }, traceback: null, children: [] };
        } else if (req.task === 'boom') {
          const err = Object.assign(new Error('kaput'), { name: 'ValueError' });
          body = { task_id: req.id, status: 'FAILURE', result: encodeException(err), traceback: tracebackOf(err), children: [] };
        } else if (req.task === 'js.type') {
          const err = new TypeError('wrong type');
          body = { task_id: req.id, status: 'FAILURE', result: encodeException(err), traceback: tracebackOf(err), children: [] };
        } else {
          body = { task_id: req.id, status: 'SUCCESS', result: { args: req.args, kwargs: req.kwargs, retries: req.retries, priority: req.priority, queue: d.queue }, traceback: null, children: [] };
        }
        await results.store({ taskId: req.id, replyTo: req.replyTo }, body);
        await transport.ack(d);
      })();
    });
    const started = Date.now();
    const out = await pythonClient(node.url, [
      { task: 'add', args: [2, 3], options: { queue } },
      { task: 'add', args: [1], kwargs: { b: 2 }, options: { queue, countdown: 2 } },
      { task: 'add', args: [4], options: { queue, eta_in: 2 } },
      { task: 'add', args: [5], options: { queue, expires: 60, retries: 3, priority: 7 } },
      { task: 'add', args: [6], options: { queue, countdown: 3, expires: 1 } },
      { task: 'boom', options: { queue } },
      { task: 'js.type', options: { queue } },
    ]);
    assert.deepEqual(out[0].ok, { args: [2, 3], kwargs: {}, retries: 0, priority: 0, queue });
    assert.deepEqual(out[1].ok, { args: [1], kwargs: { b: 2 }, retries: 0, priority: 0, queue });
    assert.deepEqual(out[3].ok, { args: [5], kwargs: {}, retries: 3, priority: 7, queue });
    // countdown / eta: not run before due.
    const runAt = (i: number) => seen.find((s) => decodeTaskMessage(s.d.message).id === out[i].id)!.at;
    assert.ok(runAt(1) - started >= 2_000, `countdown task ran after ${runAt(1) - started} ms`);
    assert.ok(runAt(2) - started >= 2_000, `eta task ran after ${runAt(2) - started} ms`);
    // expires before eta: revoked, and Python raises TaskRevokedError.
    assert.equal(out[4].error, 'TaskRevokedError');
    assert.equal(out[4].state, 'REVOKED');
    // asynx errors re-raise in Python with their type and message.
    assert.equal(out[5].error, 'ValueError');
    assert.equal(out[5].message, 'kaput');
    assert.equal(out[5].state, 'FAILURE');
    assert.equal(out[6].error, 'TypeError');
    assert.equal(out[6].message, 'wrong type');
  });

  test('asynx publishes; a Python Celery worker runs it; asynx reads results, errors and retries over rpc://', { timeout: 120_000 }, async () => {
    const queue = 'wire-js2py';
    const worker: CeleryWorker = await startCeleryWorker({ brokerUrl: node.url, queues: [queue], nodeName: 'pyw1@localhost' });
    closers.push(() => worker.stop());
    const transport = new AmqpTransport(node.url, opts);
    const results = new RpcResultBackend(node.url, opts);
    closers.push(() => transport.close(), () => results.close());
    await results.connect();
    const send = async (task: string, args: unknown[], kwargs: Record<string, unknown> = {}, o: Parameters<typeof buildTaskMessage>[3] = {}) => {
      const { message } = buildTaskMessage(task, args, kwargs, { queue, replyTo: results.replyTo, ...o });
      await transport.publish(queue, message);
      return message.headers.id;
    };
    const add = await send('add', [2, 3]);
    const addKw = await send('add', [1], { b: 41 });
    const boom = await send('boom', []);
    const flaky = await send('flaky', [21]);
    const later = await send('info', [1], {}, { countdown: 2, retries: 2 });
    const started = Date.now();

    assert.equal((await results.wait(add, 20_000)).result, 5);
    assert.equal((await results.wait(addKw, 20_000)).result, 42);

    const failed = await results.wait(boom, 20_000);
    assert.equal(failed.status, 'FAILURE');
    const err = decodeException(failed.result, failed.traceback);
    assert.equal(err.name, 'ValueError');
    assert.equal(err.message, 'kaput');
    assert.match(failed.traceback ?? '', /ValueError: kaput/);

    const states: string[] = [];
    const ok = await results.wait(flaky, 30_000, (b) => states.push(b.status));
    assert.equal(ok.status, 'SUCCESS');
    assert.deepEqual(ok.result, { value: 42, retries: 1, by: 'py' });
    assert.ok(states.includes('RETRY') || states.length === 1, `states seen: ${states.join(',')}`);

    const info = await results.wait(later, 20_000);
    assert.ok(Date.now() - started >= 1_900);
    assert.equal((info.result as { retries: number }).retries, 2);
    assert.equal((info.result as { id: string }).id, later);
  });
});
