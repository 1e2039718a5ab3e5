// Fault-matrix harness: real worker nodes, a completion ledger, bounded waits, and the result table rows.

import type { ChildProcess } from 'node:child_process';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Asynx } from '../../src/index.js';
import { childPidsOf, spawnProcess } from '../helpers/process.js';
import { waitFor } from '../helpers/tmp.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'bin/asynx');
export const FAULTS_APP = join(ROOT, 'test/fixtures/faults-app.mjs');

/**
 * Task counts scale with ASYNX_FAULT_SCALE (default 1: the 10,000 and 2,000).
 * `ASYNX_FAULT_SCALE=0.1` gives a quick local run.
 */
export function scaled(n: number): number {
  const s = Number(process.env.ASYNX_FAULT_SCALE ?? '1');
  return Math.max(50, Math.round(n * (Number.isFinite(s) && s > 0 ? s : 1)));
}

/** One row of the fault table. */
export interface FaultRow {
  fault: string;
  broker: 'sqlite' | 'amqp' | 'redis';
  /** `acks-late (≥1)`, `acks-early (≤1)`, or `warm (=1)` for cases that promise exactly once. */
  mode: string;
  tasks: number;
  /** Task ids never completed, beyond what the mode allows to drop. */
  lost: number;
  /** Extra completions (a task that ran twice counts 1). */
  duplicated: number;
  /** At-most-once mode: tasks that were running when their process was killed, dropped by design. */
  dropped: number;
  /** Longest pause, over the fault events, from the end of a fault until the ledger grew again. */
  recoverMs: number | null;
  totalMs: number;
  note?: string;
}

/** What a row's mode promises, as failures (empty when the row keeps it): nothing lost, and nothing run twice
 * unless the mode is at-least-once (acks late). */
export function rowViolations(row: FaultRow): string[] {
  const out: string[] = [];
  if (row.lost !== 0) out.push(`${row.lost} of ${row.tasks} tasks lost`);
  if (!row.mode.startsWith('acks-late') && row.duplicated !== 0) out.push(`${row.duplicated} tasks ran twice in ${row.mode} mode`);
  return out;
}

/**
 * Checks one fault row against its mode's promise (throws an AssertionError naming the fault), prints it, and,
 * when ASYNX_FAULT_TABLE names a file, appends it there as one JSON line (the source for BENCHMARKS.md's table:
 * `node --import tsx bench/fault-table.ts <file>`). Each fault file asserts its own rows: no file depends on
 * another having run first.
 */
export function recordRow(row: FaultRow): void {
  console.log(`# fault row: ${formatRow(row)}`);
  if (process.env.ASYNX_FAULT_TABLE) appendFileSync(process.env.ASYNX_FAULT_TABLE, `${JSON.stringify(row)}\n`);
  assert.deepEqual(rowViolations(row), [], `fault row '${row.fault}' (${row.broker}, ${row.mode})`);
}

const COLS: Array<[string, number, (r: FaultRow) => string]> = [
  ['fault', 38, (r) => r.fault],
  ['broker', 7, (r) => r.broker],
  ['mode', 18, (r) => r.mode],
  ['tasks', 6, (r) => String(r.tasks)],
  ['lost', 5, (r) => String(r.lost)],
  ['dup', 5, (r) => String(r.duplicated)],
  ['dropped', 8, (r) => String(r.dropped)],
  ['recover', 9, (r) => (r.recoverMs === null ? '-' : `${(r.recoverMs / 1000).toFixed(2)}s`)],
  ['total', 8, (r) => `${(r.totalMs / 1000).toFixed(1)}s`],
];

export function formatRow(r: FaultRow): string {
  return COLS.map(([, w, f]) => f(r).padEnd(w)).join(' ') + (r.note ? ` ${r.note}` : '');
}

/** A fresh temp dir per test file. */
export function scratch(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `asynx-fault-${prefix}-`));
  // ASYNX_FAULT_KEEP=1 keeps the logs, ledgers and databases for a post-mortem.
  return { dir, cleanup: () => (process.env.ASYNX_FAULT_KEEP === '1' ? console.log(`# kept ${dir}`) : rmSync(dir, { recursive: true, force: true })) };
}

/** Bounded polling, shared with the other suites. */
export { waitFor };

/** Completion ledger: the fixture tasks append their id, one line each. */
export class Ledger {
  constructor(readonly path: string) {}

  size(): number {
    try {
      return statSync(this.path).size;
    } catch {
      return 0;
    }
  }

  counts(): Map<string, number> {
    const m = new Map<string, number>();
    if (!existsSync(this.path)) return m;
    for (const line of readFileSync(this.path, 'utf8').split('\n')) if (line) m.set(line, (m.get(line) ?? 0) + 1);
    return m;
  }

  /** Waits (bounded) until every id has completed at least once. */
  async waitAll(ids: readonly string[], timeoutMs: number): Promise<void> {
    await waitFor(`${ids.length} tasks in ${this.path}`, () => {
      const c = this.counts();
      return ids.every((id) => c.has(id));
    }, timeoutMs, 200).catch((err: Error) => {
      const c = this.counts();
      const missing = ids.filter((id) => !c.has(id));
      throw new Error(`${err.message}: ${missing.length} of ${ids.length} still missing (e.g. ${missing.slice(0, 3).join(', ')})`);
    });
  }

  tally(ids: readonly string[]): { lost: number; duplicated: number; missing: string[] } {
    const c = this.counts();
    const missing = ids.filter((id) => !c.has(id));
    let duplicated = 0;
    for (const id of ids) duplicated += Math.max(0, (c.get(id) ?? 0) - 1);
    return { lost: missing.length, duplicated, missing };
  }
}

