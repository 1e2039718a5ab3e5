// Review of chains with groups/chords and of starmap/chunks as a Celery user uses them, with real workers on
// the SQLite broker: errbacks run once, immutable members, time limits and terminate on a starmap, the group
// membership in the task context.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Asynx, ChordError, chain, chord, group, isAsynxError } from '../../src/index.js';
import { openControlClient } from '../../src/control/client.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { CANVAS_APP, canvasTasks } from '../helpers/canvas.js';

const tmp = tempDir('asynx-canvas-review-');
const db = join(tmp.dir, 'r.db');
const brokerUrl = `sqlite://${db}`;
let w: RunningWorker;
let client: Asynx;
let t: ReturnType<typeof tasks>;

function tasks(app: Asynx) {
  return {
    ...canvasTasks(app),
    member: app.task('c.member', (x: number): [number, string | null, number | null] => [x, null, null]),
  };
}

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : []);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  w = await startWorker({ brokerUrl, app: CANVAS_APP, args: ['-n', 'rev@localhost', '-c', '2'] });
  client = new Asynx({ brokerUrl, configFile: false });
  t = tasks(client);
});
after(async () => {
  await client.close();
  const code = await w.stop('SIGTERM');
  tmp.cleanup();
  assert.equal(code, 0, 'warm shutdown exits 0');
});

describe('a chord inside a chain', () => {
  it('a failing member: the chain\'s result rejects with ChordError naming that member; the chain\'s linkError runs once', async () => {
    const file = join(tmp.dir, 'eb-once');
    const r = await chain(t.add.s(1, 1), group([t.fail.s().set({ taskId: 'the-member' }), t.add.s(1)]), t.tsum.s(), t.mul.s(2)).applyAsync({ linkError: t.note.s(file, 'eb') });
    const err = await r.get({ timeout: 20 }).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof ChordError, String(err));
    assert.equal(err.message, "Dependency the-member raised ValueError('bad 2')");
    await waitFor('the errback', () => lines(file).length >= 1, 20_000);
    await sleep(1500);
    assert.equal(lines(file).length, 1, `one errback: ${lines(file).join(' | ')}`);
  });

  it('a failing step before the chord: its errback runs once, with its id; members and body reject with its error', async () => {
    const file = join(tmp.dir, 'eb-before');
    const first = t.fail.s(5).freeze();
    const r = await chain(first, group([t.add.s(1), t.add.s(2)]), t.tsum.s()).applyAsync({ linkError: t.note.s(file, 'eb') });
    await assert.rejects(r.get({ timeout: 20 }), /bad 5/);
    await waitFor('the errback', () => lines(file).length >= 1, 20_000);
    await sleep(1500);
    assert.deepEqual(lines(file), [`eb ${first.id}`]);
  });

  it('immutable members (si) of a group in the middle get their own args only', async () => {
    const r = await chain(t.add.s(1, 2), group([t.add.si(10, 1), t.mul.si(2, 3)]), t.tsum.s()).applyAsync();
    assert.equal(await r.get({ timeout: 20 }), 17);
  });

  it('members of a group in a chain see their group id and index in the task context', async () => {
    const r = await chain(t.add.s(1, 1), group([t.member.s(), t.member.s()]), t.collect.s(join(tmp.dir, 'gm'))).applyAsync();
    const got = (await r.get({ timeout: 20 })) as unknown as Array<[number, string, number]>;
    assert.deepEqual(got.map((g) => [g[0], g[2]]), [[2, 0], [2, 1]]);
    assert.equal(typeof got[0]![1], 'string');
    assert.equal(got[0]![1], got[1]![1], 'one group id');
    const g = await group([t.member.s(5), t.member.s(6)]).applyAsync();
    assert.deepEqual(await g.get({ timeout: 20 }), [[5, g.id, 0], [6, g.id, 1]]);
    assert.deepEqual(await (await t.member.delay(7)).get({ timeout: 20 }), [7, null, null], 'not in a group');
  });
});

