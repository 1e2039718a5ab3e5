// `multi status` (not in Celery, spec decision 8): one row a node with state, pid, uptime, CPU, RSS, tasks.

import pidusage from 'pidusage';
import { resolve } from 'node:path';
import { expandWorkerTemplate } from '../process/placeholders.js';
import { childPidsOf, readCmdline, readCwd } from '../process/proc.js';
import { parseWorkerArgv } from '../process/worker-argv.js';
import { readStatus } from '../process/status-file.js';
import type { MultiEvents } from './events.js';
import type { MultiNode } from './nodes.js';
import { probeNode, removeStaleFiles } from './probe.js';

/** A node's state as `status` shows it. */
export type NodeRowState = 'up' | 'restarting' | 'down' | 'stale pidfile' | 'starting' | 'stopping' | 'failed';

/** One row of `multi status`. */
export interface NodeStatusRow {
  node: string;
  state: NodeRowState;
  pid: number | null;
  /** ms since the node started. */
  uptimeMs: number | null;
  /** CPU % of the main process plus its pool children (100 = one core). */
  cpu: number | null;
  /** Resident memory of the main process plus its pool children, bytes. */
  rss: number | null;
  /** Pool size (concurrency) the node reports. */
  concurrency: number | null;
  /** Pids of the pool children. */
  poolPids: number[];
  /** Tasks the node has finished. */
  processed: number | null;
  /** Tasks running now. */
  active: number | null;
  pidfile: string;
  logfile: string;
  /** Why the row is not up: stale pidfile reason, status `error`. */
  reason?: string;
}

async function usage(pids: number[]): Promise<{ cpu: number; rss: number; elapsed: number } | null> {
  let cpu = 0;
  let rss = 0;
  let elapsed = 0;
  let any = false;
  for (const pid of pids) {
    try {
      const stat = await pidusage(pid);
      cpu += stat.cpu;
      rss += stat.memory;
      if (pid === pids[0]) elapsed = stat.elapsed;
      any = true;
    } catch {
      // The process exited between listing and measuring.
    }
  }
  return any ? { cpu, rss, elapsed } : null;
}

/** The main logfile of a running worker, from its own command line (`--logfile`/`-f`, resolved against its cwd). */
function runningLogfile(pid: number, node: string): string | null {
  const argv = readCmdline(pid);
  const logfile = argv === null ? null : parseWorkerArgv(argv)?.logfile ?? null;
  const cwd = readCwd(pid);
  if (logfile === null || cwd === null) return null;
  try {
    return resolve(cwd, expandWorkerTemplate(logfile, node));
  } catch {
    return null;
  }
}

/** Builds the status rows, in node order. Stale pidfiles are removed only when `mayClean` (we hold the lock). */
export async function collectStatus(nodes: readonly MultiNode[], events: MultiEvents, mayClean: boolean): Promise<NodeStatusRow[]> {
  const rows: NodeStatusRow[] = [];
  try {
    for (const node of nodes) {
      const base = { node: node.name.full, state: 'down' as NodeRowState, pid: null, uptimeMs: null, cpu: null, rss: null, concurrency: null, poolPids: [], processed: null, active: null, pidfile: node.pidfile, logfile: node.logfile };
      const seen = probeNode(node);
      if (seen.kind === 'absent') {
        const last = readStatus(node.statusFile);
        // Say where we looked: a node started with another --pidfile is running, just not here.
        rows.push({ ...base, reason: last?.state === 'failed' && last.error !== undefined ? `last start failed: ${last.error}` : `no pidfile at ${node.pidfile} (started with another --pidfile? pass the same one)` });
      } else if (seen.kind === 'invalid') {
        rows.push({ ...base, reason: seen.reason });
      } else if (seen.kind === 'stale') {
        const removed = mayClean && removeStaleFiles(node, seen.record);
        events.emit('node:stale', { node: node.name.full, pidfile: node.pidfile, pid: seen.record?.pid ?? null, reason: seen.reason, removed });
        rows.push({ ...base, state: 'stale pidfile', pid: seen.record?.pid ?? null, reason: seen.reason });
      } else {
        const { record, status } = seen;
        const poolPids = childPidsOf(record.pid);
        const measured = await usage([record.pid, ...poolPids]);
        const state: NodeRowState = status === null || status.state === 'starting' ? 'starting'
          : status.state === 'running' ? 'up'
          : status.state === 'failed' ? 'failed'
          // draining with no shutdown requested: a HUP pool restart in place (same pid), not a stop
          : status.state === 'draining' && status.shutdown === undefined ? 'restarting'
          : 'stopping';
        rows.push({
          ...base,
          logfile: runningLogfile(record.pid, node.name.full) ?? node.logfile,
          state,
          pid: record.pid,
          uptimeMs: status !== null && status.startedAt > 0 ? Date.now() - status.startedAt : measured?.elapsed ?? null,
          cpu: measured === null ? null : Math.round(measured.cpu * 10) / 10,
          rss: measured?.rss ?? null,
          concurrency: status?.concurrency ?? null,
          poolPids: poolPids.length > 0 ? poolPids : status?.childPids ?? [],
          processed: status?.processed ?? null,
          active: status?.active ?? null,
          ...(status?.error !== undefined ? { reason: status.error } : {}),
        });
      }
    }
  } finally {
    pidusage.clear();
  }
  return rows;
}
