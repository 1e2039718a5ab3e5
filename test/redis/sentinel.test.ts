// Redis through Sentinel: the URL forms, and a worker that goes on consuming from the new master after a failover.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { resolveConfig } from '../../src/config.js';
import { Asynx, isAsynxError } from '../../src/index.js';
import { redisBackendOptions } from '../../src/results/redis-target.js';
import { parseRedisTarget } from '../../src/transports/redis-connection.js';
import { redact } from '../../src/util/redact.js';
import { redisSkip, startRedisSentinel, type RedisSentinelSet } from '../helpers/redis.js';
import { waitFor } from '../helpers/tmp.js';
import { runCli, startWorker, type RunningWorker } from '../helpers/worker.js';

describe('sentinel URLs', () => {
  test("redis+sentinel://, kombu's sentinel://…;sentinel://… and the result backend's form give one set of ioredis options", () => {
    const asynx = parseRedisTarget('redis+sentinel://:s3cret@10.0.0.1:26379,[::1]:26380,sentinel-c/2?master_name=mymaster&visibility_timeout=60');
    assert.deepEqual(asynx.options.sentinels, [{ host: '10.0.0.1', port: 26379 }, { host: '::1', port: 26380 }, { host: 'sentinel-c', port: 26379 }]);
    assert.equal(asynx.options.name, 'mymaster');
    assert.equal(asynx.options.db, 2);
    assert.equal(asynx.options.password, 's3cret');
    assert.equal(asynx.visibilityTimeoutMs, 60_000);
    const kombu = parseRedisTarget('sentinel://:s3cret@10.0.0.1:26379;sentinel://:s3cret@10.0.0.2:26380/2?master_name=mymaster&sentinel_password=sp');
    assert.deepEqual(kombu.options.sentinels, [{ host: '10.0.0.1', port: 26379 }, { host: '10.0.0.2', port: 26380 }]);
    assert.deepEqual([kombu.options.name, kombu.options.db, kombu.options.password, kombu.options.sentinelPassword], ['mymaster', 2, 's3cret', 'sp']);
    const backend = redisBackendOptions('sentinel://10.0.0.1:26379/3;sentinel://10.0.0.2:26379/3?master_name=m&sentinelPassword=sp');
    assert.deepEqual([backend.name, backend.db, backend.sentinelPassword, backend.sentinels?.length], ['m', 3, 'sp', 2]);
    assert.equal(redact('sentinel://:pw1@h1:26379;sentinel://:pw2@h2/0?master_name=m&sentinel_password=pw3'), 'sentinel://:****@h1:26379;sentinel://:****@h2/0?master_name=m&sentinel_password=****');
    // With no resultBackend set, results go through the same sentinels, less the transport's visibility_timeout.
    assert.equal(resolveConfig({ brokerUrl: 'redis+sentinel://h1,h2:26380/4?master_name=m&visibility_timeout=60' }).resultBackend, 'redis+sentinel://h1,h2:26380/4?master_name=m');
    assert.equal(resolveConfig({ brokerUrl: 'sentinel://h1:26379/4?visibility_timeout=60;sentinel://h2:26379/4?master_name=m' }).resultBackend, 'sentinel://h1:26379/4;sentinel://h2:26379/4?master_name=m');
  });

  test('no master_name: a UsageError that says what to write; a bad part or option names itself', async () => {
    const noMaster = (err: unknown) => isAsynxError(err) && err.code === 'asynx.config.sentinelMasterName' && err.exitCode === 64 && /add \?master_name=<name>/.test(err.message) && /broker_transport_options/.test(err.message);
    assert.throws(() => parseRedisTarget('redis+sentinel://127.0.0.1:26379/0'), noMaster);
    assert.throws(() => redisBackendOptions('sentinel://127.0.0.1:26379;sentinel://127.0.0.1:26380/0'), noMaster);
    const bad = (what: RegExp) => (err: unknown) => isAsynxError(err) && err.code === 'asynx.config.badSentinelUrl' && what.test(err.message);
    assert.throws(() => parseRedisTarget('redis+sentinel://h:26379/0?master_name=m&ssl_cert_reqs=none'), bad(/option 'ssl_cert_reqs'/));
    assert.throws(() => redisBackendOptions('redis+sentinel://h:26379/0?master_name=m&visibility_timeout=5'), bad(/option 'visibility_timeout'/));
    assert.throws(() => parseRedisTarget('sentinel://h:26379/1;sentinel://h2:26379/2?master_name=m'), bad(/two different database numbers/));
    assert.throws(() => parseRedisTarget('redis+sentinel://h:99999/0?master_name=m'), bad(/port 99999/));
    // The CLI: exit 64 and the same advice, before any connection.
    const r = await runCli(['inspect', 'ping', '-b', 'redis+sentinel://127.0.0.1:1/0'], {}, 20_000);
    assert.equal(r.code, 64, r.stderr);
    assert.match(r.stderr, /names no master: add \?master_name=<name>/);
  });
});

