// `asynx worker`: flags → options → Worker; --detach spawns the real worker in its own session.

import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { optionsFromPairs, type AsynxOptions } from '../config.js';
import { AsynxError, ExitCode, UsageError } from '../errors.js';
import { LogFile } from '../process/logfile.js';
import { expandWorkerTemplate, splitNodeName } from '../process/placeholders.js';
import { statusPathFor, writeStatus } from '../process/status-file.js';
import { installSignals } from '../worker/shutdown.js';
import { loadApp, resolveAppModule } from '../worker/load-app.js';
import { Logger, parseLogLevel } from '../worker/logger.js';
import { CHILD_OVERRIDES_ENV } from '../worker/pool/child-config.js';
import { POOL_KINDS, type PoolKind } from '../worker/pool/task-pool.js';
import { resolveWorkerOptions, type WorkerOptions } from '../worker/options.js';
import { Worker } from '../worker/worker.js';
import { wantColor } from './output.js';
import { badNumberFlag } from './cli-errors.js';
import { addConnectionOptions, applyConnection, connectionFromFlags } from './connection-options.js';
import { durationMs } from '../util/duration.js';
import type { Asynx } from '../app/app.js';
import { startBeat, type Beat } from '../beat/service.js';
import { beatStartLine, logBeatEvents, scheduleFilePath } from './beat.js';

/** Raw flags of `asynx worker`. */
export interface WorkerFlags {
  app?: string;
  hostname?: string;
  concurrency?: string;
  pool?: string;
  autoscale?: string;
  autoscaleKeepalive?: string;
  queues?: string;
  loglevel?: string;
  logfile?: string;
  pidfile?: string;
  detach?: boolean;
  broker?: string;
  resultBackend?: string;
  config?: string;
  maxTasksPerChild?: string;
  maxMemoryPerChild?: string;
  logfileMaxSize?: string;
  logfileKeep?: string;
  brokerRetries?: string;
  taskEvents?: boolean;
  heartbeatInterval?: string;
  loopLagWarn?: string;
  color?: boolean;
  beat?: boolean;
  scheduleFile?: string;
}

/** The `key=value` config overrides given after `--`; operands without `--` are a usage error. */
function overridePairs(cmd: Command, operands: string[]): string[] {
  const raw = (cmd.parent as (Command & { rawArgs?: string[] }) | null)?.rawArgs ?? [];
  const dash = raw.indexOf('--');
  const after = dash >= 0 ? raw.slice(dash + 1) : [];
  const stray = operands.filter((o) => !after.includes(o));
  if (stray.length) throw new UsageError('asynx.cli.strayArgument', `Unexpected argument '${stray[0]}': asynx worker takes config overrides only after --, e.g. asynx worker -A ./tasks.mjs -- prefetchMultiplier=2`, { value: stray[0] });
  return operands;
}

function posInt(value: string | undefined, flag: string, dflt: number | null): number | null {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw badNumberFlag(flag, value, 'a whole number ≥ 1');
  return n;
}

function nonNegInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw badNumberFlag(flag, value, 'a whole number ≥ 0');
  return n;
}

function poolFlag(value: string | undefined): PoolKind {
  const v = (value ?? 'prefork').trim();
  if ((POOL_KINDS as readonly string[]).includes(v)) return v as PoolKind;
  throw new UsageError('asynx.cli.badPool', `-P/--pool must be one of ${POOL_KINDS.join(', ')}, got '${v}'`, { option: '--pool', value: v });
}

/** `--autoscale=max,min` (Celery's order; `max` alone means min 0 as in Celery). */
function autoscaleFlag(value: string | undefined): { max: number; min: number } | null {
  if (value === undefined) return null;
  const m = /^\s*(\d+)\s*(?:,\s*(\d+)\s*)?$/.exec(value);
  const max = m ? Number(m[1]) : NaN;
  const min = m?.[2] !== undefined ? Number(m[2]) : 0;
  if (!m || max < 1 || min > max) throw new UsageError('asynx.cli.badAutoscale', `--autoscale must be max,min with whole numbers, max ≥ 1 and min ≤ max (e.g. --autoscale=10,3), got '${value}'`, { option: '--autoscale', value });
  return { max, min };
}

