// `asynx dead` on RabbitMQ (private node): list leaves asynx.dead as it was (count and order), show,
// requeue (recorded queue, or -Q when none is recorded) to a worker that runs it, purge by queue and all.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import amqplib, { type ChannelModel, type GetMessage } from 'amqplib';
import { Asynx } from '../../src/index.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { runCli, startWorker, type RunningWorker } from '../helpers/worker.js';
import { tempDir, waitFor } from '../helpers/tmp.js';

const skip = rabbitSkip();
const FAULTS_APP = fileURLToPath(new URL('../fixtures/faults-app.mjs', import.meta.url));
const FIXED_APP = fileURLToPath(new URL('../fixtures/dead-letters-app.mjs', import.meta.url));
const DEAD = 'asynx.dead';

interface Row {
  id: string;
  queue: string | null;
  reason: string;
  taskId: string | null;
  task: string | null;
}

describe('asynx dead on RabbitMQ', { skip }, () => {
  let node: RabbitNode;
  let conn: ChannelModel;
  let client: Asynx;
  const workers: RunningWorker[] = [];
  const tmp = tempDir('asynx-dead-amqp-');
  before(async () => {
    node = await startRabbit();
    conn = await amqplib.connect(node.url);
    client = new Asynx({ configFile: false, brokerUrl: node.url, resultBackend: 'none' });
  });
  after(async () => {
    for (const w of workers) await w.stop().catch(() => undefined);
    await client?.close().catch(() => undefined);
    await conn?.close().catch(() => undefined);
    await node?.dispose();
    tmp.cleanup();
  });

  const deadCount = async (): Promise<number> => {
    const ch = await conn.createChannel();
    try {
      return (await ch.checkQueue(DEAD)).messageCount;
    } finally {
      await ch.close();
    }
  };

  /** A real task message, taken from a scratch queue and put straight into asynx.dead with `extra` headers. */
  const deadLetterByHand = async (word: string, file: string, extra: Record<string, unknown>): Promise<string> => {
    const r = await client.sendTask('d.fixed', [file, word], {}, { queue: 'scratch' });
    const ch = await conn.createChannel();
    try {
      const msg = (await waitFor('the scratch message', () => ch.get('scratch', { noAck: true }), 5_000)) as GetMessage;
      await ch.assertQueue(DEAD, { durable: true });
      ch.sendToQueue(DEAD, msg.content, { ...msg.properties, headers: { ...msg.properties.headers, ...extra } });
      await waitFor('it to reach asynx.dead', async () => (await ch.checkQueue(DEAD)).messageCount > 0, 5_000);
    } finally {
      await ch.close();
    }
    return r.id;
  };

  const list = async (): Promise<Row[]> => {
    const r = await runCli(['dead', 'list', '--json', '-b', node.url]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Row[];
  };

  test('list leaves the messages in place; show; requeue to a fixed worker; purge', { timeout: 180_000 }, async () => {
    const ran = join(tmp.dir, 'ran.txt');
    const ids: string[] = [];
    for (const w of ['w0', 'w1', 'w2']) ids.push((await client.sendTask('d.fixed', [ran, w], {}, { queue: 'dq' })).id);
    const broken = await startWorker({ brokerUrl: node.url, app: FAULTS_APP, args: ['-c', '1', '-Q', 'dq'], env: { ASYNX_RESULT_BACKEND: 'none' } });
    workers.push(broken);
    await waitFor('three unknown-task messages in asynx.dead', async () => (await deadCount()) === 3, 30_000, 100);
    assert.equal(await broken.stop(), 0);
    // One dead letter that records no original queue (as another tool would leave it).
    const rawId = await deadLetterByHand('raw', ran, { 'x-asynx-reason': 'by hand' });

    const before = await deadCount();
    assert.equal(before, 4);
    const first = await list();
    assert.equal(await deadCount(), before, 'list leaves every message in the queue');
    const second = await list();
    assert.deepEqual(second.map((r) => r.id), first.map((r) => r.id), 'and in the same order');
    assert.deepEqual(first.map((r) => r.id), [...ids, rawId], 'ids are task ids, oldest first');
    for (const r of first.slice(0, 3)) {
      assert.equal(r.queue, 'dq');
      assert.equal(r.task, 'd.fixed');
      assert.match(r.reason, /^asynx\.task\.notRegistered: /);
    }
    assert.equal(first[3]!.queue, null);
    assert.equal((JSON.parse((await runCli(['dead', 'list', '--json', '--limit', '2', '-b', node.url])).stdout) as Row[]).length, 2);
    assert.equal(await deadCount(), before);

    const shown = await runCli(['dead', 'show', ids[1]!, '--json', '-b', node.url]);
    assert.equal(shown.code, 0, shown.stderr);
    const detail = JSON.parse(shown.stdout) as Row & { argsRepr: string; headers: Record<string, unknown> };
    assert.equal(detail.taskId, ids[1]);
    assert.match(detail.argsRepr, /w1/);
    assert.equal(detail.headers['x-asynx-queue'], 'dq');
    const missing = await runCli(['dead', 'show', 'no-such-id', '-b', node.url]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No dead letter with id 'no-such-id'/);
    assert.equal(await deadCount(), before, 'show leaves every message in the queue');

    // No recorded queue and no -Q: a usage error, and nothing moves.
    const noQueue = await runCli(['dead', 'requeue', rawId, '-b', node.url]);
    assert.equal(noQueue.code, 64);
    assert.match(noQueue.stderr, /does not record the queue it came from: give one with -Q/);
    assert.equal(await deadCount(), before);

    const fixed = await startWorker({ brokerUrl: node.url, app: FIXED_APP, args: ['-c', '1', '-Q', 'dq'], env: { ASYNX_RESULT_BACKEND: 'none' } });
    workers.push(fixed);
    const one = await runCli(['dead', 'requeue', ids[0]!, '-b', node.url]);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, new RegExp(`Requeued ${ids[0]} to dq\\.`));
    await waitFor('w0 to run', () => existsSync(ran) && readFileSync(ran, 'utf8') === 'w0\n', 20_000, 100);
    assert.equal(await deadCount(), 3);
    assert.deepEqual((await list()).map((r) => r.id), [ids[1], ids[2], rawId], 'the rest stay, in order');

    const all = await runCli(['dead', 'requeue', '--all', '-Q', 'dq', '-b', node.url]);
    assert.equal(all.code, 0, all.stderr);
    await waitFor('every requeued task to run', () => readFileSync(ran, 'utf8').split('\n').filter(Boolean).length === 4, 20_000, 100);
    assert.deepEqual(readFileSync(ran, 'utf8').split('\n').filter(Boolean).sort(), ['raw', 'w0', 'w1', 'w2']);
    assert.equal(await deadCount(), 0);
    assert.doesNotMatch(fixed.output(), /dead-letter/, 'requeued messages start with a fresh delivery count');
    assert.equal(await fixed.stop(), 0);

    // purge: by original queue, then everything.
    await deadLetterByHand('pa', ran, { 'x-asynx-reason': 'x', 'x-asynx-queue': 'qa' });
    await deadLetterByHand('pb', ran, { 'x-asynx-reason': 'x', 'x-asynx-queue': 'qb' });
    assert.equal((await runCli(['dead', 'purge', '-b', node.url])).code, 64);
    assert.equal(await deadCount(), 2);
    const pa = await runCli(['dead', 'purge', '-Q', 'qa', '--yes', '-b', node.url]);
    assert.match(pa.stdout, /Purged 1 dead letter\./);
    assert.deepEqual((await list()).map((r) => r.queue), ['qb']);
    const rest = await runCli(['dead', 'purge', '--yes', '-b', node.url]);
    assert.equal(rest.code, 0, rest.stderr);
    assert.equal(await deadCount(), 0);
  });

  test('an unreachable broker exits 69', async () => {
    const r = await runCli(['dead', 'list', '-b', 'amqp://guest:guest@127.0.0.1:1/'], { ASYNX_CONNECT_TIMEOUT: '1' });
    assert.equal(r.code, 69, r.stderr);
    assert.match(r.stderr, /not reachable/);
  });
});
