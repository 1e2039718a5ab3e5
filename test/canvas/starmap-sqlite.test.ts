// starmap and chunks on the SQLite broker: one celery.starmap message per starmap / per chunk, run by the
// worker built-ins celery.starmap and celery.chunks in a real worker process.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Asynx, GroupResult, RemoteTaskError } from '../../src/index.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { CANVAS_APP, canvasTasks } from '../helpers/canvas.js';

const bare = (task: string) => ({ task, args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false });

describe('starmap / chunks: messages on the wire (no worker)', () => {
  const tmp = tempDir('asynx-starmap-wire-');
  const db = join(tmp.dir, 'wire.db');
  const client = new Asynx({ brokerUrl: `sqlite://${db}`, configFile: false });
  const t = canvasTasks(client);
  after(async () => {
    await client.close();
    tmp.cleanup();
  });
  const queued = (queue: string) => {
    const d = new Database(db, { readonly: true });
    try {
      return (d.prepare('SELECT headers, body FROM messages WHERE queue = ? ORDER BY id').all(queue) as Array<{ headers: string; body: string }>).map((r) => ({
        headers: JSON.parse(r.headers) as Record<string, unknown>,
        body: JSON.parse(r.body) as [unknown[], Record<string, unknown>, Record<string, unknown>],
      }));
    } finally {
      d.close();
    }
  };

  it('starmap is ONE celery.starmap message with kwargs {task, it}; chunks is a group of celery.starmap messages of n items', async () => {
    const r = await t.add.starmap([[2, 2], [4, 4]]).applyAsync({ queue: 'wire-starmap' });
    const [m, ...more] = queued('wire-starmap');
    assert.equal(more.length, 0, 'one message for every call');
    assert.equal(m!.headers.task, 'celery.starmap');
    assert.equal(m!.headers.id, r.id);
    assert.deepEqual(m!.body[0], []);
    assert.deepEqual(m!.body[1], { task: bare('c.add'), it: [[2, 2], [4, 4]] });

    const g = await t.add.chunks([[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]], 2).applyAsync({ queue: 'wire-chunks' });
    const parts = queued('wire-chunks');
    assert.deepEqual(parts.map((p) => p.headers.task), ['celery.starmap', 'celery.starmap', 'celery.starmap']);
    assert.deepEqual(parts.map((p) => p.body[1].it), [[[1, 1], [2, 2]], [[3, 3], [4, 4]], [[5, 5]]]);
    assert.deepEqual(parts.map((p) => p.headers.group), [g.id, g.id, g.id]);
    assert.deepEqual(parts.map((p) => p.headers.id), g.results.map((x) => x.id));
    // Routed as the inner task (Celery's route_name): its queue, not in the signature's options.
    const routed = client.task('c.routed', (x: number) => x, { queue: 'wire-routed' });
    assert.deepEqual(routed.starmap([[1]]).toJSON().options, {});
    await routed.starmap([[1]]).applyAsync();
    await routed.chunks([[1], [2]], 1).applyAsync();
    assert.deepEqual(queued('wire-routed').map((p) => p.body[1].it), [[[1]], [[1]], [[2]]]);
    assert.throws(() => t.add.chunks([[1, 1]], 0), /n must be an integer ≥ 1/);
    // @ts-expect-error each item is an argument list
    assert.throws(() => t.add.starmap([1, 2]), /every item of argLists must be an array/);
  });
});

it('eager mode runs starmap, chunks and celery.chunks in-process', async () => {
  const app = new Asynx({ eager: true, configFile: false });
  try {
    const add = app.task('e.add', (x: number, y: number) => x + y);
    assert.deepEqual(await (await add.starmap([[1, 2], [3, 4]]).applyAsync()).get(), [3, 7]);
    assert.deepEqual(await (await add.chunks([[1, 2], [3, 4], [5, 6]], 2).applyAsync()).get(), [[3, 7], [11]]);
    const tuple = await (await add.chunks([[1, 1]], 1).signature().applyAsync()).get();
    assert.deepEqual(await GroupResult.fromTuple(app, tuple).get(), [[2]]);
  } finally {
    await app.close();
  }
});

