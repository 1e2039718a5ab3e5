// Fault: kill -9 of a pool child, again and again, under load (Redis, one private redis-server). Acks late:
// the killed child's task goes back to its list and completes; acks early: it fails with WorkerLostError and
// nothing runs twice. The default visibility timeout (1 h) stays: the tasks must come back by the requeue,
// not by the sweep. The driver (child-kill.ts) is the SQLite and RabbitMQ rows' too.

import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { Asynx } from '../../src/index.js';
import { redisSkip, startRedis, type RedisServer } from '../helpers/redis.js';
import { childKillRow } from './child-kill.js';
import { Ledger, Nodes, scaled, scratch } from './harness.js';

const skip = redisSkip();

describe('fault: kill -9 of a pool child (Redis)', { skip }, () => {
  const tmp = scratch('redis-child');
  const nodes = new Nodes();
  const clients: Asynx[] = [];
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await nodes.stopAll();
    await redis?.dispose();
    tmp.cleanup();
  });

  for (const mode of ['acks-late', 'acks-early'] as const) {
    it(`${mode}: ${mode === 'acks-late' ? 'every task completes, duplicates counted' : 'no task runs twice; drops only what a killed child was running'}`, async () => {
      const queue = `q-child-${mode}`;
      const client = new Asynx({ brokerUrl: redis.url, configFile: false, resultBackend: 'none', defaultQueue: queue });
      clients.push(client);
      const ledger = new Ledger(join(tmp.dir, `${mode}.ledger`));
      const spec = { dir: tmp.dir, brokerUrl: redis.url, name: `child-${mode}`, concurrency: 2, args: ['-Q', queue], env: { ASYNX_RESULT_BACKEND: 'none' } };
      await childKillRow({ broker: 'redis', mode, client, ledger, nodes, spec, n: scaled(10_000) });
    });
  }
});
