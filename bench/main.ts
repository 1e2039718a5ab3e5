// `npm run bench [-- --quick] [-- --json] [-- --cases=1,3]`: every case with a same-run baseline and its ratio.

import { cpus } from 'node:os';
import { limit } from './cases/limit.js';
import { embedded } from './cases/embedded.js';
import { concurrency } from './cases/concurrency.js';
import { latency } from './cases/latency.js';
import { results } from './cases/results.js';
import { supervisor } from './cases/supervisor.js';
import { events } from './cases/events.js';
import { BenchContext } from './context.js';
import { Progress } from './progress.js';
import { formatMarkdown, formatTable, type BenchRow } from './report.js';

interface Case {
  ids: number[];
  name: string;
  run: (ctx: BenchContext) => Promise<BenchRow[]>;
}

const CASES: Case[] = [
  { ids: [1, 2], name: 'limit and peer (AMQP)', run: limit },
  { ids: [3], name: 'embedded (SQLite)', run: embedded },
  { ids: [4], name: 'concurrency', run: concurrency },
  { ids: [5], name: 'latency', run: latency },
  { ids: [6], name: 'results', run: results },
  { ids: [7], name: 'supervisor', run: supervisor },
  { ids: [8], name: 'events on vs off', run: events },
];

function parseArgs(argv: string[]): { quick: boolean; json: boolean; markdown: boolean; only: Set<number> | null; runs: number | null } {
  const out = { quick: false, json: false, markdown: false, only: null as Set<number> | null, runs: null as number | null };
  for (const a of argv) {
    if (a === '--quick') out.quick = true;
    else if (a === '--json') out.json = true;
    else if (a === '--markdown') out.markdown = true;
    else if (a.startsWith('--cases=')) out.only = new Set(a.slice(8).split(',').map(Number));
    else if (a.startsWith('--runs=')) out.runs = Number(a.slice(7));
    else if (a === '-h' || a === '--help') {
      process.stdout.write('Usage: npm run bench -- [--quick] [--json] [--markdown] [--cases=1,3,7] [--runs=N]\n  --quick  each case once at N/10 (CI smoke)\n  --json   rows as JSON on stdout\n');
      process.exit(0);
    } else {
      process.stderr.write(`bench: unknown argument '${a}' (see --help)\n`);
      process.exit(64);
    }
  }
  return out;
}

export function machine(): Record<string, string | number> {
  return { nproc: cpus().length, cpu: cpus()[0]?.model ?? '?', node: process.version, platform: `${process.platform} ${process.arch}` };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const progress = new Progress();
  const ctx = new BenchContext(args.quick, args.runs ?? (args.quick ? 1 : 3), progress);
  const rows: BenchRow[] = [];
  const onSignal = () => void ctx.close().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const started = Date.now();
  try {
    for (const c of CASES) {
      if (args.only && !c.ids.some((id) => args.only!.has(id))) continue;
      try {
        rows.push(...(await c.run(ctx)));
      } catch (err) {
        rows.push({ case: c.ids.join('+'), metric: `${c.name}: failed`, value: null, unit: '', note: (err as Error).message.split('\n')[0] });
      }
      progress.done();
    }
  } finally {
    progress.step('cleaning up');
    await ctx.close();
    progress.done();
  }
  const m = machine();
  const meta = { ...m, quick: args.quick, runs: ctx.runs, seconds: Math.round((Date.now() - started) / 1000), date: new Date().toISOString() };
  if (args.json) process.stdout.write(`${JSON.stringify({ machine: meta, rows }, null, 2)}\n`);
  else {
    process.stdout.write(`asynx bench — ${m.nproc} × ${m.cpu}, node ${m.node}; ${args.quick ? 'quick (N/10, 1 run)' : `median of ${ctx.runs} runs`}; ${meta.seconds}s\n`);
    process.stdout.write(`ratio = measured / same-run baseline\n\n${args.markdown ? formatMarkdown(rows) : formatTable(rows)}\n`);
  }
  return rows.some((r) => r.metric.endsWith('failed')) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
