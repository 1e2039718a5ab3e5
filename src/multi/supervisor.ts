// The multi verbs on a compiled plan: start, stop, stopwait, restart, kill, status. Emits events; never prints.

import { dirname } from 'node:path';
import { optionalDurationMs } from '../util/duration.js';
import { MultiEvents, type NodePid, type StartResult } from './events.js';
import { createNodeDirectories, startNode, type LaunchContext } from './launch.js';
import { preparePidfileDirs, withDirectoryLock } from './lock.js';
import type { MultiNode, MultiPlan } from './nodes.js';
import { collectStatus, type NodeStatusRow } from './status.js';
import { findRunning, killTarget, signalTarget, waitForExit, waitLimitMs, type Target } from './stopping.js';
import { stillRunning } from './probe.js';

/** Per-node results plus the overall verdict (`ok` false → exit 1). */
export interface MultiResult<R> {
  ok: boolean;
  nodes: R[];
}

/** Outcome of `stop` for one node. */
export interface StopResult {
  node: string;
  outcome: 'signalled' | 'down' | 'failed';
  pid: number | null;
  signal: NodeJS.Signals;
  reason?: string;
}

/** Outcome of `stopwait` (and `kill`) for one node. */
export interface StopWaitResult {
  node: string;
  /** `stopped`: exited after the signal; `killed`: exited after KILL; `timedOut`: still alive at --timeout. */
  outcome: 'stopped' | 'killed' | 'down' | 'timedOut' | 'failed';
  pid: number | null;
  reason?: string;
}

/** Outcome of `restart` for one node. */
export interface RestartResult extends Omit<StartResult, 'outcome'> {
  /** `restarted`: drained and up again; `started`: was not running; `skipped`: left alone after an earlier failure. */
  outcome: 'restarted' | 'started' | 'failed' | 'skipped';
  previousPid: number | null;
}

/** Settings of a {@link Supervisor}, every field resolved. */
export interface ResolvedSupervisorOptions {
  env: NodeJS.ProcessEnv;
  startTimeoutMs: number;
  timeoutMs: number | null;
  killAfterMs: number | null;
  signal: NodeJS.Signals;
  rolling: boolean;
}

/** How the duration options are named in error messages: CLI flags by default, API option names from code. */
export interface DurationNames {
  startTimeout: string;
  timeout: string;
  killAfter: string;
}

const CLI_DURATION_NAMES: DurationNames = { startTimeout: '--start-timeout', timeout: '--timeout', killAfter: '--kill-after' };

/**
 * Resolves `--start-timeout` (default 30 s), `--timeout`, `--kill-after` and the signal. Durations follow the one
 * rule (src/util/duration.ts): a bare number is seconds, a string may carry a unit (`500ms`, `2m`); anything else
 * is a usage error naming the option.
 */
export function resolveSupervisorOptions(plan: MultiPlan, env: NodeJS.ProcessEnv, names: DurationNames = CLI_DURATION_NAMES): ResolvedSupervisorOptions {
  const s = plan.settings;
  const timeoutMs = optionalDurationMs(s.timeout, names.timeout);
  const killAfterMs = optionalDurationMs(s.killAfter, names.killAfter);
  return {
    env,
    startTimeoutMs: optionalDurationMs(s.startTimeout, names.startTimeout) ?? 30_000,
    timeoutMs,
    killAfterMs,
    signal: plan.signal ?? 'SIGTERM',
    rolling: !s.allAtOnce,
  };
}

/** Emits per-node events in node order while the work itself completes in any order. */
function inNodeOrder<T>(count: number, emit: (value: T) => void): (index: number, value: T) => void {
  const ready = new Map<number, T>();
  let next = 0;
  return (index, value) => {
    ready.set(index, value);
    while (ready.has(next)) {
      emit(ready.get(next) as T);
      ready.delete(next);
      next++;
    }
  };
}

/** Runs multi verbs for one plan. Subscribe to {@link Supervisor.events} for progress. */
export class Supervisor {
  readonly events = new MultiEvents();

  constructor(readonly plan: MultiPlan, readonly options: ResolvedSupervisorOptions) {}

  private get pidDirs(): string[] {
    return this.plan.nodes.map((n) => dirname(n.pidfile));
  }

  /** How long a verb waits for another multi's lock: long enough for that multi to start or stop every node. */
  private get lockWaitMs(): number {
    const per = this.options.startTimeoutMs + (waitLimitMs(this.options.timeoutMs, this.options.killAfterMs) ?? 60_000);
    return Math.max(60_000, per * Math.max(1, this.plan.nodes.length));
  }

  private launchContext(node: MultiNode): LaunchContext {
    return {
      cwd: this.plan.cwd,
      env: this.options.env,
      startTimeoutMs: this.options.startTimeoutMs,
      onStale: ({ pid, reason }) => this.events.emit('node:stale', { node: node.name.full, pidfile: node.pidfile, pid, reason, removed: true }),
      onSpawn: (command) => this.events.emit('node:spawn', { node: node.name.full, command }),
    };
  }

