// Canvas with RabbitMQ as the broker: chains, groups and chords with the SQLite result backend; rpc:// refuses chords.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Asynx, ChordError, ChordsUnsupportedError, chain, chord, group } from '../../src/index.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { CANVAS_APP, canvasTasks } from '../helpers/canvas.js';

const skip = rabbitSkip();
const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

describe('canvas on RabbitMQ', { skip }, () => {
  const tmp = tempDir();
  const resultBackend = `sqlite://${join(tmp.dir, 'results.db')}`;
  let node: RabbitNode;
  let worker: RunningWorker;
  let rpcWorker: RunningWorker;
  let client: Asynx;
  let rpc: Asynx;
  let t: ReturnType<typeof canvasTasks>;

  before(async () => {
    node = await startRabbit();
    worker = await startWorker({ brokerUrl: node.url, app: CANVAS_APP, args: ['-c', '2'], env: { ASYNX_RESULT_BACKEND: resultBackend } });
    // A worker's result backend decides where results go: one worker per backend, the rpc one on its own queue.
    rpcWorker = await startWorker({ brokerUrl: node.url, app: CANVAS_APP, args: ['-c', '2', '-Q', 'rpcq', '-n', 'rpc@%h'], env: { ASYNX_RESULT_BACKEND: 'rpc://' } });
    client = new Asynx({ brokerUrl: node.url, resultBackend, configFile: false });
    rpc = new Asynx({ brokerUrl: node.url, resultBackend: 'rpc://', configFile: false });
    t = canvasTasks(client);
  });
  after(async () => {
    await client?.close();
    await rpc?.close();
    const code = await worker?.stop('SIGTERM');
    const rpcCode = await rpcWorker?.stop('SIGTERM');
    await node?.dispose();
    tmp.cleanup();
    assert.equal(code, 0, 'warm shutdown exits 0');
    assert.equal(rpcCode, 0, 'warm shutdown exits 0');
  });

  it('SQLite results: a chain gives the final value; a failing step rejects the chain result', async () => {
    assert.equal(await (await chain(t.add.s(1, 2), t.mul.s(10), t.add.s(5)).applyAsync()).get({ timeout: 30 }), 35);
    const bad = await chain(t.add.s(1, 2), t.fail.s(), t.add.s(1)).applyAsync();
    await assert.rejects(bad.get({ timeout: 30 }), (e: Error) => e.name === 'ValueError' && e.message === 'bad 3');
  });

  it('SQLite results: a group, saved and restored', async () => {
    const g = await group([t.add.s(1, 1), t.add.s(2, 2), t.add.s(3, 3)]).applyAsync();
    assert.deepEqual(await g.get({ timeout: 30 }), [2, 4, 6]);
    await g.save();
    const { GroupResult } = await import('../../src/index.js');
    const back = await GroupResult.restore<number>(client, g.id);
    assert.deepEqual(await back!.get({ timeout: 5 }), [2, 4, 6]);
  });

  it('SQLite results: a chord of 20 runs its body once; a failing member gives ChordError and runs linkError', async () => {
    const bodyFile = join(tmp.dir, 'body');
    const r = await chord(Array.from({ length: 20 }, (_, i) => t.add.s(i, 0)), t.collect.s(bodyFile)).applyAsync();
    assert.deepEqual(await r.get({ timeout: 30 }), Array.from({ length: 20 }, (_, i) => i));
    assert.equal(lines(bodyFile).length, 1);
    const errs = join(tmp.dir, 'errs');
    const failing = t.fail.s(9).freeze();
    const f = await chord([t.add.s(1, 1), failing], t.tsum.s()).applyAsync({ linkError: t.note.s(errs) });
    const err = await f.get({ timeout: 30 }).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof ChordError, String(err));
    assert.equal(err.message, `Dependency ${failing.id} raised ValueError('bad 9')`);
    await waitFor('the errback', () => lines(errs).length === 1, 30_000);
  });

  it('rpc://: chains and groups work; a chord is refused at call time with Celery\'s message', async () => {
    const rt = canvasTasks(rpc);
    const q = { queue: 'rpcq' };
    // Every step names the queue: a later step is sent by the worker, to its own options' queue.
    assert.equal(await (await chain(rt.add.s(1, 2).set(q), rt.mul.s(10).set(q)).applyAsync()).get({ timeout: 30 }), 30);
    assert.deepEqual(await (await group([rt.add.s(1, 1), rt.add.s(2, 2)]).applyAsync(q)).get({ timeout: 30 }), [2, 4]);
    const bad = await chain(rt.add.s(1, 2).set(q), rt.fail.s().set(q), rt.add.s(1).set(q)).applyAsync();
    await assert.rejects(bad.get({ timeout: 30 }), (e: Error) => e.name === 'ValueError');
    const err = await chord([rt.add.s(1, 1)], rt.tsum.s()).applyAsync().then(() => null, (e: unknown) => e);
    assert.ok(err instanceof ChordsUnsupportedError, String(err));
    assert.match(err.message, /^The "rpc" result backend does not support chords!/);
  });
});
