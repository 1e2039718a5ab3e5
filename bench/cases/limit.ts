// Cases 1 and 2 on RabbitMQ: the raw amqplib limit (one confirming publisher, one manual-ack consumer, durable
// queue), asynx end to end (prefork -c 2, threads -c 2, async -c 100), and Celery 5.2 prefork and threads -c 2 on
// the same workload when it is installed.

import amqplib, { type Options } from 'amqplib';
import { buildTaskMessage } from '../../dist/protocol/codec.js';
import { toPublishOptions } from '../../dist/transports/amqp-topology.js';
import type { BenchContext } from '../context.js';
import { cpuDelta, cpuSnapshot, switchesOf, switchSnapshot } from '../procstat.js';
import { failedRow, meets, median, ratio, type BenchRow } from '../report.js';
import { client, mark, publishAll, startAsynx, startCelery, type BenchWorker, type Pool } from '../workers.js';

/**
 * Raw amqplib: publish n persistent messages with confirms (256 in flight) while one consumer acks them.
 * `celeryFormat`: each message carries the same properties and Celery v2 headers as an asynx task message,
 * which is what the broker has to parse and store per task.
 */
export async function rawAmqp(url: string, queue: string, n: number, prefetch = 100, celeryFormat = false): Promise<{ rate: number; cpuUs: number; brokerPids: number[] }> {
  const pub = await amqplib.connect(url, { noDelay: true });
  const sub = await amqplib.connect(url, { noDelay: true });
  try {
    const pc = await pub.createConfirmChannel();
    const cc = await sub.createChannel();
    await pc.assertQueue(queue, { durable: true });
    await pc.purgeQueue(queue);
    await cc.prefetch(prefetch);
    let got = 0;
    let resolveAll!: () => void;
    const all = new Promise<void>((r) => (resolveAll = r));
    await cc.consume(queue, (m) => {
      if (!m) return;
      cc.ack(m);
      if (++got === n) resolveAll();
    });
    const body = Buffer.from(JSON.stringify([[], {}, { callbacks: null, errbacks: null, chain: null, chord: null }]));
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const template = buildTaskMessage('bench.noop', [], {}, { ignoreResult: true }).message;
    const options = (): Options.Publish => {
      if (!celeryFormat) return { persistent: true, contentType: 'application/json' };
      const m = buildTaskMessage('bench.noop', [], {}, { ignoreResult: true }).message;
      return toPublishOptions(m.properties as unknown as Record<string, unknown>, m.headers);
    };
    const content = celeryFormat ? Buffer.from(template.body) : body;
    await publishAll(n, () => new Promise<void>((resolve, reject) => pc.publish('', queue, content, options(), (err) => (err ? reject(err) : resolve()))));
    await all;
    const ms = performance.now() - t0;
    const c1 = process.cpuUsage(c0);
    return { rate: (n / ms) * 1000, cpuUs: (c1.user + c1.system) / n, brokerPids: [] };
  } finally {
    await pub.close().catch(() => undefined);
    await sub.close().catch(() => undefined);
  }
}

/** CPU µs per task by component, for the note column: where the time goes. */
export interface CpuSplit {
  client: number;
  main: number;
  children: number;
  broker: number;
  /**
   * Context switches per task, same parts. Each is a process that slept and was woken (or was preempted): on
   * this 2-vCPU VM a wake-up costs the writer far more than the bytes it writes, so these explain CPU gaps
   * that no JavaScript profile shows.
   */
  switches?: { client: number; main: number; children: number; broker: number };
}

/** The note text of a split; `omit` leaves out a part a setup does not have (SQLite: no broker; BullMQ: no pool). */
export function describeSplit(s: CpuSplit, omit?: 'pool' | 'broker'): string {
  const list = (parts: Array<[string, number]>, digits: number) => parts.filter(([label]) => label !== omit).map(([label, v]) => `${label} ${v.toFixed(digits)}`).join(', ');
  const cpu = `CPU µs/task: ${list([['client', s.client], ['worker main', s.main], ['pool', s.children], ['broker', s.broker]], 0)}`;
  const w = s.switches;
  return w ? `${cpu}; context switches/task: ${list([['client', w.client], ['main', w.main], ['pool', w.children], ['broker', w.broker]], 1)}` : cpu;
}

/** Context switches of the client (this process alone), the worker's tree and the broker's tree, taken together. */
export function switchParts(worker: number, broker: number | null): { client: number; worker: Map<number, number>; broker: Map<number, number> } {
  return { client: switchesOf(process.pid), worker: switchSnapshot([worker]), broker: switchSnapshot(broker ? [broker] : []) };
}

/** Context switches per task between two {@link switchParts} readings, split as {@link CpuSplit} is. */
export function switchSplit(before: ReturnType<typeof switchParts>, after: ReturnType<typeof switchParts>, worker: number, n: number): NonNullable<CpuSplit['switches']> {
  const main = ((after.worker.get(worker) ?? 0) - (before.worker.get(worker) ?? 0)) / n;
  return { client: (after.client - before.client) / n, main, children: cpuDelta(before.worker, after.worker) / n - main, broker: cpuDelta(before.broker, after.broker) / n };
}

