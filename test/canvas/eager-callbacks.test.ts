// Eager mode (in-process, no broker) as Celery's apply(): link callbacks run with the result, linkError
// callbacks with the failed task's id; a chord whose member fails gives the body a ChordError, in a chain too.

import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import { Asynx, ChordError, chain, chord, group } from '../../src/index.js';

const app = new Asynx({ eager: true, configFile: false });
after(() => app.close());

const seen: string[] = [];
const add = app.task('e.add', (a: number, b: number) => a + b);
const tsum = app.task('e.tsum', (xs: number[]) => xs.reduce((x, y) => x + y, 0));
const fail = app.task('e.fail', (x: number): number => {
  throw new RangeError(`bad ${x}`);
});
const note = app.task('e.note', (v: unknown, tag: string) => {
  seen.push(`${tag} ${String(v)}`);
  return v;
});
const where = app.task('e.where', function (this: { group: string | null; groupIndex: number | null }, x: number) {
  return [x, this.group, this.groupIndex];
});

it('link callbacks get the result, linkError callbacks the failed task\'s id; each one\'s result is stored', async () => {
  seen.length = 0;
  const cb = note.s('link').freeze();
  const r = await add.applyAsync({ args: [1, 2], link: [cb, note.si('fixed', 'link-si')], linkError: note.s('eb') });
  assert.equal(await r.get(), 3);
  assert.deepEqual(seen, ['link 3', 'link-si fixed']);
  assert.equal(await app.AsyncResult(cb.id!).get(), 3, 'the callback has its own result');
  seen.length = 0;
  const f = await fail.applyAsync({ args: [4], link: note.s('link'), linkError: [note.s('eb'), note.s('eb2')] });
  assert.equal(await f.state(), 'FAILURE');
  assert.deepEqual(seen, [`eb ${f.id}`, `eb2 ${f.id}`]);
  // A callback whose task this app does not know fails on its own; the task's result stands.
  const u = app.sig('nobody.knows').freeze();
  assert.equal(await (await add.applyAsync({ args: [1, 1], link: u })).get(), 2);
  assert.equal(await app.AsyncResult(u.id!).state(), 'FAILURE');
});

it('a chain\'s linkError runs once for the failing step', async () => {
  seen.length = 0;
  const r = await chain(add.s(1, 2), fail.s(), add.s(1)).applyAsync({ linkError: note.s('eb') });
  assert.equal(seen.length, 1, seen.join(' | '));
  assert.match(seen[0]!, /^eb \S+$/);
  await assert.rejects(r.get(), /bad 3/);
});

it('a chord with a failing member: the body\'s result is a ChordError naming it, its linkError runs once; in a chain too', async () => {
  seen.length = 0;
  const r = await chord([fail.s(1).set({ taskId: 'm-1' }), add.s(1, 1)], tsum.s()).applyAsync({ linkError: note.s('eb') });
  const err = await r.get().then(() => null, (e: unknown) => e);
  assert.ok(err instanceof ChordError, String(err));
  assert.equal(err.message, "Dependency m-1 raised RangeError('bad 1')");
  assert.deepEqual(seen, [`eb ${r.id}`]);
  seen.length = 0;
  const c = await chain(add.s(1, 2), group([fail.s().set({ taskId: 'm-2' }), add.s(20)]), tsum.s(), add.s(1)).applyAsync({ linkError: note.s('eb') });
  const err2 = await c.get().then(() => null, (e: unknown) => e);
  assert.ok(err2 instanceof ChordError, String(err2));
  assert.equal(err2.message, "Dependency m-2 raised RangeError('bad 3')");
  assert.equal(seen.length, 1, seen.join(' | '));
});

it('group members see their group id and index in the context', async () => {
  const g = await group([where.s(1), where.s(2)]).applyAsync();
  assert.deepEqual(await g.get(), [[1, g.id, 0], [2, g.id, 1]]);
  assert.deepEqual(await (await where.delay(3)).get(), [3, null, null]);
});

it('a chain as a chord\'s body: runs after the header; a failed member fails it and runs its linkError once', async () => {
  assert.equal(await (await chord([add.s(1, 1), add.s(2, 2)], chain(tsum.s(), add.s(10))).applyAsync()).get(), 16);
  assert.equal(await (await chain(add.s(1, 1), chord([add.s(1), add.s(2)], chain(tsum.s(), add.s(1))), add.s(1)).applyAsync()).get(), 9);
  seen.length = 0;
  const r = await chord([fail.s(1).set({ taskId: 'm-3' })], chain(tsum.s(), add.s(10))).applyAsync({ linkError: note.s('eb') });
  const err = await r.get().then(() => null, (e: unknown) => e);
  assert.ok(err instanceof ChordError, String(err));
  assert.equal(err.message, "Dependency m-3 raised RangeError('bad 1')");
  assert.deepEqual(seen, [`eb ${r.id}`]);
});
