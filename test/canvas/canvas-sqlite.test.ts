// Canvas on the SQLite broker with real workers: signatures, chains, groups, chords (wire form and results).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Asynx, ChordError, ChordsUnsupportedError, GroupResult, RemoteTaskError, chain, chord, group } from '../../src/index.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { CANVAS_APP as APP, canvasTasks } from '../helpers/canvas.js';


const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

describe('canvas: wire form (no worker)', () => {
  const tmp = tempDir();
  const db = join(tmp.dir, 'wire.db');
  const client = new Asynx({ brokerUrl: `sqlite://${db}`, configFile: false });
  const t = canvasTasks(client);
  after(async () => {
    await client.close();
    tmp.cleanup();
  });
  const queued = (queue: string) =>
    (() => {
      const d = new Database(db, { readonly: true });
      try {
        return (d.prepare('SELECT headers, body FROM messages WHERE queue = ? ORDER BY id').all(queue) as Array<{ headers: string; body: string }>).map((r) => ({
          headers: JSON.parse(r.headers) as Record<string, unknown>,
          body: JSON.parse(r.body) as [unknown[], Record<string, unknown>, Record<string, unknown>],
        }));
      } finally {
        d.close();
      }
    })();

  it('a signature is exactly Celery\'s dict; set() adds options in Celery\'s names; si() is immutable', () => {
    assert.deepEqual(JSON.parse(JSON.stringify(t.add.s(2).set({ queue: 'q', countdown: '5s', priority: 3 }))), {
      task: 'c.add', args: [2], kwargs: {}, options: { queue: 'q', countdown: 5, priority: 3 }, subtask_type: null, immutable: false,
    });
    assert.deepEqual(t.add.si(1, 2).toJSON(), { task: 'c.add', args: [1, 2], kwargs: {}, options: {}, subtask_type: null, immutable: true });
    assert.throws(() => t.add.s(1).set({ priority: 300 }), /priority must be an integer 0\.\.255/);
    // A group followed by a group is not upgraded (Celery would make a chord with a group body): refused by name.
    assert.throws(() => chain(t.add.s(1, 1), group([t.add.s(1, 2)]), group([t.add.s(1, 2)])), /a group must be followed by a task signature/);
    // @ts-expect-error chain() needs a step
    assert.throws(() => chain(), /needs at least one signature/);
  });

  it('chain publishes only the first task, the rest in embed.chain reversed, ids assigned, the result is the last step', async () => {
    const r = await chain(t.add.s(1, 2), t.mul.s(10), t.add.si(5, 5)).applyAsync({ queue: 'wire-chain' });
    const msgs = queued('wire-chain');
    assert.equal(msgs.length, 1, 'only the first step is published');
    const [m] = msgs;
    assert.equal(m!.headers.task, 'c.add');
    assert.deepEqual(m!.body[0], [1, 2]);
    const steps = m!.body[2].chain as Array<{ task: string; args: unknown[]; options: Record<string, unknown>; immutable: boolean }>;
    assert.deepEqual(steps.map((s) => s.task), ['c.add', 'c.mul'], 'reversed: the next step is the last element');
    assert.equal(steps[0]!.immutable, true);
    assert.equal(steps[0]!.options.task_id, r.id, 'the chain result is the last step, id assigned before the publish');
    assert.equal(typeof steps[1]!.options.task_id, 'string');
    assert.equal(steps[1]!.options.root_id, m!.headers.id);
    assert.deepEqual(Object.keys(steps[1]!).sort(), ['args', 'immutable', 'kwargs', 'options', 'subtask_type', 'task']);
  });

  it('group members carry group and group_index headers; a chord member carries embed.chord = the body', async () => {
    const g = await group([t.add.s(1, 1), t.add.s(2, 2), t.add.s(3, 3)]).applyAsync({ queue: 'wire-group' });
    const ms = queued('wire-group');
    assert.deepEqual(ms.map((m) => [m.headers.group, m.headers.group_index]), [[g.id, 0], [g.id, 1], [g.id, 2]]);
    assert.deepEqual(ms.map((m) => m.headers.id), g.results.map((r) => r.id));
    const res = await chord([t.add.s(1, 1), t.add.s(2, 2)], t.tsum.s()).applyAsync({ queue: 'wire-chord' });
    const cs = queued('wire-chord');
    assert.equal(cs.length, 2);
    const body = cs[0]!.body[2].chord as Record<string, unknown>;
    assert.equal(body.task, 'c.tsum');
    assert.equal((body.options as Record<string, unknown>).task_id, res.id);
    assert.equal(cs[1]!.headers.group, cs[0]!.headers.group);
    assert.deepEqual(cs.map((m) => m.headers.group_index), [0, 1]);
  });
});

