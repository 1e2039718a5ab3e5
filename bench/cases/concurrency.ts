// Case 4, concurrency: tasks that sleep 10 ms (I/O stand-in) against the ideal c / 10 ms: prefork -c 8 (800/s)
// and async -c 200 (20,000/s) on SQLite and AMQP, Celery -P threads -c 200 on AMQP as the peer.

import type { BenchContext } from '../context.js';
import { failedRow, meets, median, ratio, type BenchRow } from '../report.js';
import { existsSync, readFileSync } from 'node:fs';
import { openControlClient, type Asynx } from 'asynx';
import { client, mark, publishAll, startAsynx, startCelery, until, type BenchWorker, type Pool } from '../workers.js';

interface Rates {
  /** Published by the bench's one client while the worker consumes: bound by that client as much as by the worker. */
  live: number;
  /** A backlog of the same n tasks drained: consumer paused (cancel_consumer), tasks queued, consumer resumed. */
  drain: number;
}

/** Waits for the marker file of `mark()`-style tasks (the marker is the last task queued). */
async function markerAfter(ctx: BenchContext, app: Asynx, queue: string, path: string, start: () => Promise<void>): Promise<number> {
  await app.sendTask('bench.mark', [path], {}, { queue, ignoreResult: true });
  const t0 = performance.now();
  await start();
  await until('the marker task after the backlog', () => existsSync(path) && readFileSync(path, 'utf8').length > 0, 300_000, 5);
  return performance.now() - t0;
}

async function one(ctx: BenchContext, w: BenchWorker, broker: string, label: string, queue: string, n: number): Promise<Rates> {
  const app = client(ctx, broker);
  await mark(ctx, app, queue);
  const live: number[] = [];
  const drain: number[] = [];
  const control = await openControlClient(broker);
  try {
    for (let run = 1; run <= ctx.runs; run++) {
      ctx.progress.step(`4 concurrency: ${label}, run ${run}/${ctx.runs}`);
      const t0 = performance.now();
      await publishAll(n, () => app.sendTask('bench.sleep', [10], {}, { queue, ignoreResult: true }), (d) => ctx.progress.tick(d, n));
      await mark(ctx, app, queue);
      // The marker starts once a slot frees; the other slots finish their last 10 ms sleeps meanwhile.
      live.push((n / (performance.now() - t0 + 10)) * 1000);
      // The same n as a backlog, so the worker alone sets the pace.
      ctx.progress.step(`4 concurrency: ${label}, backlog run ${run}/${ctx.runs}`);
      const paused = await control.broadcast('cancel_consumer', { queue }, { timeoutMs: 30_000, limit: 1 });
      if (!paused.length) throw new Error(`bench: ${label}: no reply to cancel_consumer`);
      await publishAll(n, () => app.sendTask('bench.sleep', [10], {}, { queue, ignoreResult: true }), (d) => ctx.progress.tick(d, n));
      const ms = await markerAfter(ctx, app, queue, ctx.path('mark'), async () => {
        const resumed = await control.broadcast('add_consumer', { queue }, { timeoutMs: 30_000, limit: 1 });
        if (!resumed.length) throw new Error(`bench: ${label}: no reply to add_consumer`);
      });
      drain.push((n / (ms + 10)) * 1000);
    }
  } finally {
    await control.close();
    await w.stop();
  }
  return { live: median(live), drain: median(drain) };
}

async function asynxRow(ctx: BenchContext, broker: string, brokerLabel: string, pool: Pool, c: number, n: number, target: number): Promise<BenchRow[]> {
  const metric = `asynx ${brokerLabel} ${pool} -c ${c}, 10 ms tasks`;
  const queue = `bench.sleep.${pool}`;
  const ideal = c * 100;
  try {
    ctx.progress.step(`4 concurrency: starting an asynx node (-P ${pool} -c ${c}, ${brokerLabel})`);
    const w = await startAsynx(ctx, broker, c, queue, 'none', {}, pool);
    const r = await one(ctx, w, broker, `${brokerLabel} ${pool} -c ${c}`, queue, n);
    ctx.memo.set(`${brokerLabel.toLowerCase()}.${pool}.c${c}.sleep10`, r.drain);
    return [
      { case: '4 concurrency', metric: `${metric}, draining a backlog`, value: r.drain, unit: 'tasks/s', baseline: { label: `ideal ${c}/10 ms`, value: ideal }, ratio: ratio(r.drain, ideal), target: `≥ ${target.toFixed(2)}`, met: meets(ratio(r.drain, ideal), target), note: `${n.toLocaleString('en-US')} tasks queued while the consumer was cancelled, then add_consumer` },
      { case: '4 concurrency', metric: `${metric}, published while consuming`, value: r.live, unit: 'tasks/s', baseline: { label: `ideal ${c}/10 ms`, value: ideal }, ratio: ratio(r.live, ideal), note: 'one publishing client (256 awaited sends in flight) sets this pace as much as the worker' },
    ];
  } catch (err) {
    return [failedRow('4 concurrency', metric, err)];
  }
}

export async function concurrency(ctx: BenchContext): Promise<BenchRow[]> {
  const n8 = ctx.n(2_000);
  const n200 = ctx.n(20_000);
  const rows: BenchRow[] = [];
  const sqlite = () => `sqlite://${ctx.path('sleep.db')}`;
  rows.push(...(await asynxRow(ctx, sqlite(), 'SQLite', 'prefork', 8, n8, 0.9)));
  rows.push(...(await asynxRow(ctx, sqlite(), 'SQLite', 'async', 200, n200, 0.5)));
  const rabbit = await ctx.rabbit();
  if (!rabbit) {
    rows.push({ case: '4 concurrency', metric: 'AMQP rows skipped', value: null, unit: '', note: ctx.rabbitReason ?? 'no RabbitMQ' });
    return rows;
  }
  rows.push(...(await asynxRow(ctx, rabbit.url, 'AMQP', 'prefork', 8, n8, 0.9)));
  const asyncRows = await asynxRow(ctx, rabbit.url, 'AMQP', 'async', 200, n200, 0.5);
  rows.push(...asyncRows);
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
    const r = await one(ctx, cw, rabbit.url, 'Celery threads -c 200', queue, nc);
    rows.push(
      { case: '4 concurrency', metric: `${metric}, draining a backlog`, value: r.drain, unit: 'tasks/s', baseline: { label: 'ideal 200/10 ms', value: 20_000 }, ratio: ratio(r.drain, 20_000), note: `${nc.toLocaleString('en-US')} tasks a run` },
      { case: '4 concurrency', metric: `${metric}, published while consuming`, value: r.live, unit: 'tasks/s', baseline: { label: 'ideal 200/10 ms', value: 20_000 }, ratio: ratio(r.live, 20_000) },
    );
    const a = asyncRows[0]?.value ?? null;
    rows.push({ case: '4 concurrency', metric: 'asynx AMQP async -c 200 / Celery threads -c 200 (10 ms tasks, backlog)', value: ratio(a, r.drain), unit: '×', target: '≥ 3', met: meets(ratio(a, r.drain), 3) });
  } catch (err) {
    rows.push(failedRow('4 concurrency', metric, err));
  }
  return rows;
}