  /** Starts every node concurrently; results (and events) in node order. Already running nodes are left alone. */
  async start(): Promise<MultiResult<StartResult>> {
    const { nodes } = this.plan;
    preparePidfileDirs(this.pidDirs);
    this.events.emit('start:begin', { count: nodes.length });
    const emit = inNodeOrder<StartResult>(nodes.length, (r) => this.events.emit('node:start', r));
    const dirProblems = nodes.map(createNodeDirectories);
    const results = await withDirectoryLock(this.pidDirs, this.lockWaitMs, () =>
      Promise.all(nodes.map(async (node, k) => {
        const problem = dirProblems[k];
        const result: StartResult = problem != null
          ? { node: node.name.full, outcome: 'failed', pid: null, reason: problem, pidfile: node.pidfile, logfile: node.logfile, elapsedMs: 0 }
          : await startNode(node, this.launchContext(node));
        emit(k, result);
        return result;
      })));
    return { ok: results.every((r) => r.outcome !== 'failed'), nodes: results };
  }

  private signalAll(signal: NodeJS.Signals, mayClean: boolean): { results: StopResult[]; targets: Target[] } {
    const found = findRunning(this.plan.nodes, this.events, mayClean);
    const targets = found.flatMap((f) => (f.target === null ? [] : [f.target]));
    if (targets.length > 0) this.events.emit('stop:begin', { signal });
    const signalled = new Set(targets.filter((t) => signalTarget(t, signal, this.events)));
    const results = found.map((f): StopResult => {
      const base = { node: f.node.name.full, signal, pid: f.target?.ref.pid ?? null };
      if (f.target === null) return { ...base, outcome: f.problem === undefined ? 'down' : 'failed', ...(f.problem === undefined ? {} : { reason: f.problem }) };
      return signalled.has(f.target) ? { ...base, outcome: 'signalled' } : { ...base, outcome: stillRunning(f.target.ref) ? 'failed' : 'down' };
    });
    return { results, targets: [...signalled] };
  }

  /** Sends the signal (default TERM) to each node's main pid and returns without waiting. */
  async stop(): Promise<MultiResult<StopResult>> {
    const results = await withDirectoryLock(this.pidDirs, this.lockWaitMs, async (locked) => this.signalAll(this.options.signal, locked).results);
    return { ok: results.every((r) => r.outcome !== 'failed'), nodes: results };
  }

  /** Like stop, then waits for every node to exit (`--timeout`, `--kill-after`); ok only when all are gone. */
  async stopwait(): Promise<MultiResult<StopWaitResult>> {
    const results = await withDirectoryLock(this.pidDirs, this.lockWaitMs, async (locked) => {
      const { results: stopped, targets } = this.signalAll(this.options.signal, locked);
      const escalated = new Set<string>();
      const onEscalate = (e: NodePid): void => { escalated.add(e.node); };
      this.events.on('node:escalate', onEscalate);
      let alive: Target[];
      try {
        alive = await waitForExit(targets, this.events, { timeoutMs: this.options.timeoutMs, killAfterMs: this.options.killAfterMs });
      } finally {
        this.events.off('node:escalate', onEscalate);
      }
      const stillAlive = new Set(alive.map((t) => t.node.name.full));
      return stopped.map((r): StopWaitResult => {
        if (r.outcome !== 'signalled') return { node: r.node, pid: r.pid, outcome: r.outcome, ...(r.reason === undefined ? {} : { reason: r.reason }) };
        if (stillAlive.has(r.node)) return { node: r.node, pid: r.pid, outcome: 'timedOut' };
        return { node: r.node, pid: r.pid, outcome: escalated.has(r.node) ? 'killed' : 'stopped' };
      });
    });
    return { ok: results.every((r) => r.outcome !== 'failed' && r.outcome !== 'timedOut'), nodes: results };
  }

  /** KILL to each node's main pid and pool children; waits briefly and removes the pidfiles of the dead. */
  async kill(): Promise<MultiResult<StopWaitResult>> {
    const results = await withDirectoryLock(this.pidDirs, this.lockWaitMs, async (locked) => {
      // Strictly in node order: a down node prints at its own position (spec §9.4).
      const targets: Target[] = [];
      const found = this.plan.nodes.map((node) => {
        const f = findRunning([node], this.events, locked)[0];
        if (f?.target != null) {
          this.events.emit('node:kill', { node: node.name.full, pid: f.target.ref.pid });
          killTarget(f.target);
          targets.push(f.target);
        }
        return { node, f };
      });
      const quiet = new MultiEvents();
      quiet.on('node:settled', (e) => this.events.emit('node:settled', e));
      const alive = new Set(await waitForExit(targets, quiet, { timeoutMs: 5_000, killAfterMs: null }));
      return found.map(({ node, f }): StopWaitResult => {
        const target = f?.target ?? null;
        if (target === null) return { node: node.name.full, pid: null, outcome: f?.problem === undefined ? 'down' : 'failed', ...(f?.problem === undefined ? {} : { reason: f.problem }) };
        if (alive.has(target)) {
          this.events.emit('node:signal:failed', { node: node.name.full, pid: target.ref.pid, signal: 'SIGKILL', message: 'still alive 5s after KILL' });
          return { node: node.name.full, pid: target.ref.pid, outcome: 'failed', reason: 'still alive 5s after KILL' };
        }
        return { node: node.name.full, pid: target.ref.pid, outcome: 'killed' };
      });
    });
    return { ok: results.every((r) => r.outcome !== 'failed'), nodes: results };
  }