const skip = redisSkip();

describe('a worker through Redis Sentinel', { skip }, () => {
  let set: RedisSentinelSet;
  let worker: RunningWorker | null = null;
  let client: Asynx | null = null;
  before(async () => {
    set = await startRedisSentinel();
  });
  after(async () => {
    await client?.close();
    await worker?.stop('SIGKILL', 10_000).catch(() => undefined);
    await set?.dispose();
  });

  /** celery-task-meta-<id> as stored on the server at `port` (db 0). */
  const metaOn = async (port: number, id: string): Promise<string | null> => {
    const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0 });
    r.on('error', () => undefined);
    try {
      await r.connect();
      return await r.get(`celery-task-meta-${id}`);
    } finally {
      r.disconnect();
    }
  };

  test('runs tasks with results over sentinel; after SENTINEL FAILOVER, and after a kill -9 of the new master, it consumes from the master that follows', { timeout: 60_000 }, async () => {
    const url = set.url(0);
    worker = await startWorker({ brokerUrl: url, args: ['-b', url, '--result-backend', url, '-n', 'sentinel@localhost', '-c', '1'] });
    client = new Asynx({ configFile: false, brokerUrl: url, resultBackend: url });
    const first = await client.sendTask('t.add', [1, 2]);
    assert.equal(await first.get({ timeout: 15 }), 3);
    assert.match((await metaOn(set.master.port, first.id)) ?? '', /"SUCCESS"/, 'the result is on the first master');
    // Remote control over sentinel: status names the node, stats reports kombu's sentinel transport.
    const status = await runCli(['status', '-b', url, '--timeout', '2'], {}, 30_000);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(status.stdout, '->  sentinel@localhost: OK\n\n1 node online.\n');
    const stats = await runCli(['inspect', 'stats', '-b', url, '-d', 'sentinel@localhost', '--json'], {}, 30_000);
    const broker = (JSON.parse(stats.stdout) as Record<string, { broker: Record<string, unknown> }>)['sentinel@localhost']!.broker;
    assert.deepEqual([broker.transport, broker.hostname, broker.port, broker.virtual_host, broker.transport_options], ['sentinel', '127.0.0.1', set.sentinel.port, '0', { master_name: 'm' }]);

    // The sentinel promotes the replica and tells its subscribers (+switch-master): every asynx connection,
    // the worker's and the client's, leaves the old master at once, long before the sentinel turns the old
    // master into a replica (about 10 s later), which until then would take and lose what is written there.
    const t0 = Date.now();
    const { from, to } = await set.failover();
    assert.equal(to, set.replica.port);
    const failoverMs = Date.now() - t0;
    await waitFor('every asynx connection to leave the old master', async () => !(await set.clientNames(from)).some((n) => n.startsWith('asynx')), 5_000, 50);
    const movedMs = Date.now() - t0;
    const second = await client.sendTask('t.add', [20, 22]);
    assert.equal(await second.get({ timeout: 20 }), 42, worker.output());
    const afterFailoverMs = Date.now() - t0;
    assert.match((await metaOn(to, second.id)) ?? '', /"SUCCESS"/, 'the result is on the promoted master');
    await set.waitReplica(from, to);

    // The promoted master dies without a word: the sentinel sees it down (1 s) and promotes the first one again.
    const t1 = Date.now();
    process.kill(set.replica.pid, 'SIGKILL');
    await set.waitMaster(set.master.port, 30_000);
    const third = await client.sendTask('t.add', [2, 3]);
    assert.equal(await third.get({ timeout: 20 }), 5, worker.output());
    const afterKillMs = Date.now() - t1;
    assert.match((await metaOn(set.master.port, third.id)) ?? '', /"SUCCESS"/);
    assert.equal(worker.proc.exitCode, null, 'the worker kept running through both failovers');
    assert.equal(await worker.stop(), 0, worker.output());
    worker = null;
    console.log(`# SENTINEL FAILOVER: promoted in ${failoverMs} ms, asynx off the old master at ${movedMs} ms, a task after it done at ${afterFailoverMs} ms; after kill -9 of the master ${afterKillMs} ms`);
  });
});
