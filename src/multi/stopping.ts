// Signalling nodes and waiting for them to exit: stop, stopwait (timeout, kill-after), kill (spec §9.2–9.4).

import { setTimeout as sleep } from 'node:timers/promises';
import { childPidsOf, isAlive, readProcStat } from '../process/proc.js';
import { readStatus, unsettledTasks, writeStatus } from '../process/status-file.js';
import type { MultiEvents, NodePid } from './events.js';
import type { MultiNode } from './nodes.js';
import { cleanupAfterExit, probeNode, removeStaleFiles, stillRunning, type ProcessRef } from './probe.js';

/** A running node about to be signalled or waited for. */
export interface Target {
  node: MultiNode;
  ref: ProcessRef;
}

/** Per-node outcome of finding the live nodes. */
export type FindOutcome = { node: MultiNode; target: Target | null; problem?: string };

const POLL_MS = 100;
const TICK_MS = 500;
/** When KILL and the timeout fall together, the KILL gets this long to take effect before the timeout is reported. */
const KILL_GRACE_MS = 2_000;

function nodePid(t: Target): NodePid {
  return { node: t.node.name.full, pid: t.ref.pid };
}

/**
 * Finds the live nodes in node order. A node without a live pid is reported down; a stale pidfile is removed
 * (when `mayClean`) and reported, never signalled.
 */
export function findRunning(nodes: readonly MultiNode[], events: MultiEvents, mayClean: boolean): FindOutcome[] {
  return nodes.map((node) => {
    const seen = probeNode(node);
    if (seen.kind === 'alive') return { node, target: { node, ref: { pid: seen.record.pid, startTime: seen.record.startTime, node: node.name.full } } };
    if (seen.kind === 'stale') {
      const removed = mayClean && removeStaleFiles(node, seen.record);
      const alive = seen.record !== null && isAlive(seen.record.pid);
      events.emit('node:stale', { node: node.name.full, pidfile: node.pidfile, pid: seen.record?.pid ?? null, reason: seen.reason, removed, ...(alive ? { notSignalled: true } : {}) });
    }
    events.emit('node:down', { node: node.name.full });
    return { node, target: null, ...(seen.kind === 'invalid' ? { problem: seen.reason } : {}) };
  });
}

/** Sends a signal to a node's main pid only (pool children decide nothing), after checking it is still that process. */
export function signalTarget(t: Target, signal: NodeJS.Signals, events: MultiEvents): boolean {
  if (!stillRunning(t.ref)) {
    events.emit('node:signal:failed', { ...nodePid(t), signal, message: 'No such process' });
    events.emit('node:down', { node: t.node.name.full });
    return false;
  }
  // A worker takes a second TERM as a request for a cold shutdown (running tasks are killed): a repeated
  // `stop`/`stopwait` must not turn the warm shutdown already under way into a cold one.
  const status = signal === 'SIGTERM' ? readStatus(t.node.statusFile) : null;
  if (status && status.pid === t.ref.pid && status.shutdown !== undefined && (status.state === 'draining' || status.state === 'stopping')) {
    events.emit('node:signal:skipped', { ...nodePid(t), signal, state: status.state });
    return true;
  }
  try {
    process.kill(t.ref.pid, signal);
    events.emit('node:signal', { ...nodePid(t), signal });
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    events.emit('node:signal:failed', { ...nodePid(t), signal, message: code === 'ESRCH' ? 'No such process' : code === 'EPERM' ? 'Operation not permitted' : (err as Error).message });
    if (code === 'ESRCH') events.emit('node:down', { node: t.node.name.full });
    return false;
  }
}

/** The node's pool children: processes whose parent is the main pid (status file as a fallback off Linux). */
function poolChildren(t: Target): number[] {
  const fromProc = childPidsOf(t.ref.pid);
  if (fromProc.length > 0) return fromProc;
  const status = readStatus(t.node.statusFile);
  return status?.pid === t.ref.pid ? status.childPids.filter((pid) => readProcStat(pid)?.ppid === t.ref.pid) : [];
}

