// Case 6, results: 1,000 sequential delay().get() round trips over rpc:// (AMQP) and over SQLite, p50 / p99,
// next to Celery's own client over rpc:// when installed: as Celery ships (no publisher confirms) and with kombu's
// `confirm_publish`, the guarantee asynx's delay() gives. asynx's delay() alone (until the broker's confirm) is
// reported too: that part of the round trip is where its tail is.

import { spawn } from 'node:child_process';
import type { BenchContext } from '../context.js';
import { BENCH_DIR, PYTHON } from '../context.js';
import { meets, percentile, ratio, type BenchRow } from '../report.js';
import { celeryEnv, client, startAsynx, startCelery } from '../workers.js';

/** Round trips in ms, and the part of each until delay() resolved (the broker's confirm on AMQP). */
interface Trips {
  total: number[];
  send: number[];
}

async function roundTrips(ctx: BenchContext, broker: string, backend: string, queue: string, n: number, label: string): Promise<Trips> {
  const w = await startAsynx(ctx, broker, 2, queue, backend);
  const app = client(ctx, broker, backend);
  const xs: number[] = [];
  const send: number[] = [];
  try {
    await (await app.sendTask('bench.add', [0, 0], {}, { queue })).get({ timeout: 30 });
    ctx.progress.step(`6 results: ${label}`);
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      const r = await app.sendTask<number>('bench.add', [1, 2], {}, { queue });
      send.push(performance.now() - t);
      if ((await r.get({ timeout: 30 })) !== 3) throw new Error('bench.add returned a wrong sum');
      xs.push(performance.now() - t);
      ctx.progress.tick(i + 1, n);
    }
  } finally {
    await w.stop();
  }
  return { total: xs, send };
}

/** Celery's own client (bench/celery_rtt.py) against a Celery worker, rpc:// results; `confirm`: kombu's confirm_publish. */
async function celeryTrips(ctx: BenchContext, url: string, n: number): Promise<{ plain: number[]; confirmed: number[] }> {
  const w = await startCelery(ctx, url, 2, 'celery', 'rpc://');
  try {
    ctx.progress.step('6 results: Celery rpc://');
    const plain = await celeryClient(url, n, false);
    ctx.progress.step('6 results: Celery rpc:// with confirm_publish');
    const confirmed = await celeryClient(url, n, true);
    return { plain, confirmed };
  } finally {
    await w.stop();
  }
}

async function celeryClient(url: string, n: number, confirm: boolean): Promise<number[]> {
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn(PYTHON, ['celery_rtt.py', String(n)], { cwd: BENCH_DIR, env: { ...celeryEnv(url, 'rpc://'), BENCH_CONFIRM: confirm ? '1' : '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
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
}

export async function results(ctx: BenchContext): Promise<BenchRow[]> {
  const n = ctx.n(1_000);
  const rows: BenchRow[] = [];
  const rabbit = await ctx.rabbit();
  let celeryBoth: { plain: number[]; confirmed: number[] } | null = null;
  if (rabbit && !ctx.celeryMissing()) celeryBoth = await celeryTrips(ctx, rabbit.url, n);
  const celery = celeryBoth?.plain ?? null;
  const add = (label: string, xs: number[]) => {
    for (const p of [50, 99]) {
      const v = percentile(xs, p);
      const c = celery ? percentile(celery, p) : null;
      // The target: rpc delay().get() p99 no slower than Celery's in the same run.
      const target = p === 99 && label.includes('rpc://') && c !== null ? { target: '≤ 1.00', met: meets(ratio(v, c), 1.0, true) } : {};
      rows.push({ case: '6 results', metric: `${label} p${p}`, value: v, unit: 'ms', ...(c !== null ? { baseline: { label: 'Celery rpc://', value: c }, ratio: ratio(v, c) } : {}), ...target });
    }
  };
  if (rabbit) {
    const rpc = await roundTrips(ctx, rabbit.url, 'rpc://', 'bench.rpc', n, 'asynx rpc://');
    add('asynx rpc:// delay().get()', rpc.total);
    for (const p of [50, 99]) rows.push({ case: '6 results', metric: `asynx rpc:// delay() alone p${p}`, value: percentile(rpc.send, p), unit: 'ms', note: "part of the round trip: until RabbitMQ's publisher confirm of the persistent task message" });
    if (celeryBoth) {
      const cc = celeryBoth.confirmed;
      for (const p of [50, 99]) {
        const v = percentile(rpc.total, p);
        const c = percentile(cc, p);
        rows.push({ case: '6 results', metric: `asynx rpc:// delay().get() p${p} ÷ Celery with confirm_publish`, value: v, unit: 'ms', baseline: { label: 'Celery rpc:// confirm_publish', value: c }, ratio: ratio(v, c), note: 'same guarantee: both clients wait for the broker to confirm each task message' });
      }
    }
  }
  const db = `sqlite://${ctx.path('results.db')}`;
  add('asynx SQLite delay().get()', (await roundTrips(ctx, db, db, 'bench.res', n, 'asynx SQLite')).total);
  if (celeryBoth) {
    for (const p of [50, 99]) rows.push({ case: '6 results', metric: `Celery ${ctx.celeryVersion()} rpc:// delay().get() p${p}`, value: percentile(celeryBoth.plain, p), unit: 'ms', note: "Celery's own client, as it ships (no publisher confirms)" });
    for (const p of [50, 99]) rows.push({ case: '6 results', metric: `Celery ${ctx.celeryVersion()} rpc:// with confirm_publish delay().get() p${p}`, value: percentile(celeryBoth.confirmed, p), unit: 'ms', note: "Celery's own client, broker_transport_options={'confirm_publish': True}" });
  }
  return rows;
}
