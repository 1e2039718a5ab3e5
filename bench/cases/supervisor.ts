// Case 7, supervisor: `multi start 4` until all are confirmed up, `multi stopwait 4` and its lag behind the
// last process exit, idle RSS / PSS of a node at -c 2 and -c 8 (and -c 8 threads / async against prefork); the same
// for `celery multi` when installed.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { multi } from 'asynx';
import type { BenchContext } from '../context.js';
import { BENCH_DIR, PYTHON } from '../context.js';
import { alive, memoryOf, treeOf } from '../procstat.js';
import { failedRow, meets, ratio, type BenchRow } from '../report.js';
import { celeryEnv, client, mark, multiOptions, startAsynx, startCelery, type Pool } from '../workers.js';

/** Watches pids until all have exited; resolves to the time of the last exit (2 ms resolution). */
function lastExit(pids: number[]): Promise<number> {
  return new Promise((resolve) => {
    const left = new Set(pids);
    const t = setInterval(() => {
      for (const p of left) if (!alive(p)) left.delete(p);
      if (!left.size) {
        clearInterval(t);
        resolve(performance.now());
      }
    }, 2);
  });
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: BENCH_DIR, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? -1, out });
    });
  });
}

async function idleMemory(ctx: BenchContext, kind: 'asynx' | 'celery', broker: string, c: number, pool: Pool = 'prefork'): Promise<{ rssKb: number; pssKb: number }> {
  const queue = `bench.idle${c}${pool}`;
  const w = kind === 'asynx' ? await startAsynx(ctx, broker, c, queue, 'none', {}, pool) : await startCelery(ctx, broker, c, queue);
  await mark(ctx, client(ctx, broker), queue);
  await sleep(1000);
  const m = memoryOf(w.pid);
  await w.stop();
  return m;
}

