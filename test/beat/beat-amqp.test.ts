// Periodic tasks on RabbitMQ, real processes: two `asynx beat` elect one leader through a single-active-consumer
// queue; the leader killed -9 is replaced within 5 s and no due time is sent twice. Each beat has its own schedule
// file (as on two hosts): the new leader starts from the state the old one mirrored to RabbitMQ.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { Spawned } from '../helpers/process.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { beat, leaderTimes, leadsNow, ledger, missingSeconds, repeated, sentLines, workerB } from './beat-helpers.js';

const skip = rabbitSkip();

describe('beat on RabbitMQ', { skip }, () => {
  let rabbit: RabbitNode;
  const tmp = tempDir('asynx-beat-amqp-');
  const procs: Spawned[] = [];
  before(async () => {
    rabbit = await startRabbit();
  });
  after(async () => {
    for (const p of procs) if (!p.isDone()) await p.kill9().catch(() => undefined);
    await rabbit?.dispose();
    tmp.cleanup();
  });

  it('two beats: one leads; kill -9 of the leader → the other sends within 5 s, no due time twice', { timeout: 150_000 }, async () => {
    const env = { ...process.env, NO_COLOR: '1', ASYNX_CONFIG: '', ASYNX_BROKER_URL: rabbit.url, BEAT_LEDGER: join(tmp.dir, 'ledger'), BEAT_EVERY: '1', BEAT_CATCH_UP: 'all' };
    const host = (n: number) => ['--schedule-file', join(tmp.dir, `host${n}.json`)];
    const worker = workerB(env, 'r1', []);
    procs.push(worker);
    // Beat 2 leads alone first, so that its own file is stale once beat 1 has led after it.
    const early = beat(env, host(2));
    procs.push(early);
    await waitFor('three runs by beat 2', () => sentLines(early).length >= 3, 60_000);
    assert.equal(await early.stop('SIGTERM', 20_000), 0, early.output());
    const leader = beat(env, host(1));
    procs.push(leader);
    await waitFor('beat 1 leads', () => leadsNow(leader), 60_000);
    const other = beat(env, host(2));
    procs.push(other);
    await waitFor('beat 2 ready', () => /ready\.$/m.test(other.output()), 60_000);
    await waitFor('five runs by beat 1', () => sentLines(leader).length >= 5, 60_000);
    assert.ok(leadsNow(leader) && !leadsNow(other), [leader.output(), other.output()].join('\n----\n'));
    assert.deepEqual(sentLines(other), [], 'the follower sent nothing');
    await leader.kill9();
    const killedAt = Date.now();
    await waitFor('a send by the other beat', () => sentLines(other).length > 0, 30_000);
    const takeover = leaderTimes(other).at(-1)! - killedAt;
    assert.ok(takeover <= 5_000, `took over ${takeover} ms after the kill`);
    await sleep(4_000);
    assert.equal(await other.stop('SIGTERM', 20_000), 0, other.output());
    const sent = [early, leader, other].flatMap(sentLines);
    await waitFor('the worker ran every sent run', () => ledger(env.BEAT_LEDGER).length >= sent.length, 30_000);
    assert.equal(await worker.stop('SIGTERM', 20_000), 0, worker.output());

    // Beat 2's file stopped at its first lead: without the state mirrored to RabbitMQ, catchUp 'all' would
    // re-send everything beat 1 sent since. With it, each due time is sent once.
    const dues = sent.map((s) => s.due);
    assert.deepEqual(repeated(dues), [], 'a due time sent twice');
    const ran = ledger(env.BEAT_LEDGER).map((r) => r.due);
    assert.deepEqual(repeated(ran), [], 'a due time run twice');
    assert.deepEqual([...ran].sort((a, b) => a - b), [...dues].sort((a, b) => a - b));
    // catchUp 'all' also fills the gap while no beat ran; a kill between a claim and its send may lose one run.
    const missing = missingSeconds(dues, Math.min(...dues), Math.max(...dues));
    assert.ok(missing.length <= 1, `missing: ${missing.map((m) => new Date(m).toISOString()).join(', ')}`);
  });
});
