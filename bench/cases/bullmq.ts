// Case 9, BullMQ peer: a private redis-server, a BullMQ Worker (concurrency 100, its own process) and two
// publishing loops, an awaited Queue.add loop (256 in flight, as asynx's) and an addBulk loop, for no-op and
// 10 ms tasks and enqueue → start latency; next to asynx AMQP async -c 100 in the same run, and asynx on the
// same Redis server (db 1, once the BullMQ worker stopped): prefork -c 2 and async -c 100, measured as the
// AMQP rows are (cases 1, 4 and 5).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { BENCH_DIR, type BenchContext } from '../context.js';
import { failedRow, meets, median, percentile, ratio, type BenchRow } from '../report.js';
import { client, mark, publishAll, startAsynx, until } from '../workers.js';
import { spawnProcess } from '../../test/helpers/process.js';
import { stamps } from './latency.js';
import { describeSplit, endToEnd, switchParts, switchSplit, type CpuSplit } from './limit.js';
import { cpuDelta, cpuSnapshot } from '../procstat.js';

const now = () => performance.timeOrigin + performance.now();
/** Jobs per addBulk call; calls are awaited one after another. */
export const BULK = 1_000;

interface Peer {
  queue: Queue;
  pid: number;
  stop(): Promise<void>;
}

async function startPeer(ctx: BenchContext, url: string, name: string, concurrency: number): Promise<Peer> {
  const { hostname, port } = new URL(url);
  const p = spawnProcess(process.execPath, [join(BENCH_DIR, 'bullmq_worker.mjs'), url, name, String(concurrency)], { cwd: BENCH_DIR });
  await until('the BullMQ worker to be ready', () => p.stdout().includes('ready') || p.isDone(), 30_000, 20);
  if (p.isDone()) throw new Error(`bench: the BullMQ worker exited: ${p.output().slice(-400)}`);
  const queue = new Queue(name, { connection: { host: hostname, port: Number(port) } });
  let stopped: Promise<void> | null = null;
  const peer: Peer = {
    queue,
    pid: p.pid,
    stop: () => (stopped ??= (async () => {
      await queue.close().catch(() => undefined);
      await p.stop('SIGTERM', 10_000);
    })()),
  };
  ctx.defer(() => peer.stop());
  return peer;
}

/** Adds a `mark` job and waits for its file: every job added before it has started (BullMQ's wait list is FIFO). */
async function markPeer(ctx: BenchContext, q: Queue): Promise<void> {
  const path = ctx.path('bmark');
  await q.add('mark', { path });
  await until('the BullMQ marker job', () => existsSync(path) && readFileSync(path, 'utf8').length > 0, 120_000);
}

type Loop = 'add' | 'addBulk';

/** Jobs/s of one loop, and CPU and context switches per job (this client, the BullMQ worker, redis-server). */
async function peerRate(ctx: BenchContext, peer: Peer, loop: Loop, job: 'noop' | 'sleep', n: number, label: string, redisPid: number): Promise<{ rate: number; split: CpuSplit }> {
  const data = job === 'sleep' ? { ms: 10 } : {};
  await markPeer(ctx, peer.queue);
  const rates: number[] = [];
  const splits: CpuSplit[] = [];
  for (let run = 1; run <= ctx.runs; run++) {
    ctx.progress.step(`9 BullMQ: ${label}, run ${run}/${ctx.runs}`);
    const wb = cpuSnapshot([peer.pid]);
    const rb = cpuSnapshot([redisPid]);
    const sb = switchParts(peer.pid, redisPid);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    if (loop === 'add') await publishAll(n, () => peer.queue.add(job, data), (d) => ctx.progress.tick(d, n));
    else
      for (let i = 0; i < n; i += BULK) {
        await peer.queue.addBulk(Array.from({ length: Math.min(BULK, n - i) }, () => ({ name: job, data })));
        ctx.progress.tick(Math.min(n, i + BULK), n);
      }
    await markPeer(ctx, peer.queue);
    rates.push((n / (performance.now() - t0 + (job === 'sleep' ? 10 : 0))) * 1000);
    const c1 = process.cpuUsage(c0);
    const sa = switchParts(peer.pid, redisPid);
    splits.push({ client: (c1.user + c1.system) / n, main: cpuDelta(wb, cpuSnapshot([peer.pid])) / n, children: 0, broker: cpuDelta(rb, cpuSnapshot([redisPid])) / n, switches: switchSplit(sb, sa, peer.pid, n) });
  }
  const rate = median(rates);
  return { rate, split: splits[rates.indexOf(rate)] ?? splits[0]! };
}

async function peerLatency(ctx: BenchContext, peer: Peer, n: number): Promise<number[]> {
  const path = ctx.path('bstamps');
  await markPeer(ctx, peer.queue);
  ctx.progress.step('9 BullMQ: enqueue → start latency');
  for (let i = 0; i < n; i++) {
    await peer.queue.add('stamp', { path, sentAt: now() });
    ctx.progress.tick(i + 1, n);
    await sleep(10);
  }
  const read = () => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean).map(Number) : []);
  await until(`${n} BullMQ latency stamps`, () => read().length >= n, 60_000, 20);
  return read();
}