describe('canvas on the SQLite broker with a worker', () => {
  const tmp = tempDir();
  const brokerUrl = `sqlite://${join(tmp.dir, 'c.db')}`;
  let worker: RunningWorker;
  let client: Asynx;
  let t: ReturnType<typeof canvasTasks>;
  const file = join(tmp.dir, 'notes');

  before(async () => {
    worker = await startWorker({ brokerUrl, app: APP, args: ['-c', '2'] });
    client = new Asynx({ brokerUrl, configFile: false });
    t = canvasTasks(client);
  });
  after(async () => {
    await client.close();
    const code = await worker.stop('SIGTERM');
    tmp.cleanup();
    assert.equal(code, 0, 'warm shutdown exits 0');
  });

  it('sig.delay() puts partial args before the signature\'s own; applyAsync takes options', async () => {
    assert.deepEqual(await (await t.pair.s('b').delay('a')).get({ timeout: 20 }), ['a', 'b']);
    assert.deepEqual(await (await t.pair.si('x', 'y').applyAsync({ args: ['ignored'] })).get({ timeout: 20 }), ['x', 'y']);
  });

  it('chain: each step gets the previous result; get() on the chain result gives the final value', async () => {
    const r = await chain(t.add.s(1, 2), t.mul.s(10), t.add.s(5)).applyAsync();
    assert.equal(await r.get({ timeout: 20 }), 35);
    const imm = await chain(t.add.s(1, 2), t.add.si(100, 1)).delay();
    assert.equal(await imm.get({ timeout: 20 }), 101);
  });

  it('a failing chain step stops the chain and the chain result rejects with that step\'s error', async () => {
    const r = await chain(t.add.s(1, 2), t.fail.s(), t.note.s(file, 'tail-ran')).applyAsync();
    const err = await r.get({ timeout: 20 }).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof RemoteTaskError, String(err));
    assert.equal(err.name, 'ValueError');
    assert.equal(err.message, 'bad 3');
    assert.equal(await r.state(), 'FAILURE');
    await new Promise((res) => setTimeout(res, 300));
    assert.ok(!lines(file).some((l) => l.startsWith('tail-ran')), 'the tail never ran');
  });

  it('group: results in member order; GroupResult counts, save() and restore() by id; meta records group_id', async () => {
    const g = await group([t.add.s(1, 1), t.mul.s(3, 3), t.add.s(10, 10)]).applyAsync();
    assert.deepEqual(await g.get({ timeout: 20 }), [2, 9, 20]);
    assert.equal(await g.ready(), true);
    assert.equal(await g.successful(), true);
    assert.equal(await g.failed(), false);
    assert.equal(await g.completedCount(), 3);
    await g.save();
    const other = new Asynx({ brokerUrl, configFile: false });
    try {
      const back = await GroupResult.restore<number>(other, g.id);
      assert.ok(back);
      assert.deepEqual(back.results.map((r) => r.id), g.results.map((r) => r.id));
      assert.deepEqual(await back.join({ timeout: 5 }), [2, 9, 20]);
      assert.equal(await GroupResult.restore(other, 'no-such-group'), null);
      const meta = (await (await other.backend()).get(g.results[1]!.id))!;
      assert.equal(meta.group_id, g.id);
    } finally {
      await other.close();
    }
    const d = new Database(join(tmp.dir, 'c.db'), { readonly: true });
    try {
      const row = d.prepare('SELECT value FROM tasksets WHERE key = ?').get(`celery-taskset-meta-${g.id}`) as { value: string } | undefined;
      assert.ok(row, 'stored under Celery\'s key');
    } finally {
      d.close();
    }
  });

  it('group with a failing member: failed() and get() rejects with it; starmap gives the list of results', async () => {
    const g = await group([t.add.s(1, 1), t.fail.s(7)]).applyAsync();
    await waitFor('group ready', () => g.ready(), 20_000);
    assert.equal(await g.failed(), true);
    assert.equal(await g.successful(), false);
    assert.equal(await g.completedCount(), 1);
    await assert.rejects(g.get({ timeout: 5 }), /bad 7/);
    const s = await t.add.starmap([[1, 2], [3, 4]]).applyAsync();
    assert.deepEqual(await s.get({ timeout: 20 }), [3, 7]);
  });

  it('a signature is a link callback; GroupResult.revoke({ terminate }) revokes every member', async () => {
    const cb = join(tmp.dir, 'linked');
    const r = await t.add.applyAsync({ args: [20, 22], link: t.note.s(cb, 'linked') });
    assert.equal(await r.get({ timeout: 20 }), 42);
    await waitFor('the link callback', () => lines(cb).length === 1, 20_000);
    assert.equal(lines(cb)[0], 'linked 42');
    const g = await group([0, 1, 2, 3].map((i) => t.slow.s(i, join(tmp.dir, 'revoked-runs'), 20_000))).applyAsync();
    await g.revoke({ terminate: true });
    await waitFor('every member revoked', () => g.ready(), 30_000, 100);
    assert.deepEqual(await Promise.all(g.results.map((x) => x.state())), ['REVOKED', 'REVOKED', 'REVOKED', 'REVOKED']);
  });

  it('chord: the body runs once with the member results in group order', async () => {
    const body = join(tmp.dir, 'body-ok');
    const r = await chord([t.add.s(1, 1), t.mul.s(2, 5), t.add.s(100, 0)], t.collect.s(body)).applyAsync();
    assert.deepEqual(await r.get({ timeout: 20 }), [2, 10, 100]);
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(lines(body).length, 1);
    const sum = await chord(group([t.add.s(1, 2), t.add.s(3, 4)]), t.tsum.s()).applyAsync();
    assert.equal(await sum.get({ timeout: 20 }), 10);
  });

  it('chord with a failing member: the body fails with a ChordError naming it, and its linkError callbacks run', async () => {
    const body = join(tmp.dir, 'body-fail');
    const errs = join(tmp.dir, 'errbacks');
    const h = [t.add.s(1, 1), t.fail.s(5), t.add.s(2, 2)].map((s) => s.freeze());
    const r = await chord(h, t.collect.s(body).linkError(t.note.s(errs))).applyAsync();
    const err = await r.get({ timeout: 20 }).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof ChordError, String(err));
    assert.equal(err.message, `Dependency ${h[1]!.id} raised ValueError('bad 5')`);
    await waitFor('the body\'s errback', () => lines(errs).length === 1, 20_000);
    assert.equal(lines(errs)[0], `errback ${r.id}`);
    assert.equal(lines(body).length, 0, 'the body never ran');
    assert.equal(await r.state(), 'FAILURE');
  });
});

