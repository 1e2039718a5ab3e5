// Pidfiles written by the worker itself: pid + start time + node name, so a reused pid is recognised as stale (spec §8).

import { closeSync, constants, fsyncSync, linkSync, lstatSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { AsynxError, ExitCode } from '../errors.js';
import { makeDirectory } from './make-directory.js';
import { hasProcfs, isAlive, readCmdline, readProcStat } from './proc.js';
import { parseWorkerArgv } from './worker-argv.js';

/** What a pidfile says. `startTime` and `node` are null in a Celery-style file that holds only the pid. */
export interface PidfileRecord {
  pid: number;
  startTime: number | null;
  node: string | null;
}

/** A pidfile this process holds. */
export interface HeldPidfile {
  readonly path: string;
  /** Removes the file if it still holds our pid. Sync (safe in an exit handler) and idempotent. */
  remove(): void;
}

/** The result of looking at a pidfile without touching it. */
export type PidfileInspection =
  | { state: 'absent' }
  | { state: 'alive'; record: PidfileRecord }
  | { state: 'stale'; record: PidfileRecord | null; reason: string };


/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); null when unknown. */
export function processStartTime(pid: number): number | null {
  return readProcStat(pid)?.startTime ?? null;
}

function formatRecord(record: PidfileRecord): string {
  let text = `${record.pid}\n`;
  if (record.node !== null) text += `node=${record.node}\n`;
  if (record.startTime !== null) text += `start=${record.startTime}\n`;
  return text;
}

/** Parses pidfile text; null when broken (spec §8.2: the first line must be a pid and end with a newline). */
function parseRecord(text: string): PidfileRecord | null {
  const newline = text.indexOf('\n');
  if (newline === -1) return null;
  const first = text.slice(0, newline).trim();
  if (!/^\d+$/.test(first)) return null;
  const record: PidfileRecord = { pid: Number(first), startTime: null, node: null };
  for (const line of text.slice(newline + 1).split('\n')) {
    const eq = line.indexOf('=');
    if (eq === -1) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (key === 'node' && value !== '') record.node = value;
    if (key === 'start' && /^\d+$/.test(value)) record.startTime = Number(value);
  }
  return record;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    throw new AsynxError('asynx.pidfile.unreadable', `Cannot read pidfile ${path} (${code ?? 'error'}): run as the user that started the node, or pass the --pidfile it was started with`, { cause: err, facts: { path, option: '--pidfile' } });
  }
}

