// An asynx worker started on a RabbitMQ queue with a backlog runs every task once; none is dead-lettered at start.

import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Asynx } from '../../src/index.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';

const skip = rabbitSkip();
const APP = fileURLToPath(new URL('../fixtures/interop-app.mjs', import.meta.url));

describe('asynx worker on RabbitMQ with a backlog', { skip }, () => {
  let node: RabbitNode;
  let worker: RunningWorker | null = null;
  let app: Asynx | null = null;
  before(async () => {
    node = await startRabbit();
  });
  after(async () => {
    await worker?.stop('SIGTERM', 20_000);
    await app?.close();
    await node?.dispose();
  });

  test('300 tasks queued before the worker starts: all succeed, none is requeued into the dead-letter queue', { timeout: 120_000 }, async () => {
    app = new Asynx({ configFile: false, brokerUrl: node.url, resultBackend: 'rpc://' });
    const results = [];
    for (let i = 0; i < 300; i++) results.push(await app.sendTask<number>('add', [i, 1], {}, { queue: 'backlog' }));
    // Deliveries arrive as soon as the worker consumes, before it reports 'running': they must wait, not
    // bounce back to the broker (each bounce is a redelivery, and maxDeliveries would dead-letter them).
    worker = await startWorker({ brokerUrl: node.url, app: APP, args: ['-n', 'backlog@localhost', '-c', '2', '-Q', 'backlog'], env: { ASYNX_RESULT_BACKEND: 'rpc://' } });
    const values = await Promise.all(results.map((r) => r.get({ timeout: 60 }).catch((err: Error) => err)));
    const failed = values.filter((v) => v instanceof Error) as Error[];
    assert.deepEqual(failed.map((e) => e.message).slice(0, 3), [], `${failed.length} of 300 failed`);
    assert.deepEqual(values, results.map((_, i) => i + 1));
    assert.doesNotMatch(worker.output(), /dead-letter/);
  });
});
