// A temp host project for running documented shell examples as written: tasks.mjs, this checkout's bin/ first on PATH.

import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readPidfile } from '../../src/process/pidfile.js';
import { isAlive, killTree, runToEnd, spawnProcess, waitGone, type Finished, type Spawned } from './process.js';
import { ROOT } from './worker.js';

const TASKS = fileURLToPath(new URL('../fixtures/readme-tasks.mjs', import.meta.url));
export const LINE_TIMEOUT_MS = 60_000;

/** Asserts exit 0, showing the output otherwise. */
export function ok(r: Finished, what: string): void {
  assert.equal(r.code, 0, `${what} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

/**
 * A fresh project dir: the README's tasks.mjs, node_modules/asynx → this checkout, no ASYNX_* in the environment
 * (so the default ./.asynx/asynx.db broker). `textOf` maps a documented command to the text bash runs.
 */
export function exampleProject(textOf: (command: string, subst?: Record<string, string>) => string) {
  const dir = mkdtempSync(join(tmpdir(), 'asynx-examples-'));
  copyFileSync(TASKS, join(dir, 'tasks.mjs'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(ROOT, join(dir, 'node_modules', 'asynx'), 'dir');
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ASYNX_')));
  env.PATH = `${join(ROOT, 'bin')}:${process.env.PATH ?? ''}`;
  env.NO_COLOR = '1';
  const runDir = join(dir, '.asynx', 'run');
  const seen = new Set<number>();
  const spawned: Spawned[] = [];
  const nodePids = (): Map<string, number> => {
    const m = new Map<string, number>();
    if (!existsSync(runDir)) return m;
    for (const f of readdirSync(runDir).filter((n) => n.endsWith('.pid'))) {
      const pid = readPidfile(join(runDir, f))?.pid ?? 0;
      if (pid > 0 && isAlive(pid)) (m.set(f.slice(0, -4), pid), seen.add(pid));
    }
    return m;
  };
  /** The README text of `command` (with `subst` applied) through `bash -c`, bounded. */
  const sh = async (command: string, subst: Record<string, string> = {}, timeoutMs = LINE_TIMEOUT_MS): Promise<Finished> => {
    const text = textOf(command, subst);
    const r = await runToEnd('bash', ['-c', text], { cwd: dir, env, timeoutMs });
    nodePids();
    return r;
  };
  /** A set-up command that is not itself a documented example, through `bash -c`, bounded. */
  const setup = async (text: string, timeoutMs = LINE_TIMEOUT_MS): Promise<Finished> => {
    const r = await runToEnd('bash', ['-c', text], { cwd: dir, env, timeoutMs });
    nodePids();
    return r;
  };
  /** A long-running README line (a foreground worker) in its own process group. */
  const background = (command: string): Spawned => {
    const p = spawnProcess('bash', ['-c', textOf(command)], { cwd: dir, env, group: true, reapChildren: true });
    spawned.push(p);
    return p;
  };
  const cleanup = async (): Promise<void> => {
    nodePids();
    for (const p of spawned) if (!p.isDone()) await p.kill9().catch(() => undefined);
    for (const pid of seen) killTree(pid);
    await waitGone([...seen], 10_000);
    rmSync(dir, { recursive: true, force: true });
  };
  return { dir, env, sh, setup, background, nodePids, seen, cleanup };
}
