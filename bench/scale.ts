// `npm run bench -- --scale[=1000,100000,1000000]`: throughput and enqueue → start latency of fresh tasks while
// the broker holds a deep backlog in another queue, and while 1,000,000 countdown tasks are parked for the
// consumed queue, on SQLite and RabbitMQ; the SQLite claim query plans; an SVG plot.

import { writeFileSync } from 'node:fs';
import amqplib from 'amqplib';
import { buildTaskMessage } from '../dist/protocol/codec.js';
import { toPublishOptions } from '../dist/transports/amqp-topology.js';
import { MSG_DELAYED, MSG_READY, openDb } from '../dist/transports/sqlite-db.js';
import type { BenchContext } from './context.js';
import { stamps } from './cases/latency.js';
import { failedRow, median, percentile, ratio, type BenchRow } from './report.js';
import { figure, type Chart } from './svg.js';
import { client, mark, publishAll, startAsynx, type Pool } from './workers.js';

export interface ScaleOptions {
  levels: number[];
  parked: number;
  fresh: number;
  stampsN: number;
  pool: Pool;
  brokers: Array<'sqlite' | 'amqp'>;
  svg: string | null;
}

const FRESH = 'bench.fresh';
const BACKLOG = 'bench.backlog';
/** Countdown publishes in flight on AMQP (each enters the delay ladder at its own level). */
const PARK_WINDOW = 256;

/** The claim statements of src/transports/sqlite.ts (copied: the transport keeps them private), for EXPLAIN QUERY PLAN. */
export const CLAIM_SQL = {
  pick: `SELECT id, queue, deliveries, properties, headers, body FROM messages WHERE queue = ? AND state = ${MSG_READY} ORDER BY priority DESC, id LIMIT ?`,
  promote: `UPDATE messages SET state = ${MSG_READY}, owner = NULL WHERE state IN (${MSG_DELAYED}, 2) AND visible_at <= ?`,
};

interface Point {
  condition: string;
  waiting: number;
  rate: number;
  p50: number;
  p99: number;
}

/** Inserts `count` rows in one transaction: ready in BACKLOG, or delayed an hour in FRESH (a parked countdown). */
function sqliteFill(path: string, count: number, parked: boolean): number {
  const db = openDb(path, 30_000);
  const now = Date.now();
  const { message } = buildTaskMessage('bench.noop', [], {}, { ignoreResult: true, ...(parked ? { countdown: 3600 } : {}) });
  const props = JSON.stringify(message.properties);
  const headers = JSON.stringify(message.headers);
  const insert = db.prepare('INSERT INTO messages (queue, priority, state, visible_at, properties, headers, body, created_at) VALUES (?, 0, ?, ?, ?, ?, ?, ?)');
  const t0 = performance.now();
  db.transaction(() => {
    for (let i = 0; i < count; i++) insert.run(parked ? FRESH : BACKLOG, parked ? MSG_DELAYED : MSG_READY, parked ? now + 3_600_000 : now, props, headers, message.body, now);
  })();
  const ms = performance.now() - t0;
  db.close();
  return ms;
}

function sqlitePurge(path: string): void {
  const db = openDb(path, 30_000);
  db.prepare('DELETE FROM messages WHERE queue = ?').run(BACKLOG);
  db.close();
}

/** EXPLAIN QUERY PLAN of the claim statements against the filled database. */
export function claimPlans(path: string): Record<string, string> {
  const db = openDb(path, 30_000);
  const out: Record<string, string> = {};
  for (const [k, sql] of Object.entries(CLAIM_SQL)) {
    const rows = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...(k === 'pick' ? [FRESH, 16] : [Date.now()])) as Array<{ detail: string }>;
    out[k] = rows.map((r) => r.detail).join('; ');
  }
  db.close();
  return out;
}

/** Publishes `count` Celery-format messages to BACKLOG with raw amqplib, confirms in flight (256). */
async function amqpFill(url: string, count: number): Promise<number> {
  const conn = await amqplib.connect(url, { noDelay: true });
  try {
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(BACKLOG, { durable: true });
    const m = buildTaskMessage('bench.noop', [], {}, { ignoreResult: true }).message;
    const body = Buffer.from(m.body);
    const options = toPublishOptions(m.properties as unknown as Record<string, unknown>, m.headers);
    const t0 = performance.now();
    await publishAll(count, () => new Promise<void>((resolve, reject) => ch.publish('', BACKLOG, body, options, (err) => (err ? reject(err) : resolve()))));
    return performance.now() - t0;
  } finally {
    await conn.close().catch(() => undefined);
  }
}

