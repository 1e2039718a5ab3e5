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
  readonly pid: number;
  readonly dir: string;
  /** Stops the server (TERM, then KILL after 5 s) and deletes its temp dir. Idempotent. */
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

/** Starts `redis-server` on a free (or the given) loopback port with persistence off; resolves once it answers PING. */
export async function startRedis(opts: { startTimeoutMs?: number; args?: string[]; /** Reuse a port (a restart); a free one by default. */ port?: number } = {}): Promise<RedisServer> {
  const missing = redisMissing();
  if (missing) throw new Error(missing);
  const dir = mkdtempSync(join(tmpdir(), 'asynx-redis-'));
  const port = opts.port ?? (await freePort());
  const logPath = join(dir, 'server.out');
  const out = openSync(logPath, 'a');
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--protected-mode', 'yes', ...(opts.args ?? [])];
  const child: ChildProcess = spawn(SERVER, args, { cwd: dir, stdio: ['ignore', out, out] });
  closeSync(out);
  const pid = child.pid ?? -1;
  let gone = pid === -1;
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
  const unregister = onAbort(() => {
    killQuietly(pid);
    waitGoneSync([pid], 2_000);
    rmQuietly(dir);
  });
  let disposed: Promise<void> | null = null;
  const dispose = (): Promise<void> => {
    disposed ??= (async () => {
      if (!gone) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // gone meanwhile
        }
        const timer = setTimeout(() => killQuietly(pid), 5_000);
        await exited;
        clearTimeout(timer);
      }
      rmQuietly(dir);
      unregister();
    })();
    return disposed;
  };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 15_000);
  while (!gone && !(await ping(port))) {
    if (Date.now() > deadline) break;
    await sleep(50);
  }
  if (gone || !(await ping(port))) {
    let tail = '(no output)';
    try {
      tail = readFileSync(logPath, 'utf8').slice(-2000);
    } catch {
      // no log
    }
    await dispose();
    throw new Error(`redis-server on 127.0.0.1:${port} did not answer PING${gone ? ' (it exited)' : ` within ${opts.startTimeoutMs ?? 15_000} ms`}:\n${tail}`);
  }
  return { url: `redis://127.0.0.1:${port}`, host: '127.0.0.1', port, pid, dir, dispose };
}
