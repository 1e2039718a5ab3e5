// `asynx dead` on Redis (private server, db 2): unknown-task and malformed messages that a worker rejects are in
// the asynx.dead list with queue, reason and time; list and show leave it as it was; requeue puts one (then
// all) back on its queue, where a fixed worker runs it; purge by queue and all; an unreachable Redis exits 69.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { Asynx } from '../../src/index.js';
import { redisSkip, startRedis, type RedisServer } from '../helpers/redis.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { runCli, startWorker, type RunningWorker } from '../helpers/worker.js';

const skip = redisSkip();
const FAULTS_APP = fileURLToPath(new URL('../fixtures/faults-app.mjs', import.meta.url));
const FIXED_APP = fileURLToPath(new URL('../fixtures/dead-letters-app.mjs', import.meta.url));
const DEAD = 'asynx.dead';

interface Row {
  id: string;
  queue: string | null;
  reason: string;
  deliveries: number | null;
  taskId: string | null;
  task: string | null;
  deadLetteredAt: string | null;
}

describe('asynx dead on Redis', { skip }, () => {
  let server: RedisServer;
  let url: string;
  let redis: Redis;
  let client: Asynx;
  const workers: RunningWorker[] = [];
  const tmp = tempDir('asynx-dead-redis-');
  before(async () => {
    server = await startRedis();
    url = `${server.url}/2`;
    redis = new Redis({ host: server.host, port: server.port, db: 2, lazyConnect: true });
    await redis.connect();
    client = new Asynx({ configFile: false, brokerUrl: url, resultBackend: 'none' });
  });
  after(async () => {
    for (const w of workers) await w.stop().catch(() => undefined);
    await client?.close().catch(() => undefined);
    redis?.disconnect();
    await server?.dispose();
    tmp.cleanup();
  });

  const list = async (...args: string[]): Promise<Row[]> => {
    const r = await runCli(['dead', 'list', '--json', ...args, '-b', url]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Row[];
  };
  const ranLines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

  test('rejected messages are listed, shown, requeued to a worker that runs them, and purged', { timeout: 120_000 }, async () => {
    const ran = join(tmp.dir, 'ran.txt');
    const ids: string[] = [];
    for (const w of ['w0', 'w1', 'w2']) ids.push((await client.sendTask('d.fixed', [ran, w], {}, { queue: 'dq' })).id);
    await redis.lpush('dq', 'not a kombu envelope');
    const broken = await startWorker({ brokerUrl: url, app: FAULTS_APP, args: ['-c', '1', '-Q', 'dq'], env: { ASYNX_RESULT_BACKEND: 'none' } });
    workers.push(broken);
    await waitFor('four rejected messages in asynx.dead', async () => (await redis.llen(DEAD)) === 4, 30_000, 100);
    assert.equal(await broken.stop(), 0);
    // One as a poison task leaves it (handed out 6 times): a requeue must reset the count, or maxDeliveries rejects it again.
    const poison = (await client.sendTask('d.fixed', [ran, 'w3'], {}, { queue: 'scratch' })).id;
    const e = JSON.parse((await redis.rpop('scratch'))!) as { headers: Record<string, unknown>; properties: Record<string, unknown> };
    e.properties.x_asynx_restores = 5;
    Object.assign(e.headers, { redelivered: true, 'x-asynx-reason': 'delivered 6 times', 'x-asynx-queue': 'dq', 'x-asynx-rejected-at': new Date().toISOString() });
    await redis.lpush(DEAD, JSON.stringify(e));

    const first = await list();
    assert.equal(await redis.llen(DEAD), 5, 'list leaves every item in the list');
    assert.deepEqual((await list()).map((r) => r.id), first.map((r) => r.id), 'in the same order');
    assert.deepEqual(first.slice(0, 3).map((r) => r.id), ids, 'ids are task ids, oldest first');
    for (const r of first.slice(0, 3)) {
      assert.equal(r.queue, 'dq');
      assert.equal(r.task, 'd.fixed');
      assert.equal(r.deliveries, 1);
      assert.match(r.reason, /^asynx\.task\.notRegistered: /);
      assert.ok(Date.now() - Date.parse(r.deadLetteredAt!) < 60_000, r.deadLetteredAt!);
    }
    const junk = first[3]!;
    assert.match(junk.id, /^sha-[0-9a-f]{12}$/);
    assert.equal(junk.queue, 'dq');
    assert.equal(junk.task, null);
    assert.match(junk.reason, /^asynx\.protocol\./);
    assert.equal(first[4]!.id, poison);
    assert.equal(first[4]!.deliveries, 6);
    assert.deepEqual((await list('--limit', '2')).map((r) => r.id), ids.slice(0, 2));
    assert.deepEqual(await list('-Q', 'other'), []);

    const shown = await runCli(['dead', 'show', ids[1]!, '--json', '-b', url]);
    assert.equal(shown.code, 0, shown.stderr);
    const detail = JSON.parse(shown.stdout) as Row & { argsRepr: string; headers: Record<string, unknown>; body: string };
    assert.equal(detail.taskId, ids[1]);
    assert.match(detail.argsRepr, /w1/);
    assert.equal(detail.headers['x-asynx-queue'], 'dq');
    assert.equal(JSON.parse(detail.body)[0][1], 'w1');
    const junkShown = JSON.parse((await runCli(['dead', 'show', junk.id, '--json', '-b', url])).stdout) as { body: string };
    assert.equal(junkShown.body, 'not a kombu envelope');
    const missing = await runCli(['dead', 'show', 'no-such-id', '-b', url]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No dead letter with id 'no-such-id'/);
    assert.equal(await redis.llen(DEAD), 5, 'show leaves every item in the list');

    const fixed = await startWorker({ brokerUrl: url, app: FIXED_APP, args: ['-c', '1', '-Q', 'dq'], env: { ASYNX_RESULT_BACKEND: 'none' } });
    workers.push(fixed);
    const one = await runCli(['dead', 'requeue', ids[0]!, '-b', url]);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, new RegExp(`Requeued ${ids[0]} to dq\\.`));
    await waitFor('w0 to run', () => ranLines(ran).join() === 'w0', 20_000, 100);
    assert.deepEqual((await list()).map((r) => r.id), [ids[1], ids[2], junk.id, poison], 'the rest stay, in order');

    const all = await runCli(['dead', 'requeue', '--all', '-b', url]);
    assert.equal(all.code, 0, all.stderr);
    assert.equal((all.stdout.match(/^Requeued /gm) ?? []).length, 4, all.stdout);
    await waitFor('w1, w2 and w3 to run', () => ranLines(ran).length === 4, 20_000, 100);
    assert.deepEqual(ranLines(ran).sort(), ['w0', 'w1', 'w2', 'w3']);
    assert.doesNotMatch(fixed.output(), /delivered \d+ times/, 'requeued messages start with a fresh delivery count');
    // The malformed one is still malformed: the fixed worker rejects it again, once.
    const again = await waitFor('the malformed message back in asynx.dead', async () => ((await redis.llen(DEAD)) === 1 ? list() : null), 20_000, 100);
    assert.equal(again[0]!.id.startsWith('sha-'), true);
    assert.equal(again[0]!.deliveries, 1);
    assert.equal(await fixed.stop(), 0);

    assert.equal((await runCli(['dead', 'purge', '-b', url])).code, 64, 'purge needs --yes');
    const other = await runCli(['dead', 'purge', '-Q', 'other', '--yes', '-b', url]);
    assert.match(other.stdout, /Purged 0 dead letters\./);
    const rest = await runCli(['dead', 'purge', '--yes', '-b', url]);
    assert.equal(rest.code, 0, rest.stderr);
    assert.match(rest.stdout, /Purged 1 dead letter\./);
    assert.equal(await redis.llen(DEAD), 0);
    assert.equal(await redis.llen('dq'), 0);
  });

  test('an unreachable Redis exits 69', async () => {
    const r = await runCli(['dead', 'list', '-b', 'redis://127.0.0.1:1/0'], { ASYNX_CONNECT_TIMEOUT: '1' });
    assert.equal(r.code, 69, r.stderr);
  });
});
