// Test harness for `asynx multi`: a temp host project, the real CLI as a child process, and cleanup by pid.

import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Asynx } from '../../src/index.js';
import { readPidfile } from '../../src/process/pidfile.js';
import { isAlive, killTree, runToEnd, waitGone } from '../helpers/process.js';

export const BIN = fileURLToPath(new URL('../../bin/asynx', import.meta.url));
export const MULTI_APP = fileURLToPath(new URL('../fixtures/multi-app.mjs', import.meta.url));

/** Minimal view of node:test's context that the harness needs. */
interface Ctx {
  after(fn: () => void | Promise<void>): void;
}

/** A temp host project: cwd for multi, its own SQLite broker, cleaned up (processes first) after the test. */
export interface Project {
  dir: string;
  env: NodeJS.ProcessEnv;
  brokerUrl: string;
  runDir: string;
  logDir: string;
  /** Runs `asynx multi <args>` as a real process in the project; bounded. */
  multi(args: string[], opts?: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string }): Promise<CliRun>;
  /** A client app on the project's broker (closed after the test). */
  client(): Asynx;
  /** Pids of every node whose pidfile is in `runDir` and alive. */
  livePids(): number[];
  /** Registers an extra pid (and its children) to kill after the test, e.g. a `sleep`. */
  track(pid: number): void;
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `asynx <args>` to completion (SIGKILL by pid at the deadline). */
export async function runAsynx(args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<CliRun> {
  const { code, stdout, stderr, ms } = await runToEnd(process.execPath, [BIN, ...args], { cwd, env, timeoutMs });
  return { code, stdout, stderr, ms };
}

function pidsInRunDir(runDir: string): number[] {
  if (!existsSync(runDir)) return [];
  return readdirSync(runDir)
    .filter((f) => f.endsWith('.pid'))
    .map((f) => readPidfile(join(runDir, f))?.pid ?? 0)
    .filter((pid) => pid > 0 && isAlive(pid));
}

/** Creates a project; after the test: KILL every node it started (main + pool, by pid), then remove the dir. */
export function project(t: Ctx): Project {
  const dir = mkdtempSync(join(tmpdir(), 'asynx-multi-'));
  const brokerUrl = `sqlite://${join(dir, 'broker.db')}`;
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ASYNX_BROKER_URL: brokerUrl, ASYNX_CONFIG: '' };
  const runDir = join(dir, '.asynx', 'run');
  const clients: Asynx[] = [];
  const tracked = new Set<number>();
  const seen = new Set<number>();
  const remember = (): void => {
    for (const pid of pidsInRunDir(runDir)) seen.add(pid);
  };
  t.after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    remember();
    for (const pid of [...seen, ...tracked]) killTree(pid);
    await waitGone([...seen, ...tracked], 5_000);
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir, env, brokerUrl, runDir, logDir: join(dir, '.asynx', 'log'),
    async multi(args, opts = {}) {
      const run = await runAsynx(['multi', ...args], opts.cwd ?? dir, { ...env, ...opts.env }, opts.timeoutMs);
      remember();
      return run;
    },
    client() {
      const app = new Asynx({ brokerUrl, configFile: false });
      clients.push(app);
      return app;
    },
    livePids: () => pidsInRunDir(runDir),
    track: (pid) => tracked.add(pid),
  };
}
