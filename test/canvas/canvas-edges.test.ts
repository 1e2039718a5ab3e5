// Canvas edge cases: empty groups (no worker); a chain step or chord member of a task no worker knows (SQLite worker).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Asynx, ChordError, RemoteTaskError, chain, chord, group, isAsynxError } from '../../src/index.js';
import { startWorker } from '../helpers/worker.js';
import { tempDir } from '../helpers/tmp.js';
import { CANVAS_APP, canvasTasks } from '../helpers/canvas.js';

const tmp = tempDir('asynx-canvas-edges-');
const client = new Asynx({ brokerUrl: `sqlite://${join(tmp.dir, 'e.db')}`, configFile: false });
after(async () => {
  await client.close();
  tmp.cleanup();
});

it('an empty group: chunks([], n) gives an empty GroupResult (Celery\'s [] ); group([]) rejects, not throws', async () => {
  const t = canvasTasks(client);
  const g = await t.add.chunks([], 2).applyAsync();
  assert.deepEqual(await g.get({ timeout: 1 }), []);
  assert.equal(await g.ready(), true);
  assert.equal(await g.completedCount(), 0);
  // Without a member there is no app to send with: a rejected promise (a `.catch()` sees it), with what to do.
  let p: Promise<unknown> | undefined;
  assert.doesNotThrow(() => {
    p = group([]).applyAsync();
  });
  await assert.rejects(p!, (err: unknown) => isAsynxError(err) && err.code === 'asynx.canvas.emptyGroup');
  // A chain as a group member (common in Celery) is refused by name, not as "got object".
  // @ts-expect-error a group's members are signatures
  assert.throws(() => group([chain(t.add.s(1, 1), t.add.s(2))]), /got Chain: a chain inside a group is not supported/);
});

it('eager mode: a chord with an empty header runs its body with [] (as on a worker)', async () => {
  const app = new Asynx({ eager: true, configFile: false });
  try {
    const tsum = app.task('e.tsum', (xs: number[]) => xs.reduce((x, y) => x + y, 0));
    assert.equal(await (await chord([], tsum.s()).applyAsync()).get(), 0);
  } finally {
    await app.close();
  }
});

describe('a task no worker has registered, inside a chain or a chord (SQLite worker)', () => {
  it('the chain result rejects with NotRegistered and the chord body fails with a ChordError naming the member (neither stays PENDING)', async () => {
    const brokerUrl = `sqlite://${join(tmp.dir, 'w.db')}`;
    const worker = await startWorker({ brokerUrl, app: CANVAS_APP, args: ['-c', '1'] });
    const app = new Asynx({ brokerUrl, configFile: false });
    try {
      const t = canvasTasks(app);
      const r = await chain(t.add.s(1, 1), app.sig('c.missing'), t.add.s(1)).applyAsync();
      const err = await r.get({ timeout: 15 }).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof RemoteTaskError, String(err));
      assert.equal(err.name, 'NotRegistered');
      const missing = app.sig('c.missing').freeze();
      const c = await chord([t.add.s(1, 1), missing], t.tsum.s()).applyAsync();
      const cerr = await c.get({ timeout: 15 }).then(() => null, (e: unknown) => e);
      assert.ok(cerr instanceof ChordError, String(cerr));
      assert.match(cerr.message, new RegExp(`^Dependency ${missing.id} raised NotRegistered`));
    } finally {
      await app.close();
      assert.equal(await worker.stop('SIGTERM'), 0);
    }
  });
});