/** Registers `asynx worker` on the program. */
export function registerWorkerCommand(program: Command, run: (fn: () => Promise<number>) => void): void {
  addConnectionOptions(program.command('worker'))
    .description('Start a worker node: consume tasks from the broker and run them in a pool (-P: child processes by default)')
    .requiredOption('-A, --app <module>', 'module (path or package) whose default or `app` export is the Asynx app')
    .option('-n, --hostname <name>', 'node name, name@host (%h = host name, %n, %d)', 'asynx@%h')
    .option('-c, --concurrency <n>', 'tasks at once: child processes (prefork), threads, in-flight tasks (async) (default: 2; solo: 1)')
    .option('-P, --pool <kind>', 'prefork (child processes) | threads (worker_threads) | async (the event loop, for I/O-bound tasks) | solo', 'prefork')
    .option('--autoscale <max,min>', 'grow the pool up to max under backlog, shrink to min when idle (prefork, threads)')
    .option('--autoscale-keepalive <duration>', 'autoscale: shrink only this long after the pool last grew (Celery\'s AUTOSCALE_KEEPALIVE)', '30')
    .option('-Q, --queues <list>', 'comma-separated queues to consume (default: the app\'s default queue)')
    .option('-l, --loglevel <level>', 'debug | info | warning | error | critical', 'info')
    .option('-f, --logfile <path>', 'log file (%n %h %d %p %i %I expanded; %I gives each pool child its own file)')
    .option('--pidfile <path>', 'pidfile to write (removed on exit; a live one for this node refuses the start)')
    .option('--detach', 'run in the background in its own session (use with --logfile and --pidfile)')
    .option('--max-tasks-per-child <n>', 'replace a pool child after it ran this many tasks')
    .option('--max-memory-per-child <KiB>', 'replace a pool child whose RSS exceeds this after a task (threads: the thread\'s heap + buffers)')
    .option('--logfile-max-size <bytes>', 'rotate the log file at this size (0 = never)')
    .option('--logfile-keep <n>', 'rotated log files to keep', '5')
    .option('--broker-retries <n>', 'retries (with backoff) of an AMQP broker unreachable at start-up; 0 = exit 69 at once', '100')
    .option('-E, --task-events', 'send task-* Celery events (config workerSendTaskEvents); worker-* events are always sent')
    .option('--heartbeat-interval <duration>', 'seconds between worker-heartbeat events and status-file refreshes (Celery\'s default)', '2')
    .option('--loop-lag-warn <duration>', 'warn when the event loop was blocked this long (a CPU-bound task in -P async or solo); 0 = off', '1')
    .option('--no-color', 'no colour in log lines')
    .option('-B, --beat', 'also run the periodic-task scheduler in this process (any number of nodes may: one leads; see asynx beat --help)')
    .option('--schedule-file <path>', '-B on RabbitMQ: the last-run state file (default: beat-schedule.json beside --pidfile)')
    .usage('[options] [-- key=value ...]')
    .argument('[overrides...]', 'after --: asynx config overrides as key=value (camelCase or snake_case keys)')
    .addHelpText(
      'after',
      `
Signals (main process): TERM or INT warm shutdown, a second one cold · QUIT cold · HUP restart the pool
(when detached; same pid) · USR1 log running tasks · USR2 reopen the log file.

Config overrides after -- win over the config file and ASYNX_* (flags such as --broker win over them):
  any asynx option as key=value, camelCase or snake_case; pool children get them too.

Examples:
  $ asynx worker -A ./tasks.mjs -c 4
  $ asynx worker -A ./tasks.mjs -n w1@%h -Q emails,default -l debug
  $ asynx worker -A ./tasks.mjs -P async -c 200
  $ asynx worker -A ./tasks.mjs -P threads --autoscale=8,2
  $ asynx worker -A ./tasks.mjs -B
  $ asynx worker -A ./tasks.mjs --detach --pidfile ./.asynx/run/%n.pid --logfile ./.asynx/log/%n%I.log
  $ asynx worker -A ./tasks.mjs -b amqp://guest:guest@127.0.0.1:5672//
  $ asynx worker -A ./tasks.mjs -- prefetchMultiplier=1 acks_late=true visibility_timeout=60s

Exit codes: 0 stopped cleanly · 1 cold shutdown or failure · 64 bad usage · 69 broker unavailable ·
70 the app module failed to load · 73 a live pidfile for this node exists.`,
    )
    .action((operands: string[], flags: WorkerFlags, cmd: Command) => run(() => runWorker(flags, process.cwd(), overridePairs(cmd, operands))));
}

