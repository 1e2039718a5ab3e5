// Two workers with the same node name on one Redis: the second sees the live claim key and exits 73; lapsed claims are taken.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { Asynx } from '../../src/index.js';
import { AsynxError } from '../../src/errors.js';
import { Worker } from '../../src/worker/worker.js';
import { spawnProcess } from '../helpers/process.js';
import { redisSkip, startRedis, type RedisServer } from '../helpers/redis.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { BIN, FIXTURE_APP, runCli, startWorker, type RunningWorker } from '../helpers/worker.js';

const skip = redisSkip();

describe('one node name per Redis broker', { skip }, () => {
  let server: RedisServer;
  let redis: Redis;
  let brokerUrl: string;
  const tmp = tempDir('asynx-redis-node-');
  const workers: RunningWorker[] = [];
  before(async () => {
    server = await startRedis();
    brokerUrl = `${server.url}/0`;
    redis = new Redis({ host: '127.0.0.1', port: server.port, lazyConnect: true });
    await redis.connect();
  });
  after(async () => {
    for (const w of workers) await w.stop('SIGKILL', 10_000).catch(() => undefined);
    redis?.disconnect();
    await server?.dispose();
    tmp.cleanup();
  });
  const cwd = (name: string) => {
    const dir = join(tmp.dir, name);
    mkdirSync(dir, { recursive: true });
    return dir;
  };
  const start = (name: string, dir: string) => startWorker({ brokerUrl, cwd: dir, args: ['-n', name, '-c', '1', '--pidfile', join(dir, 'w.pid')] });
  /** The second worker, run to its end (bounded): a refused one exits at once. */
  const second = (name: string, dir: string) => runCli(['worker', '-A', FIXTURE_APP, '-n', name, '-c', '1', '--pidfile', join(dir, 'w.pid')], { ASYNX_BROKER_URL: brokerUrl }, 20_000, dir);
  const claim = async (name: string) => {
    const raw = await redis.get(`_asynx.node.${name}`);
    return raw === null ? null : (JSON.parse(raw) as { pid: number; hostname: string });
  };

  test('a second w1@localhost (another cwd and pidfile) exits 73 naming the holder; the holder renews its lease and runs on; a clean stop frees the name', { timeout: 60_000 }, async () => {
    const w1 = await start('w1@localhost', cwd('a'));
    workers.push(w1);
    const held = await claim('w1@localhost');
    assert.deepEqual([held?.pid, held?.hostname], [w1.pid, hostname()]);
    const dup = await second('w1@localhost', cwd('b'));
    assert.equal(dup.code, 73, dup.stderr);
    assert.match(dup.stderr, new RegExp(`A node named w1@localhost is already using this broker \\(pid ${w1.pid} on ${hostname()}, claim _asynx\\.node\\.w1@localhost, lapsing in \\d+\\.\\d s unless renewed\\)`));
    assert.match(dup.stderr, /-n othername@%h/);
    assert.equal(dup.stderr.trim().split('\n').length, 1, dup.stderr);
    // The refused node left the claim alone, and the holder still runs tasks.
    assert.equal((await claim('w1@localhost'))?.pid, w1.pid);
    const client = new Asynx({ brokerUrl, configFile: false });
    try {
      assert.equal(await (await client.sendTask('t.add', [2, 3])).get({ timeout: 10 }), 5);
    } finally {
      await client.close();
    }
    // The lease (10 s) is renewed every 2 s.
    await redis.pexpire('_asynx.node.w1@localhost', 3_000);
    await waitFor('a lease renewal', async () => (await redis.pttl('_asynx.node.w1@localhost')) > 5_000, 5_000, 100);
    assert.equal(await w1.stop(), 0);
    assert.equal(await claim('w1@localhost'), null, 'a clean stop deletes the claim');
    const again = await start('w1@localhost', cwd('b'));
    workers.push(again);
    assert.equal(await again.stop(), 0);
  });

  test('a node killed with SIGKILL leaves its claim, which does not block a restart on this host (its pid is gone)', { timeout: 60_000 }, async () => {
    const w1 = await start('k1@localhost', cwd('k1'));
    workers.push(w1);
    await w1.stop('SIGKILL');
    assert.equal((await claim('k1@localhost'))?.pid, w1.pid, 'the killed node could not clean up');
    const w2 = await start('k1@localhost', cwd('k2'));
    workers.push(w2);
    assert.equal((await claim('k1@localhost'))?.pid, w2.pid);
    assert.equal(await w2.stop(), 0);
  });

  test("another machine's claim: refused while its lease runs, taken once it lapsed", { timeout: 60_000 }, async () => {
    const other = JSON.stringify({ token: 'x', pid: 1, hostname: `not-${hostname()}`, startedAt: Date.now() });
    await redis.set('_asynx.node.r1@localhost', other, 'PX', 60_000);
    const dup = await second('r1@localhost', cwd('r'));
    assert.equal(dup.code, 73, dup.stderr);
    assert.match(dup.stderr, new RegExp(`A node named r1@localhost is already using this broker \\(pid 1 on not-${hostname()}, `));
    await redis.pexpire('_asynx.node.r1@localhost', 1); // that machine stopped renewing
    const w = await start('r1@localhost', cwd('r'));
    workers.push(w);
    assert.deepEqual([(await claim('r1@localhost'))?.pid, (await claim('r1@localhost'))?.hostname], [w.pid, hostname()]);
    assert.equal(await w.stop(), 0);
  });

  test('two workers with one name started at the same moment: exactly one runs, the other exits 73', { timeout: 60_000 }, async () => {
    const spawnOne = (dir: string) =>
      spawnProcess(process.execPath, [BIN, 'worker', '-A', FIXTURE_APP, '-l', 'info', '-n', 'race@localhost', '-c', '1', '--pidfile', join(dir, 'w.pid')], { cwd: dir, env: { ...process.env, NO_COLOR: '1', ASYNX_BROKER_URL: brokerUrl } });
    const both = [spawnOne(cwd('race-a')), spawnOne(cwd('race-b'))];
    try {
      const loser = await Promise.race(both.map((p) => p.exited.then(() => p)));
      assert.equal(await loser.exited, 73, loser.output());
      assert.match(loser.output(), /A node named race@localhost is already using this broker/);
      const winner = both.find((p) => p !== loser)!;
      await waitFor('the other node ready', () => winner.isDone() || / ready\.$/m.test(winner.output()), 20_000);
      assert.equal(winner.isDone(), false, winner.output());
      assert.equal(await winner.stop('SIGTERM', 20_000), 0);
    } finally {
      await Promise.all(both.map((p) => p.stop('SIGKILL', 10_000).catch(() => undefined)));
    }
  });

  test('in one process: a second Worker with the same name rejects with asynx.worker.duplicateNode', { timeout: 60_000 }, async () => {
    const opts = { appUrl: pathToFileURL(FIXTURE_APP).href, concurrency: 1, nodeName: 'same@proc', childEnv: { ASYNX_BROKER_URL: brokerUrl } };
    const first = new Worker(new Asynx({ brokerUrl, configFile: false }), opts);
    const twin = new Worker(new Asynx({ brokerUrl, configFile: false }), opts);
    try {
      await first.start();
      await assert.rejects(twin.start(), (err: unknown) => err instanceof AsynxError && err.code === 'asynx.worker.duplicateNode' && err.exitCode === 73 && /same@proc/.test(err.message));
      assert.equal(twin.state, 'failed');
      assert.equal(first.state, 'running');
    } finally {
      await Promise.all([first.stop(), twin.stop()]);
    }
    const later = new Worker(new Asynx({ brokerUrl, configFile: false }), opts);
    await later.start();
    await later.stop();
  });
});
