// Case 4, concurrency: 2,000 tasks that sleep 10 ms at -c 8, against the ideal 800/s (SQLite, and AMQP when
// RabbitMQ runs).

import type { BenchContext } from '../context.js';
import { median, ratio, type BenchRow } from '../report.js';
import { client, mark, publishAll, startAsynx } from '../workers.js';

async function one(ctx: BenchContext, broker: string, label: string, n: number): Promise<number> {
  const queue = 'bench.sleep';
  ctx.progress.step(`4 concurrency: starting an asynx node (-c 8, ${label})`);
  const w = await startAsynx(ctx, broker, 8, queue, 'none');
  const app = client(ctx, broker);
  await mark(ctx, app, queue);
  const rates: number[] = [];
  for (let run = 1; run <= ctx.runs; run++) {
    ctx.progress.step(`4 concurrency: ${label}, run ${run}/${ctx.runs}`);
    const t0 = performance.now();
    await publishAll(n, () => app.sendTask('bench.sleep', [10], {}, { queue, ignoreResult: true }), (d) => ctx.progress.tick(d, n));
    await mark(ctx, app, queue);
    // The marker starts once a slot frees; the 7 other slots finish their last 10 ms sleeps meanwhile.
    rates.push((n / (performance.now() - t0 + 10)) * 1000);
  }
  await w.stop();
  return median(rates);
}

export async function concurrency(ctx: BenchContext): Promise<BenchRow[]> {
  const n = ctx.n(2_000);
  const ideal = 800;
  const rows: BenchRow[] = [];
  const sqlite = await one(ctx, `sqlite://${ctx.path('sleep.db')}`, 'SQLite', n);
  rows.push({ case: '4 concurrency', metric: 'asynx SQLite -c 8, 10 ms tasks', value: sqlite, unit: 'tasks/s', baseline: { label: 'ideal 8/10 ms', value: ideal }, ratio: ratio(sqlite, ideal), target: '≥ 0.90', met: (ratio(sqlite, ideal) ?? 0) >= 0.9 });
  const rabbit = await ctx.rabbit();
  if (rabbit) {
    const amqp = await one(ctx, rabbit.url, 'AMQP', n);
    rows.push({ case: '4 concurrency', metric: 'asynx AMQP -c 8, 10 ms tasks', value: amqp, unit: 'tasks/s', baseline: { label: 'ideal 8/10 ms', value: ideal }, ratio: ratio(amqp, ideal), target: '≥ 0.90', met: (ratio(amqp, ideal) ?? 0) >= 0.9 });
  }
  return rows;
}