export async function endToEnd(ctx: BenchContext, w: BenchWorker, url: string, queue: string, n: number, label: string, brokerPid: number | null): Promise<{ rate: number; cpuUs: number; split: CpuSplit }> {
  const app = client(ctx, url);
  await mark(ctx, app, queue);
  const rates: number[] = [];
  const cpus: number[] = [];
  const splits: CpuSplit[] = [];
  for (let run = 1; run <= ctx.runs; run++) {
    ctx.progress.step(`${label}, run ${run}/${ctx.runs}`);
    const wb = cpuSnapshot([w.pid]);
    const bb = cpuSnapshot(brokerPid ? [brokerPid] : []);
    const sb = switchParts(w.pid, brokerPid);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await publishAll(n, () => app.sendTask('bench.noop', [], {}, { queue, ignoreResult: true }), (d) => ctx.progress.tick(d, n));
    await mark(ctx, app, queue);
    const ms = performance.now() - t0;
    const c1 = process.cpuUsage(c0);
    const wa = cpuSnapshot([w.pid]);
    const mainUs = (wa.get(w.pid) ?? 0) - (wb.get(w.pid) ?? 0);
    const sa = switchParts(w.pid, brokerPid);
    const split: CpuSplit = { client: (c1.user + c1.system) / n, main: mainUs / n, children: (cpuDelta(wb, wa) - mainUs) / n, broker: cpuDelta(bb, cpuSnapshot(brokerPid ? [brokerPid] : [])) / n, switches: switchSplit(sb, sa, w.pid, n) };
    rates.push((n / ms) * 1000);
    cpus.push(split.client + split.main + split.children + split.broker);
    splits.push(split);
  }
  const mid = splits[cpus.indexOf(median(cpus))] ?? splits[0]!;
  return { rate: median(rates), cpuUs: median(cpus), split: mid };
}

