// A private RabbitMQ node per test file: own node name, loopback ports, epmd, data dir; stop/start/dispose.

import { spawn, spawnSync, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import amqplib from 'amqplib';
import { killQuietly, onAbort, rmQuietly, waitGoneSync } from './reaper.js';

const SBIN = '/usr/lib/rabbitmq/bin';
const SERVER = `${SBIN}/rabbitmq-server`;
const CTL = `${SBIN}/rabbitmqctl`;

/** Why RabbitMQ tests cannot run here, or null when they can. */
export function rabbitmqMissing(): string | null {
  if (!existsSync(SERVER) || !existsSync(CTL)) return `RabbitMQ is not installed (${SERVER} missing): apt-get install -y rabbitmq-server`;
  if (process.getuid?.() !== 0) return 'RabbitMQ tests start the server directly and need root';
  return null;
}

/**
 * The `skip` value for a RabbitMQ suite: false when it can run, a reason locally, and a
 * loud failure (thrown at load) when `CI` is set, since CI must run these tests.
 */
export function rabbitSkip(): string | false {
  const missing = rabbitmqMissing();
  if (!missing) return false;
  if (process.env.CI) throw new Error(`CI=${process.env.CI} but ${missing}`);
  return missing;
}

/**
 * Ports {@link freePort} picks from: below Linux's ephemeral range (32768–60999 here), where every outgoing
 * connection gets its local port. A port taken from that range (listen(0)) can be handed to some client
 * socket in the seconds before the server binds it: a CI run lost a RabbitMQ start to
 * `dist_port_already_used,39525,not_erlang`.
 */
const PICK_LOW = 20_000;
const PICK_HIGH = 32_000;
/** Ports already handed out by this process: never twice (a broker's three ports, or two brokers). */
const handedOut = new Set<number>();

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A free loopback TCP port outside the ephemeral range (never 25672), not handed out before by this process. */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 500; i++) {
    const port = PICK_LOW + Math.floor(Math.random() * (PICK_HIGH - PICK_LOW));
    if (port === 25672 || handedOut.has(port)) continue;
    if (await canListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`No free loopback port between ${PICK_LOW} and ${PICK_HIGH} after 500 tries`);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await sleep(stepMs);
  }
  return cond();
}

/** True if `p` settled within `ms`; the timer never outlives the race. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  const ac = new AbortController();
  try {
    return await Promise.race([p.then(() => true), sleep(ms, false, { signal: ac.signal })]);
  } finally {
    ac.abort();
  }
}

/** A running (or stopped) private node. */
export interface RabbitNode {
  /** `amqp://guest:guest@127.0.0.1:<port>/` */
  readonly url: string;
  readonly port: number;
  readonly nodeName: string;
  readonly dir: string;
  /** Runs `rabbitmqctl -n <node> <args>` (bounded), resolving to stdout. */
  ctl(args: string[], timeoutMs?: number): Promise<string>;
  /** Stops the node (`rabbitmqctl stop`), keeping its data. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data dir; resolves once AMQP answers. */
  start(): Promise<void>;
  /** Stops it, stops its epmd and deletes the temp dir. Idempotent. */
  dispose(): Promise<void>;
}