/** Samples the ledger size every 10 ms to tell when completions resume after a fault. */
export class Progress {
  private readonly samples: Array<[number, number]> = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly ledger: Ledger) {
    this.timer = setInterval(() => this.samples.push([Date.now(), this.ledger.size()]), 10);
  }

  /**
   * ms from `from` to the first sample after `quiet` whose size exceeds the size at `quiet`; null when it
   * never grew. `quiet` (default `from`) is when the killed processes were gone, so their last writes do
   * not count as a recovery.
   */
  resumeAfter(from: number, quiet = from): number | null {
    let base = -1;
    for (const [at, size] of this.samples) {
      if (at <= quiet) base = size;
      else if (base < 0) base = size;
      else if (size > base) return at - from;
    }
    return null;
  }

  /** The longest resume time over the given faults (`[start, quiet]` pairs or fault-end times). */
  worst(faults: Array<number | [number, number]>): number | null {
    let worst: number | null = null;
    for (const f of faults) {
      const r = typeof f === 'number' ? this.resumeAfter(f) : this.resumeAfter(f[0], f[1]);
      if (r !== null && (worst === null || r > worst)) worst = r;
    }
    return worst;
  }

  /** The longest time the ledger did not grow between `from` and `to` (a restart window). */
  longestStall(from: number, to: number): number {
    let lastGrowth = from;
    let prev = -1;
    let worst = 0;
    for (const [at, size] of this.samples) {
      if (at < from) {
        prev = size;
        continue;
      }
      if (at > to) break;
      if (prev >= 0 && size > prev) {
        worst = Math.max(worst, at - lastGrowth);
        lastGrowth = at;
      }
      prev = size;
    }
    return Math.max(worst, Math.min(to, Date.now()) - lastGrowth);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Sends `n` ledger tasks; returns their ids. Chunks of 200 in flight. */
export async function publishLedger(app: Asynx, n: number, ledger: Ledger, ms = 0, queue?: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 200) {
    const batch = await Promise.all(Array.from({ length: Math.min(200, n - i) }, () => app.sendTask('f.ledger', [ledger.path, ms], {}, queue ? { queue } : {})));
    for (const r of batch) ids.push(r.id);
  }
  return ids;
}

/** Liveness, from the one process helper (a zombie counts as gone). */
export { isAlive as alive } from '../helpers/process.js';

/** Pool children of a worker's main process, from /proc. */
export function childPids(pid: number): number[] {
  return childPidsOf(pid);
}

/** A worker node process started by the test. */
export interface Node {
  readonly name: string;
  readonly pid: number;
  readonly pidfile: string;
  readonly logfile: string;
  readonly proc: ChildProcess;
  readonly exited: Promise<number | string>;
  isDone(): boolean;
  log(): string;
  /** kill -9 of the main process and its pool children, awaited. */
  kill9(): Promise<void>;
  /** Signal → deadline → SIGKILL (main and children), awaited; resolves to the exit code or signal. */
  stop(signal?: NodeJS.Signals, deadlineMs?: number): Promise<number | string>;
}

export interface NodeSpec {
  dir: string;
  brokerUrl: string;
  name: string;
  concurrency?: number;
  app?: string;
  env?: NodeJS.ProcessEnv;
  args?: string[];
  /** Bound on the start (until the status file says running). @defaultValue 30000 */
  startTimeoutMs?: number;
}

let starts = 0;

/** Starts `asynx worker` and waits (bounded) until its status file says `running`. */
export async function startNode(spec: NodeSpec): Promise<Node> {
  const k = ++starts;
  const pidfile = join(spec.dir, `${spec.name}.pid`);
  const logfile = join(spec.dir, `${spec.name}-${k}.log`);
  const outPath = join(spec.dir, `${spec.name}-${k}.out`);
  const args = [BIN, 'worker', '-A', spec.app ?? FAULTS_APP, '-n', `${spec.name}@localhost`, '-c', String(spec.concurrency ?? 2), '-l', 'warning', '--pidfile', pidfile, '--logfile', logfile, '--no-color', ...(spec.args ?? [])];
  const p = spawnProcess(process.execPath, args, {
    cwd: spec.dir,
    env: { ...process.env, NO_COLOR: '1', ASYNX_BROKER_URL: spec.brokerUrl, ...spec.env },
    output: { file: outPath },
    reapChildren: true,
  });
  const log = () => [logfile, outPath].map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : '')).join('');
  const pid = p.pid;
  const node: Node = {
    name: spec.name,
    pid,
    pidfile,
    logfile,
    proc: p.proc,
    exited: p.exited,
    isDone: p.isDone,
    log,
    kill9: () => p.kill9(10_000),
    stop: (signal: NodeJS.Signals = 'SIGTERM', deadlineMs = 30_000) => p.stop(signal, deadlineMs),
  };
  const status = `${pidfile}.status.json`;
  try {
    await waitFor(`${spec.name} to report running`, () => {
      if (p.isDone()) return true;
      try {
        const s = JSON.parse(readFileSync(status, 'utf8')) as { pid: number; state: string };
        return s.pid === pid && s.state === 'running';
      } catch {
        return false;
      }
    }, spec.startTimeoutMs ?? 30_000, 20);
  } catch (err) {
    await node.stop('SIGKILL');
    throw new Error(`${(err as Error).message}\n${log()}`);
  }
  if (p.isDone()) throw new Error(`${spec.name} exited during start:\n${log()}`);
  p.remember();
  return node;
}

/** Tracks every node a test started, to stop them all in after(). */
export class Nodes {
  private readonly all: Node[] = [];

  async start(spec: NodeSpec): Promise<Node> {
    const n = await startNode(spec);
    this.all.push(n);
    return n;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.all.splice(0).map((n) => n.stop('SIGKILL', 5_000)));
  }
}