export async function limit(ctx: BenchContext): Promise<BenchRow[]> {
  const rabbit = await ctx.rabbit();
  if (!rabbit) return [{ case: '1 limit', metric: 'skipped', value: null, unit: '', note: ctx.rabbitReason ?? 'no RabbitMQ' }];
  const n = ctx.n(20_000);
  const raws: number[] = [];
  const rawCpu: number[] = [];
  const rawSwitches: string[] = [];
  for (let run = 1; run <= ctx.runs; run++) {
    ctx.progress.step(`1 limit: raw amqplib, run ${run}/${ctx.runs}`);
    const before = cpuSnapshot([rabbit.pid() ?? process.pid]);
    // The raw loop's publisher and consumer are this process: no worker tree to read.
    const brokerTree = rabbit.pid() ? [rabbit.pid()!] : [];
    const sb = { client: switchesOf(process.pid), broker: switchSnapshot(brokerTree) };
    const r = await rawAmqp(rabbit.url, 'bench.raw', n);
    const sa = { client: switchesOf(process.pid), broker: switchSnapshot(brokerTree) };
    raws.push(r.rate);
    rawCpu.push(r.cpuUs + (rabbit.pid() ? cpuDelta(before, cpuSnapshot([rabbit.pid()!])) / n : 0));
    rawSwitches.push(`context switches/msg: client and consumer ${((sa.client - sb.client) / n).toFixed(1)}, broker ${(cpuDelta(sb.broker, sa.broker) / n).toFixed(1)}`);
  }
  const raw = median(raws);
  ctx.memo.set('amqp.raw', raw);
  const fmt: number[] = [];
  for (let run = 1; run <= ctx.runs; run++) {
    ctx.progress.step(`1 limit: raw amqplib with Celery v2 messages, run ${run}/${ctx.runs}`);
    fmt.push((await rawAmqp(rabbit.url, 'bench.rawfmt', n, 100, true)).rate);
  }
  const rawFmt = median(fmt);
  ctx.progress.step('1 limit: starting an asynx node (-c 2, AMQP)');
  const w = await startAsynx(ctx, rabbit.url, 2, 'bench.asynx', 'none');
  const a = await endToEnd(ctx, w, rabbit.url, 'bench.asynx', n, '1 limit: asynx end to end', rabbit.pid());
  await w.stop();
  ctx.memo.set('amqp.prefork.noop', a.rate);
  const rows: BenchRow[] = [
    { case: '1 limit', metric: 'raw amqplib publish(confirm)+consume(ack)', value: raw, unit: 'msg/s', note: `CPU ${rawCpu.length ? median(rawCpu).toFixed(0) : '?'} µs/msg (client + broker); ${rawSwitches[rawCpu.indexOf(median(rawCpu))] ?? rawSwitches[0] ?? ''}` },
    { case: '1 limit', metric: 'raw amqplib, same Celery v2 properties+headers', value: rawFmt, unit: 'msg/s', baseline: { label: 'raw amqplib', value: raw }, ratio: ratio(rawFmt, raw), note: 'the message format alone' },
    { case: '1 limit', metric: 'asynx AMQP prefork -c 2 end to end', value: a.rate, unit: 'tasks/s', baseline: { label: 'raw amqplib', value: raw }, ratio: ratio(a.rate, raw), target: '≥ 0.35', met: meets(ratio(a.rate, raw), 0.35), note: `${ratio(a.rate, rawFmt)?.toFixed(2) ?? '?'} of raw with Celery v2 messages` },
    { case: '1 limit', metric: 'asynx AMQP CPU per task (client + worker + broker)', value: a.cpuUs, unit: 'µs', baseline: { label: 'raw amqplib', value: median(rawCpu) }, ratio: ratio(a.cpuUs, median(rawCpu)), note: describeSplit(a.split) },
  ];
  // The other pools, each at its natural setting: threads like prefork (-c 2 on 2 cores), async -c 100.
  const others: Array<{ pool: Pool; c: number; target?: number }> = [
    { pool: 'threads', c: 2 },
    { pool: 'async', c: 100, target: 0.55 },
  ];
  for (const o of others) {
    const metric = `asynx AMQP ${o.pool} -c ${o.c} end to end`;
    try {
      ctx.progress.step(`1 limit: starting an asynx node (-P ${o.pool} -c ${o.c}, AMQP)`);
      const ow = await startAsynx(ctx, rabbit.url, o.c, `bench.${o.pool}`, 'none', {}, o.pool);
      const r = await endToEnd(ctx, ow, rabbit.url, `bench.${o.pool}`, n, `1 limit: asynx ${o.pool} end to end`, rabbit.pid());
      await ow.stop();
      ctx.memo.set(`amqp.${o.pool}.noop`, r.rate);
      rows.push({ case: '1 limit', metric, value: r.rate, unit: 'tasks/s', baseline: { label: 'raw amqplib', value: raw }, ratio: ratio(r.rate, raw), ...(o.target !== undefined ? { target: `≥ ${o.target.toFixed(2)}`, met: meets(ratio(r.rate, raw), o.target) } : {}), note: describeSplit(r.split) });
    } catch (err) {
      rows.push(failedRow('1 limit', metric, err));
    }
  }
  const missing = ctx.celeryMissing();
  if (missing) {
    rows.push({ case: '2 peer', metric: 'Celery prefork -c 2', value: null, unit: 'tasks/s', note: `skipped: ${missing}` });
    return rows;
  }
  ctx.progress.step('2 peer: starting a Celery worker (-P prefork -c 2)');
  const cw = await startCelery(ctx, rabbit.url, 2, 'bench.celery');
  const c = await endToEnd(ctx, cw, rabbit.url, 'bench.celery', n, `2 peer: Celery ${ctx.celeryVersion()} end to end`, rabbit.pid());
  await cw.stop();
  rows.push(
    { case: '2 peer', metric: `Celery ${ctx.celeryVersion()} prefork -c 2 end to end`, value: c.rate, unit: 'tasks/s', baseline: { label: 'raw amqplib', value: raw }, ratio: ratio(c.rate, raw), note: 'same asynx client publishes' },
    { case: '2 peer', metric: 'asynx / Celery throughput (prefork -c 2)', value: ratio(a.rate, c.rate), unit: '×', target: '≥ 4', met: meets(ratio(a.rate, c.rate), 4) },
    { case: '2 peer', metric: 'Celery CPU per task (client + worker + broker)', value: c.cpuUs, unit: 'µs', baseline: { label: 'asynx', value: a.cpuUs }, ratio: ratio(c.cpuUs, a.cpuUs), note: describeSplit(c.split) },
  );
  // Celery 5.2's thread pool at -c 2 is far slower on no-op tasks: ~400/s for the first hundred, then ~44/s
  // (measured 2026-12-02: its consumer waits on its own timers between prefetch windows), so 5,000 tasks ran
  // past the marker's 120 s wait. A twentieth of N (1,000) gives the row a figure; a rate is a rate.
  const nt = Math.max(10, Math.round(n / 20));
  try {
    ctx.progress.step('2 peer: starting a Celery worker (-P threads -c 2)');
    const tw = await startCelery(ctx, rabbit.url, 2, 'bench.cthreads', undefined, 'threads');
    const t = await endToEnd(ctx, tw, rabbit.url, 'bench.cthreads', nt, `2 peer: Celery threads end to end`, rabbit.pid());
    await tw.stop();
    const asynxThreads = ctx.memo.get('amqp.threads.noop') ?? null;
    rows.push(
      { case: '2 peer', metric: `Celery ${ctx.celeryVersion()} threads -c 2 end to end`, value: t.rate, unit: 'tasks/s', baseline: { label: 'raw amqplib', value: raw }, ratio: ratio(t.rate, raw), note: `${nt.toLocaleString('en-US')} tasks a run; ${describeSplit(t.split)}` },
      { case: '2 peer', metric: 'asynx threads / Celery threads throughput (-c 2)', value: ratio(asynxThreads, t.rate), unit: '×' },
    );
  } catch (err) {
    rows.push(failedRow('2 peer', `Celery ${ctx.celeryVersion()} threads -c 2 end to end`, err));
  }
  return rows;
}
