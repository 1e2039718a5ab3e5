// rpc:// result backend on a private RabbitMQ: reply queue as Celery declares it, states, timeouts, reconnects.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import amqplib from 'amqplib';
import { AsynxError, BrokerUnavailableError, TimeoutError } from '../../src/errors.js';
import type { ResultBody } from '../../src/protocol/message.js';
import { RpcResultBackend } from '../../src/results/rpc.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';

const skip = rabbitSkip();
const body = (taskId: string, status: string, result: unknown = null): ResultBody => ({ task_id: taskId, status, result, traceback: null, children: [] });

describe('rpc:// result backend', { skip }, () => {
  let node: RabbitNode;
  const open: RpcResultBackend[] = [];
  const make = () => {
    const b = new RpcResultBackend(node.url, { connectTimeoutMs: 3_000, publishTimeoutMs: 3_000 });
    open.push(b);
    return b;
  };
  before(async () => {
    node = await startRabbit();
  });
  after(async () => {
    for (const b of open) await b.close().catch(() => undefined);
    await node?.dispose();
  });

  test('connect declares the reply queue as Celery does (not durable, auto-delete, x-expires one day)', async () => {
    const client = make();
    await client.connect();
    const out = await node.ctl(['list_queues', 'name', 'durable', 'auto_delete', 'arguments', '--no-table-headers', '-q']);
    const line = out.split('\n').find((l) => l.startsWith(client.replyTo));
    assert.ok(line, `reply queue ${client.replyTo} exists:\n${out}`);
    assert.match(line, /\bfalse\s+true\b/, 'durable false, auto_delete true');
    assert.match(line, /x-expires.*86400000/);
  });

  test('a worker-side store reaches the client: correlation_id = task id, delivery_mode 1, JSON', async () => {
    const client = make();
    const worker = make();
    await client.connect();
    const id = randomUUID();
    const states: string[] = [];
    const waiting = client.wait(id, 5_000, (b) => states.push(b.status));
    await worker.store({ taskId: id, replyTo: client.replyTo }, body(id, 'STARTED', { pid: 1, hostname: 'w@h' }));
    await worker.store({ taskId: id, replyTo: client.replyTo }, body(id, 'SUCCESS', 42));
    const done = await waiting;
    assert.equal(done.result, 42);
    assert.deepEqual(states, ['STARTED', 'SUCCESS']);
    assert.equal((await client.get(id))?.status, 'SUCCESS');
    // On the wire, to a queue we read raw: the captured Celery properties.
    const conn = await amqplib.connect(node.url);
    try {
      const ch = await conn.createChannel();
      await ch.assertQueue('rpc-wire-check', { durable: false, autoDelete: false });
      await worker.store({ taskId: id, replyTo: 'rpc-wire-check' }, body(id, 'SUCCESS', 42));
      let msg: amqplib.GetMessage | false = false;
      for (let i = 0; i < 20 && !msg; i++) {
        msg = await ch.get('rpc-wire-check', { noAck: true });
        if (!msg) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(msg);
      assert.equal(msg.fields.exchange, '');
      assert.equal(msg.properties.correlationId, id);
      assert.equal(msg.properties.deliveryMode, 1);
      assert.equal(msg.properties.contentType, 'application/json');
      assert.equal(msg.properties.contentEncoding, 'utf-8');
      assert.deepEqual(JSON.parse(msg.content.toString()), { task_id: id, status: 'SUCCESS', result: 42, traceback: null, children: [] });
    } finally {
      await conn.close();
    }
  });

  test('a ready state is final: a late RETRY/STARTED does not overwrite SUCCESS; forget drops it', async () => {
    const client = make();
    await client.connect();
    const id = randomUUID();
    await client.store({ taskId: id, replyTo: client.replyTo }, body(id, 'SUCCESS', 'ok'));
    await client.wait(id, 5_000);
    await client.store({ taskId: id, replyTo: client.replyTo }, body(id, 'STARTED'));
    // A marker sent after the late STARTED on the same reply queue: once it is in, the STARTED was seen.
    const marker = randomUUID();
    await client.store({ taskId: marker, replyTo: client.replyTo }, body(marker, 'SUCCESS'));
    await client.wait(marker, 5_000);
    assert.equal((await client.get(id))?.status, 'SUCCESS');
    await client.forget(id);
    assert.equal(await client.get(id), null);
  });

  test('store without a reply queue is a no-op; wait times out with the state it saw', async () => {
    const client = make();
    await client.connect();
    const id = randomUUID();
    await client.store({ taskId: id, replyTo: null }, body(id, 'SUCCESS', 1));
    await client.store({ taskId: id, replyTo: client.replyTo }, body(id, 'PROGRESS', { done: 1 }));
    const started = Date.now();
    await assert.rejects(client.wait(id, 400), (err: unknown) => {
      assert.ok(err instanceof TimeoutError);
      assert.match(err.message, /state PROGRESS/);
      return true;
    });
    assert.ok(Date.now() - started < 2_000);
  });

  test('a non-JSON result (a worker with another result serializer) fails the wait instead of hanging', async () => {
    const client = make();
    await client.connect();
    const id = randomUUID();
    const conn = await amqplib.connect(node.url);
    try {
      const ch = await conn.createConfirmChannel();
      ch.publish('', client.replyTo, Buffer.from('\u0080\u0004'), { contentType: 'application/x-python-serialize', correlationId: id, deliveryMode: 1 });
      await ch.waitForConfirms();
    } finally {
      await conn.close();
    }
    const r = await client.wait(id, 5_000);
    assert.equal(r.status, 'FAILURE');
    assert.equal((r.result as { exc_type: string }).exc_type, 'ContentDisallowed');
  });

  test('after a broker restart the client listens again on its reply queue', { timeout: 90_000 }, async () => {
    const client = make();
    const worker = make();
    await client.connect();
    await node.stop();
    await node.start();
    const id = randomUUID();
    const waiting = client.wait(id, 30_000);
    // The worker's first store may race the client's re-declare: retry until the client has it.
    const deadline = Date.now() + 20_000;
    while (!(await client.get(id)) && Date.now() < deadline) {
      await worker.store({ taskId: id, replyTo: client.replyTo }, body(id, 'SUCCESS', 'back'));
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal((await waiting).result, 'back');
  });

  test('a store the broker keeps refusing (nack) fails at publishTimeout with a BrokerUnavailableError; the nack is an AsynxError cause', async () => {
    const worker = new RpcResultBackend(node.url, { connectTimeoutMs: 3_000, publishTimeoutMs: 600 });
    open.push(worker);
    const conn = await amqplib.connect(node.url);
    const queue = `rpc-full-${randomUUID()}`;
    try {
      const ch = await conn.createChannel();
      // A queue that holds nothing and rejects publishes: the broker nacks every confirm.
      await ch.assertQueue(queue, { durable: false, autoDelete: false, arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
      const id = randomUUID();
      const t0 = Date.now();
      await assert.rejects(worker.store({ taskId: id, replyTo: queue }, body(id, 'SUCCESS', 1)), (err: unknown) => {
        assert.ok(err instanceof BrokerUnavailableError, String(err));
        assert.match(err.message, /did not confirm within 600 ms/);
        assert.ok(err.cause instanceof AsynxError, `cause is an AsynxError: ${String(err.cause)}`);
        assert.equal(err.cause.code, 'asynx.broker.notConfirmed');
        return true;
      });
      assert.ok(Date.now() - t0 < 3_000, 'bounded by publishTimeout');
      await ch.deleteQueue(queue);
    } finally {
      await conn.close();
    }
  });
});
