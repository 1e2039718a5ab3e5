// Two workers with the same node name on one RabbitMQ: the second sees the live pidbox consumer and exits 73.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { startPidbox } from '../../src/control/pidbox.js';
import { AsynxError } from '../../src/errors.js';
import { celeryMissing, startCeleryWorker, type CeleryWorker } from '../helpers/celery.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli, startWorker, type RunningWorker } from '../helpers/worker.js';

const skip = rabbitSkip();
const APP = fileURLToPath(new URL('../fixtures/interop-app.mjs', import.meta.url));

describe('one node name per RabbitMQ broker', { skip }, () => {
  let rabbit: RabbitNode;
  const tmp = tempDir();
  const workers: RunningWorker[] = [];
  let celery: CeleryWorker | null = null;
  before(async () => {
    rabbit = await startRabbit();
  });
  after(async () => {
    for (const w of workers) await w.stop('SIGKILL', 10_000).catch(() => undefined);
    await celery?.stop();
    await rabbit?.dispose();
    tmp.cleanup();
  });
  const env = { ASYNX_RESULT_BACKEND: 'rpc://' };
  const cwd = (name: string) => {
    const dir = join(tmp.dir, name);
    mkdirSync(dir, { recursive: true });
    return dir;
  };
  const start = (name: string, dir: string) => startWorker({ brokerUrl: rabbit.url, app: APP, cwd: dir, env, args: ['-n', name, '-c', '1', '--pidfile', join(dir, 'w.pid')] });
  /** The second worker, run to its end (bounded): a refused one exits at once. */
  const second = (name: string, dir: string) => runCli(['worker', '-A', APP, '-n', name, '-c', '1', '--pidfile', join(dir, 'w.pid')], { ASYNX_BROKER_URL: rabbit.url, ...env }, 30_000, dir);

  test('a second a1@localhost (another cwd and pidfile) exits 73 naming the node and its mailbox; after a clean stop the name is free', { timeout: 120_000 }, async () => {
    const w1 = await start('a1@localhost', cwd('a'));
    workers.push(w1);
    const dup = await second('a1@localhost', cwd('b'));
    assert.equal(dup.code, 73, dup.stderr);
    assert.match(dup.stderr, /A node named a1@localhost is already using this broker \(its remote-control queue a1@localhost\.celery\.pidbox has 1 consumer\)/);
    assert.match(dup.stderr, /-n othername@%h/);
    assert.equal(dup.stderr.trim().split('\n').length, 1, dup.stderr);
    assert.equal(await w1.stop(), 0);
    const again = await start('a1@localhost', cwd('b'));
    workers.push(again);
    assert.equal(await again.stop(), 0);
  });

  test('a node killed with SIGKILL does not block a restart (the broker drops its consumer with the connection)', { timeout: 120_000 }, async () => {
    const w1 = await start('k1@localhost', cwd('k1'));
    workers.push(w1);
    await w1.stop('SIGKILL');
    const w2 = await start('k1@localhost', cwd('k2'));
    workers.push(w2);
    assert.equal(await w2.stop(), 0);
  });

  test('startPidbox itself refuses a mailbox that already has a consumer (the last check, at declare time)', { timeout: 60_000 }, async () => {
    const first = await startPidbox(rabbit.url, 'box@localhost', {});
    try {
      await assert.rejects(startPidbox(rabbit.url, 'box@localhost', {}), (err: unknown) => err instanceof AsynxError && err.code === 'asynx.worker.duplicateNode' && err.exitCode === 73 && /box@localhost\.celery\.pidbox has 1 consumer\b/.test(err.message));
      // The refused twin consumed nothing: the first is still the only consumer.
      const out = await rabbit.ctl(['list_queues', 'name', 'consumers']);
      assert.match(out, /^box@localhost\.celery\.pidbox\s+1$/m, out);
    } finally {
      await first.close();
    }
    const again = await startPidbox(rabbit.url, 'box@localhost', {});
    await again.close();
  });

  test('a Python Celery node holding the name: the asynx worker is refused too', { timeout: 120_000, skip: celeryMissing() ?? false }, async () => {
    celery = await startCeleryWorker({ brokerUrl: rabbit.url, nodeName: 'py1@localhost', concurrency: 1 });
    const dup = await second('py1@localhost', cwd('py'));
    assert.equal(dup.code, 73, dup.stderr);
    assert.match(dup.stderr, /A node named py1@localhost is already using this broker/);
    await celery.stop();
  });
});