/** asynx async -c 100 on 10 ms tasks (`broker` names it: AMQP, Redis), the same loop as case 4. */
async function asynxSleep(ctx: BenchContext, url: string, broker: string, n: number): Promise<number> {
  const queue = 'bench.bsleep';
  const w = await startAsynx(ctx, url, 100, queue, 'none', {}, 'async');
  const app = client(ctx, url);
  await mark(ctx, app, queue);
  const rates: number[] = [];
  for (let run = 1; run <= ctx.runs; run++) {
    ctx.progress.step(`9 BullMQ: asynx ${broker} async -c 100, 10 ms tasks, run ${run}/${ctx.runs}`);
    const t0 = performance.now();
    await publishAll(n, () => app.sendTask('bench.sleep', [10], {}, { queue, ignoreResult: true }), (d) => ctx.progress.tick(d, n));
    await mark(ctx, app, queue);
    rates.push((n / (performance.now() - t0 + 10)) * 1000);
  }
  await w.stop();
  return median(rates);
}

/** What the BullMQ rows measured, for the asynx-on-Redis rows' ratios. */
interface PeerFigures {
  add: number;
  bulk: number;
  addSleep: number;
  lat: number[];
}

/**
 * asynx on the BullMQ rows' Redis server (db 1, the BullMQ worker stopped): prefork -c 2 and async -c 100 on
 * no-op tasks (case 1's end-to-end loop), async -c 100 on 10 ms tasks (case 4's), enqueue → start of both
 * (case 5's), each against BullMQ's figure of this run.
 */
async function asynxRedis(ctx: BenchContext, redisUrl: string, redisPid: number, peer: PeerFigures, n: number): Promise<BenchRow[]> {
  const C = '9 BullMQ';
  const url = `${redisUrl}/1`;
  const rows: BenchRow[] = [];
  const vsAdd = { label: 'BullMQ awaited add', value: peer.add };
  const noop: Partial<Record<'prefork' | 'async', number | null>> = {};
  for (const [pool, c] of [['prefork', 2], ['async', 100]] as const) {
    const metric = `asynx Redis ${pool} -c ${c}, no-op`;
    try {
      ctx.progress.step(`9 BullMQ: starting asynx Redis ${pool} -c ${c}`);
      const queue = `bench.r${pool}`;
      const w = await startAsynx(ctx, url, c, queue, 'none', {}, pool);
      const e = await endToEnd(ctx, w, url, queue, n, `9 BullMQ: asynx Redis ${pool} -c ${c}`, redisPid);
      await w.stop();
      noop[pool] = e.rate;
      rows.push({ case: C, metric, value: e.rate, unit: 'tasks/s', baseline: vsAdd, ratio: ratio(e.rate, peer.add), note: describeSplit(e.split) });
    } catch (err) {
      rows.push(failedRow(C, metric, err));
    }
  }
  const a = noop.async ?? null;
  rows.push(
    { case: C, metric: 'asynx Redis async -c 100 ÷ BullMQ concurrency 100 (awaited add), no-op', value: ratio(a, peer.add), unit: '×', target: '≥ 1.50', met: meets(ratio(a, peer.add), 1.5), note: 'same Redis server' },
    { case: C, metric: 'asynx Redis async -c 100 ÷ BullMQ addBulk, no-op', value: ratio(a, peer.bulk), unit: '×', note: 'asynx publishes one task a call' },
  );
  try {
    const rate = await asynxSleep(ctx, url, 'Redis', n);
    rows.push({ case: C, metric: 'asynx Redis async -c 100, 10 ms tasks', value: rate, unit: 'tasks/s', baseline: { label: 'BullMQ awaited add', value: peer.addSleep }, ratio: ratio(rate, peer.addSleep), note: `${ratio(rate, 10_000)?.toFixed(2) ?? '?'} of the ideal 10,000/s` });
  } catch (err) {
    rows.push(failedRow(C, 'asynx Redis async -c 100, 10 ms tasks', err));
  }
  const b50 = percentile(peer.lat, 50);
  const b99 = percentile(peer.lat, 99);
  for (const [pool, c] of [['prefork', 2], ['async', 100]] as const) {
    const label = `asynx Redis ${pool} -c ${c} enqueue → start`;
    try {
      const queue = `bench.rlat.${pool}`;
      const w = await startAsynx(ctx, url, c, queue, 'none', {}, pool);
      const xs = await stamps(ctx, client(ctx, url), queue, peer.lat.length, `9 BullMQ: ${label}`);
      await w.stop();
      const p50 = percentile(xs, 50);
      const p99 = percentile(xs, 99);
      rows.push(
        { case: C, metric: `${label} p50`, value: p50, unit: 'ms', baseline: { label: 'BullMQ', value: b50 }, ratio: ratio(p50, b50) },
        { case: C, metric: `${label} p99`, value: p99, unit: 'ms', baseline: { label: 'BullMQ', value: b99 }, ratio: ratio(p99, b99) },
      );
    } catch (err) {
      rows.push(failedRow(C, label, err));
    }
  }
  return rows;
}

