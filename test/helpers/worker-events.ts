// Waits on what a worker reports (its status file beside the pidfile, or its typed events), with bounded waits.

import { spawn, type ChildProcess } from 'node:child_process';
import { readStatus, statusPathFor, type NodeStatus } from '../../src/process/status-file.js';
import type { Worker, WorkerEventMap, WorkerEventName } from '../../src/index.js';
import { waitFor } from './tmp.js';
import { BIN, FIXTURE_APP, ROOT } from './worker.js';

/** Resolves with the first status of the node at `pidfile` that satisfies `ok` (bounded). */
export function waitForStatus(pidfile: string, what: string, ok: (s: NodeStatus) => boolean, timeoutMs = 15_000): Promise<NodeStatus> {
  return waitFor(`status: ${what}`, () => {
    const s = readStatus(statusPathFor(pidfile));
    return s && ok(s) ? s : null;
  }, timeoutMs, 10);
}

/** Records every distinct state the status file shows until `stop()` is called. */
export function recordStates(pidfile: string): { states: string[]; stop: () => void } {
  const states: string[] = [];
  const timer = setInterval(() => {
    const s = readStatus(statusPathFor(pidfile));
    if (s && states[states.length - 1] !== s.state) states.push(s.state);
  }, 5);
  return { states, stop: () => clearInterval(timer) };
}

/** Resolves with the payload of the next `name` event that satisfies `ok` (bounded). */
export function nextEvent<K extends WorkerEventName>(worker: Worker, name: K, ok: (p: WorkerEventMap[K]) => boolean = () => true, timeoutMs = 15_000): Promise<WorkerEventMap[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`Timed out after ${timeoutMs} ms waiting for worker event ${name}`));
    }, timeoutMs);
    const off = worker.on(name, (p) => {
      if (!ok(p)) return;
      clearTimeout(timer);
      off();
      resolve(p);
    });
  });
}

/** A worker process spawned without waiting for `ready.` (to signal it while it starts). */
export interface SpawnedWorker {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<number | string>;
  kill: () => void;
}

/** Spawns `asynx worker -A <fixture> <args>`; the caller ends it (bounded) with `exited` or `kill`. */
export function spawnWorker(args: string[], env: NodeJS.ProcessEnv): SpawnedWorker {
  const proc = spawn(process.execPath, [BIN, 'worker', '-A', FIXTURE_APP, '-l', 'info', ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  let done = false;
  void exited.then(() => (done = true));
  const onExit = () => proc.kill('SIGKILL');
  process.on('exit', onExit);
  void exited.then(() => process.off('exit', onExit));
  return { proc, output: () => out, exited, kill: () => (done ? undefined : void proc.kill('SIGKILL')) };
}

/** Resolves to the exit status, or kills the process and rejects after `timeoutMs`. */
export async function exitWithin(w: SpawnedWorker, timeoutMs = 20_000): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      w.kill();
      reject(new Error(`worker did not exit within ${timeoutMs} ms:\n${w.output()}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([w.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