/** Runs the worker; resolves to the exit code. `pairs` are the `key=value` overrides given after `--`. */
export async function runWorker(flags: WorkerFlags, cwd = process.cwd(), pairs: string[] = []): Promise<number> {
  const level = parseLogLevel(flags.loglevel ?? 'info');
  const pool = poolFlag(flags.pool);
  const autoscale = autoscaleFlag(flags.autoscale);
  const concurrency = posInt(flags.concurrency, '--concurrency', pool === 'solo' ? 1 : 2)!;
  const maxTasks = posInt(flags.maxTasksPerChild, '--max-tasks-per-child', null);
  const maxMem = posInt(flags.maxMemoryPerChild, '--max-memory-per-child', null);
  const maxSize = nonNegInt(flags.logfileMaxSize, '--logfile-max-size');
  const keep = nonNegInt(flags.logfileKeep, '--logfile-keep');
  const nodeName = splitNodeName(flags.hostname ?? 'asynx@%h').full;
  const queues = (flags.queues ?? '').split(',').map((q) => q.trim()).filter(Boolean);
  const pidfile = flags.pidfile ? resolve(cwd, expandWorkerTemplate(flags.pidfile, nodeName)) : null;
  const logfile = flags.logfile ? resolve(cwd, expandWorkerTemplate(flags.logfile, nodeName)) : null;
  if (!flags.app) throw new UsageError('asynx.cli.noApp', 'asynx worker needs -A/--app <module>');
  const appUrl = resolveAppModule(flags.app, cwd);
  // CLI precedence: `-- key=value` overrides, then the dedicated flags over them.
  const conn = connectionFromFlags(flags, cwd);
  const overrides: AsynxOptions = { ...optionsFromPairs(pairs), ...conn.overrides };
  const childEnv: NodeJS.ProcessEnv = { ...conn.childEnv, [CHILD_OVERRIDES_ENV]: JSON.stringify(overrides) };
  const user: WorkerOptions = {
    nodeName,
    concurrency,
    pool,
    autoscale,
    autoscaleKeepalive: `${durationMs(flags.autoscaleKeepalive ?? '30', '--autoscale-keepalive')}ms`,
    queues,
    appUrl,
    pidfile,
    maxTasksPerChild: maxTasks,
    maxMemoryPerChildKb: maxMem,
    childLogfile: flags.logfile ? (i) => resolve(cwd, expandWorkerTemplate(flags.logfile!, nodeName, i)) : null,
    childEnv,
    brokerConnectionRetries: nonNegInt(flags.brokerRetries, '--broker-retries'),
    taskEvents: flags.taskEvents ? true : null,
    heartbeatInterval: `${durationMs(flags.heartbeatInterval ?? '2', '--heartbeat-interval')}ms`,
    loopLagWarn: `${durationMs(flags.loopLagWarn ?? '1', '--loop-lag-warn')}ms`,
  };
  // Resolved before --detach, so a bad option fails in the foreground with exit 64.
  const resolved = resolveWorkerOptions(user);
  if (flags.detach) return detach(logfile, cwd);

  const logger = new Logger({
    level,
    file: logfile ? new LogFile(logfile, { maxSize, keep }) : null,
    color: flags.color !== false && wantColor(process.stderr),
    node: nodeName,
  });
  // Before the app module is imported: an app built at import time reads its config file from here.
  if (conn.configFile) process.env.ASYNX_CONFIG = conn.configFile;
  let worker: Worker | null = null;
  let app: Asynx | null = null;
  let beat: Beat | null = null;
  try {
    // The app is loaded by the worker's start, after the signal handlers are in: a TERM during a slow
    // import is a clean stop, not a kill.
    worker = new Worker(
      async () => {
        app = applyConnection(await loadApp(appUrl), { ...conn, overrides });
        return app;
      },
      { ...resolved, logger },
    );
    const uninstall = installSignals(worker, logger, { hupRestarts: process.env.ASYNX_DETACHED === '1' || !process.stdout.isTTY });
    // The node runs until it is stopped. With the async or solo pool on SQLite nothing else need hold the
    // event loop: a node whose last queue was cancelled (cancel_consumer) would otherwise exit, status 0.
    const keepAlive = setInterval(() => undefined, 1 << 30);
    try {
      await worker.start();
      if (flags.beat && app) {
        // Embedded scheduler (Celery's -B): stops before the worker's connections close.
        beat = await startBeat(app, { scheduleFile: scheduleFilePath(cwd, flags.scheduleFile, pidfile) }, (b) => logBeatEvents(b, logger));
        logger.info(`${beatStartLine(beat)} (embedded scheduler)`);
        const b = beat;
        worker.on('worker:shutdown', () => void b.close());
      }
      await worker.done;
    } finally {
      clearInterval(keepAlive);
      uninstall();
      await beat?.close();
    }
    logger.close();
    const report = worker.stopReport;
    return report.mode === 'cold' || report.failedSteps.length ? ExitCode.failure : ExitCode.ok;
  } catch (err) {
    if (logfile && process.env.ASYNX_DETACHED !== '1') logger.error((err as Error).message); // else main prints it once, on stderr
    logger.close();
    // A failure before the worker could write its status: leave a `failed` status so `multi start` can
    // show the reason at once (a worker that failed has written its own, unless it lost its pidfile race).
    if (pidfile && worker?.state !== 'failed') writeFailedStatus(pidfile, nodeName, concurrency, queues, (err as Error).message);
    throw err;
  }
}

