// The Transport conformance suite against a private RabbitMQ node.

import { after, before } from 'node:test';
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
