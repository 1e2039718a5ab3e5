// eta/countdown on RabbitMQ: delayed messages wait in the broker's ladder (not in a consumer) and survive restarts.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildTaskMessage, decodeTaskMessage } from '../../src/protocol/codec.js';
import { AmqpTransport } from '../../src/transports/amqp.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { Collector } from '../helpers/transport-conformance.js';

const skip = rabbitSkip();

describe('delay ladder on RabbitMQ', { skip }, () => {
  let node: RabbitNode;
  const open: AmqpTransport[] = [];
  const make = () => {
    const t = new AmqpTransport(node.url, { connectTimeoutMs: 3_000, publishTimeoutMs: 20_000 });
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

  /** Messages parked in the ladder queues (asynx.delay.*), polled until `want` or the deadline. */
  const parked = async (want: number, timeoutMs = 10_000): Promise<number> => {
    const deadline = Date.now() + timeoutMs;
    let n = -1;
    while (Date.now() < deadline) {
      const out = await node.ctl(['list_queues', 'name', 'messages', '--no-table-headers', '-q']);
      n = out
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter(([name]) => name?.startsWith('asynx.delay.'))
        .reduce((sum, [, m]) => sum + Number(m ?? 0), 0);
      if (n === want) return n;
      await sleep(250);
    }
    return n;
  };

  /** Messages in `queue`, ready and unacknowledged (what a restart would hand out again), polled until `want`. */
  const inQueue = async (queue: string, want: number, timeoutMs = 10_000): Promise<number> => {
    const deadline = Date.now() + timeoutMs;
    let n = -1;
    while (Date.now() < deadline) {
      const out = await node.ctl(['list_queues', 'name', 'messages', '--no-table-headers', '-q']);
      const row = out.split('\n').map((l) => l.trim().split(/\s+/)).find(([name]) => name === queue);
      n = Number(row?.[1] ?? 0);
      if (n === want) return n;
      await sleep(100);
    }
    return n;
  };

  test('a consumer declares the ladder and binds its queue before the first delivery (a fresh broker: no wait on the first countdown)', async () => {
    const ladderQueues = async () => (await node.ctl(['list_queues', 'name', '--no-table-headers', '-q'])).split('\n').map((l) => l.trim()).filter((n) => n.startsWith('asynx.delay.'));
    assert.deepEqual(await ladderQueues(), [], 'a fresh broker has no ladder yet');
    const t = make();
    const c = await new Collector().start(t, ['fresh-q'], 2);
    assert.equal((await ladderQueues()).length, 28, 'all 28 levels exist once consume() resolved');
    const bindings = await node.ctl(['list_bindings', 'source_name', 'destination_name', 'routing_key', '--no-table-headers', '-q']);
    assert.ok(bindings.split('\n').some((l) => /^asynx\.delay\.deliver\s+fresh-q\s/.test(l.trim())), `fresh-q is bound to the deliver exchange:\n${bindings}`);
    await c.consumer?.cancel();
  });

  test('a task delayed for an hour holds no consumer slot, waits in the broker, and survives a broker restart; a due one arrives after it', { timeout: 120_000 }, async () => {
    const t = make();
    const queue = 'ladder-q';
    const hour = buildTaskMessage('t.later', ['hour'], {}, { queue, countdown: 3600 }).message;
    await t.publish(queue, hour);
    const c = await new Collector().start(t, [queue], 1);
    assert.equal(await parked(1), 1, 'the hour-long task is parked in the ladder');
    assert.equal(await t.count(queue), 0, 'not in its queue yet');
    // The consumer's only prefetch slot stays free: a ready task still gets through.
    await t.publish(queue, buildTaskMessage('t.now', ['now'], {}, { queue }).message);
    const [now] = await c.waitFor(1, 5_000);
    assert.deepEqual(decodeTaskMessage(now.message).args, ['now']);
    await t.ack(now);
    // An AMQP ack has no confirm: wait until the broker applied it, or the restart below redelivers 'now'.
    assert.equal(await inQueue(queue, 0), 0, "the ack of 'now' is applied before the broker stops");
    // A short delay that falls due while the broker is down is delivered after the restart.
    await t.publish(queue, buildTaskMessage('t.soon', ['soon'], {}, { queue, countdown: 2 }).message);
    await node.stop();
    await node.start();
    const got = await c.waitFor(2, 30_000);
    assert.deepEqual(decodeTaskMessage(got[1].message).args, ['soon']);
    await t.ack(got[1]);
    assert.equal(await parked(1), 1, 'the hour-long task is still parked after the restart');
    await sleep(500);
    // At-least-once around a restart may repeat 'soon' (RabbitMQ's dead-lettering is not transactional); the
    // hour-long task must not have been handed out at all.
    const handed = c.got.map((d) => decodeTaskMessage(d.message).args[0]);
    assert.ok(!handed.includes('hour'), `and was never handed to the consumer (got ${JSON.stringify(handed)})`);
    assert.deepEqual([...new Set(handed)], ['now', 'soon']);
    await c.cancel();
  });
});
