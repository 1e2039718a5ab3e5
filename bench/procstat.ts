// /proc readings for the benchmark: CPU time and context switches of process trees, RSS and PSS, process liveness.

import { readFileSync, readdirSync } from 'node:fs';
import { isAlive } from '../test/helpers/process.js';

const TICK_US = 1_000_000 / 100; // USER_HZ is 100 on Linux

/** Direct children of a pid. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The pid and all its descendants that are alive now. */
export function treeOf(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...childrenOf(out[i]!));
  return out.filter(isAlive);
}

/** True while the process runs; a zombie (exited, not yet reaped by its parent) counts as gone. */
export { isAlive as alive };

/** utime + stime of one process in µs (0 if it is gone). */
export function cpuUs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_US;
  } catch {
    return 0;
  }
}

/** CPU of a set of process trees, per pid, so a delta can be taken over an interval. */
export function cpuSnapshot(roots: number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const r of roots) for (const p of treeOf(r)) m.set(p, cpuUs(p));
  return m;
}

/** CPU µs spent between two snapshots (processes that appeared count from 0). */
export function cpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let us = 0;
  for (const [pid, v] of after) us += v - (before.get(pid) ?? 0);
  return us;
}

/** Context switches (voluntary + involuntary) of every thread of one process (0 if it is gone). */
export function switchesOf(pid: number): number {
  let n = 0;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  for (const tid of tids) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      n += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(text)?.[1] ?? 0) + Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(text)?.[1] ?? 0);
    } catch {
      // the thread ended meanwhile
    }
  }
  return n;
}

/** Context switches of a set of process trees, per pid (a delta is taken with {@link cpuDelta}). */
export function switchSnapshot(roots: number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const r of roots) for (const p of treeOf(r)) m.set(p, switchesOf(p));
  return m;
}

/** RSS and PSS in KiB of a process tree (from smaps_rollup). */
export function memoryOf(root: number): { rssKb: number; pssKb: number; processes: number } {
  let rssKb = 0;
  let pssKb = 0;
  const pids = treeOf(root);
  for (const p of pids) {
    try {
      const text = readFileSync(`/proc/${p}/smaps_rollup`, 'utf8');
      rssKb += Number(/^Rss:\s+(\d+)/m.exec(text)?.[1] ?? 0);
      pssKb += Number(/^Pss:\s+(\d+)/m.exec(text)?.[1] ?? 0);
    } catch {
      // exited meanwhile
    }
  }
  return { rssKb, pssKb, processes: pids.length };
}

/** RSS in KiB of one process (0 if it is gone). */
export function rssKbOf(pid: number): number {
  try {
    return Number(/^Rss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}
