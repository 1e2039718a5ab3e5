// Review findings on the pools, through real workers on SQLite.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { openControlClient, type ControlClient } from '../../src/control/client.js';
import { Asynx } from '../../src/index.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';

const POOLS_APP = new URL('../fixtures/pools-app.mjs', import.meta.url).pathname;

describe('pool review', () => {
  const tmp = tempDir('asynx-poolreview-');
  let n = 0;
  const workers: RunningWorker[] = [];
  const controls: ControlClient[] = [];
  const clients: Asynx[] = [];
  async function setup(args: string[], env: NodeJS.ProcessEnv = {}) {
    const brokerUrl = `sqlite://${join(tmp.dir, `r${++n}.db`)}`;
    const node = `rv${n}@sqlite`;
    const w = await startWorker({ brokerUrl, app: POOLS_APP, args: ['-n', node, ...args], env });
    workers.push(w);
    const ctl = await openControlClient(brokerUrl);
    controls.push(ctl);
    const ask = async (method: string, a: Record<string, unknown> = {}) => {
      const replies = await ctl.broadcast(method, a, { destination: [node], timeoutMs: 5000 });
      assert.equal(replies.length, 1, `${method}: ${JSON.stringify(replies)}`);
      return replies[0]![node];
    };
    const c = new Asynx({ brokerUrl, configFile: false });
    clients.push(c);
    const run = async <T>(name: string, a: unknown[] = []) => (await c.sendTask<T>(name, a)).get({ timeout: 10 });
    return { w, c, ask, run };
  }
  afterEach(async () => {
    for (const ctl of controls.splice(0)) await ctl.close();
    for (const c of clients.splice(0)) await c.close();
    for (const w of workers.splice(0)) await w.stop('SIGKILL');
  });
  after(() => tmp.cleanup());

  for (const pool of ['async', 'solo'] as const) {
    it(`${pool}: after a pool restart (HUP), tasks still see the CLI's config overrides (-- key=value)`, { timeout: 30_000 }, async () => {
      const { w, ask, run } = await setup(['-P', pool, '--', 'prefetchMultiplier=3']);
      assert.equal(await run('pools.config', ['prefetchMultiplier']), 3, 'before the restart');
      assert.deepEqual(await ask('pool_restart'), { ok: 'reload started' });
      await waitFor('the restart', () => /restarted\.$/m.test(w.output()), 10_000);
      assert.equal(await run('pools.config', ['prefetchMultiplier']), 3, 'after the restart: the reloaded app has the overrides too');
    });
  }
});
