// The ResultBackend conformance suite against rpc:// on a private RabbitMQ node.

import { after, before } from 'node:test';
import { RpcResultBackend } from '../../src/results/rpc.js';
import { runBackendConformance } from '../helpers/backend-conformance.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';

const skip = rabbitSkip();
let node: RabbitNode | null = null;
before(async () => {
  if (!skip) node = await startRabbit();
});
after(async () => {
  await node?.dispose();
});

runBackendConformance(
  'rpc',
  () => ({
    make: async () => new RpcResultBackend(node!.url, { connectTimeoutMs: 5_000, publishTimeoutMs: 5_000 }),
    // Celery's rpc:// keeps no stored results: states live in the client's memory until read or forgotten.
    expiring: { skip: 'rpc:// has no result expiry (Celery rpc results are transient messages, read once by the caller)' },
  }),
  { skip },
);