export async function supervisor(ctx: BenchContext): Promise<BenchRow[]> {
  const rabbit = await ctx.rabbit();
  // Both supervisors on the same broker: RabbitMQ when it runs (Celery needs it), else SQLite for asynx alone.
  const broker = rabbit?.url ?? `sqlite://${ctx.path('multi.db')}`;
  const names = ['s1', 's2', 's3', 's4'];
  const opts = multiOptions(ctx, broker, 2, 'bench.multi', { resultBackend: 'none' });
  ctx.progress.step('7 supervisor: asynx multi start 4');
  let t0 = performance.now();
  const started = await multi.start(names, opts);
  const startMs = performance.now() - t0;
  ctx.defer(() => multi.kill(names, opts).then(() => undefined));
  if (!started.ok) throw new Error(`multi start 4 failed: ${JSON.stringify(started.nodes.map((n) => n.reason ?? n.outcome))}`);
  const pids = started.nodes.flatMap((n) => (n.pid ? treeOf(n.pid) : []));
  ctx.progress.step('7 supervisor: asynx multi stopwait 4');
  t0 = performance.now();
  const exited = lastExit(pids);
  const stopped = await multi.stopwait(names, opts);
  const stopReturned = performance.now();
  const last = await exited;
  const stopMs = stopReturned - t0;
  const lagMs = stopReturned - last;
  const rows: BenchRow[] = [];
  const mem2 = await idleMemory(ctx, 'asynx', broker, 2);
  const mem8 = await idleMemory(ctx, 'asynx', broker, 8);
  let celery: { startMs: number | null; stopMs: number; lagMs: number; mem2: { pssKb: number; rssKb: number }; mem8: { pssKb: number; rssKb: number } } | null = null;
  const missing = rabbit ? ctx.celeryMissing() : 'no RabbitMQ';
  if (!missing && rabbit) {
    const env = celeryEnv(rabbit.url);
    const pidfile = join(ctx.dir, 'celery-%n.pid');
    const args = ['-m', 'celery', 'multi', 'start', ...names.map((n) => `c${n}`), '-A', 'celery_app', '-P', 'prefork', '-c', '2', '-Q', 'bench.cmulti', '-l', 'warning', '--without-gossip', '--without-mingle', '--without-heartbeat', `--pidfile=${pidfile}`, `--logfile=${join(ctx.dir, 'celery-%n%I.log')}`];
    ctx.progress.step('7 supervisor: celery multi start 4 (until all answer a ping)');
    const epoch = Date.now();
    t0 = performance.now();
    // The ping poller starts with `multi start`, so its own start-up overlaps Celery's.
    const ping = run(PYTHON, ['celery_ping.py', String(epoch), ...names.map((n) => `c${n}@${hostname()}`)], env);
    const st = await run(PYTHON, args, env);
    const pong = await ping;
    const cStart = pong.code === 0 ? Number(pong.out.trim().split('\n').pop()) : null;
    ctx.defer(() => run(PYTHON, ['-m', 'celery', 'multi', 'kill', ...names.map((n) => `c${n}`), `--pidfile=${pidfile}`], env).then(() => undefined));
    if (st.code !== 0) throw new Error(`celery multi start failed: ${st.out.slice(-400)}`);
    const cpids = names.flatMap((n) => {
      const f = join(ctx.dir, `celery-c${n}.pid`);
      return existsSync(f) ? treeOf(Number(readFileSync(f, 'utf8').trim())) : [];
    });
    ctx.progress.step('7 supervisor: celery multi stopwait 4');
    const cExited = lastExit(cpids);
    t0 = performance.now();
    await run(PYTHON, ['-m', 'celery', 'multi', 'stopwait', ...names.map((n) => `c${n}`), `--pidfile=${pidfile}`], env);
    const cReturned = performance.now();
    const cLast = await cExited;
    celery = { startMs: cStart, stopMs: cReturned - t0, lagMs: cReturned - cLast, mem2: await idleMemory(ctx, 'celery', rabbit.url, 2), mem8: await idleMemory(ctx, 'celery', rabbit.url, 8) };
  }
  const kb = (x: number) => x / 1024;
  rows.push(
    { case: '7 supervisor', metric: 'multi start 4 (-c 2) until all confirmed up', value: startMs, unit: 'ms', ...(celery?.startMs ? { baseline: { label: 'celery multi: 4 answer ping', value: celery.startMs }, ratio: ratio(startMs, celery.startMs) } : {}), target: 'before Celery', met: celery?.startMs ? startMs < celery.startMs : null },
    { case: '7 supervisor', metric: 'multi stopwait 4', value: stopMs, unit: 'ms', ...(celery ? { baseline: { label: 'celery multi stopwait', value: celery.stopMs }, ratio: ratio(stopMs, celery.stopMs) } : {}), note: stopped.ok ? '' : 'stopwait reported a failure' },
    { case: '7 supervisor', metric: 'stopwait return − last process exit', value: lagMs, unit: 'ms', ...(celery ? { baseline: { label: 'celery', value: celery.lagMs } } : {}), target: '≤ 500 ms', met: lagMs <= 500 },
    { case: '7 supervisor', metric: 'idle node -c 2: RSS (main + children)', value: kb(mem2.rssKb), unit: 'MiB', ...(celery ? { baseline: { label: 'celery', value: kb(celery.mem2.rssKb) }, ratio: ratio(mem2.rssKb, celery.mem2.rssKb) } : {}) },
    { case: '7 supervisor', metric: 'idle node -c 2: PSS', value: kb(mem2.pssKb), unit: 'MiB', ...(celery ? { baseline: { label: 'celery', value: kb(celery.mem2.pssKb) }, ratio: ratio(mem2.pssKb, celery.mem2.pssKb) } : {}) },
    { case: '7 supervisor', metric: 'idle node -c 8: RSS (main + children)', value: kb(mem8.rssKb), unit: 'MiB', ...(celery ? { baseline: { label: 'celery', value: kb(celery.mem8.rssKb) }, ratio: ratio(mem8.rssKb, celery.mem8.rssKb) } : {}) },
    { case: '7 supervisor', metric: 'idle node -c 8: PSS', value: kb(mem8.pssKb), unit: 'MiB', ...(celery ? { baseline: { label: 'celery', value: kb(celery.mem8.pssKb) }, ratio: ratio(mem8.pssKb, celery.mem8.pssKb) } : {}), target: '≤ Celery', met: celery ? mem8.pssKb <= celery.mem8.pssKb : null },
  );
  for (const pool of ['threads', 'async'] as const) {
    const metric = `idle node -c 8 ${pool}: RSS (main + children)`;
    try {
      ctx.progress.step(`7 supervisor: idle node -P ${pool} -c 8`);
      const m = await idleMemory(ctx, 'asynx', broker, 8, pool);
      const r = ratio(m.rssKb, mem8.rssKb);
      rows.push({ case: '7 supervisor', metric, value: kb(m.rssKb), unit: 'MiB', baseline: { label: 'prefork -c 8', value: kb(mem8.rssKb) }, ratio: r, target: '≤ 0.50', met: meets(r, 0.5, true), note: `PSS ${kb(m.pssKb).toFixed(1)} MiB` });
    } catch (err) {
      rows.push(failedRow('7 supervisor', metric, err));
    }
  }
  if (missing) rows.push({ case: '7 supervisor', metric: 'Celery comparison skipped', value: null, unit: '', note: missing });
  return rows;
}
