// Starts a real `asynx worker` process for a test and stops it by pid, with bounded waits.

import { type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runToEnd, spawnProcess } from './process.js';
import { waitFor } from './tmp.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/asynx', import.meta.url));
export const FIXTURE_APP = fileURLToPath(new URL('../fixtures/app.mjs', import.meta.url));

export interface RunningWorker {
  proc: ChildProcess;
  pid: number;
  output: () => string;
  /** Sends a signal and waits (bounded) for exit; resolves to the exit code (or signal name). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | string>;
  exited: Promise<number | string>;
}

/** Runs `asynx <args>` to completion with a bounded timeout. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000, cwd = ROOT): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await runToEnd(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1', ...env }, timeoutMs });
  return { code: r.signal === null ? r.code : -1, stdout: r.stdout, stderr: r.stderr };
}

/** Starts a foreground worker and waits for its `ready.` line. */
export async function startWorker(opts: { brokerUrl: string; args?: string[]; app?: string; env?: NodeJS.ProcessEnv; cwd?: string; detached?: boolean; logfile?: string }): Promise<RunningWorker> {
  const args = ['worker', '-A', opts.app ?? FIXTURE_APP, '-l', 'info', ...(opts.args ?? [])];
  const p = spawnProcess(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, NO_COLOR: '1', ASYNX_BROKER_URL: opts.brokerUrl, ...opts.env },
    detached: opts.detached ?? false,
  });
  const output = () => p.output() + (opts.logfile && existsSync(opts.logfile) ? readFileSync(opts.logfile, 'utf8') : '');
  try {
    await waitFor('worker ready', () => p.isDone() || / ready\.$/m.test(output()), 20_000);
  } catch (err) {
    await p.kill9().catch(() => undefined);
    throw err;
  }
  if (p.isDone()) throw new Error(`worker exited during start:\n${output()}`);
  return {
    proc: p.proc,
    pid: p.pid,
    output,
    exited: p.exited,
    stop: (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 20_000) => p.stop(signal, timeoutMs),
  };
}
