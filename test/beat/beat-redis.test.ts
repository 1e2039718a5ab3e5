// Periodic tasks on Redis, real processes: two `asynx beat` elect one leader through the lease key
// `asynx.beat.leader` in the URL's db; each 1 s due time is sent and run once, the leader killed -9 is
// replaced within 5 s, and runs go on from the state in `asynx.beat.schedule`. A clean stop releases the key.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { Spawned } from '../helpers/process.js';
import { redisSkip, startRedis, type RedisServer } from '../helpers/redis.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { beat, leaderTimes, leadsNow, ledger, missingSeconds, repeated, sentLines, workerB } from './beat-helpers.js';

const skip = redisSkip();

describe('beat on Redis', { skip }, () => {
  let server: RedisServer;
  let redis: Redis;
  const tmp = tempDir('asynx-beat-redis-');
  const procs: Spawned[] = [];
  before(async () => {
    server = await startRedis();
    redis = new Redis({ host: server.host, port: server.port, db: 5, lazyConnect: true });
    await redis.connect();
  });
  after(async () => {
    for (const p of procs) if (!p.isDone()) await p.kill9().catch(() => undefined);
    redis?.disconnect();
    await server?.dispose();
    tmp.cleanup();
  });

  it('two beats: one leads; each due second runs once; kill -9 of the leader → the other sends within 5 s', { timeout: 120_000 }, async (t) => {
    const env = { ...process.env, NO_COLOR: '1', ASYNX_CONFIG: '', ASYNX_BROKER_URL: `${server.url}/5`, BEAT_LEDGER: join(tmp.dir, 'ledger'), BEAT_EVERY: '1', BEAT_CATCH_UP: 'all' };
    const worker = workerB(env, 'r1', []);
    procs.push(worker);
    const beats = [beat(env), beat(env)];
    procs.push(...beats);
    await waitFor('both beats ready', () => beats.every((b) => /ready\.$/m.test(b.output())), 60_000);
    await waitFor('five runs', () => ledger(env.BEAT_LEDGER).length >= 5, 60_000);
    const leader = beats.find(leadsNow);
    const other = beats.find((b) => b !== leader)!;
    assert.ok(leader && !leadsNow(other), beats.map((b) => b.output()).join('\n----\n'));
    assert.deepEqual(sentLines(other), [], 'the follower sent nothing');
    assert.match(String(await redis.get('asynx.beat.leader')), /^[^:]+:\d+:[0-9a-f]{8}$/, "the lease is a key in the URL's db");
    assert.ok(Number(await redis.hget('asynx.beat.schedule', 'ledger')) > 0, 'and so is the last-run state');

    await leader.kill9();
    const killedAt = Date.now();
    await waitFor('a send by the other beat', () => sentLines(other).length > 0, 30_000);
    const takeover = leaderTimes(other).at(-1)! - killedAt;
    assert.ok(takeover <= 5_000, `took over ${takeover} ms after the kill`);
    t.diagnostic(`takeover ${takeover} ms after the kill -9`);
    await sleep(4_000);
    assert.equal(await other.stop('SIGTERM', 20_000), 0, other.output());
    assert.equal(await redis.exists('asynx.beat.leader'), 0, 'a clean stop releases the lease');
    const sent = beats.flatMap(sentLines);
    await waitFor('the worker ran every sent run', () => ledger(env.BEAT_LEDGER).length >= sent.length, 30_000);
    assert.equal(await worker.stop('SIGTERM', 20_000), 0, worker.output());

    const dues = sent.map((s) => s.due);
    assert.deepEqual(repeated(dues), [], 'a due time sent twice');
    const ran = ledger(env.BEAT_LEDGER).map((r) => r.due);
    assert.deepEqual(repeated(ran), [], 'a due time run twice');
    assert.deepEqual([...ran].sort((a, b) => a - b), [...dues].sort((a, b) => a - b));
    // catchUp 'all' fills the takeover gap; a kill between a claim and its send may lose that one run.
    const missing = missingSeconds(dues, Math.min(...dues), Math.max(...dues));
    assert.ok(missing.length <= 1 && missing.every((m) => Math.abs(m - killedAt) < 3_000), `missing: ${missing.map((m) => new Date(m).toISOString()).join(', ')}`);
    const lastByOther = Math.max(...sentLines(other).map((s) => s.due));
    assert.ok(lastByOther - leaderTimes(other).at(-1)! >= 3_000, `the new leader went on sending: last due ${new Date(lastByOther).toISOString()}`);
  });
});