async function amqpPurge(url: string): Promise<void> {
  const conn = await amqplib.connect(url);
  try {
    const ch = await conn.createChannel();
    await ch.assertQueue(BACKLOG, { durable: true });
    await ch.purgeQueue(BACKLOG);
  } finally {
    await conn.close().catch(() => undefined);
  }
}

async function measure(ctx: BenchContext, broker: string, label: string, condition: string, waiting: number, opts: ScaleOptions): Promise<Point> {
  const app = client(ctx, broker);
  // A warm-up batch first: otherwise the first condition (the empty broker) also pays the worker's JIT warm-up.
  const warm = Math.min(1_000, opts.fresh);
  await publishAll(warm, () => app.sendTask('bench.noop', [], {}, { queue: FRESH, ignoreResult: true }));
  await mark(ctx, app, FRESH);
  const rates: number[] = [];
  for (let run = 1; run <= ctx.runs; run++) {
    ctx.progress.step(`scale ${label}: ${condition}, fresh tasks, run ${run}/${ctx.runs}`);
    const t0 = performance.now();
    await publishAll(opts.fresh, () => app.sendTask('bench.noop', [], {}, { queue: FRESH, ignoreResult: true }), (d) => ctx.progress.tick(d, opts.fresh));
    await mark(ctx, app, FRESH);
    rates.push((opts.fresh / (performance.now() - t0)) * 1000);
  }
  const xs = await stamps(ctx, app, FRESH, opts.stampsN, `scale ${label}: ${condition}, enqueue → start`);
  return { condition, waiting, rate: median(rates), p50: percentile(xs, 50), p99: percentile(xs, 99) };
}

function rowsFor(label: string, points: Point[]): BenchRow[] {
  const base = points[0];
  return points.flatMap((p, i) => {
    const rel = (v: number, b: number | undefined) => (i === 0 || b === undefined ? {} : { baseline: { label: 'empty', value: b }, ratio: ratio(v, b) });
    return [
      { case: 'scale', metric: `${label} ${p.condition}: fresh-task throughput`, value: p.rate, unit: 'tasks/s', ...rel(p.rate, base?.rate) },
      { case: 'scale', metric: `${label} ${p.condition}: enqueue → start p50`, value: p.p50, unit: 'ms', ...rel(p.p50, base?.p50) },
      { case: 'scale', metric: `${label} ${p.condition}: enqueue → start p99`, value: p.p99, unit: 'ms', ...rel(p.p99, base?.p99) },
    ];
  });
}