describe('a chain as a chord\'s body (Celery\'s chord(header, b.s() | c.s()))', () => {
  it('the first task gets the list, the chord\'s result is the last step\'s; as a chain step too', async () => {
    const r = await chord([t.add.s(1, 1), t.add.s(2, 2)], chain(t.tsum.s(), t.mul.s(10))).applyAsync();
    assert.equal(await r.get({ timeout: 20 }), 60);
    const c = await chain(t.add.s(1, 1), chord([t.mul.s(2), t.mul.s(3)], chain(t.tsum.s(), t.add.s(1))), t.mul.s(2)).applyAsync();
    assert.equal(await c.get({ timeout: 20 }), 22, '((2*2 + 2*3) + 1) * 2');
    assert.equal(await (await chain(chord([t.add.s(1, 1)], chain(t.tsum.s(), t.add.s(1))), t.mul.s(3)).applyAsync()).get({ timeout: 20 }), 9, 'a chord first');
  });

  it('on the wire the body is Celery\'s chain dict, its task_id the chord\'s result', async () => {
    const r = await chord([t.add.s(1, 1)], chain(t.tsum.s(), t.mul.s(10))).applyAsync({ queue: 'parked-chainbody' });
    const d = new Database(db, { readonly: true });
    try {
      const row = d.prepare("SELECT body FROM messages WHERE queue = 'parked-chainbody'").get() as { body: string };
      const [, , embed] = JSON.parse(row.body) as [unknown, unknown, { chord: Record<string, any> }];
      assert.equal(embed.chord.subtask_type, 'chain');
      assert.equal(embed.chord.task, 'celery.chain');
      assert.deepEqual(embed.chord.kwargs.tasks.map((x: any) => x.task), ['c.tsum', 'c.mul']);
      assert.equal(embed.chord.options.task_id, r.id);
      assert.equal(embed.chord.kwargs.tasks[1].options.task_id, r.id);
    } finally {
      d.close();
    }
  });

  it('a failing member: every step of the body chain rejects with the ChordError, the linkError runs once with the result id', async () => {
    const file = join(tmp.dir, 'eb-chainbody');
    const head = t.tsum.s().freeze();
    const r = await chord([t.fail.s(7).set({ taskId: 'cb-member' }), t.add.s(1, 1)], chain(head, t.mul.s(10))).applyAsync({ linkError: t.note.s(file, 'eb') });
    for (const id of [r.id, head.id!]) {
      const err = await client.AsyncResult(id).get({ timeout: 20 }).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof ChordError, String(err));
      assert.equal(err.message, "Dependency cb-member raised ValueError('bad 7')");
    }
    await waitFor('the errback', () => lines(file).length >= 1, 20_000);
    await sleep(1500);
    assert.deepEqual(lines(file), [`eb ${r.id}`]);
  });
});

describe('starmap', () => {
  it('a time limit given to the call covers the whole starmap', async () => {
    const file = join(tmp.dir, 'tl');
    const r = await t.slow.starmap([[0, file, 800], [1, file, 800], [2, file, 800]]).applyAsync({ timeLimit: 1.5 });
    const err = await r.get({ timeout: 20 }).then(() => null, (e: unknown) => e as Error);
    assert.ok(err, 'the starmap fails');
    assert.equal(err.name, 'TimeLimitExceeded', String(err));
    assert.deepEqual(lines(file), ['0', '1'], 'the third call never started');
  });

  it('revoked with terminate while running: REVOKED, the remaining calls do not run', async () => {
    const file = join(tmp.dir, 'term');
    const r = await t.slow.starmap([[0, file, 3000], [1, file, 3000]]).applyAsync();
    await waitFor('the first call', () => lines(file).length === 1, 20_000);
    const control = await openControlClient(brokerUrl, { connectTimeoutMs: 5000 });
    try {
      await control.broadcast('revoke', { task_id: [r.id], terminate: true, signal: 'SIGKILL' }, { reply: false });
    } finally {
      await control.close();
    }
    const err = await r.get({ timeout: 20 }).then(() => null, (e: unknown) => e as Error);
    assert.ok(err && isAsynxError(err), String(err));
    assert.equal(err.name, 'TaskRevokedError');
    await sleep(3500);
    assert.deepEqual(lines(file), ['0']);
  });
});

it('chunks: n larger than the list is one chunk; an empty list is an empty group; n < 1 is a typed error', async () => {
  assert.deepEqual(await (await t.add.chunks([[1, 2], [3, 4]], 10).applyAsync()).get({ timeout: 20 }), [[3, 7]]);
  assert.deepEqual(await (await t.add.chunks([], 3).applyAsync()).get({ timeout: 20 }), []);
  for (const n of [0, -2, 1.5, Number.NaN]) assert.throws(() => t.add.chunks([[1, 2]], n), (e: unknown) => isAsynxError(e) && e.code === 'asynx.canvas.badChunkSize');
});
