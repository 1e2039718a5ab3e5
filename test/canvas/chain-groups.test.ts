// A group inside a chain (upgraded to a chord, as Celery does) and options on later steps, chord bodies and
// callbacks, with real workers on the SQLite broker: one consuming `celery`, one only `other` and `routed`.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Asynx, ChordError, RemoteTaskError, chain, chord, group, isAsynxError } from '../../src/index.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { CANVAS_APP, canvasTasks } from '../helpers/canvas.js';

const tmp = tempDir('asynx-chain-groups-');
const db = join(tmp.dir, 'g.db');
const brokerUrl = `sqlite://${db}`;
let w1: RunningWorker;
let w2: RunningWorker;
let client: Asynx;
let t: ReturnType<typeof tasks>;

function tasks(app: Asynx) {
  return {
    ...canvasTasks(app),
    where: app.task('c.where', (acc: string[]) => acc),
    routed: app.task('c.routed', (acc: string[]) => acc, { queue: 'routed' }),
  };
}

/** Messages waiting in a queue no worker consumes: what the worker published, as it published it. */
function parked(queue: string): Array<{ priority: number; headers: Record<string, unknown>; visibleAt: number; createdAt: number }> {
  const d = new Database(db, { readonly: true });
  try {
    const rows = d.prepare('SELECT priority, headers, visible_at, created_at FROM messages WHERE queue = ? ORDER BY id').all(queue) as Array<{ priority: number; headers: string; visible_at: number; created_at: number }>;
    return rows.map((r) => ({ priority: r.priority, headers: JSON.parse(r.headers) as Record<string, unknown>, visibleAt: r.visible_at, createdAt: r.created_at }));
  } finally {
    d.close();
  }
}

before(async () => {
  w1 = await startWorker({ brokerUrl, app: CANVAS_APP, args: ['-n', 'w1@localhost', '-c', '2', '-Q', 'celery'] });
  w2 = await startWorker({ brokerUrl, app: CANVAS_APP, args: ['-n', 'w2@localhost', '-c', '1', '-Q', 'other,routed'] });
  client = new Asynx({ brokerUrl, configFile: false });
  t = tasks(client);
});
after(async () => {
  await client.close();
  const codes = [await w1.stop('SIGTERM'), await w2.stop('SIGTERM')];
  tmp.cleanup();
  assert.deepEqual(codes, [0, 0], 'warm shutdowns exit 0');
});

describe('a group inside a chain', () => {
  it('group followed by a task becomes a chord: each member gets the previous result, the task gets the list', async () => {
    const r = await chain(t.add.s(1, 2), group([t.mul.s(10), t.add.s(1)]), t.tsum.s()).applyAsync();
    assert.equal(await r.get({ timeout: 20 }), 34, '(3 * 10) + (3 + 1)');
    // Steps after the chord ride on its body; a chord may come first, or be given as chord().
    assert.equal(await (await chain(t.add.s(1, 2), group([t.mul.s(10), t.add.s(1)]), t.tsum.s(), t.mul.s(2)).applyAsync()).get({ timeout: 20 }), 68);
    assert.equal(await (await chain(group([t.add.s(1, 1), t.add.s(2, 2)]), t.tsum.s(), t.mul.s(3)).applyAsync()).get({ timeout: 20 }), 18);
    assert.equal(await (await chain(t.add.s(1, 1), chord([t.mul.s(3), t.mul.s(4)], t.tsum.s())).delay()).get({ timeout: 20 }), 14);
    assert.deepEqual(await (await chain(t.add.s(1, 1), group([t.mul.s(3), t.mul.s(4)]), t.collect.s(join(tmp.dir, 'b')), t.tsum.s(), group([t.add.s(1), t.add.s(2)]), t.tsum.s()).delay()).get({ timeout: 30 }), 31, 'two chords in one chain: (6+8+1) + (6+8+2)');
  });

  it('on the wire: Celery\'s chord dict in embed.chain (subtask_type chord, kwargs header/body), ids frozen', async () => {
    const r = await chain(t.add.s(1, 2), group([t.mul.s(10), t.add.s(1)]), t.tsum.s()).applyAsync({ queue: 'wire' });
    const d = new Database(db, { readonly: true });
    try {
      const row = d.prepare("SELECT body FROM messages WHERE queue = 'wire'").get() as { body: string };
      const [, , embed] = JSON.parse(row.body) as [unknown, unknown, { chain: Array<Record<string, any>> }];
      assert.equal(embed.chain.length, 1);
      const step = embed.chain[0]!;
      assert.equal(step.subtask_type, 'chord');
      assert.equal(step.task, 'celery.chord');
      assert.deepEqual(Object.keys(step.kwargs).sort(), ['body', 'header', 'kwargs']);
      assert.equal(step.kwargs.header.subtask_type, 'group');
      assert.deepEqual(step.kwargs.header.kwargs.tasks.map((m: any) => m.task), ['c.mul', 'c.add']);
      assert.equal(step.kwargs.header.options.task_id, step.options.task_id, 'the header\'s group id is frozen');
      assert.equal(step.kwargs.body.task, 'c.tsum');
      assert.equal(step.kwargs.body.options.task_id, r.id, 'the chain\'s result is the chord body');
    } finally {
      d.close();
    }
  });

  it('a failing step before the chord fails the chain\'s result; a failing member fails the body and the steps after it', async () => {
    const r = await chain(t.fail.s(1), group([t.add.s(1)]), t.tsum.s()).applyAsync();
    const err = await r.get({ timeout: 20 }).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof RemoteTaskError, String(err));
    assert.equal(err.message, 'bad 1');
    const r2 = await chain(t.add.s(1, 1), group([t.fail.s(), t.add.s(1)]), t.tsum.s(), t.mul.s(2)).applyAsync();
    const err2 = await r2.get({ timeout: 20 }).then(() => null, (e: unknown) => e);
    assert.ok(err2 instanceof ChordError, String(err2));
    assert.match(err2.message, /^Dependency \S+ raised ValueError\('bad 2'\)$/);
  });

  it('a group as the last step is refused with what to use instead; so is dedupe on a step a worker sends', async () => {
    const sent = () => (new Database(db, { readonly: true }).prepare('SELECT COUNT(*) AS n FROM messages').get() as { n: number }).n;
    const before = sent();
    await assert.rejects(chain(t.add.s(1, 1), group([t.add.s(1), t.add.s(2)])).applyAsync(), (e: unknown) => isAsynxError(e) && e.code === 'asynx.canvas.groupLast' && /end the chain with a task that takes the list/.test(e.message));
    assert.equal(sent(), before, 'nothing was sent');
    assert.throws(() => chain(t.add.s(1, 1), t.add.s(1).set({ dedupeKey: 'k' })), (e: unknown) => isAsynxError(e) && e.code === 'asynx.call.dedupeNotCarried');
    assert.throws(() => chord([t.add.s(1, 1)], t.tsum.s().set({ dedupe: true, taskId: 'x' })), (e: unknown) => isAsynxError(e) && e.code === 'asynx.call.dedupeNotCarried');
  });
});

