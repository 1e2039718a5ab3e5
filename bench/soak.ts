// `npm run bench -- --soak[=N]`: N no-op tasks and M HTTP dispatches (asynx.http.dispatch to a loopback endpoint)
// through each pool on each broker, RSS of the main process and every child sampled every few seconds; after
// warm-up, growth must stay under 10 % and every task must complete exactly once. Writes the curves as SVG.

import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchContext } from './context.js';
import { childrenOf, rssKbOf } from './procstat.js';
import { failedRow, median, type BenchRow } from './report.js';
import { figure, type Chart, type Series } from './svg.js';
import { client, mark, publishAll, startAsynx, until, type Pool } from './workers.js';

export interface SoakOptions {
  n: number;
  http: number;
  pools: Pool[];
  brokers: Array<'sqlite' | 'amqp'>;
  sampleMs: number;
  svg: string | null;
}

/** -c per pool: prefork and threads one per core, async the issue's I/O setting, solo one. */
export const SOAK_CONCURRENCY: Record<Pool, number> = { prefork: 2, threads: 2, async: 100, solo: 1 };

interface Sample {
  s: number;
  /** Which load ran when the sample was taken: the no-op tasks, then the HTTP dispatches. */
  phase: 'noop' | 'http';
  done: number;
  mainKb: number;
  childKb: number;
}

export interface SoakRun {
  broker: string;
  pool: Pool;
  samples: Sample[];
  counted: number;
  httpHits: number;
  seconds: number;
}

/** Completions so far: the per-process counter files bench.count writes. */
function countIn(dir: string): number {
  let sum = 0;
  for (const f of readdirSync(dir)) {
    try {
      sum += Number(readFileSync(`${dir}/${f}`, 'utf8')) || 0;
    } catch {
      // being rewritten
    }
  }
  return sum;
}

/**
 * Growth after warm-up, within the no-op phase (the HTTP phase loads other code, which is a step, not a leak):
 * median of the last quarter of the samples taken after the first 10 % of the tasks over the median of its first quarter.
 */
export function growth(samples: Sample[], n: number, pick: (s: Sample) => number): { start: number; end: number; growth: number } | null {
  const post = samples.filter((s) => s.phase === 'noop' && s.done >= 0.1 * n);
  if (post.length < 4) return null;
  const q = Math.max(1, Math.floor(post.length / 4));
  const start = median(post.slice(0, q).map(pick));
  const end = median(post.slice(-q).map(pick));
  return { start, end, growth: start ? end / start - 1 : NaN };
}

async function endpoint(): Promise<{ server: Server; url: string; hits: () => number }> {
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, hits: () => hits };
}

async function one(ctx: BenchContext, broker: string, brokerLabel: string, pool: Pool, opts: SoakOptions): Promise<SoakRun> {
  const queue = `bench.soak.${pool}`;
  const dir = ctx.path(`soak-${brokerLabel}-${pool}`);
  mkdirSync(dir, { recursive: true });
  const c = SOAK_CONCURRENCY[pool];
  ctx.progress.step(`soak ${brokerLabel} ${pool}: starting an asynx node (-P ${pool} -c ${c})`);
  const w = await startAsynx(ctx, broker, c, queue, 'none', {}, pool);
  const app = client(ctx, broker);
  const ep = await endpoint();
  const samples: Sample[] = [];
  const t0 = performance.now();
  let done = 0;
  let phase: Sample['phase'] = 'noop';
  const sample = () => {
    // Monotonic: a read can catch a counter file while the task rewrites it (empty for an instant).
    done = Math.max(done, countIn(dir) + ep.hits());
    const kids = childrenOf(w.pid);
    samples.push({ s: (performance.now() - t0) / 1000, phase, done, mainKb: rssKbOf(w.pid), childKb: kids.reduce((a, p) => a + rssKbOf(p), 0) });
  };
  const total = opts.n + opts.http;
  const timer = setInterval(() => {
    sample();
    const last = samples[samples.length - 1]!;
    ctx.progress.step(`soak ${brokerLabel} ${pool}: RSS main ${(last.mainKb / 1024).toFixed(0)} MiB + children ${(last.childKb / 1024).toFixed(0)} MiB`);
    ctx.progress.tick(done, total);
  }, opts.sampleMs);
  try {
    await mark(ctx, app, queue);
    sample();
    await publishAll(opts.n, () => app.sendTask('bench.count', [dir], {}, { queue, ignoreResult: true }));
    // Bounded: at least 100 tasks/s, plus a minute.
    await until(`${opts.n} soak completions`, () => countIn(dir) >= opts.n, 60_000 + opts.n * 10, 200);
    sample();
    phase = 'http';
    await publishAll(opts.http, () => app.http.dispatch(ep.url, { queue, maxRetries: 0, timeout: 30 }));
    await until(`${opts.http} HTTP dispatches`, () => ep.hits() >= opts.http, 60_000 + opts.http * 10, 200);
    // Anything extra (a redelivery) would arrive now.
    await sleep(1000);
    sample();
  } finally {
    clearInterval(timer);
    await w.stop();
    await new Promise<void>((r) => ep.server.close(() => r()));
    ep.server.closeAllConnections();
  }
  return { broker: brokerLabel, pool, samples, counted: countIn(dir), httpHits: ep.hits(), seconds: (performance.now() - t0) / 1000 };
}