describe('canvas: chords need a result backend that counts', () => {
  it('a chord with resultBackend none is refused at call time, before anything is sent', async () => {
    const tmp = tempDir();
    const client = new Asynx({ brokerUrl: `sqlite://${join(tmp.dir, 'n.db')}`, resultBackend: 'none', configFile: false });
    try {
      const t = canvasTasks(client);
      const err = await chord([t.add.s(1, 1)], t.tsum.s()).applyAsync().then(() => null, (e: unknown) => e);
      assert.ok(err instanceof ChordsUnsupportedError);
      assert.equal(err.code, 'asynx.chord.unsupportedBackend');
      assert.equal(await (await client.transport()).count('celery'), 0, 'no header task was sent');
    } finally {
      await client.close();
      tmp.cleanup();
    }
  });

  it('eager mode runs chains, groups and chords in-process (for users\' unit tests)', async () => {
    const app = new Asynx({ eager: true, configFile: false });
    try {
      const add = app.task('e.add', (a: number, b: number) => a + b);
      const tsum = app.task('e.tsum', (xs: number[]) => xs.reduce((x, y) => x + y, 0));
      const boom = app.task('e.boom', (_x: number): number => {
        throw new RangeError('no');
      });
      assert.equal(await (await chain(add.s(1, 2), add.s(10)).applyAsync()).get(), 13);
      await assert.rejects((await chain(add.s(1, 2), boom.s(), add.s(1)).applyAsync()).get(), /no/);
      assert.deepEqual(await (await group([add.s(1, 1), add.s(2, 2)]).applyAsync()).get(), [2, 4]);
      assert.equal(await (await chord([add.s(1, 1), add.s(2, 2)], tsum.s()).applyAsync()).get(), 6);
    } finally {
      await app.close();
    }
  });
});