it('eager mode runs a group inside a chain as a chord, in-process', async () => {
  const app = new Asynx({ eager: true, configFile: false });
  try {
    const add = app.task('e.add', (a: number, b: number) => a + b);
    const tsum = app.task('e.tsum', (xs: number[]) => xs.reduce((x, y) => x + y, 0));
    assert.equal(await (await chain(add.s(1, 2), group([add.s(10), add.s(20)]), tsum.s(), add.s(1)).applyAsync()).get(), 37);
  } finally {
    await app.close();
  }
});

describe('options on steps the worker sends', () => {
  it('a later chain step with queue runs on the worker of that queue; a task defined with a queue goes there too', async () => {
    const r = await chain(t.where.s([]), t.where.s().set({ queue: 'other' }), t.where.s()).applyAsync();
    assert.deepEqual(await r.get({ timeout: 20 }), ['w1@localhost', 'w2@localhost', 'w1@localhost']);
    // c.routed is defined with { queue: 'routed' } (on both sides): the worker routes it as the app would.
    assert.deepEqual(await (await chain(t.where.s([]), t.routed.s()).applyAsync()).get({ timeout: 20 }), ['w1@localhost', 'routed@w2@localhost']);
  });

  it('link and linkError callbacks with queue and priority; a chord body with countdown, priority and a rate limit', async () => {
    const cb = t.where.s().set({ queue: 'other', priority: 5 }).freeze();
    await (await t.where.applyAsync({ args: [[]], link: cb })).get({ timeout: 20 });
    assert.deepEqual(await client.AsyncResult(cb.id!).get({ timeout: 20 }), ['w1@localhost', 'w2@localhost']);
    const eb = t.where.si([]).set({ queue: 'other' }).freeze();
    await t.fail.applyAsync({ args: [1], linkError: eb });
    assert.deepEqual(await client.AsyncResult(eb.id!).get({ timeout: 20 }), ['w2@localhost']);
    // Sent to queues no worker consumes, to read the messages as the worker published them.
    await t.add.applyAsync({ args: [1, 1], link: t.mul.s(3).set({ queue: 'parked-link', priority: 4, expires: 600 }) });
    await chord([t.add.s(1, 1), t.add.s(2, 2)], t.tsum.s().set({ queue: 'parked-body', countdown: 30, priority: 3, timeLimit: '9s' })).applyAsync();
    await chain(t.add.s(1, 1), t.mul.s(2).set({ queue: 'parked-step', rateLimit: '2/m', softTimeLimit: 8 })).applyAsync();
    await waitFor('the three parked messages', () => parked('parked-link').length + parked('parked-body').length + parked('parked-step').length === 3, 20_000);
    const [link] = parked('parked-link');
    assert.equal(link!.priority, 4);
    assert.ok(typeof link!.headers.expires === 'string', 'expires set');
    const [body] = parked('parked-body');
    assert.equal(body!.priority, 3);
    assert.ok(body!.visibleAt - body!.createdAt >= 29_000, `countdown: visible ${body!.visibleAt - body!.createdAt} ms after the publish`);
    assert.ok(typeof body!.headers.eta === 'string');
    assert.deepEqual(body!.headers.timelimit, [9, null]);
    const [step] = parked('parked-step');
    assert.deepEqual(step!.headers.asynx_rate_limit, { rate: '2/m', global: false }, 'the per-call rate limit rides along');
    assert.deepEqual(step!.headers.timelimit, [null, 8]);
  });
});
