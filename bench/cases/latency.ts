// Case 5, latency: an idle worker, 1,000 tasks sent 10 ms apart, enqueue → task start p50 / p99 for asynx
// (prefork -c 2, async -c 100) on AMQP and SQLite, next to raw amqplib (publish → delivery) and Celery in the same run.

import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import amqplib from 'amqplib';
import type { Asynx } from 'asynx';
import type { BenchContext } from '../context.js';
import { failedRow, meets, percentile, ratio, type BenchRow } from '../report.js';
import { client, mark, startAsynx, startCelery, until, type BenchWorker, type Pool } from '../workers.js';

const now = () => performance.timeOrigin + performance.now();
const GAP_MS = 10;

/** Sends `n` stamp tasks 10 ms apart; each records enqueue → start in the file. */
export async function stamps(ctx: BenchContext, app: Asynx, queue: string, n: number, label: string): Promise<number[]> {
  const path = ctx.path('stamps');
  await mark(ctx, app, queue);
  ctx.progress.step(`5 latency: ${label}`);
  for (let i = 0; i < n; i++) {
    await app.sendTask('bench.stamp', [path, now()], {}, { queue, ignoreResult: true });
    ctx.progress.tick(i + 1, n);
    await sleep(GAP_MS);
  }
  const read = () => readFileSync(path, 'utf8').split('\n').filter(Boolean).map(Number);
  await until(`${n} latency stamps`, () => {
    try {
      return read().length >= n;
    } catch {
      return false;
    }
  }, 60_000, 20);
  return read();
}

/** Raw amqplib: persistent publish with confirm, consumer with prefetch 1: publish → delivery. */
async function rawLatency(url: string, n: number): Promise<number[]> {
  const pub = await amqplib.connect(url, { noDelay: true });
  const sub = await amqplib.connect(url, { noDelay: true });
  try {
    const pc = await pub.createConfirmChannel();
    const cc = await sub.createChannel();
    await pc.assertQueue('bench.rawlat', { durable: true });
    await cc.prefetch(8);
    const out: number[] = [];
    await cc.consume('bench.rawlat', (m) => {
      if (!m) return;
      out.push(now() - Number(m.content.toString()));
      cc.ack(m);
    });
    for (let i = 0; i < n; i++) {
      await new Promise<void>((resolve, reject) => pc.publish('', 'bench.rawlat', Buffer.from(String(now())), { persistent: true }, (e) => (e ? reject(e) : resolve())));
      await sleep(GAP_MS);
    }
    await until('raw deliveries', () => out.length >= n, 30_000);
    return out;
  } finally {
    await pub.close().catch(() => undefined);
    await sub.close().catch(() => undefined);
  }
}

function rows(label: string, xs: number[], base?: { label: string; p50: number; p99: number }, targets?: { p50?: string; p99?: string; met50?: boolean; met99?: boolean }): BenchRow[] {
  const p50 = percentile(xs, 50);
  const p99 = percentile(xs, 99);
  return [
    { case: '5 latency', metric: `${label} p50`, value: p50, unit: 'ms', ...(base ? { baseline: { label: base.label, value: base.p50 }, ratio: ratio(p50, base.p50) } : {}), ...(targets?.p50 ? { target: targets.p50, met: targets.met50 ?? null } : {}) },
    { case: '5 latency', metric: `${label} p99`, value: p99, unit: 'ms', ...(base ? { baseline: { label: base.label, value: base.p99 }, ratio: ratio(p99, base.p99) } : {}), ...(targets?.p99 ? { target: targets.p99, met: targets.met99 ?? null } : {}) },
  ];
}