  /**
   * Rolling restart (default): one node at a time — signal, wait until it exits, start, confirm up — so the cluster
   * never has zero consumers. Stops at the first node that does not come back, leaving the rest running.
   * `--all-at-once`: signal every node, wait for all, start all (Celery's behaviour).
   */
  async restart(): Promise<MultiResult<RestartResult>> {
    preparePidfileDirs(this.pidDirs);
    const results = await withDirectoryLock(this.pidDirs, this.lockWaitMs, async (locked) =>
      this.options.rolling ? this.restartRolling(locked) : this.restartAllAtOnce(locked), { mustWrite: true });
    return { ok: results.every((r) => r.outcome !== 'failed'), nodes: results };
  }

  private async restartOne(node: MultiNode, previous: Target | null, waitOk: boolean): Promise<RestartResult> {
    const previousPid = previous?.ref.pid ?? null;
    const emitResult = (r: RestartResult): RestartResult => {
      this.events.emit('node:restart', { ...r, outcome: r.outcome === 'failed' ? 'failed' : 'started', previousPid });
      return r;
    };
    if (!waitOk) {
      return emitResult({ node: node.name.full, outcome: 'failed', pid: previousPid, previousPid, reason: `still running after ${(this.options.timeoutMs ?? 0) / 1000}s (raise --timeout or add --kill-after)`, pidfile: node.pidfile, logfile: node.logfile, elapsedMs: 0 });
    }
    const dirProblem = createNodeDirectories(node);
    const started: StartResult = dirProblem !== null
      ? { node: node.name.full, outcome: 'failed', pid: null, reason: dirProblem, pidfile: node.pidfile, logfile: node.logfile, elapsedMs: 0 }
      : await startNode(node, this.launchContext(node));
    const outcome = started.outcome === 'failed' ? 'failed' : previous === null ? 'started' : 'restarted';
    return emitResult({ ...started, outcome, previousPid });
  }

  private async restartRolling(locked: boolean): Promise<RestartResult[]> {
    const results: RestartResult[] = [];
    let failedAt: string | null = null;
    for (const node of this.plan.nodes) {
      if (failedAt !== null) {
        const reason = `not restarted: ${failedAt} did not come back, so this node keeps running`;
        this.events.emit('node:skip', { node: node.name.full, reason });
        results.push({ node: node.name.full, outcome: 'skipped', pid: null, previousPid: null, reason, pidfile: node.pidfile, logfile: node.logfile, elapsedMs: 0 });
        continue;
      }
      const found = findRunningQuietly(node, this, locked);
      let waitOk = true;
      if (found !== null) {
        this.events.emit('stop:begin', { signal: this.options.signal });
        if (signalTarget(found, this.options.signal, this.events)) {
          const alive = await waitForExit([found], this.events, { timeoutMs: this.options.timeoutMs, killAfterMs: this.options.killAfterMs });
          waitOk = alive.length === 0;
        }
      }
      const result = await this.restartOne(node, found, waitOk);
      results.push(result);
      if (result.outcome === 'failed') failedAt = node.name.full;
    }
    return results;
  }

  private async restartAllAtOnce(locked: boolean): Promise<RestartResult[]> {
    const previous = this.plan.nodes.map((node) => findRunningQuietly(node, this, locked));
    const targets = previous.filter((t): t is Target => t !== null);
    if (targets.length > 0) this.events.emit('stop:begin', { signal: this.options.signal });
    const signalled = targets.filter((t) => signalTarget(t, this.options.signal, this.events));
    const alive = new Set(await waitForExit(signalled, this.events, { timeoutMs: this.options.timeoutMs, killAfterMs: this.options.killAfterMs }));
    const results: RestartResult[] = [];
    for (const [k, node] of this.plan.nodes.entries()) {
      const prev = previous[k] ?? null;
      results.push(await this.restartOne(node, prev, prev === null || !alive.has(prev)));
    }
    return results;
  }

  /** Status rows in node order; stale pidfiles are removed unless another multi holds the lock. */
  async status(): Promise<MultiResult<NodeStatusRow>> {
    const rows = await withDirectoryLock(this.pidDirs, 0, (locked) => collectStatus(this.plan.nodes, this.events, locked));
    // A node restarting its pool in place (HUP) keeps its pid and serves again shortly: it counts as up.
    return { ok: rows.every((r) => r.state === 'up' || r.state === 'restarting'), nodes: rows };
  }
}

/** The node's live target, reporting a stale pidfile but not a plain `DOWN` (restart starts such nodes). */
function findRunningQuietly(node: MultiNode, sup: Supervisor, locked: boolean): Target | null {
  const relay = new MultiEvents();
  relay.on('node:stale', (e) => sup.events.emit('node:stale', e));
  return findRunning([node], relay, locked)[0]?.target ?? null;
}
