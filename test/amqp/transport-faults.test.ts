// AMQP transport under faults: broker down, broker restart with tasks in flight, late acks, dead letters, Celery etas.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import amqplib from 'amqplib';
import { BrokerUnavailableError, ExitCode } from '../../src/errors.js';
import { buildTaskMessage, decodeTaskMessage, formatCeleryTime } from '../../src/protocol/codec.js';
import { AmqpTransport } from '../../src/transports/amqp.js';
import type { Delivery } from '../../src/transports/transport.js';
import { freePort, rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { Collector } from '../helpers/transport-conformance.js';

const skip = rabbitSkip();

describe('AMQP transport faults', { skip }, () => {
  let node: RabbitNode;
  const open: AmqpTransport[] = [];
  const make = (opts: Partial<ConstructorParameters<typeof AmqpTransport>[1]> = {}, url = node.url) => {
    const t = new AmqpTransport(url, { connectTimeoutMs: 3_000, publishTimeoutMs: 3_000, ...opts });
    open.push(t);
    return t;
  };
  before(async () => {
    node = await startRabbit();
  });
  after(async () => {
    for (const t of open) await t.close().catch(() => undefined);
    await node?.dispose();
  });

  test('publish with no broker listening fails within its timeout with a clear error', async () => {
    const port = await freePort();
    const t = make({ publishTimeoutMs: 1_500, connectTimeoutMs: 500 }, `amqp://guest:secret@127.0.0.1:${port}/`);
    const { queue, message } = buildTaskMessage('t.add', [1, 2], {});
    const started = Date.now();
    await assert.rejects(t.publish(queue, message), (err: unknown) => {
      assert.ok(err instanceof BrokerUnavailableError, String(err));
      assert.equal(err.exitCode, ExitCode.unavailable);
      assert.match(err.message, /not reachable/);
      assert.match(err.message, /ECONNREFUSED/);
      assert.ok(!err.message.includes('secret'), 'the password is not in the message');
      return true;
    });
    const took = Date.now() - started;
    assert.ok(took >= 1_400 && took < 2_500, `failed after ${took} ms`);
  });

  test('publish while the (real) broker is stopped fails within its timeout; it works again once the broker is back', { timeout: 90_000 }, async () => {
    const t = make({ publishTimeoutMs: 1_500, connectTimeoutMs: 500 });
    const queue = 'faults-down';
    await t.publish(queue, buildTaskMessage('t.n', [1], {}, { queue }).message);
    await node.stop();
    try {
      const started = Date.now();
      await assert.rejects(t.publish(queue, buildTaskMessage('t.n', [2], {}, { queue }).message), (err: unknown) => {
        assert.ok(err instanceof BrokerUnavailableError, String(err));
        assert.match(err.message, /RabbitMQ at amqp:\/\/guest:\*\*\*\*@127\.0\.0\.1:\d+\/ is not reachable within \d+ ms/);
        assert.match(err.message, /Check that the broker is running/);
        return true;
      });
      const took = Date.now() - started;
      assert.ok(took < 2_500, `failed after ${took} ms`);
    } finally {
      await node.start();
    }
    await t.publish(queue, buildTaskMessage('t.n', [3], {}, { queue }).message);
    assert.equal(await t.count(queue), 2, 'the message published before the stop survived it (persistent), and the new one arrived');
  });

  test('reject without requeue moves the message to asynx.dead with the reason', async () => {
    const t = make();
    const queue = 'faults-dead';
    const { message } = buildTaskMessage('t.bad', [1], {}, { queue });
    await t.publish(queue, message);
    const c = await new Collector().start(t, [queue], 1);
    const [d] = await c.waitFor(1);
    await t.reject(d, { requeue: false, reason: 'unregistered task t.bad' });
    await c.cancel();
    const conn = await amqplib.connect(node.url);
    try {
      const ch = await conn.createChannel();
      let got: amqplib.GetMessage | false = false;
      for (let i = 0; i < 20 && !got; i++) {
        got = await ch.get('asynx.dead', { noAck: true });
        if (!got) await sleep(100);
      }
      assert.ok(got, 'a dead letter arrived');
      assert.equal(got.properties.headers?.['x-asynx-reason'], 'unregistered task t.bad');
      assert.equal(got.properties.headers?.['x-asynx-queue'], queue);
      assert.equal(got.properties.headers?.id, message.headers.id);
      assert.equal(got.content.toString(), message.body);
    } finally {
      await conn.close();
    }
  });

  test('an eta message a Celery client put straight on the queue is parked in the broker, not delivered early', async () => {
    const t = make();
    const queue = 'faults-celery-eta';
    await t.declareQueue(queue);
    const etaMs = Date.now() + 2_000;
    const { message } = buildTaskMessage('t.later', [1], {}, { queue });
    message.headers.eta = formatCeleryTime(etaMs);
    // Publish as kombu does: default exchange, routing key = queue, no ladder.
    const conn = await amqplib.connect(node.url);
    try {
      const ch = await conn.createConfirmChannel();
      ch.publish('', queue, Buffer.from(message.body), { contentType: 'application/json', contentEncoding: 'utf-8', deliveryMode: 2, headers: message.headers, correlationId: message.headers.id });
      await ch.waitForConfirms();
    } finally {
      await conn.close();
    }
    const c = await new Collector().start(t, [queue], 4);
    await sleep(800);
    assert.equal(c.got.length, 0, 'not handed to the consumer before its eta');
    const [d] = await c.waitFor(1, 6_000);
    assert.ok(Date.now() >= etaMs);
    assert.equal(decodeTaskMessage(d.message).id, message.headers.id);
    await t.ack(d);
    await c.cancel();
  });

  test('consumers resume after a broker restart; a late ack from the dead channel is a no-op', async () => {
    const t = make({ publishTimeoutMs: 20_000, connectTimeoutMs: 2_000 });
    const queue = 'faults-resume';
    await t.publish(queue, buildTaskMessage('t.n', [1], {}, { queue }).message);
    const c = await new Collector().start(t, [queue], 2);
    const [stale] = await c.waitFor(1);
    await node.stop();
    await node.start();
    // The unacked message comes back after the restart (persistent, durable queue).
    const got = await c.waitFor(2, 20_000);
    assert.deepEqual(decodeTaskMessage(got[1].message).args, [1]);
    assert.equal(got[1].redelivered, true);
    assert.notEqual(got[1].tag, stale.tag);
    await t.ack(stale); // from the dead channel: must not ack the new delivery nor break the channel
    await t.publish(queue, buildTaskMessage('t.n', [2], {}, { queue }).message);
    const more = await c.waitFor(3, 10_000);
    assert.deepEqual(decodeTaskMessage(more[2].message).args, [2]);
    await t.ack(got[1]);
    await t.ack(more[2]);
    await c.cancel();
    await sleep(200);
    assert.equal(await t.count(queue), 0, 'everything settled exactly once');
  });

  test('broker restart mid-run with 5,000 tasks in flight (acks late): every task completes, none lost', { timeout: 180_000 }, async (tc) => {
    const total = 5_000;
    const queue = 'faults-restart';
    const producer = make({ publishTimeoutMs: 30_000, connectTimeoutMs: 2_000 });
    const worker = make({ publishTimeoutMs: 30_000, connectTimeoutMs: 2_000 });
    const firstHalf = total / 2;
    // Publish in parallel batches: a publish resolves only on the broker's confirm.
    const publishRange = async (from: number, to: number) => {
      for (let i = from; i < to; i += 100) {
        await Promise.all(Array.from({ length: Math.min(100, to - i) }, (_, k) => producer.publish(queue, buildTaskMessage('t.n', [i + k], {}, { queue }).message)));
      }
    };
    await publishRange(0, firstHalf);
    // A few delayed tasks ride through the restart in the delay ladder. An 8 s countdown is one ladder step
    // (no hop between steps) that falls due after the broker is back. Observed once with countdown 3 (two
    // steps, the first hop at 2 s, right when the broker was being stopped): all 20 never arrived within
    // 150 s; seen again with countdown 8 in a clean-clone run (2026-12-01). Suspected: RabbitMQ 3.10's
    // at-least-once dead-lettering retries an unconfirmed step only after dead_letter_worker_publisher_confirm_timeout
    // (180 s by default); test/helpers/rabbitmq.ts sets it to 5 s for every test broker.
    const delayed = Array.from({ length: 20 }, (_, k) => total + k);
    for (const n of delayed) await producer.publish(queue, buildTaskMessage('t.n', [n], {}, { queue, countdown: 8 }).message);

    const done = new Map<number, number>();
    let restarted = false;
    const runTask = (d: Delivery) => {
      // acks-late: "run" the task, record it, then ack.
      setTimeout(() => {
        const n = decodeTaskMessage(d.message).args[0] as number;
        done.set(n, (done.get(n) ?? 0) + 1);
        void worker.ack(d);
      }, 1);
    };
    const consumer = await worker.consume([queue], 50, runTask);
    const morePublished = publishRange(firstHalf, total);
    const deadline = Date.now() + 150_000;
    while (done.size < 1_000 && Date.now() < deadline) await sleep(20);
    await node.stop();
    restarted = true;
    await sleep(500);
    await node.start();
    await morePublished;
    const expected = total + delayed.length;
    while (done.size < expected && Date.now() < deadline) await sleep(100);
    await consumer.cancel();
    const missing = [...Array(total).keys(), ...delayed].filter((n) => !done.has(n));
    const duplicates = [...done.values()].filter((v) => v > 1).length;
    tc.diagnostic(`restarted=${restarted} completed=${done.size}/${expected} duplicates=${duplicates}`);
    assert.deepEqual(missing.slice(0, 20), [], `${missing.length} tasks lost`);
    // Duplicates are the at-least-once price of a restart: tasks run but not acked (≤ prefetch), and publishes re-sent after a lost confirm (≤ one batch).
    assert.ok(duplicates <= 50 + 100, `duplicates ${duplicates} exceed prefetch + publishes in flight`);
  });
});