export async function soak(ctx: BenchContext, opts: SoakOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const runs: SoakRun[] = [];
  for (const b of opts.brokers) {
    let url: string;
    if (b === 'amqp') {
      const rabbit = await ctx.rabbit();
      if (!rabbit) {
        rows.push({ case: 'soak', metric: 'AMQP skipped', value: null, unit: '', note: ctx.rabbitReason ?? 'no RabbitMQ' });
        continue;
      }
      url = rabbit.url;
    }
    for (const pool of opts.pools) {
      const label = b === 'amqp' ? 'AMQP' : 'SQLite';
      const metric = `soak ${label} ${pool} -c ${SOAK_CONCURRENCY[pool]}: ${opts.n.toLocaleString('en-US')} no-op + ${opts.http.toLocaleString('en-US')} HTTP`;
      try {
        const r = await one(ctx, b === 'amqp' ? url! : `sqlite://${ctx.path(`soak-${pool}.db`)}`, label, pool, opts);
        runs.push(r);
        const g = growth(r.samples, opts.n, (s) => s.mainKb + s.childKb);
        const gm = growth(r.samples, opts.n, (s) => s.mainKb);
        // The second half of the no-op phase alone: a step during the first half (V8 heap sizing, page caches
        // filling) shows here as flat, a leak as the same slope.
        const late = growth(r.samples.filter((s) => s.done >= 0.5 * opts.n), opts.n, (s) => s.mainKb + s.childKb);
        const noopEnd = r.samples.filter((s) => s.phase === 'noop').pop();
        const last = r.samples[r.samples.length - 1];
        const httpStep = noopEnd && last ? `; after the HTTP phase ${((last.mainKb + last.childKb) / 1024).toFixed(0)} MiB (end of no-op phase ${((noopEnd.mainKb + noopEnd.childKb) / 1024).toFixed(0)})` : '';
        const lost = opts.n - r.counted + Math.max(0, opts.http - r.httpHits);
        const dup = Math.max(0, r.counted - opts.n) + Math.max(0, r.httpHits - opts.http);
        const ok = g !== null && g.growth < 0.1 && (gm === null || gm.growth < 0.1) && lost === 0 && dup === 0;
        rows.push({
          case: 'soak',
          metric: `${metric}: RSS growth after warm-up, no-op phase (main + children)`,
          value: g ? g.growth * 100 : null,
          unit: '%',
          target: '< 10 %, 0 lost',
          met: g === null ? null : ok,
          note: `no-op phase ${g ? `${(g.start / 1024).toFixed(0)} → ${(g.end / 1024).toFixed(0)} MiB` : 'too few samples'}${httpStep}; main alone ${gm ? `${(gm.growth * 100).toFixed(1)} %` : '?'}; second half of the no-op phase ${late ? `${(late.growth * 100).toFixed(1)} %` : '?'}; lost ${lost}, extra ${dup}; ${r.samples.length} samples, ${r.seconds.toFixed(0)} s (${((opts.n + opts.http) / r.seconds).toFixed(0)} tasks/s)`,
        });
      } catch (err) {
        rows.push(failedRow('soak', metric, err));
      }
    }
  }
  if (opts.svg && runs.length) {
    const charts: Chart[] = [];
    for (const b of ['SQLite', 'AMQP']) {
      const rs = runs.filter((r) => r.broker === b);
      if (!rs.length) continue;
      const series: Series[] = rs.flatMap((r) => [
        { label: `${r.pool} main+children`, points: r.samples.map((s) => [s.done, (s.mainKb + s.childKb) / 1024] as [number, number]) },
      ]);
      charts.push({ title: `${b}: RSS of the worker (main + every child)`, xLabel: 'tasks completed', yLabel: 'MiB', series });
    }
    const caption = `${opts.n.toLocaleString('en-US')} no-op tasks then ${opts.http.toLocaleString('en-US')} HTTP dispatches per pool; sampled every ${opts.sampleMs / 1000} s; ${new Date().toISOString().slice(0, 16)}Z`;
    writeFileSync(opts.svg, figure('asynx soak: worker memory under load', caption, charts));
    ctx.progress.note(`soak: wrote ${opts.svg}`);
  }
  return rows;
}
