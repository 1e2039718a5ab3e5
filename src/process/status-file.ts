// A node's live status (state, pool, counters), written by the worker next to its pidfile, read by `multi`.

import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';

/** The worker lifecycle, as shown by `multi status` (style guide §7). */
export type NodeState = 'starting' | 'running' | 'draining' | 'stopping' | 'stopped' | 'failed';

/** A task the node runs now, as recorded so that someone can settle it if the node is killed (issue 9). */
export interface RunningTask {
  id: string;
  name: string;
  /** The caller's reply queue (rpc:// results), or null. */
  replyTo: string | null;
  /** Acked late: the broker redelivers it, so nobody needs to settle it. */
  acksLate: boolean;
  /** ms since the epoch. */
  startedAt: number;
}

/** Where a killed node's results go: enough to open its result backend from another process. */
export interface ResultTargetSpec {
  /** Result backend URL (SQLite paths absolute). */
  resultBackend: string;
  /** Broker URL (rpc:// sends results over it; may hold a password, hence the file's mode 0600). */
  brokerUrl: string;
}

/** One snapshot of a node, rewritten by the worker on every state change and about every 2 s. */
export interface NodeStatus {
  node: string;
  pid: number;
  state: NodeState;
  concurrency: number;
  childPids: number[];
  /** Tasks finished since the worker started. */
  processed: number;
  /** Tasks running now. */
  active: number;
  /** Tasks received and not started yet (prefetched, or waiting for their eta); absent before it connects. */
  reserved?: number;
  queues: string[];
  /** Messages the node may hold unacknowledged (concurrency × prefetchMultiplier); absent before it connects. */
  prefetch?: number;
  /** Broker URL with any password removed. */
  broker: string;
  /** ms since the epoch. */
  startedAt: number;
  updatedAt: number;
  /** Why the worker failed (state `failed`). */
  error?: string;
  /** Set once a shutdown was requested (a node draining for a HUP pool restart has none). */
  shutdown?: 'warm' | 'cold';
  /** Tasks running now, recorded before their pool child gets them (absent when none). */
  running?: RunningTask[];
  /** How to store the results of `running` tasks if the node is killed. */
  results?: ResultTargetSpec;
}

const STATES: ReadonlySet<string> = new Set(['starting', 'running', 'draining', 'stopping', 'stopped', 'failed']);

/** Where the status of the node whose pidfile is at `pidfilePath` lives. */
export function statusPathFor(pidfilePath: string): string {
  return `${pidfilePath}.status.json`;
}

/**
 * Writes the status atomically (temp file + rename), so a reader never sees half a file. Sync. Mode 0600: the
 * result target may name a broker password.
 */
export function writeStatus(path: string, status: NodeStatus): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(status)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

/** Reads a status file; null when missing or not a status. */
export function readStatus(path: string): NodeStatus | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const s = parsed as Partial<NodeStatus>;
  if (typeof s.pid !== 'number' || typeof s.state !== 'string' || !STATES.has(s.state) || typeof s.node !== 'string') return null;
  return {
    node: s.node,
    pid: s.pid,
    state: s.state,
    concurrency: typeof s.concurrency === 'number' ? s.concurrency : 0,
    childPids: Array.isArray(s.childPids) ? s.childPids.filter((p): p is number => typeof p === 'number') : [],
    processed: typeof s.processed === 'number' ? s.processed : 0,
    active: typeof s.active === 'number' ? s.active : 0,
    queues: Array.isArray(s.queues) ? s.queues.filter((q): q is string => typeof q === 'string') : [],
    broker: typeof s.broker === 'string' ? s.broker : '',
    startedAt: typeof s.startedAt === 'number' ? s.startedAt : 0,
    updatedAt: typeof s.updatedAt === 'number' ? s.updatedAt : 0,
    ...(typeof s.reserved === 'number' ? { reserved: s.reserved } : {}),
    ...(typeof s.prefetch === 'number' ? { prefetch: s.prefetch } : {}),
    ...(typeof s.error === 'string' ? { error: s.error } : {}),
    ...(s.shutdown === 'warm' || s.shutdown === 'cold' ? { shutdown: s.shutdown } : {}),
    ...(Array.isArray(s.running) ? { running: s.running.filter(isRunningTask) } : {}),
    ...(isResultTarget(s.results) ? { results: { resultBackend: s.results.resultBackend, brokerUrl: s.results.brokerUrl } } : {}),
  };
}

function isRunningTask(t: unknown): t is RunningTask {
  const r = t as Partial<RunningTask> | null;
  return typeof r === 'object' && r !== null && typeof r.id === 'string' && typeof r.name === 'string' && (r.replyTo === null || typeof r.replyTo === 'string') && typeof r.acksLate === 'boolean' && typeof r.startedAt === 'number';
}

function isResultTarget(t: unknown): t is ResultTargetSpec {
  const r = t as Partial<ResultTargetSpec> | null;
  return typeof r === 'object' && r !== null && typeof r.resultBackend === 'string' && typeof r.brokerUrl === 'string';
}

/** Tasks a dead node left running that someone must settle (acks-early ones: the broker will not redeliver them). */
export function unsettledTasks(status: NodeStatus | null): RunningTask[] {
  return (status?.running ?? []).filter((t) => !t.acksLate);
}

/** Removes a status file; missing is fine. */
export function removeStatus(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