/** SIGKILL to the main pid and its pool children (found before the main dies, while they are still its children). */
export function killTarget(t: Target): void {
  if (!stillRunning(t.ref)) return;
  const children = poolChildren(t);
  for (const pid of [t.ref.pid, ...children]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** How long storing the results of a dead node's tasks may take. */
const SETTLE_MS = 10_000;

/**
 * After a node's main process died: for each acks-early task its status file says it was running, stores FAILURE
 * (WorkerLostError) unless the task has a ready state (issue 9). What cannot be stored stays on record, for the
 * node's next start. A node that stopped cleanly removed its status file: nothing to do.
 */
export async function settleAfterExit(t: Target, events: MultiEvents): Promise<void> {
  const status = readStatus(t.node.statusFile);
  if (status === null || status.pid !== t.ref.pid || status.results === undefined) return;
  const tasks = unsettledTasks(status);
  if (tasks.length === 0) return;
  const { settleLostTasksAt } = await import('../results/settle-lost.js');
  const report = await settleLostTasksAt(status.results, t.ref.pid, tasks, SETTLE_MS);
  const left = new Set(report.errors.map((e) => e.id));
  try {
    writeStatus(t.node.statusFile, { ...status, running: (status.running ?? []).filter((r) => left.has(r.id)), updatedAt: Date.now() });
  } catch {
    // The record stays as it was: the next start settles what is not ready yet.
  }
  events.emit('node:settled', { ...nodePid(t), failed: report.failed, errors: report.errors });
}

/** Options of {@link waitForExit}. */
export interface WaitOptions {
  /**
   * Report the nodes still alive after this long. Without `killAfterMs` (or with one that comes first) the wait ends
   * there; with a later `killAfterMs` it goes on to the KILL.
   */
  timeoutMs: number | null;
  /** Send KILL to nodes still alive this long after the signal, then wait for them to go. */
  killAfterMs: number | null;
  /** Called as each node exits (after its leftover files are cleaned), e.g. to start it again. */
  onGone?: (t: Target) => Promise<void> | void;
}

/** How long KILLed nodes get to disappear when no later `--timeout` bounds the wait (KILL cannot be caught). */
const AFTER_KILL_MS = 10_000;

/**
 * When the wait gives up, ms after the signal. The rule (issue 9): `--kill-after=K` sends KILL at K whatever
 * `--timeout=T` says. T alone ends the wait at T. With K ≥ T the nodes still alive at T are reported and the wait
 * goes on to K + 10 s; with K < T it ends at T (at least a moment after the KILL).
 */
export function waitLimitMs(timeoutMs: number | null, killAfterMs: number | null): number | null {
  if (killAfterMs === null) return timeoutMs;
  if (timeoutMs === null || timeoutMs < killAfterMs) return killAfterMs + AFTER_KILL_MS;
  return Math.max(timeoutMs, killAfterMs + KILL_GRACE_MS);
}

/**
 * Waits for every target's main process to exit, cleaning the files a crashed node leaves; KILLs the ones still
 * alive at `killAfterMs` (see {@link waitLimitMs}). Returns the targets still alive when the wait gave up (empty when
 * all are gone).
 */
export async function waitForExit(targets: readonly Target[], events: MultiEvents, opts: WaitOptions): Promise<Target[]> {
  const started = Date.now();
  let remaining = [...targets];
  let escalated = false;
  let overdue = false;
  let lastTick = started;
  const limit = waitLimitMs(opts.timeoutMs, opts.killAfterMs);
  const pending: Array<Promise<void>> = [];
  if (remaining.length > 0) events.emit('wait:begin', { nodes: remaining.map(nodePid) });
  while (remaining.length > 0) {
    const gone = remaining.filter((t) => !stillRunning(t.ref));
    if (gone.length > 0) {
      remaining = remaining.filter((t) => !gone.includes(t));
      for (const t of gone) {
        await settleAfterExit(t, events);
        cleanupAfterExit(t.node, t.ref);
        events.emit('node:gone', nodePid(t));
        if (opts.onGone !== undefined) pending.push(Promise.resolve(opts.onGone(t)));
      }
      if (remaining.length > 0) events.emit('wait:begin', { nodes: remaining.map(nodePid) });
      continue;
    }
    const elapsed = Date.now() - started;
    if (!overdue && !escalated && opts.timeoutMs !== null && opts.killAfterMs !== null && opts.timeoutMs < opts.killAfterMs && elapsed >= opts.timeoutMs) {
      overdue = true;
      events.emit('wait:overdue', { nodes: remaining.map(nodePid), afterMs: opts.timeoutMs, killAfterMs: opts.killAfterMs });
    }
    if (!escalated && opts.killAfterMs !== null && elapsed >= opts.killAfterMs) {
      escalated = true;
      for (const t of remaining) {
        events.emit('node:escalate', { ...nodePid(t), afterMs: opts.killAfterMs });
        killTarget(t);
      }
    }
    if (limit !== null && elapsed >= limit) {
      events.emit('wait:timeout', { nodes: remaining.map(nodePid), afterMs: escalated ? limit : opts.timeoutMs ?? limit });
      break;
    }
    if (Date.now() - lastTick >= TICK_MS) {
      lastTick = Date.now();
      events.emit('wait:tick', { remaining: remaining.length });
    }
    await sleep(POLL_MS);
  }
  await Promise.all(pending);
  return remaining;
}
