// The `asynx` program: commander setup, one-line usage errors, AsynxError → exit code. Never exits the process.

import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ExitCode, isAsynxError } from '../errors.js';
import { badArguments, unknownCommand, unknownOption } from './cli-errors.js';
import { formatCliError, painter } from './output.js';
import { closest } from './suggest.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** Where the CLI reads and writes; every field defaults to the current process's. */
export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Whether stdout is a terminal (colour, banners). @defaultValue process.stdout.isTTY */
  isTTY: boolean;
}

type RawCli = (argv: string[], io: CliIo) => Promise<number>;

/** Commands with their own grammar (multi's `-c:1-3 10`), handed the raw argv. */
const RAW_COMMANDS = ['multi', 'init'] as const;
type RawName = (typeof RAW_COMMANDS)[number];
const isRaw = (name: string | undefined): name is RawName => (RAW_COMMANDS as readonly string[]).includes(name ?? '');

/** The argv that makes each raw command print its own help. */
const RAW_HELP: Record<RawName, string[]> = { multi: ['help'], init: ['--help'] };

async function rawCommand(name: RawName): Promise<RawCli> {
  if (name === 'multi') return (await import('./multi.js')).runMultiCli;
  return (await import('./init.js')).runInitCli;
}

const TOP_HELP = `
Commands with their own grammar:
  multi <start|stop|stopwait|restart|kill|status|show|get|names|expand|help> ...   manage named worker nodes
  init <systemd|initd|supervisord|npm-scripts|config>                               render a deployment template

Examples:
  $ asynx worker -A ./tasks.mjs -c 4
  $ asynx call tasks.add --args '[2, 3]' --wait
  $ asynx multi start 3 -A ./tasks.mjs -c 2
  $ asynx multi stopwait 3 --timeout=60
  $ asynx dead list
  $ asynx inspect ping
  $ asynx help multi

Environment: ASYNX_BROKER_URL, ASYNX_RESULT_BACKEND, ASYNX_CONFIG, ASYNX_*; NO_COLOR turns colour off.
Exit codes: 0 ok · 1 failure · 64 usage error (bad flag or value, unknown command, no such -A module) ·
69 broker unavailable · 70 the app module failed to load (it throws or does not parse) or an internal error ·
73 a live pidfile for this node exists, or a pidfile or log file cannot be created.`;

/** Every command name, for suggestions: commander's, the raw ones, and `help`. */
const commandNames = (program: Command): string[] => [...program.commands.map((c) => c.name()), ...RAW_COMMANDS, 'help'];

/** Turns a commander grammar error into our one-line UsageError; `command` is the subcommand being parsed. */
function usageFromCommander(err: CommanderError, command: Command | null, program: Command): Error {
  const path = command && command !== program ? command.name() : null;
  const firstLine = err.message.replace(/^error: /, '').split('\n')[0]!;
  if (err.code === 'commander.unknownCommand') {
    const name = /'([^']*)'/.exec(firstLine)?.[1] ?? firstLine;
    return unknownCommand(name, closest(name, commandNames(program)));
  }
  if (err.code === 'commander.unknownOption') {
    const option = /'([^']*)'/.exec(firstLine)?.[1] ?? firstLine;
    const known = (command ?? program).options.map((o) => o.long ?? o.short ?? '').filter((o) => o !== '');
    return unknownOption(path, option, option.startsWith('--') ? closest(option, known) : null);
  }
  return badArguments(path, firstLine, err.code);
}

/**
 * Runs the CLI with `argv` (without node and the script) and resolves to the exit code. Writes only to
 * `io`'s streams and never calls `process.exit`, so tests run it in-process; bin/asynx does the exiting.
 */
export async function main(argv: string[], ioIn: Partial<CliIo> = {}): Promise<number> {
  const io: CliIo = {
    stdout: ioIn.stdout ?? process.stdout,
    stderr: ioIn.stderr ?? process.stderr,
    env: ioIn.env ?? process.env,
    cwd: ioIn.cwd ?? process.cwd(),
    isTTY: ioIn.isTTY ?? Boolean((ioIn.stdout ?? process.stdout) === process.stdout && process.stdout.isTTY),
  };
  const fail = (err: unknown): number => {
    io.stderr.write(formatCliError(err, painter(io.stderr, io.env), io.env));
    return isAsynxError(err) ? err.exitCode : ExitCode.software;
  };

  // `asynx help multi` is `asynx multi help`: the raw commands own their help text.
  const [first, second] = argv;
  if (first === 'help' && isRaw(second)) return (await rawCommand(second))(RAW_HELP[second], io).catch(fail);
  if (isRaw(first)) {
    const run = await rawCommand(first);
    let rest = argv.slice(1);
    const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
    // `asynx multi start --help` shows help rather than starting anything.
    if (first === 'multi' && (own.includes('--help') || own.includes('-h'))) rest = RAW_HELP.multi;
    try {
      return await run(rest, io);
    } catch (err) {
      return fail(err);
    }
  }

  let pending: Promise<number> | null = null;
  const run = (fn: () => Promise<number>) => {
    pending = fn().catch(fail);
  };
  // Set before any subcommand exists: commander copies these settings into each one when it is created.
  const program = new Command('asynx')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // Commander's own error text is replaced by one `asynx: ...` line (usageFromCommander).
      outputError: () => {},
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    })
    .version(pkg.version, '-V, --version')
    .description('Celery for Node.js: task queue, prefork workers and a supervisor, speaking Celery protocol v2')
    .addHelpText('after', TOP_HELP);
  // Loaded here rather than at the top, so `asynx multi …` does not pay for the worker stack.
  const [{ registerWorkerCommand }, { registerControlCommands }] = await Promise.all([import('./worker.js'), import('./control.js')]);
  registerWorkerCommand(program, run);
  registerControlCommands(program, run, { stdout: io.stdout, stderr: io.stderr, cwd: io.cwd });
  (await import('./dead.js')).registerDeadCommand(program, run, io);
  (await import('./inspect.js')).registerInspectCommands(program, run, io);
  (await import('./events.js')).registerEventsCommand(program, run, io);
  (await import('./dashboard.js')).registerDashboardCommand(program, run, io);
  (await import('./beat.js')).registerBeatCommand(program, run, io);
  // Which command's grammar failed, so the message can point at that command's --help.
  let failedIn: Command | null = null;
  for (const c of program.commands) {
    c.exitOverride((err) => {
      failedIn = c;
      throw err;
    });
  }
  // `asynx help frob` is the same mistake as `asynx frob` (commander would print the top-level help).
  if (first === 'help' && second !== undefined && !second.startsWith('-') && !commandNames(program).includes(second)) return fail(unknownCommand(second, closest(second, commandNames(program))));
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.ok;
      return fail(usageFromCommander(err, failedIn, program));
    }
    return fail(err);
  }
  if (!pending) {
    if (argv.length === 0) {
      program.outputHelp();
      return ExitCode.usage;
    }
    return ExitCode.ok;
  }
  return pending;
}