export async function bullmq(ctx: BenchContext): Promise<BenchRow[]> {
  const C = '9 BullMQ';
  const redis = await ctx.redis();
  if (!redis) return [{ case: C, metric: 'skipped', value: null, unit: '', note: ctx.redisReason ?? 'no Redis' }];
  const n = ctx.n(20_000);
  const rows: BenchRow[] = [];
  const rabbit = await ctx.rabbit();
  // asynx async -c 100 from case 1 when it ran in this invocation, else measured here.
  let asynxNoop = ctx.memo.get('amqp.async.noop') ?? null;
  let asynxNote = "CPU split: case 1's async -c 100 row";
  let asynxSleepRate: number | null = null;
  if (rabbit) {
    try {
      if (asynxNoop === null) {
        ctx.progress.step('9 BullMQ: starting asynx AMQP async -c 100');
        const w = await startAsynx(ctx, rabbit.url, 100, 'bench.basync', 'none', {}, 'async');
        const e = await endToEnd(ctx, w, rabbit.url, 'bench.basync', n, '9 BullMQ: asynx AMQP async -c 100', rabbit.pid());
        asynxNoop = e.rate;
        asynxNote = describeSplit(e.split);
        await w.stop();
      }
      asynxSleepRate = await asynxSleep(ctx, rabbit.url, 'AMQP', n);
    } catch (err) {
      rows.push(failedRow(C, 'asynx AMQP async -c 100', err));
    }
  }
  const peer = await startPeer(ctx, redis.url, 'bench-bull', 100);
  let figures: PeerFigures | null = null;
  try {
    const addM = await peerRate(ctx, peer, 'add', 'noop', n, 'awaited add, no-op', redis.pid);
    const bulkM = await peerRate(ctx, peer, 'addBulk', 'noop', n, `addBulk (${BULK} a call), no-op`, redis.pid);
    const add = addM.rate;
    const bulk = bulkM.rate;
    const addSleep = (await peerRate(ctx, peer, 'add', 'sleep', n, 'awaited add, 10 ms jobs', redis.pid)).rate;
    const bulkSleep = (await peerRate(ctx, peer, 'addBulk', 'sleep', n, 'addBulk, 10 ms jobs', redis.pid)).rate;
    // The BullMQ worker is one process: its figure is under "worker main"; redis-server's under "broker".
    const bullSplit = (s: CpuSplit) => describeSplit(s, 'pool');
    const lat = await peerLatency(ctx, peer, ctx.n(1_000));
    const rawP50 = ctx.memo.get('amqp.raw.p50') ?? null;
    rows.push(
      { case: C, metric: 'BullMQ concurrency 100, awaited add, no-op', value: add, unit: 'jobs/s', note: `Queue.add, 256 in flight; ${bullSplit(addM.split)}` },
      { case: C, metric: `BullMQ concurrency 100, addBulk, no-op`, value: bulk, unit: 'jobs/s', note: `addBulk of ${BULK}, one call at a time; ${bullSplit(bulkM.split)}` },
      { case: C, metric: 'asynx AMQP async -c 100, no-op', value: asynxNoop, unit: 'tasks/s', baseline: { label: 'BullMQ awaited add', value: add }, ratio: ratio(asynxNoop, add), target: '≥ 1.50', met: meets(ratio(asynxNoop, add), 1.5), note: asynxNote },
      { case: C, metric: 'asynx AMQP async -c 100 ÷ BullMQ addBulk, no-op', value: ratio(asynxNoop, bulk), unit: '×', note: 'asynx publishes one task a call' },
      { case: C, metric: 'BullMQ concurrency 100, awaited add, 10 ms jobs', value: addSleep, unit: 'jobs/s', baseline: { label: 'ideal 100/10 ms', value: 10_000 }, ratio: ratio(addSleep, 10_000) },
      { case: C, metric: 'BullMQ concurrency 100, addBulk, 10 ms jobs', value: bulkSleep, unit: 'jobs/s', baseline: { label: 'ideal 100/10 ms', value: 10_000 }, ratio: ratio(bulkSleep, 10_000) },
      { case: C, metric: 'asynx AMQP async -c 100, 10 ms tasks', value: asynxSleepRate, unit: 'tasks/s', baseline: { label: 'BullMQ awaited add', value: addSleep }, ratio: ratio(asynxSleepRate, addSleep), note: `${ratio(asynxSleepRate, 10_000)?.toFixed(2) ?? '?'} of the ideal 10,000/s` },
      { case: C, metric: 'BullMQ enqueue → start p50', value: percentile(lat, 50), unit: 'ms', ...(rawP50 !== null ? { baseline: { label: 'raw amqplib', value: rawP50 }, ratio: ratio(percentile(lat, 50), rawP50) } : {}) },
      { case: C, metric: 'BullMQ enqueue → start p99', value: percentile(lat, 99), unit: 'ms' },
    );
    figures = { add, bulk, addSleep, lat };
  } finally {
    await peer.stop();
  }
  rows.push(...(await asynxRedis(ctx, redis.url, redis.pid, figures, n)));
  return rows;
}