/** Reads a pidfile; null when it is missing or broken. */
export function readPidfile(path: string): PidfileRecord | null {
  const text = readText(path);
  return text === null ? null : parseRecord(text);
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

function symlinkError(path: string): AsynxError {
  return new AsynxError('asynx.pidfile.symlink', `Pidfile ${path} is a symbolic link; asynx does not follow links for pidfiles: remove it or pass --pidfile=<regular file path>`, { exitCode: ExitCode.cantCreate, facts: { path } });
}

/**
 * Why the live process `pid` is not the node's process, or null when it is. The rule (issue 8): a recorded start
 * time must match the process's; where none is recorded, the process's command line must be an `asynx worker`
 * for this node (or, without an expected node, for the node the file names, or any asynx worker). Without /proc
 * (not Linux) neither can be checked and the process is taken to be the node, as Celery does.
 */
export function notTheNode(pid: number, startTime: number | null, node: string | null): string | null {
  if (startTime !== null) {
    const actual = processStartTime(pid);
    return actual !== null && actual !== startTime ? `pid ${pid} now belongs to another process` : null;
  }
  if (!hasProcfs()) return null;
  const argv = readCmdline(pid) ?? [];
  const worker = parseWorkerArgv(argv);
  const shown = argv.length === 0 ? 'a process without a command line' : `'${argv.join(' ').slice(0, 80)}'`;
  if (worker === null) return `pid ${pid} is ${shown}, not an asynx worker`;
  if (node !== null && worker.node !== node) return `pid ${pid} is the asynx worker for ${worker.node}, not ${node}`;
  return null;
}

/**
 * Looks at a pidfile: absent, alive (the recorded pid runs and is this node's process, see {@link notTheNode}; the
 * same node when `expectedNode` is given), or stale with the reason (broken, dead pid, pid reused, other node).
 */
export function inspectPidfile(path: string, expectedNode?: string): PidfileInspection {
  if (isSymlink(path)) throw symlinkError(path);
  const text = readText(path);
  if (text === null) return { state: 'absent' };
  const record = parseRecord(text);
  if (record === null) return { state: 'stale', record: null, reason: 'broken pidfile' };
  if (record.pid === 0 || !isAlive(record.pid)) return { state: 'stale', record, reason: `pid ${record.pid} is not running` };
  if (expectedNode !== undefined && record.node !== null && record.node !== expectedNode) {
    return { state: 'stale', record, reason: `pid ${record.pid} belongs to node ${record.node}` };
  }
  const other = notTheNode(record.pid, record.startTime, expectedNode ?? record.node);
  if (other !== null) return { state: 'stale', record, reason: other };
  return { state: 'alive', record };
}

/**
 * Removes a pidfile if it still has exactly the given content: narrows the window in which a stale file
 * removed by one process could be a fresh file just written by another. Returns true if removed.
 */
export function removeIfUnchanged(path: string, expected: PidfileRecord | null): boolean {
  const text = readText(path);
  if (text === null) return false;
  const now = parseRecord(text);
  const same = expected === null ? now === null : now !== null && now.pid === expected.pid && now.startTime === expected.startTime && now.node === expected.node;
  if (!same) return false;
  try {
    unlinkSync(path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    throw new AsynxError('asynx.pidfile.unremovable', `Cannot remove stale pidfile ${path} (${code ?? 'error'}): remove it by hand, or run as a user that can write to ${dirname(path)}`, { exitCode: ExitCode.cantCreate, cause: err, facts: { path } });
  }
}

function ensureDirectory(dir: string, path: string): void {
  try {
    makeDirectory(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new AsynxError('asynx.pidfile.dirUnwritable', `Cannot create pidfile directory ${dir} (${code}): create it with write access for this user, or pass --pidfile=<writable path>`, { exitCode: ExitCode.cantCreate, cause: err, facts: { path, option: '--pidfile' } });
  }
}

/**
 * Creates the file with its full content in one step: writes a private temp file, fsyncs it, then hard-links it
 * into place (link(2) fails with EEXIST like O_EXCL, but readers never see a half-written file). Falls back to
 * O_EXCL on file systems without hard links. Returns false when the path already exists.
 */
function createExclusive(path: string, content: string): boolean {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, constants.O_CREAT | constants.O_TRUNC | constants.O_WRONLY | constants.O_NOFOLLOW, 0o644);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
  } finally {
    try { unlinkSync(tmp); } catch { /* already gone */ }
  }
  try {
    const direct = openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW, 0o644);
    try {
      writeSync(direct, content);
      fsyncSync(direct);
    } finally {
      closeSync(direct);
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/**
 * Writes this process's pidfile (sync). Creates the directory, refuses a symlink, creates the file exclusively,
 * then re-reads it. An existing file that is broken, names a dead pid, or a live process that is not this node
 * (pid reused) is stale: it is removed, `onNotice` is told, and the create is retried. A live same node throws
 * `asynx.pidfile.alreadyRunning` (exit 73).
 */
export function acquirePidfile(path: string, node: string, onNotice?: (msg: string) => void): HeldPidfile {
  const abs = resolve(path);
  ensureDirectory(dirname(abs), abs);
  const record: PidfileRecord = { pid: process.pid, startTime: processStartTime(process.pid), node };
  const content = formatRecord(record);
  for (let attempt = 0; attempt < 5; attempt++) {
    if (isSymlink(abs)) throw symlinkError(abs);
    let created: boolean;
    try {
      created = createExclusive(abs, content);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new AsynxError('asynx.pidfile.unwritable', `Cannot write pidfile ${abs} (${code}): pass --pidfile=<writable path>`, { exitCode: ExitCode.cantCreate, cause: err, facts: { path: abs, option: '--pidfile' } });
    }
    if (created) {
      if (readText(abs) !== content) {
        throw new AsynxError('asynx.pidfile.lockFailed', `Pidfile ${abs} changed while it was being written: another worker for ${node} is starting; check with \`asynx multi status\``, { exitCode: ExitCode.cantCreate, facts: { path: abs, node } });
      }
      return heldPidfile(abs, record);
    }
    const seen = inspectPidfile(abs, node);
    if (seen.state === 'alive' && seen.record.pid !== process.pid) {
      throw new AsynxError('asynx.pidfile.alreadyRunning', `Pidfile (${abs}) already exists. Seems we're already running? (pid: ${seen.record.pid}): stop that worker first, or give this one another --pidfile`, { exitCode: ExitCode.cantCreate, facts: { pid: seen.record.pid, path: abs, node } });
    }
    const stale = seen.state === 'stale' ? seen : { state: 'stale' as const, record: seen.state === 'alive' ? seen.record : null, reason: 'pid is this process' };
    if (stale.record === null) onNotice?.(`Broken pidfile found - Removing it. (${abs})`);
    else if (stale.record.pid !== process.pid && stale.record.pid !== 0) onNotice?.(`Stale pidfile exists - Removing it. (${abs}: ${stale.reason})`);
    removeIfUnchanged(abs, stale.record);
  }
  throw new AsynxError('asynx.pidfile.keepsReappearing', `Could not create pidfile ${abs}: it keeps reappearing; another worker for ${node} is starting`, { exitCode: ExitCode.cantCreate, facts: { path: abs, node } });
}

function heldPidfile(path: string, record: PidfileRecord): HeldPidfile {
  let removed = false;
  return {
    path,
    remove(): void {
      if (removed) return;
      removed = true;
      try {
        const now = readPidfile(path);
        if (now !== null && now.pid === record.pid) unlinkSync(path);
      } catch {
        // Best effort: an exit handler must not throw.
      }
    },
  };
}
