// A private redis-server per test file (or bench run): loopback port, no persistence, temp dir; stop by pid.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
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

/** Name of the config file written into a server's dir when `startRedis({ conf })` is given one. */
const CONF = 'redis.conf';

function spawnServer(port: number, dir: string, extra: string[], conf: boolean): Proc {
  const out = openSync(join(dir, 'server.out'), 'a');
  // A config file must come first on the command line (a sentinel rewrites its own, so it lives in the dir).
  const args = [...(conf ? [join(dir, CONF)] : []), '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--protected-mode', 'yes', ...extra];
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
export async function startRedis(
  opts: {
    startTimeoutMs?: number;
    args?: string[];
    /** Reuse a port (a restart); a free one by default. */
    port?: number;
    /** Text of a config file, written into the server's dir and passed first (a sentinel's: with `args: ['--sentinel']`). */
    conf?: string;
  } = {},
): Promise<RedisServer> {
  const missing = redisMissing();
  if (missing) throw new Error(missing);
  const dir = mkdtempSync(join(tmpdir(), 'asynx-redis-'));
  const port = opts.port ?? (await freePort());
  const timeoutMs = opts.startTimeoutMs ?? 15_000;
  const conf = opts.conf !== undefined;
  if (conf) writeFileSync(join(dir, CONF), opts.conf!);
  let proc = spawnServer(port, dir, opts.args ?? [], conf);
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
      proc = spawnServer(port, dir, opts.args ?? [], conf);
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

/** A private master, one replica of it and one sentinel watching them (issue 13's failover tests). */
export interface RedisSentinelSet {
  /** The first master (a replica after a failover). */
  readonly master: RedisServer;
  /** The replica (the master after a failover). */
  readonly replica: RedisServer;
  readonly sentinel: RedisServer;
  /** The master group name the sentinel monitors. */
  readonly masterName: string;
  /** `redis+sentinel://127.0.0.1:<sentinel port>/<db>?master_name=<name>` */
  url(db?: number): string;
  /** The port of the master the sentinel names now. */
  masterPort(): Promise<number>;
  /**
   * `SENTINEL FAILOVER <name>`, then waits (bounded) until the sentinel names the other server as master and
   * it answers ROLE as one; resolves to the old and new master ports. The old master still takes writes
   * until the sentinel makes it a replica (and drops its clients), about 10 s later: see waitReplica().
   */
  failover(timeoutMs?: number): Promise<{ from: number; to: number }>;
  /** Waits (bounded) until the server at `port` is a replica of `masterPort`. */
  waitReplica(port: number, masterPort: number, timeoutMs?: number): Promise<void>;
  /** The names of the connections open on the server at `port` (CLIENT LIST), unnamed ones left out. */
  clientNames(port: number): Promise<string[]>;
  /** Waits (bounded) until the sentinel names `port` as master and that server answers `ROLE` as master. */
  waitMaster(port: number, timeoutMs?: number): Promise<void>;
  /** Stops all three and deletes their dirs. Idempotent. */
  dispose(): Promise<void>;
}

/**
 * Starts a master, a replica (`--replicaof`) and a sentinel (`sentinel monitor <name> 127.0.0.1 <port> 1`,
 * quorum 1, short down-after and failover timeouts) on free loopback ports; resolves once the sentinel
 * knows the replica (a failover needs one to promote).
 */
export async function startRedisSentinel(opts: { masterName?: string; downAfterMs?: number; failoverTimeoutMs?: number } = {}): Promise<RedisSentinelSet> {
  const name = opts.masterName ?? 'm';
  const started: RedisServer[] = [];
  const dispose = async () => {
    for (const s of started.reverse()) await s.dispose();
  };
  try {
    const master = await startRedis();
    started.push(master);
    const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    started.push(replica);
    const conf = [
      `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
      `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1_000}`,
      `sentinel failover-timeout ${name} ${opts.failoverTimeoutMs ?? 5_000}`,
      `sentinel parallel-syncs ${name} 1`,
      '',
    ].join('\n');
    const sentinel = await startRedis({ conf, args: ['--sentinel'] });
    started.push(sentinel);
    const ask = async <T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> => {
      const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1_000 });
      r.on('error', () => undefined);
      try {
        await r.connect();
        return await fn(r);
      } finally {
        r.disconnect();
      }
    };
    const masterPort = async () => Number(((await ask(sentinel.port, (r) => r.call('SENTINEL', 'get-master-addr-by-name', name))) as [string, string])[1]);
    const waitMaster = async (port: number, timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      for (;;) {
        try {
          const named = await masterPort();
          const role = ((await ask(port, (r) => r.call('ROLE'))) as [string])[0];
          if (named === port && role === 'master') return;
          last = `sentinel names ${named}, ${port} is ${role}`;
        } catch (err) {
          last = (err as Error).message;
        }
        if (Date.now() > deadline) throw new Error(`127.0.0.1:${port} did not become master of ${name} within ${timeoutMs} ms (${last})`);
        await sleep(100);
      }
    };
    // The sentinel learns of the replica from the master's INFO (every 10 s at first, 1 s once it is down):
    // until it does, SENTINEL FAILOVER answers "NOGOODSLAVE".
    const deadline = Date.now() + 30_000;
    for (;;) {
      const replicas = (await ask(sentinel.port, (r) => r.call('SENTINEL', 'replicas', name)).catch(() => [])) as string[][];
      const link = (await ask(replica.port, (r) => r.call('INFO', 'replication')).catch(() => '')) as string;
      if (replicas.some((f) => f.includes(String(replica.port))) && /master_link_status:up/.test(link)) break;
      if (Date.now() > deadline) throw new Error(`the sentinel on ${sentinel.port} did not see the replica ${replica.port} of ${master.port} within 30 s`);
      await sleep(200);
    }
    return {
      master,
      replica,
      sentinel,
      masterName: name,
      url: (db = 0) => `redis+sentinel://127.0.0.1:${sentinel.port}/${db}?master_name=${name}`,
      masterPort,
      waitMaster,
      async failover(timeoutMs = 20_000) {
        const from = await masterPort();
        const to = from === master.port ? replica.port : master.port;
        await ask(sentinel.port, (r) => r.call('SENTINEL', 'failover', name));
        await waitMaster(to, timeoutMs);
        return { from, to };
      },
      async waitReplica(port, of, timeoutMs = 30_000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const role = (await ask(port, (r) => r.call('ROLE')).catch(() => ['?'])) as string[];
          if (role[0] === 'slave' && Number(role[2]) === of) return;
          if (Date.now() > deadline) throw new Error(`127.0.0.1:${port} was not made a replica of ${of} within ${timeoutMs} ms (ROLE: ${role.join(' ')})`);
          await sleep(100);
        }
      },
      async clientNames(port) {
        const list = (await ask(port, (r) => r.call('CLIENT', 'LIST'))) as string;
        return [...list.matchAll(/ name=(\S+)/g)].map((m) => m[1]!);
      },
      dispose,
    };
  } catch (err) {
    await dispose();
    throw err;
  }
}
