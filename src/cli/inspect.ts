// `asynx inspect`, `asynx control`, `asynx status`, `asynx revoke`: remote control from the shell, as `celery inspect|control|status`.

import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import type { Command } from 'commander';
import { Asynx } from '../app/app.js';
import { openControlClient, mergeReplies, type ControlClient } from '../control/client.js';
import { commandsOf, compileArguments, type ControlCommand } from '../control/commands.js';
import { badControlArguments, badDestination, badSignal, noBrokerFile, noNodesReplied, signalWithoutTerminate, unknownControlMethod } from '../control/control-errors.js';
import { ExitCode } from '../errors.js';
import { parseBrokerUrl } from '../urls.js';
import { durationSeconds } from '../util/duration.js';
import { loadApp, resolveAppModule } from '../worker/load-app.js';
import { addConnectionOptions, applyConnection, connectionFromFlags, type ConnectionFlags } from './connection-options.js';
import { onlineLine, replyText } from './control-output.js';
import { painter } from './output.js';
import { closest } from './suggest.js';

/** Where the commands write, and the directory relative paths are from. */
export interface InspectIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

interface RemoteFlags extends ConnectionFlags {
  app?: string;
  destination?: string;
  timeout: string;
  json?: boolean;
}

/** `-d a@h,b@h` as a list; null without -d. */
export function destinationFlag(value: string | undefined): string[] | null {
  if (value === undefined) return null;
  const names = value.split(',').map((s) => s.trim());
  if (names.some((n) => n === '')) throw badDestination(value);
  return names;
}

/** `--signal KILL` / `SIGKILL` / `9` as the signal's name. */
export function signalFlag(value: string): string {
  const signals = constants.signals as Record<string, number>;
  const upper = value.toUpperCase();
  if (/^\d+$/.test(value)) {
    const name = Object.keys(signals).find((k) => signals[k] === Number(value));
    if (name) return name;
  } else {
    const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
    if (name in signals) return name;
  }
  throw badSignal(value);
}

function findCommand(kind: 'inspect' | 'control', method: string): ControlCommand {
  const known = commandsOf(kind);
  const c = known.find((k) => k.name === method);
  if (!c) throw unknownControlMethod(kind, method, closest(method, known.map((k) => k.name)), known.map((k) => k.name));
  return c;
}

/** The broker of the app (or of -b / the config file / ASYNX_BROKER_URL), and a client on it. */
async function openClient(flags: RemoteFlags, cwd: string): Promise<{ client: ControlClient; close: () => Promise<void> }> {
  const conn = connectionFromFlags(flags, cwd);
  const app = applyConnection(flags.app ? await loadApp(resolveAppModule(flags.app, cwd)) : new Asynx({ cwd }), conn);
  try {
    const config = await app.config();
    const url = parseBrokerUrl(config.brokerUrl, app.cwd);
    // Creating the file to ask it would leave a broker behind where there was none.
    if (url.kind === 'sqlite' && !existsSync(url.path)) throw noBrokerFile(url.path);
    const client = await openControlClient(config.brokerUrl, { cwd: app.cwd, connectTimeoutMs: config.connectTimeoutMs });
    return { client, close: async () => { await client.close(); await app.close(); } };
  } catch (err) {
    await app.close();
    throw err;
  }
}

function remoteOptions(cmd: Command): Command {
  return addConnectionOptions(
    cmd
      .option('-d, --destination <nodes>', 'comma-separated node names (default: every node)')
      .option('-t, --timeout <s>', 'how long to wait for replies, seconds', '1')
      .option('-j, --json', 'print the replies as JSON')
      .option('-A, --app <module>', 'app module (for its broker settings)'),
  );
}

const EXIT_HELP = `Exit codes: 0 at least one node replied · 1 no node replied within --timeout · 64 bad usage
(unknown method, bad arguments, bad -d) · 69 broker unavailable.`;

/**
 * Sends `method` and prints the replies: as they arrive, `->  node: OK` and the indented answer (Celery's
 * layout), or with --json the replies at the end (`inspect`/`status`: one object by node, as
 * `celery inspect -j`; `control`: the list, as `celery control -j`). No reply is exit 1.
 */