/** Starts a private node (bounded wait, ~5-10 s). */
export async function startRabbit(opts: { startTimeoutMs?: number; config?: string; advanced?: string } = {}): Promise<RabbitNode> {
  const missing = rabbitmqMissing();
  if (missing) throw new Error(missing);
  const dir = mkdtempSync(join(tmpdir(), 'asynx-rmq-'));
  const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  const nodeName = `asynx-test-${process.pid}-${port}@localhost`;
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '');
  writeFileSync(join(dir, 'rabbitmq.conf'), `${opts.config ?? ''}\n`);
  // RabbitMQ 3.10 retries an unconfirmed at-least-once dead-letter (a delay-ladder step) only after
  // dead_letter_worker_publisher_confirm_timeout, 180 s by default: a step that expired while the broker was
  // stopping sat out a whole test (20 countdowns missing after 150 s in the broker-restart fault test).
  writeFileSync(join(dir, 'advanced.config'), `${opts.advanced ?? '[{rabbit, [{dead_letter_worker_publisher_confirm_timeout, 5000}]}].'}\n`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: dir,
    RABBITMQ_NODENAME: nodeName,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_PID_FILE: join(dir, 'rabbitmq.pid'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };
  const url = `amqp://guest:guest@127.0.0.1:${port}/`;
  const startTimeoutMs = opts.startTimeoutMs ?? 60_000;
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let disposed: Promise<void> | null = null;
  const live = new Set<number>();
  // If the test process dies before dispose(): kill the node, its epmd, and remove the temp dir.
  const unregister = onAbort(() => {
    // Fast steps first: a test runner may SIGKILL us soon after its own SIGTERM.
    for (const pid of live) {
      killQuietly(-pid); // the server script leads its own process group (beam included)
      killQuietly(pid);
    }
    spawnSync('epmd', ['-port', String(epmdPort), '-kill'], { env, timeout: 3_000, stdio: 'ignore' });
    const pid = beamPid();
    waitGoneSync([...live, ...(pid ? [pid] : [])], 2_000);
    rmQuietly(dir);
  });

  const ctl = (args: string[], timeoutMs = 30_000) =>
    new Promise<string>((resolve, reject) => {
      execFile(CTL, ['-n', nodeName, ...args], { env, timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
        if (err) reject(new Error(`rabbitmqctl ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        else resolve(stdout);
      });
    });

  const beamPid = (): number | null => {
    try {
      const n = Number(readFileSync(join(dir, 'rabbitmq.pid'), 'utf8').trim());
      return Number.isInteger(n) && n > 0 ? n : null;
    } catch {
      return null;
    }
  };

  const logTail = (): string => {
    try {
      return readFileSync(join(dir, 'server.out'), 'utf8').slice(-3000);
    } catch {
      return '(no output)';
    }
  };

  const amqpUp = async (): Promise<boolean> => {
    try {
      const c = await amqplib.connect(url, { timeout: 1000 });
      await c.close();
      return true;
    } catch {
      return false;
    }
  };

  const start = async (): Promise<void> => {
    if (child && child.exitCode === null && child.signalCode === null) return;
    rmSync(join(dir, 'rabbitmq.pid'), { force: true });
    const out = openSync(join(dir, 'server.out'), 'a');
    const c = spawn(SERVER, [], { env, stdio: ['ignore', out, out], detached: true });
    closeSync(out);
    child = c;
    if (c.pid) live.add(c.pid);
    let gone = false;
    exited = new Promise<void>((resolve) => {
      c.once('exit', () => {
        gone = true;
        if (c.pid) live.delete(c.pid);
        resolve();
      });
    });
    const ok = await waitFor(async () => gone || (await amqpUp()), startTimeoutMs, 200);
    const pid = beamPid();
    if (pid) live.add(pid);
    if (gone || !ok) {
      await stop().catch(() => undefined);
      throw new Error(`RabbitMQ node ${nodeName} did not come up within ${startTimeoutMs} ms${gone ? ' (server exited)' : ''}:\n${logTail()}`);
    }
  };

  const stop = async (): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const pid = beamPid();
    await ctl(['stop'], 30_000).catch(() => undefined);
    if (!(await settlesWithin(exited, 30_000))) {
      for (const p of [pid, c.pid]) if (p && pidAlive(p)) process.kill(p, 'SIGKILL');
      await settlesWithin(exited, 5_000);
    }
    if (pid) {
      await waitFor(() => !pidAlive(pid), 10_000);
      live.delete(pid);
    }
  };

  const dispose = (): Promise<void> => {
    disposed ??= (async () => {
      try {
        await stop();
      } finally {
        // Our private epmd (started by the node on ERL_EPMD_PORT) goes too.
        await new Promise<void>((resolve) => execFile('epmd', ['-port', String(epmdPort), '-kill'], { env, timeout: 5_000 }, () => resolve()));
        rmSync(dir, { recursive: true, force: true });
        unregister();
      }
    })();
    return disposed;
  };

  try {
    await start();
  } catch (err) {
    await dispose();
    throw err;
  }
  return { url, port, nodeName, dir, ctl, stop, start, dispose };
}
