// Last-resort cleanup for helper-started processes: runs on exit and on SIGTERM/SIGINT/SIGHUP, then re-raises.

import { rmSync } from 'node:fs';
import { isAlive } from '../../src/process/proc.js';

type Cleanup = () => void;

const cleanups = new Map<number, Cleanup>();
let nextId = 0;
let installed = false;

function runAll(): void {
  for (const fn of [...cleanups.values()].reverse()) {
    try {
      fn();
    } catch {
      // best effort: keep going
    }
  }
  cleanups.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.once('exit', runAll);
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(sig, () => {
      runAll();
      // Default action now that our handler is gone: the exit status tells the truth.
      process.kill(process.pid, sig);
    });
  }
}

/**
 * Registers a synchronous cleanup that runs if the test process ends (or is signalled) before
 * the helper's own dispose ran; returns the function that unregisters it.
 */
export function onAbort(fn: Cleanup): () => void {
  install();
  const id = ++nextId;
  cleanups.set(id, fn);
  return () => {
    cleanups.delete(id);
  };
}

/** SIGKILLs a pid (or, negative, a process group), ignoring "no such process". */
export function killQuietly(pid: number | null | undefined): void {
  if (!pid) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

/** Blocks (synchronously: usable in exit handlers) until every pid is gone, up to `timeoutMs`. */
export function waitGoneSync(pids: number[], timeoutMs = 3_000): void {
  const deadline = Date.now() + timeoutMs;
  const cell = new Int32Array(new SharedArrayBuffer(4));
  // isAlive counts a zombie (it holds no files any more) as gone.
  while (pids.some(isAlive) && Date.now() < deadline) Atomics.wait(cell, 0, 0, 50);
}

/** Removes a directory tree, ignoring errors. */
export function rmQuietly(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // best effort
  }
}
