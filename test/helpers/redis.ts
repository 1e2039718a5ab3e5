// A private redis-server per test file (or bench run): loopback port, no persistence, temp dir; stop by pid.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './rabbitmq.js';
import { killQuietly, onAbort, rmQuietly, waitGoneSync } from './reaper.js';

const SERVER = '/usr/bin/redis-server';

/** Why Redis tests cannot run here, or null when they can. */
export function redisMissing(): string | null {
  return existsSync(SERVER) ? null : `Redis is not installed (${SERVER} missing): apt-get install -y redis-server`;
}

/** The `skip` value for a Redis suite: false when it can run, a reason locally, a loud failure when `CI` is set. */
export function redisSkip(): string | false {
  const missing = redisMissing();
  if (!missing) return false;
  if (process.env.CI) throw new Error(`CI=${process.env.CI} but ${missing}`);
  return missing;
}

/** A running private server. */
export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** pid of the current server process (a new one after start()). */
  readonly pid: number;
  readonly dir: string;
  /** Stops the server (TERM, then KILL after 5 s), keeping its dir (and an AOF there). */
  stop(): Promise<void>;
  /** Starts it again on the same port and dir, after stop(); resolves once it answers PING. */
  start(): Promise<void>;
  /** Stops the server and deletes its temp dir. Idempotent. */
  dispose(): Promise<void>;
}

/** One PING over a fresh connection; true on +PONG within `timeoutMs`. */
function ping(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    let got = '';
    const done = (ok: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once('error', () => done(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      got += d.toString();
      if (got.includes('\r\n')) done(got.startsWith('+PONG'));
    });
  });
}

/** One redis-server process: its pid, whether it exited, and a promise of its exit. */
interface Proc {
  pid: number;
  gone: () => boolean;
  exited: Promise<void>;
}

function spawnServer(port: number, dir: string, extra: string[]): Proc {
  const out = openSync(join(dir, 'server.out'), 'a');
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--protected-mode', 'yes', ...extra];
  const child: ChildProcess = spawn(SERVER, args, { cwd: dir, stdio: ['ignore', out, out] });
  closeSync(out);
  let gone = child.pid === undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      gone = true;
      resolve();
    });
    child.once('error', () => {
      gone = true;
      resolve();
    });
  });
  return { pid: child.pid ?? -1, gone: () => gone, exited };
}

async function stopServer(p: Proc): Promise<void> {
  if (p.gone()) return;
  try {
    process.kill(p.pid, 'SIGTERM');
  } catch {
    // gone meanwhile
  }
  const timer = setTimeout(() => killQuietly(p.pid), 5_000);
  await p.exited;
  clearTimeout(timer);
}

/**
 * Starts `redis-server` on a free (or the given) loopback port with persistence off (`args` may turn an AOF
 * on: `--appendonly yes`); resolves once it answers PING.
 */
export async function startRedis(opts: { startTimeoutMs?: number; args?: string[]; /** Reuse a port (a restart); a free one by default. */ port?: number } = {}): Promise<RedisServer> {
  const missing = redisMissing();
  if (missing) throw new Error(missing);
  const dir = mkdtempSync(join(tmpdir(), 'asynx-redis-'));
  const port = opts.port ?? (await freePort());
  const timeoutMs = opts.startTimeoutMs ?? 15_000;
  let proc = spawnServer(port, dir, opts.args ?? []);
  const unregister = onAbort(() => {
    killQuietly(proc.pid);
    waitGoneSync([proc.pid], 2_000);
    rmQuietly(dir);
  });
  const answered = async (): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!proc.gone() && !(await ping(port))) {
      if (Date.now() > deadline) break;
      await sleep(50);
    }
    if (proc.gone() || !(await ping(port))) {
      let tail = '(no output)';
      try {
        tail = readFileSync(join(dir, 'server.out'), 'utf8').slice(-2000);
      } catch {
        // no log
      }
      throw new Error(`redis-server on 127.0.0.1:${port} did not answer PING${proc.gone() ? ' (it exited)' : ` within ${timeoutMs} ms`}:\n${tail}`);
    }
  };
  let disposed: Promise<void> | null = null;
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    get pid() {
      return proc.pid;
    },
    dir,
    stop: () => stopServer(proc),
    async start() {
      if (!proc.gone()) return;
      proc = spawnServer(port, dir, opts.args ?? []);
      await answered();
    },
    dispose() {
      disposed ??= (async () => {
        await stopServer(proc);
        rmQuietly(dir);
        unregister();
      })();
      return disposed;
    },
  };
  try {
    await answered();
  } catch (err) {
    await server.dispose();
    throw err;
  }
  return server;
}
