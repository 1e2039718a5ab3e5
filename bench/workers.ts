// Workers under test: asynx nodes through `multi` (the programmatic API), Celery prefork workers, and the
// drivers that push a batch of tasks through them and time it.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Asynx, multi, type AsynxOptions, type MultiOptions } from 'asynx';
import { BENCH_APP, BENCH_DIR, PYTHON, type BenchContext } from './context.js';
import { spawnProcess } from '../test/helpers/process.js';

/** A worker node the bench started: its main pid and a bounded stop. */
export interface BenchWorker {
  readonly kind: 'asynx' | 'celery';
  readonly pid: number;
  stop(): Promise<void>;
}

/** Polls until `fn()` is truthy, at most `timeoutMs`. */
export async function until(what: string, fn: () => boolean, timeoutMs: number, everyMs = 2): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`bench: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export function multiOptions(ctx: BenchContext, broker: string, concurrency: number, queue: string, extra: Partial<MultiOptions> = {}): MultiOptions {
  return {
    cwd: ctx.dir,
    env: { ...process.env, NO_COLOR: '1' },
    app: BENCH_APP,
    concurrency,
    queues: queue,
    broker,
    loglevel: 'warning',
    hostname: 'localhost',
    pidfile: join(ctx.dir, 'run/%n.pid'),
    logfile: join(ctx.dir, 'log/%n%I.log'),
    startTimeout: 60,
    timeout: 60,
    killAfter: 30,
    ...extra,
  };
}

let nodeSeq = 0;

/** The pool kinds `asynx worker -P` takes (src/worker/pool/task-pool.ts). */
export type Pool = 'prefork' | 'threads' | 'async' | 'solo';
export const POOLS: readonly Pool[] = ['prefork', 'threads', 'async', 'solo'];

/** Starts one asynx node (`-P pool`, default prefork) with `multi start` and resolves once it is confirmed up. */
export async function startAsynx(ctx: BenchContext, broker: string, concurrency: number, queue: string, resultBackend?: string, env: NodeJS.ProcessEnv = {}, pool: Pool = 'prefork'): Promise<BenchWorker> {
  const name = `bench${++nodeSeq}`;
  const base = multiOptions(ctx, broker, concurrency, queue, { ...(resultBackend ? { resultBackend } : {}), ...(pool === 'prefork' ? {} : { extraArgs: [`--pool=${pool}`] }) });
  const opts = { ...base, env: { ...base.env, ...env } };
  const r = await multi.start([name], opts);
  const node = r.nodes[0]!;
  if (!r.ok || !node.pid) throw new Error(`bench: asynx node ${name} did not start: ${node.reason ?? node.outcome}`);
  let stopped: Promise<void> | null = null;
  const w: BenchWorker = {
    kind: 'asynx',
    pid: node.pid,
    stop: () => (stopped ??= multi.stopwait([name], opts).then(() => undefined)),
  };
  ctx.defer(() => w.stop());
  return w;
}

/** Environment for the Celery app module bench/celery_app.py. */
export function celeryEnv(broker: string, backend?: string): NodeJS.ProcessEnv {
  return { ...process.env, PYTHONPATH: BENCH_DIR, BENCH_BROKER: broker, BENCH_BACKEND: backend ?? '', PYTHONDONTWRITEBYTECODE: '1' };
}

/** Starts `celery worker -P prefork|threads -c N` in its own process group. */
export async function startCelery(ctx: BenchContext, broker: string, concurrency: number, queue: string, backend?: string, pool: 'prefork' | 'threads' = 'prefork'): Promise<BenchWorker> {
  const name = `celery${++nodeSeq}@localhost`;
  const log = ctx.path('celery.log');
  // Its own process group, so the stop reaches the prefork children; TERM, then KILL after 30 s.
  // The threads pool keeps Celery's broker heartbeat: without it, Celery 5.2's blocking consumer loop wakes only
  // on its own timers, and at -c 2 a worker sat ~10 s between prefetch windows (20 tasks/s; the marker timed out).
  const quiet = pool === 'threads' ? ['--without-gossip', '--without-mingle'] : ['--without-gossip', '--without-mingle', '--without-heartbeat'];
  const p = spawnProcess(PYTHON, ['-m', 'celery', '-A', 'celery_app', 'worker', '-P', pool, '-c', String(concurrency), '-Q', queue, '-n', name, '-l', 'warning', ...quiet, '-f', log], {
    cwd: BENCH_DIR,
    env: celeryEnv(broker, backend),
    output: { file: `${log}.out` },
    group: true,
    reapChildren: true,
  });
  let stopped: Promise<void> | null = null;
  const w: BenchWorker = {
    kind: 'celery',
    pid: p.pid,
    stop: () => (stopped ??= p.stop('SIGTERM', 30_000).then(() => undefined)),
  };
  ctx.defer(() => w.stop());
  return w;
}

/** A client app that publishes to `broker`. */
export function client(ctx: BenchContext, broker: string, resultBackend = 'none', extra: AsynxOptions = {}): Asynx {
  const app = new Asynx({ brokerUrl: broker, resultBackend, configFile: false, defaultQueue: 'celery', ...extra });
  ctx.defer(() => app.close());
  return app;
}

/** Sends `bench.mark` and waits for its file: every task queued before it has started. */
export async function mark(ctx: BenchContext, app: Asynx, queue: string, timeoutMs = 120_000): Promise<number> {
  const path = ctx.path('mark');
  await app.sendTask('bench.mark', [path], {}, { queue, ignoreResult: true });
  await until('the marker task', () => existsSync(path) && readFileSync(path, 'utf8').length > 0, timeoutMs);
  return Date.now();
}

/** Publishes `n` calls of `send(i)` with at most `window` in flight. */
export async function publishAll(n: number, send: (i: number) => Promise<unknown>, onProgress?: (done: number) => void, window = 256): Promise<void> {
  let next = 0;
  let done = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      await send(i);
      done++;
      if ((done & 255) === 0) onProgress?.(done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, n) }, lane));
  onProgress?.(done);
}
