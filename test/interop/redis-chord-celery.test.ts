// Chords across languages with Redis as broker and result backend: a chord sent by Python Celery completes on an
// asynx worker, and one sent by asynx completes on a Python worker, through Celery's chord counters. Needs the
// Redis transport (branch redis); skipped where the broker URL redis:// is not supported yet.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Asynx, chord } from '../../src/index.js';
import { parseBrokerUrl } from '../../src/urls.js';
import { canvasTasks, CANVAS_APP } from '../helpers/canvas.js';
import { celerySkip, runPython, startCeleryWorker, type CeleryWorker } from '../helpers/celery.js';
import { redisSkip, startRedis, type RedisServer } from '../helpers/redis.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';

function transportMissing(): string | false {
  try {
    parseBrokerUrl('redis://127.0.0.1:6379/0');
    return false;
  } catch {
    return 'the Redis transport (broker redis://) is not in this build';
  }
}

const skip = redisSkip() || celerySkip() || transportMissing();

describe('chords across languages on Redis', { skip }, () => {
  let server: RedisServer;

  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server?.dispose();
  });

  test('a chord sent by Python Celery runs on an asynx worker; Python gets the body\'s result', { timeout: 120_000 }, async () => {
    const url = `${server.url}/0`;
    let worker: RunningWorker | null = null;
    try {
      worker = await startWorker({ brokerUrl: url, app: CANVAS_APP, args: ['-c', '2'], env: { ASYNX_RESULT_BACKEND: url } });
      const r = await runPython(['redis_canvas.py', '5'], { brokerUrl: url, timeoutMs: 90_000 });
      assert.equal(r.code, 0, r.stderr.slice(-3000));
      assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()!), { value: 2 * (0 + 1 + 2 + 3 + 4) });
      assert.match(worker.output(), /c\.tsum\[[^\]]+\] succeeded/, 'the body ran on the asynx worker');
    } finally {
      await worker?.stop();
    }
  });

  test('a chord sent by asynx runs on a Python worker; asynx gets the body\'s result', { timeout: 120_000 }, async () => {
    const url = `${server.url}/1`;
    let py: CeleryWorker | null = null;
    const app = new Asynx({ configFile: false, brokerUrl: url, resultBackend: url });
    try {
      py = await startCeleryWorker({ brokerUrl: url, app: 'redis_canvas', nodeName: 'py-chord@localhost', concurrency: 2 });
      const t = canvasTasks(app);
      const r = await chord([t.add.s(1, 2), t.add.s(3, 4), t.add.s(5, 6)], t.tsum.s()).applyAsync();
      assert.equal(await r.get({ timeout: 60 }), 21);
    } finally {
      await app.close();
      await py?.stop();
    }
  });
});
