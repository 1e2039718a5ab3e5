// The fault matrix on Redis (one private redis-server with an AOF for the file): kill -9 of a whole node and
// Redis stopped for 10 s and started again, each under load. The visibility timeout is 3 s (in the URL), so a
// dead node's unacked messages come back within seconds.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Asynx } from '../../src/index.js';
import { redisSkip, startRedis, type RedisServer } from '../helpers/redis.js';
import { Ledger, Nodes, Progress, publishLedger, recordRow, scaled, scratch, waitFor, type NodeSpec } from './harness.js';

const skip = redisSkip();

describe('fault matrix on Redis', { skip }, () => {
  const tmp = scratch('redis');
  const nodes = new Nodes();
  const clients: Asynx[] = [];
  let redis: RedisServer;
  let url: string;
  before(async () => {
    // Every write on disk before it is answered: a restart keeps the queues, unacked and delayed messages.
    redis = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    url = `${redis.url}/0?visibility_timeout=3`;
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await nodes.stopAll();
    await redis?.dispose();
    tmp.cleanup();
  });

  function setup(name: string, env: NodeJS.ProcessEnv = {}): { client: Asynx; ledger: Ledger; spec: NodeSpec } {
    const client = new Asynx({ brokerUrl: url, configFile: false, resultBackend: 'none', defaultQueue: `q-${name}` });
    clients.push(client);
    const ledger = new Ledger(join(tmp.dir, `${name}.ledger`));
    const spec: NodeSpec = { dir: tmp.dir, brokerUrl: url, name, concurrency: 2, args: ['-Q', `q-${name}`], env: { ASYNX_RESULT_BACKEND: 'none', ...env } };
    return { client, ledger, spec };
  }

  it('kill -9 of a whole node, then start it again (acks late): every task completes', async () => {
    const n = scaled(5_000);
    const { client, ledger, spec } = setup('node', { ASYNX_ACKS_LATE: '1' });
    const t0 = Date.now();
    const ids = await publishLedger(client, n, ledger, 1);
    let node = await nodes.start(spec);
    const progress = new Progress(ledger);
    const kills: Array<[number, number]> = [];
    for (let k = 1; k <= 3; k++) {
      await waitFor(`${k * 25}% done`, () => ledger.size() >= n * 37 * 0.25 * k, 120_000);
      const at = Date.now();
      await node.kill9();
      kills.push([at, Date.now()]);
      node = await nodes.start(spec);
    }
    await ledger.waitAll(ids, 180_000);
    progress.stop();
    const { lost, duplicated } = ledger.tally(ids);
    recordRow({ fault: 'kill -9 node ×3 + restart', broker: 'redis', mode: 'acks-late (≥1)', tasks: n, lost, duplicated, dropped: 0, recoverMs: progress.worst(kills), totalMs: Date.now() - t0, note: 'visibility_timeout=3' });
    await node.stop();
    assert.equal(lost, 0);
    // A killed node's held deliveries (prefetch 2 × 4) come back through the sweep: at most those per kill.
    assert.ok(duplicated <= 3 * 8, `duplicates only from deliveries the killed nodes held (${duplicated})`);
  });

  it('Redis stopped for 10 s and started again (acks late, AOF): every task completes', async () => {
    const n = scaled(5_000);
    const { client, ledger, spec } = setup('down', { ASYNX_ACKS_LATE: '1' });
    const t0 = Date.now();
    const ids = await publishLedger(client, Math.floor(n / 2), ledger, 1);
    const node = await nodes.start(spec);
    const progress = new Progress(ledger);
    await waitFor('20% done', () => ledger.size() >= n * 37 * 0.2, 120_000);
    const downAt = Date.now();
    await redis.stop();
    let refused = 0;
    let message = '';
    const upAgain = (async () => {
      await sleep(Math.max(0, 10_000 - (Date.now() - downAt)));
      await redis.start();
      return Date.now();
    })();
    const rest = n - ids.length;
    for (let i = 0; i < rest; i++) {
      for (;;) {
        try {
          ids.push((await client.sendTask('f.ledger', [ledger.path, 1])).id);
          break;
        } catch (err) {
          refused++;
          message ||= (err as Error).message;
          await sleep(200);
        }
      }
    }
    const upAt = await upAgain;
    await ledger.waitAll(ids, 180_000);
    progress.stop();
    const { lost, duplicated } = ledger.tally(ids);
    recordRow({ fault: `Redis down ${((upAt - downAt) / 1000).toFixed(0)}s + restart`, broker: 'redis', mode: 'acks-late (≥1)', tasks: n, lost, duplicated, dropped: 0, recoverMs: progress.resumeAfter(upAt), totalMs: Date.now() - t0, note: `${refused} publish attempts refused; AOF fsync always` });
    assert.equal(node.isDone(), false, `the worker rode out the outage:\n${node.log().slice(-2000)}`);
    await node.stop();
    assert.ok(upAt - downAt >= 10_000, 'Redis was down for 10 s');
    assert.ok(refused > 0, 'publishes were refused while Redis was down');
    assert.match(message, /Redis/);
    assert.equal(lost, 0);
  });
});
