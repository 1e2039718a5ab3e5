// Monitoring on a Redis broker: `asynx status` with a node and with none, and the dashboard's common checks (headless Chromium).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { chromiumSkip } from '../helpers/dashboard.js';
import { dashboardSuite } from '../helpers/dashboard-suite.js';
import { redisSkip, startRedis, type RedisServer } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli, startWorker, type RunningWorker } from '../helpers/worker.js';

const skip = redisSkip();

describe('monitoring on Redis', { skip }, () => {
  let server: RedisServer;
  const tmp = tempDir('asynx-redis-monitor-');
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server?.dispose();
    tmp.cleanup();
  });

  describe('asynx status', () => {
    let worker: RunningWorker | null = null;
    after(async () => {
      await worker?.stop('SIGKILL', 10_000).catch(() => undefined);
    });

    test('with a node running: exit 0 naming it; with none: exit 1', { timeout: 60_000 }, async () => {
      const url = `${server.url}/1`;
      worker = await startWorker({ brokerUrl: url, cwd: tmp.dir, args: ['-n', 'mon1@localhost', '-c', '1'] });
      const up = await runCli(['status', '-b', url, '--timeout', '2'], {}, 30_000, tmp.dir);
      assert.equal(up.code, 0, up.stderr);
      assert.equal(up.stdout, '->  mon1@localhost: OK\n\n1 node online.\n');
      // The CLI removed its reply list's binding when it closed (kombu's pidbox reply exchange on Redis).
      const r = new Redis({ host: '127.0.0.1', port: server.port, db: 1, lazyConnect: true });
      await r.connect();
      try {
        assert.deepEqual(await r.smembers('_kombu.binding.reply.celery.pidbox'), []);
      } finally {
        r.disconnect();
      }
      assert.equal(await worker.stop(), 0);
      worker = null;
      const down = await runCli(['status', '-b', url, '--timeout', '0.5'], {}, 30_000, tmp.dir);
      assert.equal(down.code, 1, down.stdout);
      assert.match(down.stderr, /No nodes replied within time constraint/);
    });
  });

  describe('dashboard (headless Chromium)', { skip: chromiumSkip() }, () => {
    dashboardSuite({ brokerUrl: () => `${server.url}/2`, dir: () => tmp.dir, node: 'dash-redis@localhost' });
  });
});
