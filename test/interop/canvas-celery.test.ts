// Canvas across languages on RabbitMQ (rpc:// results): chains alternating Python Celery and asynx steps, sent
// from Node and from Python; a group sent from Python, run by asynx workers, its GroupResult read in Python.
// A Python-built chain with a group inside (Celery's chord step) runs on asynx workers that own the result
// backend (sqlite://): rpc:// cannot count chords, and no backend is readable from both languages with chords.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Asynx, chain, group } from '../../src/index.js';
import { celerySkip, runPython, startCeleryWorker } from '../helpers/celery.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { startWorker } from '../helpers/worker.js';
import { CANVAS_APP } from '../helpers/canvas.js';
import { tempDir } from '../helpers/tmp.js';

const skip = rabbitSkip() || celerySkip();

/** Runs test/fixtures/py/canvas_client.py with a spec; its one JSON line. */
async function pyCanvas(brokerUrl: string, spec: Record<string, unknown>): Promise<Record<string, unknown>> {
  const r = await runPython(['canvas_client.py', JSON.stringify(spec)], { brokerUrl, timeoutMs: 90_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.code !== 0 || !line.startsWith('{')) throw new Error(`Python canvas client failed (exit ${r.code}):\n${r.stderr.slice(-3000)}`);
  return JSON.parse(line) as Record<string, unknown>;
}

describe('canvas interop with Python Celery', { skip }, () => {
  let node: RabbitNode;
  const stops: Array<() => Promise<unknown>> = [];
  const tmp = tempDir('asynx-canvas-interop-');
  const results = `sqlite://${join(tmp.dir, 'results.db')}`;

  before(async () => {
    node = await startRabbit();
    // One worker per language, each on its own queue: a step's queue option says which side runs it.
    const js = await startWorker({ brokerUrl: node.url, app: CANVAS_APP, args: ['-n', 'js@localhost', '-c', '2', '-Q', 'js'], env: { ASYNX_RESULT_BACKEND: 'rpc://' } });
    stops.push(() => js.stop('SIGTERM', 20_000));
    const py = await startCeleryWorker({ brokerUrl: node.url, app: 'canvas_capp', nodeName: 'py@localhost', queues: ['py'], concurrency: 1 });
    stops.push(() => py.stop());
    // Two asynx workers sharing a SQLite result backend (chords), each on its own queue.
    for (const q of ['jss', 'jss2']) {
      const w = await startWorker({ brokerUrl: node.url, app: CANVAS_APP, args: ['-n', `${q}@localhost`, '-c', '2', '-Q', q], env: { ASYNX_RESULT_BACKEND: results } });
      stops.push(() => w.stop('SIGTERM', 20_000));
    }
  });
  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await node?.dispose();
    tmp.cleanup();
  });

  test('a chain alternating asynx and Python steps, sent from Node, gives the last step\'s result in Node', { timeout: 120_000 }, async () => {
    const app = new Asynx({ configFile: false, brokerUrl: node.url, resultBackend: 'rpc://' });
    stops.push(() => app.close());
    // By name, as for a task defined in another service: app.sig(name, args, kwargs, options).
    const step = (args: unknown[], queue: string) => app.sig<string[]>('cv.step', args, {}, { queue });
    const r = await chain(step([[], 'a'], 'js'), step(['b'], 'py'), step(['c'], 'js'), step(['d'], 'py'), step(['e'], 'js')).applyAsync();
    assert.deepEqual(await r.get({ timeout: 60 }), ['a@js', 'b@py', 'c@js', 'd@py', 'e@js']);
  });

  test('a chain alternating Python and asynx steps, sent from Python, gives the result in Python', { timeout: 120_000 }, async () => {
    const out = await pyCanvas(node.url, { kind: 'chain', steps: [['a', 'py'], ['b', 'js'], ['c', 'py'], ['d', 'js']] });
    assert.deepEqual(out.value, ['a@py', 'b@js', 'c@py', 'd@js']);
  });

  test('a group sent from Python runs on asynx workers; Python reads its GroupResult', { timeout: 120_000 }, async () => {
    const tags = ['0', '1', '2', '3', '4', '5'];
    const out = await pyCanvas(node.url, { kind: 'group', queue: 'js', tags });
    assert.deepEqual(out.value, tags.map((t) => [`${t}@js`]), 'results in member order');
    assert.equal(out.ready, true);
    assert.equal(out.successful, true);
    assert.equal(out.completed, tags.length);
  });

  test('a chain a | group(b, c) | d built in Python (a chord step) runs on asynx workers; each step\'s .set(queue=…) is honoured', { timeout: 120_000 }, async () => {
    const out = await pyCanvas(node.url, { kind: 'chain_group', queues: ['jss', 'jss', 'jss2', 'jss2'] });
    const app = new Asynx({ configFile: false, brokerUrl: node.url, resultBackend: results });
    stops.push(() => app.close());
    // c.where appends the name of the worker that ran it: b and c got a's result, d got [b, c] (Celery's answer).
    assert.deepEqual(await app.AsyncResult(String(out.id)).get({ timeout: 60 }), [['jss@localhost', 'jss@localhost'], ['jss@localhost', 'jss2@localhost'], 'jss2@localhost']);
    const members = out.members as string[];
    assert.deepEqual(await Promise.all(members.map((id) => app.AsyncResult(id).get({ timeout: 10 }))), [['jss@localhost', 'jss@localhost'], ['jss@localhost', 'jss2@localhost']]);
  });

  test('a chain ending in a group, built in Python (a | group(b, c)), runs on asynx workers under the frozen ids', { timeout: 120_000 }, async () => {
    const out = await pyCanvas(node.url, { kind: 'chain_group_last', queues: ['jss2', 'jss', 'jss2'] });
    const app = new Asynx({ configFile: false, brokerUrl: node.url, resultBackend: results });
    stops.push(() => app.close());
    const members = out.members as string[];
    assert.deepEqual(await Promise.all(members.map((id) => app.AsyncResult(id).get({ timeout: 60 }))), [['jss2@localhost', 'jss@localhost'], ['jss2@localhost', 'jss2@localhost']]);
  });

  test('the chord step a Node chain embeds is a chord to Celery\'s own canvas (header members and body, ids frozen)', { timeout: 60_000 }, async () => {
    // Sent to a SQLite broker no worker reads, to take the embedded step from the message as published.
    const db = join(tmp.dir, 'wire.db');
    const app = new Asynx({ configFile: false, brokerUrl: `sqlite://${db}` });
    stops.push(() => app.close());
    const step = (tag: string) => app.sig('cv.step', [tag]);
    const r = await chain(app.sig('cv.step', [[], 'a']), group([step('b'), step('c')]), step('d')).applyAsync();
    const d = new Database(db, { readonly: true });
    const row = d.prepare('SELECT body FROM messages').get() as { body: string };
    d.close();
    const embedded = (JSON.parse(row.body) as [unknown, unknown, { chain: Array<Record<string, any>> }])[2].chain[0]!;
    const out = await pyCanvas(node.url, { kind: 'parse', sig: embedded });
    assert.equal(out.is_chord, true, `Celery reads it as ${String(out.type)}`);
    assert.deepEqual((out.members as unknown[][]).map((m) => m.slice(0, 2)), [['cv.step', ['b']], ['cv.step', ['c']]]);
    assert.deepEqual((out.members as unknown[][]).map((m) => m[2]), embedded.kwargs.header.kwargs.tasks.map((t: any) => t.options.task_id));
    assert.deepEqual(out.body, ['cv.step', r.id]);
  });
});
