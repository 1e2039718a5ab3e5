// `asynx multi <command> ...`: parses raw argv (commander cannot express `-c:1-3 10`), runs the verb, renders, maps exit codes.

import { Chalk } from 'chalk';
import { AsynxError, ExitCode, UsageError } from '../errors.js';
import { formatCliError } from './output.js';
import { expandMultiTemplate } from '../process/placeholders.js';
import { parseArgs, type ParsedArgs } from '../multi/args.js';
import { discoverNodes } from '../multi/discover.js';
import { banner, HELP, USAGE } from '../multi/help.js';
import { formatCommand, nodeCommand, planFromParsed, type MultiPlan } from '../multi/nodes.js';
import { formatStatusTable, renderEvents } from '../multi/render.js';
import { resolveSupervisorOptions, Supervisor } from '../multi/supervisor.js';

/** What the CLI needs from its surroundings (injected so tests run it in-process). */
export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  isTTY: boolean;
  cwd: string;
}

const COMMANDS = new Set(['start', 'stop', 'stopwait', 'stop_verify', 'restart', 'kill', 'status', 'show', 'get', 'names', 'expand', 'help']);
/** Commands that print the banner (spec §2). */
const WITH_BANNER = new Set(['start', 'stop', 'stopwait', 'stop_verify', 'restart', 'kill']);
/** Reserved options that may precede the command. */
const RESERVED = new Set(['--quiet', '-q', '--nosplash', '--verbose', '--no-color']);

function useColor(io: CliIo, argv: readonly string[]): boolean {
  const noColorEnv = io.env.NO_COLOR !== undefined && io.env.NO_COLOR !== '';
  return io.isTTY && !noColorEnv && !argv.includes('--no-color');
}

function printUsage(io: CliIo, color: boolean, withBanner: boolean): void {
  if (withBanner) io.stdout.write(`${new Chalk({ level: color ? 1 : 0 }).cyan(banner())}\n`);
  io.stdout.write(USAGE);
}

/** Runs `asynx multi` with `argv` (everything after `multi`); resolves to the exit code. Never calls process.exit. */
export async function runMultiCli(argv: string[], io: CliIo): Promise<number> {
  const color = useColor(io, argv);
  const paint = new Chalk({ level: color ? 1 : 0 });
  const commandAt = argv.findIndex((t) => !RESERVED.has(t) && t !== '');
  const command = commandAt === -1 ? undefined : argv[commandAt];
  if (command === '--help' || command === '-h') {
    printUsage(io, color, true);
    return ExitCode.ok;
  }
  if (command === undefined || command.startsWith('-')) {
    printUsage(io, color, true);
    return ExitCode.usage;
  }
  if (!COMMANDS.has(command)) {
    io.stderr.write(`Invalid command: ${command}\n`);
    printUsage(io, color, true);
    return ExitCode.usage;
  }
  if (command === 'help') {
    io.stdout.write(HELP);
    return ExitCode.ok;
  }
  const rest = [...argv.slice(0, commandAt), ...argv.slice(commandAt + 1)];
  try {
    return await runCommand(command === 'stop_verify' ? 'stopwait' : command, rest, io, color);
  } catch (err) {
    // One `asynx: <message>` line, as every other command prints its errors.
    io.stderr.write(formatCliError(err, paint, io.env));
    if (err instanceof UsageError) io.stderr.write(`Run 'asynx multi help' for the grammar.\n`);
    return err instanceof AsynxError ? err.exitCode : ExitCode.software;
  }
}

function takeFirstPositional(parsed: ParsedArgs, what: string): string {
  const first = parsed.positionals.shift();
  if (first === undefined) throw new UsageError('asynx.multi.missingArgument', `Missing ${what}: see 'asynx multi help'`, { option: what });
  return first;
}

async function runCommand(command: string, rest: string[], io: CliIo, color: boolean): Promise<number> {
  const parsed = parseArgs(rest);
  const { settings } = parsed;
  switch (command) {
    case 'names': {
      const plan = planFromParsed(parsed, io.cwd, { strictNamespaces: true });
      io.stdout.write(`${plan.nodes.map((n) => n.name.full).join('\n')}\n`);
      return ExitCode.ok;
    }
    case 'show': {
      const plan = planFromParsed(parsed, io.cwd, { strictNamespaces: true });
      for (const node of plan.nodes) io.stdout.write(`${formatCommand(nodeCommand(node))}\n`);
      return ExitCode.ok;
    }
    case 'get': {
      const wanted = takeFirstPositional(parsed, 'node name (e.g. asynx1@host)');
      const plan = planFromParsed(parsed, io.cwd, { strictNamespaces: true });
      const node = plan.nodes.find((n) => n.name.full === wanted);
      if (node === undefined) {
        io.stderr.write(`No node named ${wanted} among: ${plan.nodes.map((n) => n.name.full).join(', ') || '(none)'} (give the full name, name@host)\n`);
        return ExitCode.failure;
      }
      io.stdout.write(`${formatCommand(nodeCommand(node).slice(1))}\n`);
      return ExitCode.ok;
    }
    case 'expand': {
      const template = takeFirstPositional(parsed, 'template');
      const plan = planFromParsed(parsed, io.cwd, { strictNamespaces: true });
      for (const node of plan.nodes) io.stdout.write(`${expandMultiTemplate(template, node.name)}\n`);
      return ExitCode.ok;
    }
    case 'status': {
      if (parsed.positionals.length > 0) break;
      // No names: list the nodes whose pidfiles are in the --pidfile directory (as `pm2 ls`).
      const found = discoverNodes(parsed, io.cwd);
      if (found.names.length === 0) {
        io.stdout.write(settings.json ? '[]\n' : `No nodes: no pidfiles in ${found.dir} (name the nodes, or pass the --pidfile they were started with)\n`);
        return ExitCode.ok;
      }
      parsed.positionals.push(...found.names);
      break;
    }
    default:
      break;
  }
  return runVerb(command, planFromParsed(parsed, io.cwd, { strictNamespaces: true }), io, color, settings.quiet, settings.nosplash || settings.quiet, settings.verbose, settings.json);
}

async function runVerb(command: string, plan: MultiPlan, io: CliIo, color: boolean, quiet: boolean, noBanner: boolean, verbose: boolean, json: boolean): Promise<number> {
  const supervisor = new Supervisor(plan, resolveSupervisorOptions(plan, io.env));
  if (WITH_BANNER.has(command) && !noBanner) io.stdout.write(`${new Chalk({ level: color ? 1 : 0 }).cyan(banner())}\n`);
  if (!(command === 'status' && json)) renderEvents(supervisor.events, { out: io.stdout, color, quiet, verbose });
  const verdict = (ok: boolean): number => (ok ? ExitCode.ok : ExitCode.failure);
  switch (command) {
    case 'start': return verdict((await supervisor.start()).ok);
    case 'stop': return verdict((await supervisor.stop()).ok);
    case 'stopwait': return verdict((await supervisor.stopwait()).ok);
    case 'restart': return verdict((await supervisor.restart()).ok);
    case 'kill': return verdict((await supervisor.kill()).ok);
    case 'status': {
      const result = await supervisor.status();
      io.stdout.write(json ? `${JSON.stringify(result.nodes, null, 2)}\n` : formatStatusTable(result.nodes, color));
      return verdict(result.ok);
    }
    default:
      throw new UsageError('asynx.multi.unknownCommand', `Invalid command: ${command}`);
  }
}
