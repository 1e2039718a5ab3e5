// `asynx beat`: run the periodic-task scheduler (or `--list` the entries), and the log lines of a scheduler (also for `worker -B`).

import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { formatInZone } from '../beat/schedule.js';
import { startBeat, type Beat } from '../beat/service.js';
import { ExitCode } from '../errors.js';
import { acquirePidfile, type HeldPidfile } from '../process/pidfile.js';
import { LogFile } from '../process/logfile.js';
import { loadApp, resolveAppModule } from '../worker/load-app.js';
import { Logger, parseLogLevel } from '../worker/logger.js';
import { redact } from '../util/redact.js';
import { addConnectionOptions, applyConnection, connectionFromFlags, type ConnectionFlags } from './connection-options.js';
import { wantColor } from './output.js';

/** Where `asynx beat` writes. */
export interface BeatCliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  cwd: string;
}

/** Raw flags of `asynx beat` (commander requires -A). */
export interface BeatFlags extends ConnectionFlags {
  app: string;
  list?: boolean;
  scheduleFile?: string;
  pidfile?: string;
  loglevel?: string;
  logfile?: string;
  color?: boolean;
}

const HELP = `
Sends each periodic entry of the app (app.periodic(), and the config file's \`periodic\` section) when it
is due. Run as many schedulers as you like (asynx beat, or asynx worker -B): they elect one leader, and
each due time is sent once; when the leader dies another takes over (SQLite: a lease in the broker
file, free 3 s after the leader's last renewal; Redis: the lease key asynx.beat.leader, the same 3 s;
RabbitMQ: a single-active-consumer queue, at once). Last-run state is written before each send: SQLite
keeps it in the broker file; Redis in the hash asynx.beat.schedule; RabbitMQ in --schedule-file
(default: beat-schedule.json beside --pidfile, else ./.asynx/beat-schedule.json), mirrored to the queue
asynx.beat.state for the schedulers of other hosts. Stops on INT or TERM.

Examples:
  $ asynx beat -A ./tasks.mjs
  $ asynx beat -A ./tasks.mjs --list

Exit codes: 0 stopped · 64 bad usage or a bad periodic entry · 69 broker unavailable · 70 the app module
failed to load · 73 a live pidfile, or the schedule file cannot be written.`;

/** Registers `asynx beat` on the program. */
export function registerBeatCommand(program: Command, run: (fn: () => Promise<number>) => void, io: BeatCliIo): void {
  addConnectionOptions(program.command('beat'))
    .description('Run the periodic-task scheduler (one leader per cluster; any number may run)')
    .requiredOption('-A, --app <module>', 'module (path or package) whose default or `app` export is the Asynx app')
    .option('--list', 'print the entries with their next run (in each entry\'s timezone) and exit')
    .option('--schedule-file <path>', 'RabbitMQ: the last-run state file (SQLite and Redis keep it in the broker)')
    .option('--pidfile <path>', 'pidfile to write (removed on exit)')
    .option('-l, --loglevel <level>', 'debug | info | warning | error | critical', 'info')
    .option('-f, --logfile <path>', 'log file (default: stderr)')
    .option('--no-color', 'no colour in log lines')
    .addHelpText('after', HELP)
    .action((flags: BeatFlags) => run(() => runBeat(flags, io)));
}

/** The state file for a RabbitMQ broker: `--schedule-file`, else beside the pidfile, else under ./.asynx. */
export function scheduleFilePath(cwd: string, scheduleFile: string | undefined, pidfile: string | null): string {
  if (scheduleFile) return resolve(cwd, scheduleFile);
  if (pidfile) return join(dirname(pidfile), 'beat-schedule.json');
  return resolve(cwd, '.asynx', 'beat-schedule.json');
}

/** Logs a scheduler's events: leader changes and skips at info, each send at info, failures at error. */
export function logBeatEvents(beat: Beat, logger: Logger): void {
  beat.on('beat:leader', (e) => logger.info(`beat: leader since ${new Date(e.at).toISOString()} (${e.holder})`));
  beat.on('beat:follower', (e) => logger.info(`beat: follower since ${new Date(e.at).toISOString()} (${e.holder})`));
  beat.on('beat:sent', (e) => logger.info(`beat: sent ${e.entry} (${e.task}[${e.taskId}]) due ${new Date(e.dueAt).toISOString()}${e.late ? ' (missed run)' : ''}`));
  beat.on('beat:skipped', (e) => logger.info(`beat: skipped ${e.count} missed run(s) of ${e.entry} through ${new Date(e.through).toISOString()}`));
  beat.on('beat:error', (e) => logger.error(`beat: ${e.entry ? `${e.entry}: ` : ''}${e.message}`));
}

/** `beat: 2 entries (tick, nightly)`: the start line of a scheduler. */
export function beatStartLine(beat: Beat): string {
  const n = beat.schedule.length;
  return `beat: ${n} entr${n === 1 ? 'y' : 'ies'}${n ? ` (${beat.schedule.map((e) => e.name).join(', ')})` : ''}`;
}

/** Runs `asynx beat`; resolves to the exit code. */
export async function runBeat(flags: BeatFlags, io: BeatCliIo): Promise<number> {
  const level = parseLogLevel(flags.loglevel ?? 'info');
  const conn = connectionFromFlags(flags, io.cwd);
  const appUrl = resolveAppModule(flags.app, io.cwd);
  if (conn.configFile) process.env.ASYNX_CONFIG = conn.configFile;
  const app = applyConnection(await loadApp(appUrl), conn);
  const entries = await app.periodicEntries();
  if (flags.list) {
    io.stdout.write(listEntries(entries, Date.now()));
    return ExitCode.ok;
  }
  const pidfilePath = flags.pidfile ? resolve(io.cwd, flags.pidfile) : null;
  const logfile = flags.logfile ? resolve(io.cwd, flags.logfile) : null;
  const logger = new Logger({ level, file: logfile ? new LogFile(logfile) : null, stream: io.stderr, color: flags.color !== false && wantColor(process.stderr), processName: 'Beat' });
  let pidfile: HeldPidfile | null = null;
  let beat: Beat | null = null;
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    if (pidfilePath) pidfile = acquirePidfile(pidfilePath, 'beat', (m) => logger.warn(m));
    const config = await app.config();
    beat = await startBeat(app, { entries, scheduleFile: scheduleFilePath(io.cwd, flags.scheduleFile, pidfilePath) }, (b) => logBeatEvents(b, logger));
    logger.info(`${beatStartLine(beat)} on ${redact(config.brokerUrl)}; ready.`);
    await stopped;
    return ExitCode.ok;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await beat?.close();
    await app.close();
    pidfile?.remove();
    logger.close();
  }
}

/** The `--list` table: name, task, schedule, next run in the entry's timezone, catch-up policy. */
export function listEntries(entries: readonly { name: string; task: string; catchUp: string; schedule: { describe(): string; next(after: number): number; tz: string } }[], now: number): string {
  if (!entries.length) return 'No periodic entries: add some with app.periodic() or the config file\'s `periodic` section.\n';
  const rows = [['NAME', 'TASK', 'SCHEDULE', 'NEXT RUN', 'CATCH-UP'], ...entries.map((e) => [e.name, e.task, e.schedule.describe(), formatInZone(e.schedule.next(now), e.schedule.tz), e.catchUp])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}
