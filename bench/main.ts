// `npm run bench [-- --quick] [-- --json] [-- --cases=1,3]`: every case with a same-run baseline and its ratio;
// `--soak` and `--scale` run the long memory and backlog cases instead (see --help).

import { mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { limit } from './cases/limit.js';
import { embedded } from './cases/embedded.js';
import { concurrency } from './cases/concurrency.js';
import { latency } from './cases/latency.js';
import { results } from './cases/results.js';
import { supervisor } from './cases/supervisor.js';
import { events } from './cases/events.js';
import { bullmq } from './cases/bullmq.js';
import { soak } from './soak.js';
import { scale } from './scale.js';
import { POOLS, type Pool } from './workers.js';
import { BenchContext, ROOT } from './context.js';
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
  { ids: [9], name: 'BullMQ peer', run: bullmq },
];

const HELP = `Usage: npm run bench -- [options]

  (no option)        cases 1-9, median of 3 runs, each with a same-run baseline and its ratio
  --quick            each case once at N/10 (CI smoke)
  --cases=1,3,9      only these cases (1-2 AMQP limit and Celery, 3 SQLite, 4 10 ms tasks, 5 latency,
                     6 results, 7 supervisor and idle RSS, 8 events, 9 BullMQ)
  --runs=N           runs per figure (median); default 3, 1 with --quick
  --json             rows as JSON on stdout
  --markdown         rows as the Markdown table of BENCHMARKS.md

  --soak[=N]         instead of the cases: N no-op tasks (default 1,000,000) then the HTTP dispatches through
                     each pool on each broker, RSS of the main process and every child sampled; growth after
                     warm-up must stay under 10 %, nothing lost. Writes <svg-dir>/bench-soak.svg
                     (bench-soak-sqlite.svg with --brokers=sqlite)
  --soak-http=M      HTTP dispatches (asynx.http.dispatch to a loopback endpoint) per pool × broker; default N/10
  --sample=S         soak sampling interval in seconds; default 2

  --scale[=L,L,...]  instead of the cases: fresh-task throughput and enqueue → start latency with L tasks
                     waiting in another queue (default 1000,100000,1000000), then with parked countdown
                     tasks; SQLite claim query plans. Writes <svg-dir>/bench-scale.svg (-sqlite / -amqp
                     with one broker)
  --scale-parked=N   countdown (1 h) tasks parked for the consumed queue; default 1,000,000; 0 skips
  --scale-fresh=N    fresh tasks per throughput run; default 5,000

  --pools=a,b        soak: the pools to run (default prefork,threads,async,solo); scale: the first one (default prefork)
  --brokers=a,b      soak and scale: sqlite, amqp (default both)
  --svg-dir=DIR      where --soak and --scale write their SVG (default docs/); --svg-dir= writes none

  Counts take 100k / 1M / 1_000_000.
  Examples:
    npm run bench -- --cases=1,9 --runs=1
    npm run bench -- --soak=20000 --soak-http=2000 --pools=prefork,async --brokers=sqlite
    npm run bench -- --scale=1000,100000 --scale-parked=100000 --brokers=sqlite
`;

interface Args {
  quick: boolean;
  json: boolean;
  markdown: boolean;
  only: Set<number> | null;
  runs: number | null;
  soak: number | null;
  soakHttp: number | null;
  sampleS: number;
  scale: number[] | null;
  scaleParked: number;
  scaleFresh: number;
  pools: Pool[] | null;
  brokers: Array<'sqlite' | 'amqp'>;
  svgDir: string | null;
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message} (see --help)\n`);
  process.exit(64);
}

/** `1000`, `100k`, `1M`, `1_000_000`. */
function count(flag: string, v: string): number {
  const m = /^(\d[\d_]*)(k|M)?$/.exec(v.trim());
  if (!m) fail(`${flag} takes a whole number such as 20000, 100k or 1M, got '${v}'`);
  return Number(m[1]!.replace(/_/g, '')) * (m[2] === 'k' ? 1_000 : m[2] === 'M' ? 1_000_000 : 1);
}

function parseArgs(argv: string[]): Args {
  const out: Args = { quick: false, json: false, markdown: false, only: null, runs: null, soak: null, soakHttp: null, sampleS: 2, scale: null, scaleParked: 1_000_000, scaleFresh: 5_000, pools: null, brokers: ['sqlite', 'amqp'], svgDir: join(ROOT, 'docs') };
  for (const a of argv) {
    const [flag, value] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    if (a === '--quick') out.quick = true;
    else if (a === '--json') out.json = true;
    else if (a === '--markdown') out.markdown = true;
    else if (flag === '--cases' && value !== undefined) out.only = new Set(value.split(',').map(Number));
    else if (flag === '--runs' && value !== undefined) out.runs = count('--runs', value);
    else if (flag === '--soak') out.soak = value === undefined ? 1_000_000 : count('--soak', value);
    else if (flag === '--soak-http' && value !== undefined) out.soakHttp = count('--soak-http', value);
    else if (flag === '--sample' && value !== undefined) out.sampleS = Number(value) > 0 ? Number(value) : fail(`--sample takes seconds > 0, got '${value}'`);
    else if (flag === '--scale') out.scale = value === undefined ? [1_000, 100_000, 1_000_000] : value.split(',').map((v) => count('--scale', v)).sort((x, y) => x - y);
    else if (flag === '--scale-parked' && value !== undefined) out.scaleParked = count('--scale-parked', value);
    else if (flag === '--scale-fresh' && value !== undefined) out.scaleFresh = count('--scale-fresh', value);
    else if (flag === '--pools' && value !== undefined) {
      const ps = value.split(',').map((p) => p.trim());
      for (const p of ps) if (!(POOLS as readonly string[]).includes(p)) fail(`--pools takes ${POOLS.join(', ')}, got '${p}'`);
      out.pools = ps as Pool[];
    } else if (flag === '--brokers' && value !== undefined) {
      const bs = value.split(',').map((b) => b.trim());
      for (const b of bs) if (b !== 'sqlite' && b !== 'amqp') fail(`--brokers takes sqlite, amqp, got '${b}'`);
      out.brokers = bs as Array<'sqlite' | 'amqp'>;
    } else if (flag === '--svg-dir' && value !== undefined) out.svgDir = value === '' ? null : resolve(value);
    else if (a === '-h' || a === '--help') {
      process.stdout.write(HELP);
      process.exit(0);
    } else fail(`unknown argument '${a}'`);
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
  // One broker only: its name goes into the file name, so a SQLite-only and an AMQP-only run keep both pictures.
  const svg = (name: string) => {
    if (!args.svgDir) return null;
    const path = join(args.svgDir, args.brokers.length === 1 ? name.replace(/\.svg$/, `-${args.brokers[0]}.svg`) : name);
    mkdirSync(dirname(path), { recursive: true });
    return path;
  };
  try {
    if (args.soak !== null) rows.push(...(await soak(ctx, { n: args.soak, http: args.soakHttp ?? Math.round(args.soak / 10), pools: args.pools ?? [...POOLS], brokers: args.brokers, sampleMs: args.sampleS * 1000, svg: svg('bench-soak.svg') })));
    if (args.scale !== null) rows.push(...(await scale(ctx, { levels: args.scale, parked: args.scaleParked, fresh: ctx.n(args.scaleFresh), stampsN: ctx.n(200), pool: args.pools?.[0] ?? 'prefork', brokers: args.brokers, svg: svg('bench-scale.svg') })));
    const casesToo = (args.soak === null && args.scale === null) || args.only !== null;
    for (const c of casesToo ? CASES : []) {
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
