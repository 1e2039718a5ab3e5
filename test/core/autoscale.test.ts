// `asynx worker --autoscale=max,min` on prefork and threads, through real workers on SQLite: growth under a backlog,
// shrinking after the keepalive, and the `autoscale`, `pool_grow`, `pool_shrink` commands as Celery 5.2 answers them.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { openControlClient, type ControlClient } from '../../src/control/client.js';
import { Asynx } from '../../src/index.js';
import { tempDir, waitFor } from '../helpers/tmp.js';
import { runCli, startWorker, type RunningWorker } from '../helpers/worker.js';

const POOLS_APP = new URL('../fixtures/pools-app.mjs', import.meta.url).pathname;

type Stats = { pool: { 'max-concurrency': number }; prefetch_count: number; autoscaler?: { max: number; min: number; current: number; qty: number } };

describe('autoscale', () => {
  const tmp = tempDir('asynx-autoscale-');
  let n = 0;
  const workers: RunningWorker[] = [];
  const clients: Asynx[] = [];
  const controls: ControlClient[] = [];
  async function setup(args: string[]) {
    const brokerUrl = `sqlite://${join(tmp.dir, `a${++n}.db`)}`;
    const node = `as${n}@sqlite`;
    const w = await startWorker({ brokerUrl, app: POOLS_APP, args: ['-n', node, ...args] });
    workers.push(w);
    const c = new Asynx({ brokerUrl, configFile: false });
    clients.push(c);
    const ctl = await openControlClient(brokerUrl);
    controls.push(ctl);
    const ask = async (method: string, a: Record<string, unknown> = {}) => {
      const replies = await ctl.broadcast(method, a, { destination: [node], timeoutMs: 5000 });
      assert.equal(replies.length, 1, `${method}: ${JSON.stringify(replies)}`);
      return replies[0]![node];
    };
    const stats = async () => (await ask('stats')) as Stats;
    const cli = (argv: string[]) => runCli([...argv, '-d', node, '--json'], { ASYNX_BROKER_URL: brokerUrl }, 20_000, tmp.dir);
    return { w, c, ask, stats, cli };
  }
  afterEach(async () => {
    for (const ctl of controls.splice(0)) await ctl.close();
    for (const c of clients.splice(0)) await c.close();
    for (const w of workers.splice(0)) await w.stop('SIGKILL');
  });
  after(() => tmp.cleanup());

  for (const pool of ['prefork', 'threads'] as const) {
    const unit = pool === 'threads' ? 'thread' : 'process';
    const units = pool === 'threads' ? 'threads' : 'processes';
    it(`${pool}: grows to max under a backlog, shrinks to min after the keepalive; autoscale, pool_grow and pool_shrink move the bounds`, { timeout: 120_000 }, async () => {
      const { w, c, ask, stats, cli } = await setup(['-P', pool, '--autoscale=4,1', '--autoscale-keepalive=1']);
      assert.match(w.output(), new RegExp(`concurrency: \\{min=1, max=4\\} \\(${pool}\\)`), 'the banner as Celery writes it');
      const s0 = await stats();
      assert.equal(s0.pool['max-concurrency'], 1, 'starts at min');
      assert.deepEqual(s0.autoscaler, { max: 4, min: 1, current: 1, qty: 0 });
      assert.equal(s0.prefetch_count, 16, 'Celery prefetches max × multiplier under autoscale');

      // A backlog of six sleeping tasks: the pool grows to 4 and four of them run at once.
      const sent = await Promise.all(Array.from({ length: 6 }, () => c.sendTask<number>('pools.sleep', [2500])));
      await waitFor('four tasks running at once', async () => ((await ask('active')) as unknown[]).length === 4, 30_000, 100);
      assert.equal((await stats()).pool['max-concurrency'], 4, 'never past max');
      for (const r of sent) assert.equal(await r.get({ timeout: 30 }), 2500);
      // Idle now: back to min once the keepalive has passed.
      await waitFor('the pool back at min', async () => (await stats()).pool['max-concurrency'] === 1, 20_000, 200);
      assert.match(w.output(), new RegExp(`Scaling up \\d+ ${unit}`));
      assert.match(w.output(), new RegExp(`Scaling down \\d+ ${unit}`));

      // `autoscale 6 2` (the CLI, as `celery control autoscale 6 2`): the reply as Celery's, min grows the pool now.
      const r = await cli(['control', 'autoscale', '6', '2']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(Object.values((JSON.parse(r.stdout) as Array<Record<string, unknown>>)[0]!), [{ ok: 'autoscale now max=6 min=2' }]);
      const s1 = await stats();
      assert.deepEqual([s1.autoscaler?.max, s1.autoscaler?.min], [6, 2]);
      assert.equal(s1.pool['max-concurrency'], 2);
      assert.equal(s1.prefetch_count, 24, 'prefetch follows max');
      assert.deepEqual(await ask('autoscale', { max: 2, min: 5 }), { error: "ValueError('autoscale needs max >= 1 and min <= max, got max=2 min=5')" }, 'bounds that cannot hold change nothing');
      assert.deepEqual(await ask('autoscale', {}), { ok: 'autoscale now max=6 min=2' }, 'no arguments: the bounds as they are');

      // pool_grow past max raises max (Celery 5.2's force_scale_up); the autoscaler later shrinks the idle pool to min.
      assert.deepEqual(await ask('pool_grow', { n: 5 }), { ok: 'pool will grow' });
      const s2 = await stats();
      assert.deepEqual([s2.autoscaler?.max, s2.autoscaler?.min, s2.prefetch_count], [7, 2, 28]);
      await waitFor('grown to 7', () => w.output().includes(`Scaling up 5 ${units} (pool size 7; autoscale max=7 min=2)`), 10_000);
      await waitFor('the idle pool back at min 2', async () => (await stats()).pool['max-concurrency'] === 2, 20_000, 200);
      // pool_shrink under min lowers min (force_scale_down).
      assert.deepEqual(await ask('pool_shrink', { n: 1 }), { ok: 'pool will shrink' });
      const s3 = await stats();
      assert.deepEqual([s3.pool['max-concurrency'], s3.autoscaler?.max, s3.autoscaler?.min], [1, 7, 1]);
      assert.equal(await (await c.sendTask('pools.add', [2, 3])).get({ timeout: 15 }), 5, 'the pool still runs tasks');

      // HUP replaces the pool: the autoscaler goes on with the new one.
      process.kill(w.pid, 'SIGHUP');
      await waitFor('the pool restarted', () => /: restarted\.$/m.test(w.output()), 30_000);
      const more = await Promise.all(Array.from({ length: 3 }, () => c.sendTask<number>('pools.sleep', [2000])));
      await waitFor('the new pool grown for the backlog', async () => (await stats()).pool['max-concurrency'] === 3, 30_000, 100);
      for (const m of more) assert.equal(await m.get({ timeout: 30 }), 2000);
    });
  }

  it('without --autoscale the autoscale command answers Celery\'s error', async () => {
    const { ask, stats } = await setup(['-P', 'threads', '-c', '1']);
    assert.deepEqual(await ask('autoscale', { max: 4, min: 1 }), { error: "ValueError('Autoscale not enabled')" });
    assert.equal((await stats()).autoscaler, undefined, 'no autoscaler in stats');
  });

  it('bad --autoscale values are usage errors (exit 64) that say what is expected', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--autoscale=3,10'], /--autoscale must be max,min with whole numbers, max ≥ 1 and min ≤ max \(e\.g\. --autoscale=10,3\), got '3,10'/],
      [['--autoscale=0'], /--autoscale must be max,min .* got '0'/],
      [['--autoscale=four,1'], /--autoscale must be max,min .* got 'four,1'/],
      [['--autoscale=4,1,0'], /--autoscale must be max,min .* got '4,1,0'/],
      [['-P', 'async', '--autoscale=4,1'], /autoscale must be used with the prefork or threads pool, got 4,1 with pool async/],
      [['--autoscale=4,1', '--autoscale-keepalive=0'], /autoscaleKeepalive must be a duration above zero/],
    ];
    const broker = `sqlite://${join(tmp.dir, 'never.db')}`;
    for (const [args, message] of cases) {
      const r = await runCli(['worker', '-A', POOLS_APP, ...args], { ASYNX_BROKER_URL: broker }, 20_000, tmp.dir);
      assert.equal(r.code, 64, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });
});