export async function scale(ctx: BenchContext, opts: ScaleOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const all: Record<string, Point[]> = {};
  for (const b of opts.brokers) {
    const label = b === 'amqp' ? 'AMQP' : 'SQLite';
    const points: Point[] = [];
    const plans: BenchRow[] = [];
    try {
      let url: string;
      const dbPath = ctx.path('scale.db');
      if (b === 'amqp') {
        const rabbit = await ctx.rabbit();
        if (!rabbit) {
          rows.push({ case: 'scale', metric: 'AMQP skipped', value: null, unit: '', note: ctx.rabbitReason ?? 'no RabbitMQ' });
          continue;
        }
        url = rabbit.url;
      } else url = `sqlite://${dbPath}`;
      ctx.progress.step(`scale ${label}: starting an asynx node (-P ${opts.pool})`);
      const w = await startAsynx(ctx, url, opts.pool === 'async' ? 100 : 2, FRESH, 'none', {}, opts.pool);
      points.push(await measure(ctx, url, label, 'empty broker', 0, opts));
      let have = 0;
      for (const level of opts.levels) {
        ctx.progress.step(`scale ${label}: filling ${BACKLOG} to ${level.toLocaleString('en-US')} ready tasks`);
        const ms = b === 'sqlite' ? sqliteFill(dbPath, level - have, false) : await amqpFill(url, level - have);
        ctx.progress.note(`scale ${label}: ${(level - have).toLocaleString('en-US')} backlog tasks in ${(ms / 1000).toFixed(1)} s (${b === 'sqlite' ? 'one INSERT transaction' : 'amqplib, confirms, 256 in flight'})`);
        have = level;
        points.push(await measure(ctx, url, label, `${level.toLocaleString('en-US')} waiting in another queue`, level, opts));
        if (b === 'sqlite') {
          const p = claimPlans(dbPath);
          plans.push({ case: 'scale', metric: `SQLite claim plan at ${level.toLocaleString('en-US')} waiting`, value: null, unit: '', note: `pick: ${p.pick}; promote: ${p.promote}` });
        }
      }
      if (opts.parked > 0) {
        ctx.progress.step(`scale ${label}: emptying ${BACKLOG}, parking ${opts.parked.toLocaleString('en-US')} countdown tasks`);
        if (b === 'sqlite') sqlitePurge(dbPath);
        else await amqpPurge(url);
        let ms: number;
        if (b === 'sqlite') ms = sqliteFill(dbPath, opts.parked, true);
        else {
          // Through asynx's own client: a countdown is routed into the delay ladder, which only the client knows.
          // RabbitMQ is still busy deleting the purged million for a while: a publish may wait longer than 5 s.
          const app = client(ctx, url, 'none', { publishTimeout: 60 });
          const t0 = performance.now();
          await publishAll(opts.parked, () => app.sendTask('bench.noop', [], {}, { queue: FRESH, ignoreResult: true, countdown: 3600 }), (d) => ctx.progress.tick(d, opts.parked), PARK_WINDOW);
          ms = performance.now() - t0;
        }
        ctx.progress.note(`scale ${label}: parked ${opts.parked.toLocaleString('en-US')} countdown tasks in ${(ms / 1000).toFixed(1)} s`);
        points.push(await measure(ctx, url, label, `${opts.parked.toLocaleString('en-US')} countdown tasks parked`, opts.parked, opts));
        if (b === 'sqlite') {
          const p = claimPlans(dbPath);
          plans.push({ case: 'scale', metric: `SQLite claim plan with ${opts.parked.toLocaleString('en-US')} parked`, value: null, unit: '', note: `pick: ${p.pick}; promote: ${p.promote}` });
        }
      }
      await w.stop();
    } catch (err) {
      rows.push(failedRow('scale', `${label}`, err));
    }
    all[label] = points;
    rows.push(...rowsFor(label, points), ...plans);
  }
  if (opts.svg) {
    const charts: Chart[] = [];
    const ready = (ps: Point[]) => ps.filter((p) => !p.condition.includes('parked'));
    const parked = (ps: Point[]) => ps.filter((p) => p.condition.includes('parked'));
    // The empty broker sits at x = 100 on the log axis (log 0 does not exist); the label says so.
    const x = (p: Point) => Math.max(100, p.waiting);
    charts.push({
      title: 'fresh-task throughput',
      xLabel: 'tasks waiting (another queue; 100 = empty broker)',
      yLabel: 'tasks/s',
      logX: true,
      series: Object.entries(all).flatMap(([b, ps]) => [
        { label: `${b} backlog`, points: ready(ps).map((p) => [x(p), p.rate] as [number, number]) },
        { label: `${b} parked countdown`, dashed: true, points: parked(ps).map((p) => [x(p), p.rate] as [number, number]) },
      ]),
    });
    charts.push({
      title: 'enqueue → start p50 / p99',
      xLabel: 'tasks waiting (another queue; 100 = empty broker)',
      yLabel: 'ms',
      logX: true,
      series: Object.entries(all).flatMap(([b, ps]) => [
        { label: `${b} p50`, points: ready(ps).map((p) => [x(p), p.p50] as [number, number]) },
        { label: `${b} p99`, dashed: true, points: ready(ps).map((p) => [x(p), p.p99] as [number, number]) },
        { label: `${b} parked p50`, points: parked(ps).map((p) => [x(p), p.p50] as [number, number]) },
      ]),
    });
    const caption = `asynx -P ${opts.pool}; ${opts.fresh.toLocaleString('en-US')} fresh no-op tasks a run, ${opts.stampsN} latency stamps 10 ms apart; ${new Date().toISOString().slice(0, 16)}Z`;
    writeFileSync(opts.svg, figure('asynx scale: fresh tasks next to a deep backlog', caption, charts));
    ctx.progress.note(`scale: wrote ${opts.svg}`);
  }
  return rows;
}