async function runRemote(io: InspectIo, flags: RemoteFlags, method: string, args: Record<string, unknown>, shape: { merge: boolean; body: boolean; online: boolean }): Promise<number> {
  const destination = destinationFlag(flags.destination);
  const timeoutMs = durationSeconds(flags.timeout, '--timeout') * 1000;
  const paint = painter(io.stdout, io.env);
  const { client, close } = await openClient(flags, io.cwd);
  try {
    const replies = await client.broadcast(method, args, {
      ...(destination ? { destination } : {}),
      timeoutMs: Math.max(1, timeoutMs),
      ...(flags.json ? {} : { onReply: (r: Record<string, unknown>) => io.stdout.write(replyText(r, paint, shape.body)) }),
    });
    if (replies.length === 0) throw noNodesReplied(method, timeoutMs, destination);
    if (flags.json) io.stdout.write(`${JSON.stringify(shape.merge ? mergeReplies(replies) : replies)}\n`);
    else if (shape.online) io.stdout.write(onlineLine(Object.keys(mergeReplies(replies)).length));
    return ExitCode.ok;
  } finally {
    await close();
  }
}

const methodList = (kind: 'inspect' | 'control'): string =>
  commandsOf(kind).map((c) => `  ${`${c.name} ${c.signature}`.trim().padEnd(62)} ${c.help}`).join('\n');

/** Registers inspect / control / status / revoke. */
export function registerInspectCommands(program: Command, run: (fn: () => Promise<number>) => void, io: InspectIo): void {
  remoteOptions(program.command('inspect <method> [args...]').description('Ask worker nodes about their state (celery inspect): ping, stats, active, registered …'))
    .addHelpText('after', `
Methods:
${methodList('inspect')}

Examples:
  $ asynx inspect ping
  $ asynx inspect stats --json
  $ asynx inspect registered --timeout 5
  $ asynx inspect active -d w1@example.com,w2@example.com

Prints, per node as it answers, "->  node: OK" and the answer indented, then "N nodes online.".
${EXIT_HELP}`)
    .action((method: string, positionals: string[], f: RemoteFlags) =>
      run(async () => {
        const c = findCommand('inspect', method);
        const compiled = compileArguments(c, positionals);
        if (!compiled.ok) throw badControlArguments(method, c.signature, compiled.problem);
        return runRemote(io, f, method, compiled.arguments, { merge: true, body: true, online: true });
      }),
    );

  remoteOptions(program.command('control <method> [args...]').description('Tell worker nodes to change something (celery control): rate_limit, pool_grow, revoke, shutdown …'))
    .addHelpText('after', `
Methods (positional arguments map to the method's arguments in this order, as with celery control):
${methodList('control')}

Examples:
  $ asynx control rate_limit tasks.add 10/s
  $ asynx control pool_grow 2
  $ asynx control revoke 1e054e15-ea11-4e56-a3d6-b138371690bc
  $ asynx control shutdown -d w1@example.com

${EXIT_HELP}`)
    .action((method: string, positionals: string[], f: RemoteFlags) =>
      run(async () => {
        const c = findCommand('control', method);
        const compiled = compileArguments(c, positionals);
        if (!compiled.ok) throw badControlArguments(method, c.signature, compiled.problem);
        return runRemote(io, f, method, compiled.arguments, { merge: false, body: true, online: false });
      }),
    );

  remoteOptions(program.command('status').description('List the worker nodes online (celery status): each node that answers a ping'))
    .addHelpText('after', `
Examples:
  $ asynx status
  $ asynx status --json --timeout 3

Prints "->  node: OK" per node that answered, then "N nodes online.".
Exit codes: 0 at least one node is online · 1 none answered within --timeout · 64 bad usage · 69 broker unavailable.`)
    .action((f: RemoteFlags) => run(() => runRemote(io, f, 'ping', {}, { merge: true, body: false, online: true })));

  remoteOptions(
    program
      .command('revoke <ids...>')
      .description("Revoke tasks by id on every node (Celery's app.control.revoke): waiting copies are discarded, --terminate also kills a running one")
      .option('--terminate', 'also end the task if it is running (its pool child is killed)')
      .option('--signal <sig>', 'with --terminate: the signal for the running task', 'SIGTERM'),
  )
    .addHelpText('after', `
Examples:
  $ asynx revoke 1e054e15-ea11-4e56-a3d6-b138371690bc
  $ asynx revoke 1e054e15-ea11-4e56-a3d6-b138371690bc --terminate --signal SIGKILL

A node keeps revoked ids in memory: a node that is down when you revoke does not learn of it.
${EXIT_HELP}`)
    .action((ids: string[], f: RemoteFlags & { terminate?: boolean; signal: string }, cmd: Command) =>
      run(async () => {
        if (!f.terminate && cmd.getOptionValueSource('signal') === 'cli') throw signalWithoutTerminate();
        const signal = signalFlag(f.signal);
        return runRemote(io, f, 'revoke', { task_id: ids, terminate: Boolean(f.terminate), signal }, { merge: false, body: true, online: false });
      }),
    );
}
