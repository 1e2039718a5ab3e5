// The `asynx` program: commander setup, global options, AsynxError → exit code.

import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ExitCode, isAsynxError } from '../errors.js';
import { painter } from './output.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

type RawCli = (argv: string[], io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream; env: NodeJS.ProcessEnv; isTTY: boolean; cwd: string }) => Promise<number>;

/** Commands with their own grammar (multi's `-c:1-3 10`), handed the raw argv. */
async function rawCommand(name: 'multi' | 'init'): Promise<RawCli> {
  const file = name === 'multi' ? './multi.js' : './init.js';
  const mod = (await import(new URL(file, import.meta.url).href)) as Record<string, RawCli>;
  return name === 'multi' ? mod.runMultiCli! : mod.runInitCli!;
}

function fail(err: unknown): number {
  const red = painter(process.stderr);
  if (isAsynxError(err)) {
    process.stderr.write(`${red.red('asynx:')} ${err.message}\n`);
    if (process.env.ASYNX_DEBUG && err.stack) process.stderr.write(`${err.stack}\n`);
    return err.exitCode;
  }
  process.stderr.write(`${red.red('asynx: unexpected error:')} ${(err as Error)?.stack ?? String(err)}\n`);
  return ExitCode.software;
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'multi' || argv[0] === 'init') {
    const run = await rawCommand(argv[0]);
    let rest = argv.slice(1);
    const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
    // `asynx multi start --help` shows help rather than starting anything.
    if (argv[0] === 'multi' && (own.includes('--help') || own.includes('-h'))) rest = ['help'];
    try {
      return await run(rest, { stdout: process.stdout, stderr: process.stderr, env: process.env, isTTY: Boolean(process.stdout.isTTY), cwd: process.cwd() });
    } catch (err) {
      return fail(err);
    }
  }
  let pending: Promise<number> | null = null;
  const run = (fn: () => Promise<number>) => {
    pending = fn().catch(fail);
  };
  const program = new Command('asynx')
    .version(pkg.version, '-V, --version')
    .description('Celery for Node.js: task queue, prefork workers and a supervisor, speaking Celery protocol v2')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `
Commands with their own grammar:
  multi <start|stop|stopwait|restart|kill|status|show|get|names|expand|help> ...   manage named worker nodes
  init <systemd|initd|supervisord|npm-scripts|config>                               render a deployment template

Examples:
  $ asynx worker -A ./tasks.mjs -c 4
  $ asynx call tasks.add --args '[2, 3]' --wait
  $ asynx multi start 3 -A ./tasks.mjs -c 2
  $ asynx multi stopwait 3 --timeout 60

Environment: ASYNX_BROKER_URL, ASYNX_RESULT_BACKEND, ASYNX_CONFIG, ASYNX_*; NO_COLOR turns colour off.
Exit codes: 0 ok · 1 failure · 64 usage error · 69 broker unavailable · 70 internal error.`,
    );
  program.configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
  // Loaded here rather than at the top, so `asynx multi …` does not pay for the worker stack.
  const [{ registerWorkerCommand }, { registerControlCommands }] = await Promise.all([import('./worker.js'), import('./control.js')]);
  registerWorkerCommand(program, run);
  registerControlCommands(program, run, { stdout: process.stdout, stderr: process.stderr });
  for (const c of program.commands) c.exitOverride();
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.ok;
      return ExitCode.usage;
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

// `asynx --help | head`: a closed pipe ends the output quietly, as for any Unix tool.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Let stdout drain, then exit even if a library left a handle open.
    setTimeout(() => process.exit(code), 50).unref();
  },
  (err) => {
    process.exitCode = fail(err);
  },
);
