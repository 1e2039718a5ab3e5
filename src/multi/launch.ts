// Starting one node: spawn `asynx worker --detach`, then wait (bounded) until its pidfile and status say it is up.

import { spawn } from 'node:child_process';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeDirectory } from '../process/make-directory.js';
import { removeStatus, readStatus, unsettledTasks } from '../process/status-file.js';
import { isAlive } from '../process/proc.js';
import type { StartResult } from './events.js';
import { nodeCommand, type MultiNode } from './nodes.js';
import { probeNode, removeStaleFiles } from './probe.js';
import { settlesWithin, valueWithin } from '../util/deadline.js';

/** What {@link startNode} needs besides the node. */
export interface LaunchContext {
  cwd: string;
  env: NodeJS.ProcessEnv;
  startTimeoutMs: number;
  /** Stale pidfiles are removed only by the multi that holds the directory lock. */
  onStale(record: { pid: number | null; reason: string }): void;
  onSpawn(command: string[]): void;
}

const POLL_MS = 50;
const TAIL_BYTES = 64 * 1024;
const TAIL_LINES = 6;
const LOG_CHECK_MS = 200;

/** Creates the expanded pidfile and logfile directories (spec decision 2); a reason naming path and flag if it cannot. */
export function createNodeDirectories(node: MultiNode): string | null {
  const wanted: Array<[string, string]> = [[dirname(node.pidfile), '--pidfile'], [dirname(node.logfile), '--logfile']];
  for (const [dir, flag] of wanted) {
    try {
      makeDirectory(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      return `cannot create directory ${dir} (${code}): create it with write access for this user, or pass ${flag}=<writable path>`;
    }
  }
  return null;
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** The lines the node wrote to its log since `offset`: error lines if any, else the last few. */
export function logTail(path: string, offset: number): string {
  let text = '';
  try {
    const size = statSync(path).size;
    const from = Math.max(offset, size - TAIL_BYTES);
    if (size <= from) return '';
    const fd = openSync(path, 'r');
    try {
      const buf = Buffer.alloc(size - from);
      readSync(fd, buf, 0, buf.length, from);
      text = buf.toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
  return pickLines(text);
}

/** Lines the `asynx` CLI writes just before it exits on an error (`asynx: <message>`), since `offset`. */
function fatalLines(path: string, offset: number): string {
  if (fileSize(path) <= offset) return '';
  try {
    const fd = openSync(path, 'r');
    try {
      const size = statSync(path).size;
      const from = Math.max(offset, size - TAIL_BYTES);
      const buf = Buffer.alloc(size - from);
      readSync(fd, buf, 0, buf.length, from);
      return buf.toString('utf8').split('\n').filter((l) => l.startsWith('asynx: ')).join('\n');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

function pickLines(text: string): string {
  const lines = text.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim() !== '');
  const errors = lines.filter((l) => /\b(ERROR|CRITICAL|FATAL)\b|Error\b|error:/.test(l));
  return (errors.length > 0 ? errors : lines).slice(-TAIL_LINES).join('\n');
}

interface LauncherExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The worker pid, when the launcher printed one (`pid=<n>` or a bare number). */
  workerPid: number | null;
}

/** Runs the launcher (`asynx worker --detach …`), which should exit at once; killed (by its pid) at the deadline. */
async function runLauncher(command: string[], ctx: LaunchContext, deadline: number): Promise<LauncherExit | null> {
  const [file, ...args] = command as [string, ...string[]];
  const child = spawn(file, args, { cwd: ctx.cwd, env: ctx.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString('utf8'); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null } | { error: Error }>((res) => {
    child.once('exit', (code, signal) => res({ code, signal }));
    child.once('error', (error) => res({ error }));
  });
  const result = await valueWithin(exited, deadline - Date.now());
  if (result === null) {
    if (child.pid !== undefined) try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
    return null;
  }
  // Give the pipes a moment to deliver the last bytes; the detached worker must not hold them open.
  await settlesWithin(new Promise((res) => child.once('close', res)), 200);
  child.stdout.destroy();
  child.stderr.destroy();
  if ('error' in result) return { code: 127, signal: null, stdout, stderr: result.error.message, workerPid: null };
  const pidLine = /(?:^|\bpid[=: ]+)(\d+)\s*$/im.exec(stdout);
  return { ...result, stdout, stderr, workerPid: pidLine === null ? null : Number(pidLine[1]) };
}

function describeLauncherFailure(exit: LauncherExit): string {
  const output = pickLines(exit.stderr) || pickLines(exit.stdout);
  const how = exit.signal !== null ? `* Child was terminated by signal ${exit.signal}` : `* Child terminated with exit code ${exit.code}`;
  return output === '' ? how : `${output}\n${how}`;
}

/**
 * Starts one node unless it is already running, and confirms it: OK only once the pidfile holds a live pid and
 * the node's status says `running`. Every failure carries the node's own words.
 */
export async function startNode(node: MultiNode, ctx: LaunchContext): Promise<StartResult> {
  const started = Date.now();
  const deadline = started + ctx.startTimeoutMs;
  const base = { node: node.name.full, pidfile: node.pidfile, logfile: node.logfile };
  const done = (outcome: StartResult['outcome'], pid: number | null, reason?: string): StartResult => ({ ...base, outcome, pid, ...(reason === undefined ? {} : { reason }), elapsedMs: Date.now() - started });

  const before = probeNode(node);
  if (before.kind === 'invalid') return done('failed', null, before.reason);
  if (before.kind === 'alive') return done('alreadyRunning', before.record.pid);
  if (before.kind === 'stale') {
    removeStaleFiles(node, before.record);
    ctx.onStale({ pid: before.record?.pid ?? null, reason: before.reason });
  }
  const dirProblem = createNodeDirectories(node);
  if (dirProblem !== null) return done('failed', null, dirProblem);
  // Unless it records tasks a killed node left running: the new worker settles them (issue 9).
  if (unsettledTasks(readStatus(node.statusFile)).length === 0) removeStatus(node.statusFile);
  const logOffset = fileSize(node.logfile);

  const command = nodeCommand(node);
  ctx.onSpawn(command);
  const launcher = await runLauncher(command, ctx, deadline);
  if (launcher === null) return done('failed', null, `the launcher did not exit within ${ctx.startTimeoutMs / 1000}s (raise --start-timeout)`);
  if (launcher.code !== 0) return done('failed', launcher.workerPid, describeLauncherFailure(launcher));

  let seenPid: number | null = launcher.workerPid;
  let graceUntil = 0;
  let nextLogCheck = 0;
  while (Date.now() < deadline) {
    const now = probeNode(node);
    const status = readStatus(node.statusFile);
    if (now.kind === 'alive') {
      seenPid = now.record.pid;
      if (now.status?.state === 'running') return done('started', seenPid);
    }
    if (status !== null && status.state === 'failed' && (seenPid === null || status.pid === seenPid)) {
      return done('failed', status.pid, status.error ?? (logTail(node.logfile, logOffset) || 'the worker reported state failed'));
    }
    // Without a pid from the launcher, a worker that dies before writing its pidfile (an app module that throws
    // on import) is recognised by the CLI's last words in its log: a line starting `asynx: ` (cli/main.ts).
    if (seenPid === null && now.kind !== 'alive' && Date.now() >= nextLogCheck) {
      nextLogCheck = Date.now() + LOG_CHECK_MS;
      const fatal = fatalLines(node.logfile, logOffset);
      if (fatal !== '') {
        await sleep(300);
        if (probeNode(node).kind !== 'alive') return done('failed', null, logTail(node.logfile, logOffset) || fatal);
      }
    }
    if (seenPid !== null && !isAlive(seenPid)) {
      // The process is gone; let a final status write land before deciding.
      if (graceUntil === 0) graceUntil = Date.now() + 300;
      else if (Date.now() >= graceUntil) {
        const last = readStatus(node.statusFile);
        const reason = (last?.pid === seenPid ? last.error : undefined) ?? (logTail(node.logfile, logOffset) || launcher.stderr.trim() || `the worker (pid ${seenPid}) exited before it was ready; see ${node.logfile}`);
        return done('failed', seenPid, reason);
      }
    }
    await sleep(POLL_MS);
  }
  const tail = logTail(node.logfile, logOffset);
  return done('failed', seenPid, `not ready within ${ctx.startTimeoutMs / 1000}s (raise --start-timeout)${tail === '' ? `; nothing in ${node.logfile}` : `:\n${tail}`}`);
}
