// Case 4, concurrency: tasks that sleep 10 ms (I/O stand-in) against the ideal c / 10 ms: prefork -c 8 (800/s)
// and async -c 200 (20,000/s) on SQLite and AMQP, Celery -P threads -c 200 on AMQP as the peer.

import type { BenchContext } from '../context.js';
import { failedRow, meets, median, ratio, type BenchRow } from '../report.js';
import { client, mark, publishAll, startAsynx, startCelery, type BenchWorker, type Pool } from '../workers.js';

async function one(ctx: BenchContext, w: BenchWorker, broker: string, label: string, queue: string, n: number): Promise<number> {
  const app = client(ctx, broker);
  await mark(ctx, app, queue);
  const rates: number[] = [];
  for (let run = 1; run <= ctx.runs; run++) {
    ctx.progress.step(`4 concurrency: ${label}, run ${run}/${ctx.runs}`);
    const t0 = performance.now();
    await publishAll(n, () => app.sendTask('bench.sleep', [10], {}, { queue, ignoreResult: true }), (d) => ctx.progress.tick(d, n));
    await mark(ctx, app, queue);
    // The marker starts once a slot frees; the other slots finish their last 10 ms sleeps meanwhile.
    rates.push((n / (performance.now() - t0 + 10)) * 1000);
  }
  await w.stop();
  return median(rates);
}

async function asynxRow(ctx: BenchContext, broker: string, brokerLabel: string, pool: Pool, c: number, n: number, target: number): Promise<BenchRow> {
  const metric = `asynx ${brokerLabel} ${pool} -c ${c}, 10 ms tasks`;
  const queue = `bench.sleep.${pool}`;
  const ideal = c * 100;
  try {
    ctx.progress.step(`4 concurrency: starting an asynx node (-P ${pool} -c ${c}, ${brokerLabel})`);
    const w = await startAsynx(ctx, broker, c, queue, 'none', {}, pool);
    const rate = await one(ctx, w, broker, `${brokerLabel} ${pool} -c ${c}`, queue, n);
    ctx.memo.set(`${brokerLabel.toLowerCase()}.${pool}.c${c}.sleep10`, rate);
    return { case: '4 concurrency', metric, value: rate, unit: 'tasks/s', baseline: { label: `ideal ${c}/10 ms`, value: ideal }, ratio: ratio(rate, ideal), target: `≥ ${target.toFixed(2)}`, met: meets(ratio(rate, ideal), target) };
  } catch (err) {
    return failedRow('4 concurrency', metric, err);
  }
}

export async function concurrency(ctx: BenchContext): Promise<BenchRow[]> {
  const n8 = ctx.n(2_000);
  const n200 = ctx.n(20_000);
  const rows: BenchRow[] = [];
  const sqlite = () => `sqlite://${ctx.path('sleep.db')}`;
  rows.push(await asynxRow(ctx, sqlite(), 'SQLite', 'prefork', 8, n8, 0.9));
  rows.push(await asynxRow(ctx, sqlite(), 'SQLite', 'async', 200, n200, 0.5));
  const rabbit = await ctx.rabbit();
  if (!rabbit) {
    rows.push({ case: '4 concurrency', metric: 'AMQP rows skipped', value: null, unit: '', note: ctx.rabbitReason ?? 'no RabbitMQ' });
    return rows;
  }
  rows.push(await asynxRow(ctx, rabbit.url, 'AMQP', 'prefork', 8, n8, 0.9));
  const asyncRow = await asynxRow(ctx, rabbit.url, 'AMQP', 'async', 200, n200, 0.5);
  rows.push(asyncRow);
  const missing = ctx.celeryMissing();
  if (missing) {
    rows.push({ case: '4 concurrency', metric: 'Celery threads -c 200 skipped', value: null, unit: '', note: missing });
    return rows;
  }
  const metric = `Celery ${ctx.celeryVersion()} threads -c 200, 10 ms tasks`;
  try {
    ctx.progress.step('4 concurrency: starting a Celery worker (-P threads -c 200)');
    const queue = 'bench.sleep.cthreads';
    const cw = await startCelery(ctx, rabbit.url, 200, queue, undefined, 'threads');
    // Fewer tasks: at Celery's rate the same 20,000 would take minutes per run; a rate is a rate.
    const nc = ctx.n(5_000);
    const rate = await one(ctx, cw, rabbit.url, 'Celery threads -c 200', queue, nc);
    rows.push({ case: '4 concurrency', metric, value: rate, unit: 'tasks/s', baseline: { label: 'ideal 200/10 ms', value: 20_000 }, ratio: ratio(rate, 20_000), note: `${nc.toLocaleString('en-US')} tasks a run` });
    const a = asyncRow.value;
    rows.push({ case: '4 concurrency', metric: 'asynx AMQP async -c 200 / Celery threads -c 200 (10 ms tasks)', value: ratio(a, rate), unit: '×', target: '≥ 3', met: meets(ratio(a, rate), 3) });
  } catch (err) {
    rows.push(failedRow('4 concurrency', metric, err));
  }
  return rows;
}