/** asynx on one broker and pool: enqueue → start stamps, or the error that stopped it. */
async function asynxStamps(ctx: BenchContext, stop: BenchWorker[], broker: string, pool: Pool, c: number, n: number, label: string): Promise<number[] | Error> {
  try {
    const w = await startAsynx(ctx, broker, c, `bench.lat.${pool}`, 'none', {}, pool);
    stop.push(w);
    const xs = await stamps(ctx, client(ctx, broker), `bench.lat.${pool}`, n, label);
    await w.stop();
    return xs;
  } catch (err) {
    return err as Error;
  }
}

export async function latency(ctx: BenchContext): Promise<BenchRow[]> {
  const n = ctx.n(1_000);
  const out: BenchRow[] = [];
  const rabbit = await ctx.rabbit();
  let raw: number[] | null = null;
  let celery: number[] | null = null;
  const amqp: Partial<Record<Pool, number[] | Error>> = {};
  const stop: BenchWorker[] = [];
  const pools: Array<{ pool: Pool; c: number; p50: number }> = [
    { pool: 'prefork', c: 2, p50: 1.8 },
    { pool: 'async', c: 100, p50: 1.3 },
  ];
  try {
    if (rabbit) {
      ctx.progress.step('5 latency: raw amqplib');
      raw = await rawLatency(rabbit.url, n);
      for (const p of pools) amqp[p.pool] = await asynxStamps(ctx, stop, rabbit.url, p.pool, p.c, n, `asynx AMQP ${p.pool}`);
      if (!ctx.celeryMissing()) {
        const cw = await startCelery(ctx, rabbit.url, 2, 'bench.clat');
        stop.push(cw);
        celery = await stamps(ctx, client(ctx, rabbit.url), 'bench.clat', n, 'Celery');
        await cw.stop();
      }
    }
    const sqlite: Partial<Record<Pool, number[] | Error>> = {};
    for (const p of pools) sqlite[p.pool] = await asynxStamps(ctx, stop, `sqlite://${ctx.path(`lat-${p.pool}.db`)}`, p.pool, p.c, n, `asynx SQLite ${p.pool}`);
    if (raw) ctx.memo.set('amqp.raw.p50', percentile(raw, 50));
    const rawBase = raw ? { label: 'raw amqplib', p50: percentile(raw, 50), p99: percentile(raw, 99) } : undefined;
    const celeryP99 = celery ? percentile(celery, 99) : null;
    if (raw) out.push(...rows('raw amqplib publish → delivery', raw));
    for (const p of pools) {
      const xs = amqp[p.pool];
      const label = `asynx AMQP ${p.pool} -c ${p.c} enqueue → start`;
      if (xs instanceof Error) out.push(failedRow('5 latency', label, xs));
      else if (xs) {
        const p50 = percentile(xs, 50);
        const p99 = percentile(xs, 99);
        out.push(...rows(label, xs, rawBase, { p50: `≤ ${p.p50.toFixed(2)}`, met50: rawBase ? p50 <= p.p50 * rawBase.p50 : undefined, p99: celeryP99 !== null ? `≤ Celery p99 (${celeryP99.toFixed(2)} ms)` : undefined, met99: celeryP99 !== null ? p99 <= celeryP99 : undefined }));
      }
    }
    if (celery) out.push(...rows('Celery prefork -c 2 enqueue → start', celery, rawBase));
    for (const p of pools) {
      const xs = sqlite[p.pool];
      const label = `asynx SQLite ${p.pool} -c ${p.c} enqueue → start`;
      if (xs instanceof Error || !xs) out.push(failedRow('5 latency', label, xs ?? 'no run'));
      else {
        const r = rows(label, xs, rawBase);
        // The issue's SQLite target is absolute: p50 ≤ 1.0 ms.
        r[0] = { ...r[0]!, target: '≤ 1.0 ms', met: meets(percentile(xs, 50), 1.0, true) };
        out.push(...r);
      }
    }
    if (!rabbit) out.push({ case: '5 latency', metric: 'AMQP rows skipped', value: null, unit: '', note: ctx.rabbitReason ?? '' });
  } finally {
    for (const w of stop) await w.stop();
  }
  return out;
}