describe('starmap / chunks run by a worker (SQLite, prefork)', () => {
  const tmp = tempDir('asynx-starmap-');
  const brokerUrl = `sqlite://${join(tmp.dir, 's.db')}`;
  let worker: RunningWorker;
  const client = new Asynx({ brokerUrl, configFile: false });
  const t = canvasTasks(client);
  before(async () => {
    worker = await startWorker({ brokerUrl, app: CANVAS_APP, args: ['-c', '2'] });
  });
  after(async () => {
    await client.close();
    await worker?.stop();
    tmp.cleanup();
  });

  it('starmap gives the list of results (R[]), an empty starmap []; the inner calls see currentTask()', async () => {
    const r = await t.add.starmap([[1, 2], [3, 4], [5, 6]]).applyAsync();
    assert.deepEqual(await r.get({ timeout: 20 }), [3, 7, 11]);
    assert.deepEqual(await (await t.add.starmap([]).delay()).get({ timeout: 20 }), []);
    // c.collect notes "body <n> <currentTask().id>": inline, the id is the starmap's own.
    const file = join(tmp.dir, 'inline');
    const c = await t.collect.starmap([[[1, 2], file], [[3], file]]).applyAsync();
    assert.deepEqual(await c.get({ timeout: 20 }), [[1, 2], [3]]);
    assert.deepEqual(readFileSync(file, 'utf8').trim().split('\n'), [`body 2 ${c.id}`, `body 1 ${c.id}`]);
  });

  it('chunks: a GroupResult whose get() gives one list per chunk (R[][]); group() is the group of starmaps', async () => {
    const argLists: Array<[number, number]> = [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]];
    const g = await t.add.chunks(argLists, 2).applyAsync();
    assert.deepEqual(await g.get({ timeout: 20 }), [[2, 4], [6, 8], [10]]);
    const grp = t.mul.chunks(argLists, 3).group();
    assert.deepEqual(grp.tasks.map((s) => [s.task, s.kwargs.it]), [['celery.starmap', [[1, 1], [2, 2], [3, 3]]], ['celery.starmap', [[4, 4], [5, 5]]]]);
    assert.deepEqual(await (await grp.applyAsync()).get({ timeout: 20 }), [[1, 4, 9], [16, 25]]);
  });

  it('a failing call fails the starmap with its error; an inner task the worker does not know fails with NotRegistered (no hang)', async () => {
    const f = await t.fail.starmap([[7]]).applyAsync();
    await waitFor('the starmap ends', async () => (await f.state()) === 'FAILURE', 20_000);
    const err = await f.get({ timeout: 20 }).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof RemoteTaskError, String(err));
    assert.equal(err.name, 'ValueError');
    assert.match(err.message, /bad 7/);
    const missing = client.task('c.missing', (x: number) => x);
    const m = await missing.starmap([[1]]).applyAsync();
    const merr = await m.get({ timeout: 20 }).then(() => null, (e: unknown) => e);
    assert.ok(merr instanceof RemoteTaskError, String(merr));
    assert.equal(merr.name, 'NotRegistered');
    assert.match(merr.message, /c\.missing/);
  });

  it('as Python sends them: celery.starmap with positional args; a bad call is a TypeError; celery.chunks splits and sends the group itself', async () => {
    const positional = await client.sendTask<number[]>('celery.starmap', [bare('c.add'), [[1, 1], [2, 3]]]);
    assert.deepEqual(await positional.get({ timeout: 20 }), [2, 5]);
    const bad = await client.sendTask('celery.starmap', [], { task: bare('c.add'), it: 5 });
    const berr = await bad.get({ timeout: 20 }).then(() => null, (e: unknown) => e);
    assert.ok(berr instanceof RemoteTaskError, String(berr));
    assert.equal(berr.name, 'TypeError');
    assert.match(berr.message, /'it' must be a list of argument lists/);

    const sig = t.add.chunks([[1, 2], [3, 4], [5, 6]], 2).signature();
    assert.deepEqual(sig.toJSON(), { task: 'celery.chunks', args: [], kwargs: { task: bare('c.add'), it: [[1, 2], [3, 4], [5, 6]], n: 2 }, options: {}, subtask_type: null, immutable: true });
    const r = await sig.applyAsync();
    const tuple = await r.get({ timeout: 20 });
    assert.equal(tuple[1].length, 2, 'the worker sent two chunks');
    const g = GroupResult.fromTuple<number[]>(client, tuple);
    assert.deepEqual(await g.get({ timeout: 20 }), [[3, 7], [11]]);
  });
});

describe('starmap / chunks on the in-process pool (-P async)', () => {
  const tmp = tempDir('asynx-starmap-async-');
  const brokerUrl = `sqlite://${join(tmp.dir, 'a.db')}`;
  let worker: RunningWorker;
  const client = new Asynx({ brokerUrl, configFile: false });
  const t = canvasTasks(client);
  before(async () => {
    worker = await startWorker({ brokerUrl, app: CANVAS_APP, args: ['-P', 'async', '-c', '4'] });
  });
  after(async () => {
    await client.close();
    await worker?.stop();
    tmp.cleanup();
  });

  it('the worker\'s own app runs celery.starmap and celery.chunks', async () => {
    assert.deepEqual(await (await t.mul.starmap([[2, 3], [4, 5]]).applyAsync()).get({ timeout: 20 }), [6, 20]);
    const tuple = await (await t.mul.chunks([[1, 2], [3, 4], [5, 6]], 2).signature().applyAsync()).get({ timeout: 20 });
    assert.deepEqual(await GroupResult.fromTuple(client, tuple).get({ timeout: 20 }), [[2, 12], [30]]);
  });
});
