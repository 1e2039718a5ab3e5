// Case 3, embedded: the raw better-sqlite3 insert + delete loop as the limit, and asynx end to end on the
// SQLite broker at -c 2 (no-op task, no result): tasks/s, ratio, CPU µs per task.

import { buildTaskMessage } from '../../dist/protocol/codec.js';
import { openDb } from '../../dist/transports/sqlite-db.js';
import type { BenchContext } from '../context.js';
import { cpuDelta, cpuSnapshot } from '../procstat.js';
import { median, ratio, type BenchRow } from '../report.js';
import { client, mark, publishAll, startAsynx } from '../workers.js';
import { describeSplit, type CpuSplit } from './limit.js';

/** One message row's worth of work, as the transport stores it: insert, then delete by id. */
export function rawSqliteLoop(path: string, n: number): number {
  const db = openDb(path, 250);
  const { message } = buildTaskMessage('bench.noop', [], {}, { ignoreResult: true });
  const props = JSON.stringify(message.properties);
  const headers = JSON.stringify(message.headers);
  const insert = db.prepare('INSERT INTO messages (queue, priority, state, visible_at, properties, headers, body, created_at) VALUES (?, 0, 0, ?, ?, ?, ?, ?)');
  const del = db.prepare('DELETE FROM messages WHERE id = ?');
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const now = Date.now();
    const id = insert.run('raw', now, props, headers, message.body, now).lastInsertRowid;
    del.run(id);
  }
  const ms = performance.now() - t0;
  db.close();
  return (n / ms) * 1000;
}

export async function embedded(ctx: BenchContext): Promise<BenchRow[]> {
  const n = ctx.n(20_000);
  const raw: number[] = [];
  const rates: number[] = [];
  const cpus: number[] = [];
  const splits: CpuSplit[] = [];
  const broker = `sqlite://${ctx.path('embedded.db')}`;
  const queue = 'bench';
  ctx.progress.step('3 embedded: starting an asynx node (-c 2, SQLite)');
  const w = await startAsynx(ctx, broker, 2, queue);
  const app = client(ctx, broker);
  await mark(ctx, app, queue);
  for (let run = 1; run <= ctx.runs; run++) {
    ctx.progress.step(`3 embedded: raw better-sqlite3 loop, run ${run}/${ctx.runs}`);
    raw.push(rawSqliteLoop(ctx.path('raw.db'), n));
    ctx.progress.step(`3 embedded: asynx end to end, run ${run}/${ctx.runs}`);
    const before = cpuSnapshot([w.pid]);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await publishAll(n, () => app.sendTask('bench.noop', [], {}, { queue, ignoreResult: true }), (d) => ctx.progress.tick(d, n));
    await mark(ctx, app, queue);
    const ms = performance.now() - t0;
    const c1 = process.cpuUsage(c0);
    const after = cpuSnapshot([w.pid]);
    const mainUs = (after.get(w.pid) ?? 0) - (before.get(w.pid) ?? 0);
    const split: CpuSplit = { client: (c1.user + c1.system) / n, main: mainUs / n, children: (cpuDelta(before, after) - mainUs) / n, broker: 0 };
    rates.push((n / ms) * 1000);
    cpus.push(split.client + split.main + split.children);
    splits.push(split);
  }
  const split = splits[cpus.indexOf(median(cpus))] ?? splits[0]!;
  await w.stop();
  const rawRate = median(raw);
  const rate = median(rates);
  const r = ratio(rate, rawRate);
  return [
    { case: '3 embedded', metric: 'raw better-sqlite3 insert+delete loop', value: rawRate, unit: 'msg/s', note: 'the limit: one process, no IPC' },
    { case: '3 embedded', metric: 'asynx SQLite -c 2 end to end', value: rate, unit: 'tasks/s', baseline: { label: 'raw loop', value: rawRate }, ratio: r, target: '≥ 5,000/s and ≥ 0.30', met: rate >= 5000 && r !== null && r >= 0.3 },
    { case: '3 embedded', metric: 'asynx SQLite CPU per task (client + worker)', value: median(cpus), unit: 'µs', note: describeSplit(split).replace(/, broker 0$/, '') },
  ];
}
