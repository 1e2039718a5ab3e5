// The one way tests (and the bench) start and end processes: spawn with captured output, bounded runs,
// signal → deadline → SIGKILL stops that are awaited, and liveness from src/process/proc.ts.

import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { childPidsOf, isAlive } from '../../src/process/proc.js';
import { killQuietly, onAbort } from './reaper.js';

/** Liveness and children come from the runtime's own /proc reader: a zombie counts as gone. */
export { childPidsOf, isAlive, readProcStat } from '../../src/process/proc.js';

/** How a process ended: its exit code, or the name of the signal that ended it. */
export type Exit = number | string;

export interface SpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Its own process group (signals still go to the pid alone unless `group`). @defaultValue false */
  detached?: boolean;
  /** Detached, and every signal (stop, kill9, the abort cleanup) goes to the whole group. @defaultValue false */
  group?: boolean;
  /** `'pipe'` captures stdout + stderr for output(); a path appends both to that file. @defaultValue 'pipe' */
  output?: 'pipe' | { file: string };
  /** After the process exited on stop(), SIGKILL the children seen while it ran (and its group). @defaultValue false */
  reapChildren?: boolean;
}

/** A process a test started. */
export interface Spawned {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Everything captured on stdout and stderr so far ('' when output goes to a file). */
  output(): string;
  stdout(): string;
  stderr(): string;
  /** Settles when the process exited. */
  readonly exited: Promise<Exit>;
  isDone(): boolean;
  /** Records the current children (pool processes) so that a later kill also reaches them. */
  remember(): void;
  /** Children recorded so far. */
  children(): number[];
  /** Signal → deadline → SIGKILL (the process or its group, and its recorded children); awaited. */
  stop(signal?: NodeJS.Signals, deadlineMs?: number): Promise<Exit>;
  /** SIGKILL now, of the process and its recorded children; resolves when all are gone, throws past `timeoutMs`. */
  kill9(timeoutMs?: number): Promise<void>;
}

/** Starts `command args` with its output captured and a last-resort SIGKILL registered for an aborted test run. */
export function spawnProcess(command: string, args: readonly string[], opts: SpawnOptions = {}): Spawned {
  const toFile = typeof opts.output === 'object' ? opts.output.file : null;
  const fd = toFile === null ? null : openSync(toFile, 'a');
  const stdio: StdioOptions = fd === null ? ['ignore', 'pipe', 'pipe'] : ['ignore', fd, fd];
  const proc = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio, detached: (opts.detached ?? false) || (opts.group ?? false) });
  if (fd !== null) closeSync(fd);
  let out = '';
  let err = '';
  let all = '';
  proc.stdout?.on('data', (d: Buffer) => ((out += d), (all += d)));
  proc.stderr?.on('data', (d: Buffer) => ((err += d), (all += d)));
  const pid = proc.pid ?? -1;
  const target = opts.group ? -pid : pid;
  const known = new Set<number>();
  let done = false;
  const unregister = onAbort(() => {
    killQuietly(target);
    for (const c of known) killQuietly(c);
  });
  const exited = new Promise<Exit>((resolve) => {
    const finish = (v: Exit) => {
      done = true;
      unregister();
      resolve(v);
    };
    proc.once('exit', (code, sig) => finish(code ?? sig ?? -1));
    proc.once('error', () => {
      // spawn failed (ENOENT …): no 'exit' follows
      if (proc.pid === undefined) finish(-1);
    });
  });
  const signal = (sig: NodeJS.Signals) => {
    if (done) return;
    try {
      process.kill(target, sig);
    } catch {
      // gone meanwhile
    }
  };
  const remember = () => {
    if (!done) for (const c of childPidsOf(pid)) known.add(c);
  };
  const killChildren = () => {
    for (const c of known) if (isAlive(c)) killQuietly(c);
    if (opts.group) killQuietly(-pid); // whatever is left of the group
  };
  const self: Spawned = {
    proc,
    pid,
    output: () => all,
    stdout: () => out,
    stderr: () => err,
    exited,
    isDone: () => done,
    remember,
    children: () => [...known],
    async stop(sig: NodeJS.Signals = 'SIGTERM', deadlineMs = 20_000) {
      remember();
      signal(sig);
      const timer = setTimeout(() => {
        remember();
        signal('SIGKILL');
        killChildren();
      }, deadlineMs);
      const code = await exited;
      clearTimeout(timer);
      if (opts.reapChildren) killChildren();
      return code;
    },
    async kill9(timeoutMs = 10_000) {
      remember();
      signal('SIGKILL');
      killChildren();
      await exited;
      if (!(await waitGone([...known], timeoutMs))) throw new Error(`children of ${pid} still alive ${timeoutMs} ms after SIGKILL: ${[...known].filter(isAlive).join(', ')}`);
    },
  };
  return self;
}

/** The outcome of a process run to its end. */
export interface Finished {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `command args` to its end; past `timeoutMs` it is SIGKILLed and the promise rejects with its output. */
export async function runToEnd(command: string, args: readonly string[], opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<Finished> {
  const started = Date.now();
  const p = spawnProcess(command, args, { ...opts, output: 'pipe' });
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const ac = new AbortController();
  const result = await Promise.race([p.exited, sleep(timeoutMs, 'timeout' as const, { signal: ac.signal }).catch(() => 'aborted' as const)]);
  ac.abort();
  if (result === 'timeout') {
    await p.kill9(2_000);
    throw new Error(`${command} ${args.join(' ')} did not finish within ${timeoutMs} ms\nstdout: ${p.stdout().slice(-3000)}\nstderr: ${p.stderr().slice(-3000)}`);
  }
  const signal = p.proc.signalCode;
  return { code: p.proc.exitCode ?? (signal === null ? -1 : 128), signal, stdout: p.stdout(), stderr: p.stderr(), ms: Date.now() - started };
}

/** Resolves once every pid is gone (zombies count as gone); false when some are still alive at the deadline. */
export async function waitGone(pids: readonly number[], timeoutMs = 10_000, everyMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (pids.every((pid) => !isAlive(pid))) return true;
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
}

/** SIGKILLs a pid and its direct children (a worker and its pool), ignoring the ones already gone. */
export function killTree(pid: number): void {
  if (!isAlive(pid)) return;
  const children = childPidsOf(pid);
  for (const p of [pid, ...children]) killQuietly(p);
}
