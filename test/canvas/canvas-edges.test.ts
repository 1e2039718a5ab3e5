// Canvas edge cases without a worker: empty groups.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { Asynx, chord, group, isAsynxError } from '../../src/index.js';
import { tempDir } from '../helpers/tmp.js';
import { canvasTasks } from '../helpers/canvas.js';

const tmp = tempDir('asynx-canvas-edges-');
const client = new Asynx({ brokerUrl: `sqlite://${join(tmp.dir, 'e.db')}`, configFile: false });
after(async () => {
  await client.close();
  tmp.cleanup();
});

it('an empty group: starmap([]) gives an empty GroupResult (Celery\'s [] ); group([]) rejects, not throws', async () => {
  const t = canvasTasks(client);
  const g = await t.add.starmap([]).applyAsync();
  assert.deepEqual(await g.get({ timeout: 1 }), []);
  assert.equal(await g.ready(), true);
  assert.equal(await g.completedCount(), 0);
  // Without a member there is no app to send with: a rejected promise (a `.catch()` sees it), with what to do.
  let p: Promise<unknown> | undefined;
  assert.doesNotThrow(() => {
    p = group([]).applyAsync();
  });
  await assert.rejects(p!, (err: unknown) => isAsynxError(err) && err.code === 'asynx.canvas.emptyGroup');
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
