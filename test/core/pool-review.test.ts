// Review findings on the pools, through real workers on SQLite.

import assert from 'node:assert/strict';
import { readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { openControlClient, type ControlClient } from '../../src/control/client.js';
import { Asynx } from '../../src/index.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { startWorker, type RunningWorker } from '../helpers/worker.js';

const POOLS_APP = new URL('../fixtures/pools-app.mjs', import.meta.url).pathname;
const REVIEW_APP = new URL('../fixtures/review-app.mjs', import.meta.url).pathname;

/** Open file descriptors of process `pid` on files whose path starts with `prefix` (Linux). */
function openFiles(pid: number, prefix: string): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(prefix)) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

describe('pool review', () => {
  const tmp = tempDir('asynx-poolreview-');
  let n = 0;
  const workers: RunningWorker[] = [];
  const controls: ControlClient[] = [];
  const clients: Asynx[] = [];
  async function setup(args: string[], env: NodeJS.ProcessEnv = {}, app = POOLS_APP) {
    const brokerUrl = `sqlite://${join(tmp.dir, `r${++n}.db`)}`;
    const node = `rv${n}@sqlite`;
    const w = await startWorker({ brokerUrl, app, args: ['-n', node, ...args], env });
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

  for (const [pool, slot] of [['threads', 'thread'], ['prefork', 'child']] as const) it(`${pool}: a slot shrunk away while its ${slot} waits to be replaced (it failed its handshake) stays away`, { timeout: 30_000 }, async () => {
    const flag = join(tmp.dir, `fail-in-child-${pool}`);
    const { w, c, ask, run } = await setup(['-P', pool, '-c', '1'], { REVIEW_FAIL_FLAG: flag }, REVIEW_APP);
    const size = async () => ((await ask('stats')) as { pool: { 'max-concurrency': number } }).pool['max-concurrency'];
    // Thread 1 is busy, so the shrink below takes thread 2 (no job) and not thread 1.
    const busy = await c.sendTask<number>('r.sleep', [3000]);
    await waitFor('the task runs', async () => ((await ask('active')) as unknown[]).length === 1, 10_000, 50);
    writeFileSync(flag, '');
    assert.deepEqual(await ask('pool_grow', { n: 1 }), { ok: 'pool will grow' });
    const slot2 = pool === 'threads' ? /Pool thread 2 \(thread id \d+\) exited unexpectedly/ : /Pool child 2 \(pid \d+\) exited unexpectedly/;
    await waitFor(`${slot} 2 failed its handshake`, () => slot2.test(w.output()), 10_000, 25);
    assert.deepEqual(await ask('pool_shrink', { n: 1 }), { ok: 'pool will shrink' });
    assert.equal(await size(), 1);
    rmSync(flag);
    if (pool === 'threads') {
      // The log says why the grown thread went away, as a thread (not `Pool child 2 (pid -1)`, not just `exit code 0`).
      assert.match(w.output(), /Pool thread 2 \(thread id \d+\) exited unexpectedly: could not load the app: .*the flag file says/);
      assert.doesNotMatch(w.output(), /Pool child/);
    }
    // The pending replacement (one second after the failure) must not bring the shrunk slot back.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await size(), 1, `the pool stays shrunk\n${w.output()}`);
    assert.equal(await busy.get({ timeout: 10 }), 3000);
    assert.equal(await run('r.add', [1, 2]), 3);
  });

  it('async: each pool restart closes the app module it replaces (no broker connection left open per HUP)', { timeout: 30_000 }, async () => {
    const { w, ask, run } = await setup(['-P', 'async'], {}, REVIEW_APP);
    const db = join(tmp.dir, `r${n}.db`);
    const restart = async (k: number) => {
      assert.deepEqual(await ask('pool_restart'), { ok: 'reload started' });
      await waitFor(`restart ${k}`, () => (w.output().match(/restarted\.$/gm) ?? []).length === k, 10_000);
      // A task of the reloaded module sends through that module's own app: it opens its own connection.
      assert.equal(await run('r.send'), 'sent');
    };
    await restart(1);
    const once = openFiles(w.pid, db);
    await restart(2);
    await restart(3);
    assert.equal(openFiles(w.pid, db), once, 'the broker files open in the worker stay as many as after the first restart');
  });

  it('threads --autoscale: a higher min set while a pool restart drains is reached once the new pool runs', { timeout: 30_000 }, async () => {
    const { w, c, ask } = await setup(['-P', 'threads', '--autoscale=4,1', '--autoscale-keepalive=1'], {}, REVIEW_APP);
    const size = async () => ((await ask('stats')) as { pool: { 'max-concurrency': number } }).pool['max-concurrency'];
    const busy = await c.sendTask<number>('r.sleep', [1500]);
    await waitFor('the task runs', async () => ((await ask('active')) as unknown[]).length === 1, 10_000, 50);
    assert.deepEqual(await ask('pool_restart'), { ok: 'reload started' });
    // The restart drains (the task runs on): the bounds change meanwhile.
    assert.deepEqual(await ask('autoscale', { max: 4, min: 3 }), { ok: 'autoscale now max=4 min=3' });
    assert.equal(await busy.get({ timeout: 10 }), 1500);
    await waitFor('the restart', () => /restarted\.$/m.test(w.output()), 10_000);
    await waitFor('the pool at min', async () => (await size()) === 3, 5000, 100).catch(() => undefined);
    assert.equal(await size(), 3, 'the pool grew to the new min');
  });

  it('async: pool_grow / pool_shrink log task slots, not processes (the pool has none)', { timeout: 20_000 }, async () => {
    const { w, ask } = await setup(['-P', 'async', '-c', '2'], {}, REVIEW_APP);
    assert.deepEqual(await ask('pool_grow', { n: 3 }), { ok: 'pool will grow' });
    await waitFor('the grow logged', () => /Scaling up/.test(w.output()), 5000);
    assert.deepEqual(await ask('pool_shrink', { n: 1 }), { ok: 'pool will shrink' });
    await waitFor('the shrink logged', () => /Scaling down/.test(w.output()), 5000);
    assert.match(w.output(), /Scaling up 3 task slots \(pool size 5\)/);
    assert.match(w.output(), /Scaling down 1 task slot \(pool size 4\)/);
  });
});
