// Rate limits on RabbitMQ with real worker processes: the Celery #8119 trap avoided through the delay ladder;
// global limits and dedupe refused with typed errors (no shared store on this broker).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Asynx, isAsynxError } from '../../src/index.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { assertNoStarvation, linesOf, RATE_APP, readRecord, sendMany } from '../helpers/rate-record.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { runCli, startWorker, type RunningWorker } from '../helpers/worker.js';

const skip = rabbitSkip();

describe('rate limits on RabbitMQ', { skip }, () => {
  const tmp = tempDir('asynx-rate-amqp-');
  const record = join(tmp.dir, 'record.txt');
  let node: RabbitNode;
  let worker: RunningWorker | null = null;
  let client: Asynx;

  before(async () => {
    node = await startRabbit();
    client = new Asynx({ brokerUrl: node.url, resultBackend: 'none', configFile: false });
  });
  after(async () => {
    await client?.close();
    await worker?.stop();
    await node?.dispose();
    tmp.cleanup();
  });

  test('a worker whose app has a global rate limit refuses to start, naming the task', async () => {
    const r = await runCli(['worker', '-A', RATE_APP, '-c', '1'], { ASYNX_BROKER_URL: node.url, ASYNX_TEST_RECORD: record }, 30_000);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /Task 'r\.shared': a global rate limit needs a shared store/);
  });

  test('global per call and dedupe are refused at the call, nothing sent', async () => {
    const code = (c: string) => (err: unknown) => isAsynxError(err) && err.code === c;
    await assert.rejects(client.sendTask('r.plain', [], {}, { rateLimit: { rate: '1/s', global: true } }), code('asynx.rateLimit.globalUnsupported'));
    await assert.rejects(client.sendTask('r.plain', [], {}, { taskId: 'x1', dedupe: true }), (err: unknown) => code('asynx.dedupe.unsupported')(err) && /idempotent/.test((err as Error).message));
  });

  test('10/s over 100 tasks takes ≥ 9 s, and 100 unlimited tasks sent after them are not held up', async () => {
    // Queued before the worker starts: the queue holds 100 limited tasks, then 100 unlimited ones.
    const limited = await sendMany(client, 'r.limited', 100);
    const free = await sendMany(client, 'r.free', 100);
    worker = await startWorker({ brokerUrl: node.url, app: RATE_APP, args: ['-n', 'rate@amqp', '-c', '4'], env: { ASYNX_TEST_RECORD: record, ASYNX_TEST_GLOBAL: '0', ASYNX_RESULT_BACKEND: 'none' } });
    await waitFor('100 limited tasks ended', () => linesOf(readRecord(record), 'r.limited', 'end', limited).length === 100, 40_000, 100);
    assertNoStarvation(readRecord(record), limited, free);
  });
});
