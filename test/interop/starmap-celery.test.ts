// starmap and chunks across languages on RabbitMQ (rpc:// results): Python Celery sends add.starmap / add.chunks
// to asynx workers and reads the results; asynx sends them to a Python worker. Both run celery.chunks too.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Asynx, GroupResult } from '../../src/index.js';
import { celerySkip, runPython, startCeleryWorker } from '../helpers/celery.js';
import { rabbitSkip, startRabbit, type RabbitNode } from '../helpers/rabbitmq.js';
import { startWorker } from '../helpers/worker.js';
import { CANVAS_APP } from '../helpers/canvas.js';

const skip = rabbitSkip() || celerySkip();

async function pyCanvas(brokerUrl: string, spec: Record<string, unknown>): Promise<Record<string, unknown>> {
  const r = await runPython(['canvas_client.py', JSON.stringify(spec)], { brokerUrl, timeoutMs: 90_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.code !== 0 || !line.startsWith('{')) throw new Error(`Python canvas client failed (exit ${r.code}):\n${r.stderr.slice(-3000)}`);
  return JSON.parse(line) as Record<string, unknown>;
}

/** Celery's GroupResult.as_tuple() shape: [[gid, null], [[[id, null], null], …]]. */
function assertGroupTuple(v: unknown, members: number): void {
  assert.ok(Array.isArray(v) && v.length === 2, JSON.stringify(v));
  const [[gid, gparent], list] = v as [[unknown, unknown], unknown[]];
  assert.equal(typeof gid, 'string');
  assert.equal(gparent, null);
  assert.equal(list.length, members);
  for (const m of list as Array<[[unknown, unknown], unknown]>) {
    assert.equal(typeof m[0][0], 'string');
    assert.deepEqual([m[0][1], m[1]], [null, null]);
  }
}

describe('starmap / chunks interop with Python Celery', { skip }, () => {
  let node: RabbitNode;
  let app: Asynx;
  const stops: Array<() => Promise<unknown>> = [];
  const it: Array<[number, number]> = [[1, 1], [2, 2], [3, 3]];

  before(async () => {
    node = await startRabbit();
    // asynx also consumes Celery's default queue: the chunks a celery.chunks task sends go there, as in Celery.
    const js = await startWorker({ brokerUrl: node.url, app: CANVAS_APP, args: ['-n', 'js@localhost', '-c', '2', '-Q', 'js,celery'], env: { ASYNX_RESULT_BACKEND: 'rpc://' } });
    stops.push(() => js.stop('SIGTERM', 20_000));
    const py = await startCeleryWorker({ brokerUrl: node.url, app: 'canvas_capp', nodeName: 'py@localhost', queues: ['py'], concurrency: 1 });
    stops.push(() => py.stop());
    app = new Asynx({ configFile: false, brokerUrl: node.url, resultBackend: 'rpc://' });
    stops.push(() => app.close());
  });
  after(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await node?.dispose();
  });

  test('Python sends add.starmap and add.chunks to an asynx worker and reads the results', { timeout: 120_000 }, async () => {
    const s = await pyCanvas(node.url, { kind: 'starmap', queue: 'js', it });
    assert.deepEqual(s.value, [2, 4, 6]);
    const c = await pyCanvas(node.url, { kind: 'chunks', queue: 'js', it, n: 2 });
    assert.deepEqual(c.value, [[2, 4], [6]]);
  });

  test('Python sends a celery.chunks message to an asynx worker: it sends the chunks and stores the GroupResult as Celery does', { timeout: 120_000 }, async () => {
    const c = await pyCanvas(node.url, { kind: 'chunks_task', queue: 'js', it, n: 2 });
    assertGroupTuple(c.value, 2);
    assert.equal((c.members as string[]).length, 2, 'Python reads it with result_from_tuple');
  });

  test('asynx sends starmap, chunks and a celery.chunks signature to a Python worker', { timeout: 120_000 }, async () => {
    const add = app.task('cv.add', (x: number, y: number) => x + y);
    const s = await add.starmap(it).applyAsync({ queue: 'py' });
    assert.deepEqual(await s.get({ timeout: 60 }), [2, 4, 6]);
    const g = await add.chunks(it, 2).applyAsync({ queue: 'py' });
    assert.deepEqual(await g.get({ timeout: 60 }), [[2, 4], [6]]);
    const t = await add.chunks(it, 2).signature().applyAsync({ queue: 'py' });
    const tuple = await t.get({ timeout: 60 });
    assertGroupTuple(tuple, 2);
    assert.equal(GroupResult.fromTuple(app, tuple).results.length, 2);
  });
});
