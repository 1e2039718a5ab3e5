// Starts a real `asynx worker` process for a test and stops it by pid, with bounded waits.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { waitFor } from './tmp.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/asynx', import.meta.url));
export const FIXTURE_APP = fileURLToPath(new URL('../fixtures/app.mjs', import.meta.url));

// If the test process ends early (a timeout, a crash), take its workers with it.
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

export interface RunningWorker {
  proc: ChildProcess;
  pid: number;
  output: () => string;
  /** Sends a signal and waits (bounded) for exit; resolves to the exit code (or signal name). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | string>;
  exited: Promise<number | string>;
}

/** Runs `asynx <args>` to completion with a bounded timeout. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000, cwd = ROOT): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`asynx ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** Starts a foreground worker and waits for its `ready.` line. */
export async function startWorker(opts: { brokerUrl: string; args?: string[]; app?: string; env?: NodeJS.ProcessEnv; cwd?: string; detached?: boolean; logfile?: string }): Promise<RunningWorker> {
  const args = ['worker', '-A', opts.app ?? FIXTURE_APP, '-l', 'info', ...(opts.args ?? [])];
  const proc = spawn(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, NO_COLOR: '1', ASYNX_BROKER_URL: opts.brokerUrl, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  live.add(proc);
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, sig) => {
    live.delete(proc);
    resolve(code ?? sig ?? -1);
  }));
  const output = () => out + (opts.logfile && existsSync(opts.logfile) ? readFileSync(opts.logfile, 'utf8') : '');
  let done = false;
  void exited.then(() => (done = true));
  try {
    await waitFor('worker ready', () => done || / ready\.$/m.test(output()), 20_000);
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
  if (done) throw new Error(`worker exited during start:\n${output()}`);
  return {
    proc,
    pid: proc.pid!,
    output,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 20_000) {
      if (!done) proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}
