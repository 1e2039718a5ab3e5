// What a node's pidfile and status file say right now, and the cleanup of a dead node's files.

import { inspectPidfile, notTheNode, removeIfUnchanged, type PidfileRecord } from '../process/pidfile.js';
import { readStatus, removeStatus, unsettledTasks, type NodeStatus } from '../process/status-file.js';
import { isAlive } from '../process/proc.js';
import type { MultiNode } from './nodes.js';

/** A node seen through its files. */
export type NodeProbe =
  | { kind: 'absent' }
  | { kind: 'alive'; record: PidfileRecord; status: NodeStatus | null }
  | { kind: 'stale'; record: PidfileRecord | null; reason: string }
  | { kind: 'invalid'; reason: string };

/** Reads a node's pidfile (refusing symlinks) and, when its pid is alive, its status file. */
export function probeNode(node: MultiNode): NodeProbe {
  let seen;
  try {
    seen = inspectPidfile(node.pidfile, node.name.full);
  } catch (err) {
    return { kind: 'invalid', reason: (err as Error).message };
  }
  if (seen.state === 'absent') return { kind: 'absent' };
  if (seen.state === 'stale') return { kind: 'stale', record: seen.record, reason: seen.reason };
  const status = readStatus(node.statusFile);
  return { kind: 'alive', record: seen.record, status: status !== null && status.pid === seen.record.pid ? status : null };
}

/** Removes a stale pidfile (only if unchanged since it was read) and the node's status file. */
export function removeStaleFiles(node: MultiNode, record: PidfileRecord | null): boolean {
  const removed = removeIfUnchanged(node.pidfile, record);
  const status = readStatus(node.statusFile);
  // A killed node's record of unsettled tasks stays for whoever settles them (its next start, issue 9).
  if ((status === null || !isAlive(status.pid)) && unsettledTasks(status).length === 0) removeStatus(node.statusFile);
  return removed;
}

/**
 * A pid plus what identifies its process (the start time, else the node its command line names), so a reused pid
 * is never signalled.
 */
export interface ProcessRef {
  pid: number;
  startTime: number | null;
  node: string;
}

/** True while the process behind the reference runs (the same process, not a reuse of its pid). */
export function stillRunning(ref: ProcessRef): boolean {
  return isAlive(ref.pid) && notTheNode(ref.pid, ref.startTime, ref.node) === null;
}

/** After a node's main process is gone: removes the files it left behind if they still name it. */
export function cleanupAfterExit(node: MultiNode, ref: ProcessRef): void {
  const seen = probeNode(node);
  if (seen.kind === 'stale' && seen.record !== null && seen.record.pid === ref.pid) removeIfUnchanged(node.pidfile, seen.record);
  const status = readStatus(node.statusFile);
  if (status !== null && (status.pid === ref.pid || !isAlive(status.pid)) && unsettledTasks(status).length === 0) removeStatus(node.statusFile);
}
