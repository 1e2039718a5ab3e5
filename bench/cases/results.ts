// Case 6, results: 1,000 sequential delay().get() round trips over rpc:// (AMQP) and over SQLite, p50 / p99,
// next to Celery's own client over rpc:// when installed.

import { spawn } from 'node:child_process';
import type { BenchContext } from '../context.js';
import { BENCH_DIR, PYTHON } from '../context.js';
import { meets, percentile, ratio, type BenchRow } from '../report.js';
import { celeryEnv, client, startAsynx, startCelery } from '../workers.js';

async function roundTrips(ctx: BenchContext, broker: string, backend: string, queue: string, n: number, label: string): Promise<number[]> {
  const w = await startAsynx(ctx, broker, 2, queue, backend);
  const app = client(ctx, broker, backend);
  const xs: number[] = [];
  try {
    await (await app.sendTask('bench.add', [0, 0], {}, { queue })).get({ timeout: 30 });
    ctx.progress.step(`6 results: ${label}`);
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      const r = await app.sendTask<number>('bench.add', [1, 2], {}, { queue });
      if ((await r.get({ timeout: 30 })) !== 3) throw new Error('bench.add returned a wrong sum');
      xs.push(performance.now() - t);
      ctx.progress.tick(i + 1, n);
    }
  } finally {
    await w.stop();
  }
  return xs;
}

/** Celery's own client (bench/celery_rtt.py) against a Celery worker, rpc:// results. */
async function celeryTrips(ctx: BenchContext, url: string, n: number): Promise<number[]> {
  const w = await startCelery(ctx, url, 2, 'celery', 'rpc://');
  try {
    ctx.progress.step('6 results: Celery rpc://');
    const out = await new Promise<string>((resolve, reject) => {
      const p = spawn(PYTHON, ['celery_rtt.py', String(n)], { cwd: BENCH_DIR, env: celeryEnv(url, 'rpc://'), stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      let err = '';
      p.stdout.on('data', (d) => (text += d));
      p.stderr.on('data', (d) => (err += d));
      const t = setTimeout(() => p.kill('SIGKILL'), 300_000);
      p.on('exit', (code) => {
        clearTimeout(t);
        code === 0 ? resolve(text) : reject(new Error(`celery_rtt.py exited ${code}: ${err.slice(-500)}`));
      });
    });
    return out.split('\n').filter(Boolean).map(Number);
  } finally {
    await w.stop();
  }
}

export async function results(ctx: BenchContext): Promise<BenchRow[]> {
  const n = ctx.n(1_000);
  const rows: BenchRow[] = [];
  const rabbit = await ctx.rabbit();
  let celery: number[] | null = null;
  if (rabbit && !ctx.celeryMissing()) celery = await celeryTrips(ctx, rabbit.url, n);
  const add = (label: string, xs: number[]) => {
    for (const p of [50, 99]) {
      const v = percentile(xs, p);
      const c = celery ? percentile(celery, p) : null;
      // The target: rpc delay().get() p99 no slower than Celery's in the same run.
      const target = p === 99 && label.includes('rpc://') && c !== null ? { target: '≤ 1.00', met: meets(ratio(v, c), 1.0, true) } : {};
      rows.push({ case: '6 results', metric: `${label} p${p}`, value: v, unit: 'ms', ...(c !== null ? { baseline: { label: 'Celery rpc://', value: c }, ratio: ratio(v, c) } : {}), ...target });
    }
  };
  if (rabbit) add('asynx rpc:// delay().get()', await roundTrips(ctx, rabbit.url, 'rpc://', 'bench.rpc', n, 'asynx rpc://'));
  const db = `sqlite://${ctx.path('results.db')}`;
  add('asynx SQLite delay().get()', await roundTrips(ctx, db, db, 'bench.res', n, 'asynx SQLite'));
  if (celery) for (const p of [50, 99]) rows.push({ case: '6 results', metric: `Celery ${ctx.celeryVersion()} rpc:// delay().get() p${p}`, value: percentile(celery, p), unit: 'ms', note: "Celery's own client" });
  return rows;
}