function writeFailedStatus(pidfile: string, node: string, concurrency: number, queues: string[], error: string): void {
  try {
    const now = Date.now();
    writeStatus(statusPathFor(pidfile), { node, pid: process.pid, state: 'failed', concurrency, childPids: [], processed: 0, active: 0, queues, broker: '', startedAt: now, updatedAt: now, error });
  } catch {
    // the directory itself is unwritable: the error line above is all there is
  }
}

/** Spawns this same command without --detach in a new session, output to the log file, and returns 0. */
function detach(logfile: string | null, cwd: string): number {
  let fd: number | 'ignore' = 'ignore';
  if (logfile) {
    try {
      mkdirSync(dirname(logfile), { recursive: true });
      fd = openSync(logfile, 'a');
    } catch (err) {
      throw new AsynxError('asynx.worker.logfileUnwritable', `Cannot open the log file ${logfile}: ${(err as Error).message}; pass a writable --logfile`, { exitCode: ExitCode.cantCreate, facts: { path: logfile } });
    }
  }
  const bin = fileURLToPath(new URL('../../bin/asynx', import.meta.url));
  const args = process.argv.slice(2).filter((a) => a !== '--detach');
  const child = spawn(process.execPath, [bin, ...args], {
    cwd,
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { ...process.env, ASYNX_DETACHED: '1' },
  });
  if (typeof fd === 'number') closeSync(fd);
  child.unref();
  // `multi start` reads this to follow the node from its first moment.
  process.stdout.write(`pid=${child.pid}\n`);
  return ExitCode.ok;
}
