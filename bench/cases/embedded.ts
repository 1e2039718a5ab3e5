// Case 3, embedded: the raw better-sqlite3 insert + delete loop as the limit, and asynx end to end on the
// SQLite broker (no-op task, no result) for prefork -c 2, threads -c 2 and async -c 100: tasks/s, ratio, CPU µs per task.

import { buildTaskMessage } from '../../dist/protocol/codec.js';
import { openDb } from '../../dist/transports/sqlite-db.js';
import type { BenchContext } from '../context.js';
import { cpuDelta, cpuSnapshot } from '../procstat.js';
import { failedRow, meets, median, ratio, type BenchRow } from '../report.js';
import { client, mark, publishAll, startAsynx, type Pool } from '../workers.js';
import { describeSplit, switchParts, switchSplit, type CpuSplit } from './limit.js';

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

interface PoolRun {
  pool: Pool;
  c: number;
  rates: number[];
  cpus: number[];
  splits: CpuSplit[];
  error?: unknown;
}

export async function embedded(ctx: BenchContext): Promise<BenchRow[]> {
  const n = ctx.n(20_000);
  const raw: number[] = [];
  const queue = 'bench';
  const runs: PoolRun[] = [
    { pool: 'prefork', c: 2, rates: [], cpus: [], splits: [] },
    { pool: 'threads', c: 2, rates: [], cpus: [], splits: [] },
    { pool: 'async', c: 100, rates: [], cpus: [], splits: [] },
  ];
  for (const p of runs) {
    const broker = `sqlite://${ctx.path(`embedded-${p.pool}.db`)}`;
    try {
      ctx.progress.step(`3 embedded: starting an asynx node (-P ${p.pool} -c ${p.c}, SQLite)`);
      const w = await startAsynx(ctx, broker, p.c, queue, undefined, {}, p.pool);
      const app = client(ctx, broker);
      await mark(ctx, app, queue);
      for (let run = 1; run <= ctx.runs; run++) {
        // The raw loop runs next to every run of every pool, so each ratio has a baseline from the same minutes.
        ctx.progress.step(`3 embedded: raw better-sqlite3 loop, run ${run}/${ctx.runs}`);
        raw.push(rawSqliteLoop(ctx.path('raw.db'), n));
        ctx.progress.step(`3 embedded: asynx ${p.pool} end to end, run ${run}/${ctx.runs}`);
        const before = cpuSnapshot([w.pid]);
        const sb = switchParts(w.pid, null);
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await publishAll(n, () => app.sendTask('bench.noop', [], {}, { queue, ignoreResult: true }), (d) => ctx.progress.tick(d, n));
        await mark(ctx, app, queue);
        const ms = performance.now() - t0;
        const c1 = process.cpuUsage(c0);
        const after = cpuSnapshot([w.pid]);
        const sa = switchParts(w.pid, null);
        const mainUs = (after.get(w.pid) ?? 0) - (before.get(w.pid) ?? 0);
        const split: CpuSplit = { client: (c1.user + c1.system) / n, main: mainUs / n, children: (cpuDelta(before, after) - mainUs) / n, broker: 0, switches: switchSplit(sb, sa, w.pid, n) };
        p.rates.push((n / ms) * 1000);
        p.cpus.push(split.client + split.main + split.children);
        p.splits.push(split);
      }
      await w.stop();
    } catch (err) {
      p.error = err;
    }
  }
  const rawRate = median(raw);
  ctx.memo.set('sqlite.raw', rawRate);
  const rows: BenchRow[] = [{ case: '3 embedded', metric: 'raw better-sqlite3 insert+delete loop', value: rawRate, unit: 'msg/s', note: 'the limit: one process, no IPC' }];
  const targets: Partial<Record<Pool, number>> = { prefork: 0.45, async: 0.65 };
  for (const p of runs) {
    const metric = `asynx SQLite ${p.pool} -c ${p.c} end to end`;
    if (p.error !== undefined || !p.rates.length) {
      rows.push(failedRow('3 embedded', metric, p.error ?? 'no run'));
      continue;
    }
    const rate = median(p.rates);
    ctx.memo.set(`sqlite.${p.pool}.noop`, rate);
    const r = ratio(rate, rawRate);
    const t = targets[p.pool];
    const split = p.splits[p.cpus.indexOf(median(p.cpus))] ?? p.splits[0]!;
    rows.push({ case: '3 embedded', metric, value: rate, unit: 'tasks/s', baseline: { label: 'raw loop', value: rawRate }, ratio: r, ...(t !== undefined ? { target: `≥ ${t.toFixed(2)}`, met: meets(r, t) } : {}) });
    if (p.pool === 'prefork') rows.push({ case: '3 embedded', metric: 'asynx SQLite prefork CPU per task (client + worker)', value: median(p.cpus), unit: 'µs', note: describeSplit(split, 'broker') });
    else rows[rows.length - 1]!.note = describeSplit(split, 'broker');
  }
  return rows;
}
