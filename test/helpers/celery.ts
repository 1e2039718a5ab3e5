// Python Celery for interop tests: locate `/usr/bin/python3 -m celery`, run a worker or a client script, bounded.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { runToEnd, spawnProcess } from './process.js';

/** Debian's python3-celery lives in the system Python, not whatever `python3` is first on PATH. */
export const PYTHON = '/usr/bin/python3';
/** Directory of the Celery app module `capp` and the client script. */
export const PY_FIXTURES = fileURLToPath(new URL('../fixtures/py/', import.meta.url));

let cached: string | null | undefined;

/** Why Python Celery cannot be used here, or null. */
export function celeryMissing(): string | null {
  if (cached !== undefined) return cached;
  const r = spawnSync(PYTHON, ['-c', 'import celery, kombu; print(celery.__version__)'], { encoding: 'utf8', timeout: 20_000 });
  cached = r.status === 0 ? null : `Python Celery is not available (${PYTHON} -c 'import celery' failed: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}): apt-get install -y python3-celery`;
  return cached;
}

/** Celery's version, e.g. `5.2.6`. */
export function celeryVersion(): string {
  return spawnSync(PYTHON, ['-c', 'import celery; print(celery.__version__)'], { encoding: 'utf8', timeout: 20_000 }).stdout.trim();
}

/** The `skip` value for a suite needing Celery: a reason locally, a thrown error when CI is set. */
export function celerySkip(): string | false {
  const missing = celeryMissing();
  if (!missing) return false;
  if (process.env.CI) throw new Error(`CI=${process.env.CI} but ${missing}`);
  return missing;
}

function pyEnv(brokerUrl: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, PYTHONPATH: PY_FIXTURES, BROKER_URL: brokerUrl, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1', ...extra };
}

/** A running Python Celery worker. */
export interface CeleryWorker {
  readonly nodeName: string;
  /** Everything it logged so far. */
  output(): string;
  /** Warm shutdown (TERM to its process group), then KILL after the grace. Idempotent. */
  stop(): Promise<void>;
}

/** Starts `celery -A capp worker` (or `opts.app`) and waits (bounded) for its "ready" line. */
export async function startCeleryWorker(opts: { brokerUrl: string; app?: string; nodeName?: string; queues?: string[]; concurrency?: number; readyTimeoutMs?: number; extraArgs?: string[]; env?: NodeJS.ProcessEnv }): Promise<CeleryWorker> {
  const nodeName = opts.nodeName ?? `py-${process.pid}@localhost`;
  const args = ['-m', 'celery', '-A', opts.app ?? 'capp', 'worker', '-l', 'info', '-n', nodeName, '-c', String(opts.concurrency ?? 2), '-P', 'prefork', '--without-gossip', '--without-mingle', '--without-heartbeat', ...(opts.queues ? ['-Q', opts.queues.join(',')] : []), ...(opts.extraArgs ?? [])];
  // Its own process group: a stop reaches the prefork children too.
  const child = spawnProcess(PYTHON, args, { cwd: PY_FIXTURES, env: pyEnv(opts.brokerUrl, opts.env), group: true, reapChildren: true });
  let stopping: Promise<void> | null = null;
  const worker: CeleryWorker = {
    nodeName,
    output: child.output,
    stop: () => (stopping ??= child.stop('SIGTERM', 10_000).then(() => undefined)),
  };
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
  while (!/ ready\./.test(child.output())) {
    if (child.isDone()) throw new Error(`Celery worker exited before it was ready:\n${child.output().slice(-3000)}`);
    if (Date.now() > deadline) {
      await worker.stop();
      throw new Error(`Celery worker not ready within ${opts.readyTimeoutMs ?? 30_000} ms:\n${child.output().slice(-3000)}`);
    }
    await sleep(100);
  }
  return worker;
}

/** Runs a Python command (argv after `/usr/bin/python3`) with the fixtures on PYTHONPATH; bounded. */
export async function runPython(args: string[], opts: { brokerUrl: string; timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await runToEnd(PYTHON, args, { cwd: PY_FIXTURES, env: pyEnv(opts.brokerUrl, opts.env), group: true, timeoutMs: opts.timeoutMs ?? 60_000 });
  return { code: r.signal === null ? r.code : null, stdout: r.stdout, stderr: r.stderr };
}

/** One call for the Python client script. */
export interface PyCall {
  task: string;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  options?: Record<string, unknown>;
}

/** What the client script reports per call. */
export interface PyOutcome {
  ok?: unknown;
  error?: string;
  message?: string;
  id: string;
  state: string;
  elapsed: number;
}

/** Sends calls from a Python Celery client and reads their results back in Python. */
export async function pythonClient(brokerUrl: string, calls: PyCall[], opts: { resultTimeoutS?: number; timeoutMs?: number } = {}): Promise<PyOutcome[]> {
  const spec = JSON.stringify({ calls, timeout: opts.resultTimeoutS ?? 30 });
  const r = await runPython(['client.py', spec], { brokerUrl, timeoutMs: opts.timeoutMs ?? 90_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.code !== 0 || !line.startsWith('[')) throw new Error(`Python client failed (exit ${r.code}):\n${r.stderr.slice(-3000)}`);
  return JSON.parse(line) as PyOutcome[];
}
