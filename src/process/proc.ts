// Process facts from /proc (Linux) with a portable fallback: liveness, start time, children, command line.

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** The fields of /proc/<pid>/stat that asynx uses. */
export interface ProcStat {
  pid: number;
  /** One letter: R, S, D, Z (zombie), T, X … */
  state: string;
  ppid: number;
  /** Field 22: start time in clock ticks since boot. Stable for the life of the process; differs after pid reuse. */
  startTime: number;
}

/** Parses /proc/<pid>/stat; null when the process does not exist or /proc is not available. */
export function readProcStat(pid: number): ProcStat | null {
  if (!Number.isInteger(pid) || pid <= 0) return null;
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
  const close = text.lastIndexOf(')');
  if (close === -1) return null;
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state), so field N is rest[N - 3].
  const state = rest[0] ?? '?';
  const ppid = Number(rest[1]);
  const startTime = Number(rest[19]);
  if (!Number.isFinite(ppid) || !Number.isFinite(startTime)) return null;
  return { pid, state, ppid, startTime };
}

/** True when /proc can be read on this system (Linux). */
export function hasProcfs(): boolean {
  return readProcStat(process.pid) !== null;
}

/**
 * True when the pid names a running (non-zombie) process. EPERM counts as alive: the process exists but belongs
 * to another user; whether it is *our* process is decided by the start time, not by kill(2).
 */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const stat = readProcStat(pid);
  if (stat !== null) return stat.state !== 'Z' && stat.state !== 'X';
  try {
    process.kill(pid, 0);
    return !hasProcfs();
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Direct children of a pid, found by scanning /proc (empty where /proc is not available). */
export function childPidsOf(pid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const children: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProcStat(Number(entry));
    if (stat !== null && stat.ppid === pid && stat.state !== 'Z') children.push(stat.pid);
  }
  return children.sort((a, b) => a - b);
}

/**
 * The argument vector of a process from /proc/<pid>/cmdline; null when it cannot be read (no such process, no
 * /proc). A kernel thread or a zombie gives an empty array.
 */
export function readCmdline(pid: number): string[] | null {
  if (!Number.isInteger(pid) || pid <= 0) return null;
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return null;
  }
  const args = text.split('\0');
  if (args.at(-1) === '') args.pop();
  return args;
}

/** The working directory of a process (readlink /proc/<pid>/cwd); null when it cannot be read. */
export function readCwd(pid: number): string | null {
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return null;
  }
}
