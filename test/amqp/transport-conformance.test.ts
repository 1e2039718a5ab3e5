// The Transport conformance suite against a private RabbitMQ node.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import amqplib from 'amqplib';
import { AmqpTransport } from '../../src/transports/amqp.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { runTransportConformance } from '../helpers/transport-conformance.js';

const skip = rabbitSkip();
let node: RabbitNode | null = null;
before(async () => {
  if (!skip) node = await startRabbit();
});
after(async () => {
  await node?.dispose();
});

runTransportConformance('amqp', async () => new AmqpTransport(node!.url, { connectTimeoutMs: 5_000, publishTimeoutMs: 5_000, maxPriority: 10 }), { skip });

describe('AMQP count is a passive declare', { skip }, () => {
  test('counting a queue nobody declared answers 0 and creates nothing (a dashboard must not make queues)', async () => {
    const t = new AmqpTransport(node!.url, { connectTimeoutMs: 5_000, publishTimeoutMs: 5_000 });
    const queue = `never-declared-${process.pid}`;
    try {
      assert.equal(await t.count(queue), 0);
      assert.equal(await t.count(queue), 0, 'the transport still works after the 404');
      const conn = await amqplib.connect(node!.url);
      try {
        const ch = await conn.createChannel();
        ch.on('error', () => undefined);
        await assert.rejects(ch.checkQueue(queue), (err: { code?: number }) => err.code === 404);
      } finally {
        await conn.close().catch(() => undefined);
      }
    } finally {
      await t.close();
    }
  });
});
