// `asynx call`, `asynx result`, `asynx purge`: send a task, read a result, empty queues.

import type { Command } from 'commander';
import { Asynx } from '../app/app.js';
import { errorMessage, ExitCode } from '../errors.js';
import { loadApp, resolveAppModule } from '../worker/load-app.js';
import { failureLine } from './output.js';
import { badEta, badJson, badPriority } from './cli-errors.js';
import { addConnectionOptions, applyConnection, connectionFromFlags, type ConnectionFlags } from './connection-options.js';
import { durationSeconds } from '../util/duration.js';

interface CommonFlags extends ConnectionFlags {
  app?: string;
}

/** Where the control commands write, and the directory relative paths are from. */
export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** @defaultValue process.cwd() */
  cwd?: string;
}

async function makeApp(flags: CommonFlags, cwd: string): Promise<Asynx> {
  const conn = connectionFromFlags(flags, cwd);
  const app = flags.app ? await loadApp(resolveAppModule(flags.app, cwd)) : new Asynx({ cwd });
  return applyConnection(app, conn);
}

function parseJson(value: string | undefined, flag: string, kind: 'array' | 'object'): unknown {
  if (value === undefined) return kind === 'array' ? [] : {};
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch (err) {
    throw badJson(flag, value, kind, (err as Error).message);
  }
  const ok = kind === 'array' ? Array.isArray(v) : typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!ok) throw badJson(flag, value, kind);
  return v;
}

/** A duration flag in seconds: `30` is seconds, `'250ms'`, `'2m'` carry a unit (src/util/duration.ts). */
function num(value: string | undefined, flag: string): number | undefined {
  return value === undefined ? undefined : durationSeconds(value, flag);
}

function priorityFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0 || n > 255) throw badPriority(value);
  return n;
}

/** `--eta` as given, once it is known to be a time; a usage error (64) naming --eta otherwise. */
function etaFlag(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === '' || Number.isNaN(Date.parse(value))) throw badEta(value);
  return value;
}

function common(cmd: Command): Command {
  return addConnectionOptions(cmd.option('-A, --app <module>', 'app module (for task defaults such as queue and priority)'));
}

/** Registers call / result / purge. */
export function registerControlCommands(program: Command, run: (fn: () => Promise<number>) => void, io: CliIo): void {
  const cwd = io.cwd ?? process.cwd();
  common(
    program
      .command('call <task>')
      .description('Send a task by name and print its id (or, with --wait, its result)')
      .option('--args <json>', 'positional arguments as a JSON array', '[]')
      .option('--kwargs <json>', 'keyword arguments as a JSON object', '{}')
      .option('--countdown <s>', 'run no earlier than this many seconds from now')
      .option('--eta <iso>', 'run no earlier than this time (ISO-8601)')
      .option('--expires <s>', 'revoke if not started within this many seconds')
      .option('--priority <n>', 'priority 0..255 (higher first)')
      .option('-Q, --queue <name>', 'queue to send to')
      .option('--wait', 'wait for the result and print it')
      .option('--timeout <s>', 'with --wait: give up after this many seconds', '60'),
  )
    .addHelpText('after', `
Examples:
  $ asynx call tasks.add --args '[2, 3]' --wait
  $ asynx call asynx.http.dispatch --args '[{"url": "http://127.0.0.1:8080/hook"}]' --countdown 30
  $ asynx call emails.send --kwargs '{"to": "a@b.c"}' -Q emails

Exit codes: 0 sent (or succeeded with --wait) · 1 the task failed or --wait timed out · 64 bad usage ·
69 broker unavailable.`)
    .action((task: string, f: CommonFlags & Record<string, string | boolean | undefined>) =>
      run(async () => {
        const args = parseJson(f.args as string, '--args', 'array') as unknown[];
        const kwargs = parseJson(f.kwargs as string, '--kwargs', 'object') as Record<string, unknown>;
        const priority = priorityFlag(f.priority as string | undefined);
        const eta = etaFlag(f.eta as string | undefined);
        const timeout = num(f.timeout as string, '--timeout') ?? 60; // checked before anything is sent
        const app = await makeApp(f, cwd);
        try {
          const r = await app.sendTask(task, args, kwargs, {
            countdown: num(f.countdown as string | undefined, '--countdown'),
            eta,
            expires: num(f.expires as string | undefined, '--expires'),
            priority,
            queue: f.queue as string | undefined,
          });
          if (!f.wait) {
            io.stdout.write(`${r.id}\n`);
            return ExitCode.ok;
          }
          try {
            const value = await r.get({ timeout });
            io.stdout.write(`${JSON.stringify(value)}\n`);
            return ExitCode.ok;
          } catch (err) {
            io.stderr.write(`${r.id}: ${failureLine(err)}\n`);
            return ExitCode.failure;
          }
        } finally {
          await app.close();
        }
      }),
    );

  common(
    program
      .command('result <id>')
      .description('Print the state and result of a task')
      .option('--wait', 'wait until the task is ready')
      .option('--timeout <s>', 'with --wait: give up after this many seconds', '60'),
  )
    .addHelpText('after', `
Examples:
  $ asynx result 1e054e15-ea11-4e56-a3d6-b138371690bc
  $ asynx result 1e054e15-ea11-4e56-a3d6-b138371690bc --wait --timeout 10

Prints one JSON line {"id","state","result","traceback"}. Exit codes: 0 SUCCESS (or not ready without
--wait) · 1 FAILURE / REVOKED / timed out · 64 bad usage · 69 broker unavailable.`)
    .action((id: string, f: CommonFlags & { wait?: boolean; timeout: string }) =>
      run(async () => {
        const waitMs = (num(f.timeout, '--timeout') ?? 60) * 1000; // a bad --timeout is a usage error, not a timeout
        const app = await makeApp(f, cwd);
        try {
          const backend = await app.backend();
          let body = await backend.get(id);
          if (f.wait) {
            try {
              body = await backend.wait(id, waitMs);
            } catch (err) {
              io.stderr.write(`asynx: ${errorMessage(err)}\n`);
              return ExitCode.failure;
            }
          }
          const state = body?.status ?? 'PENDING';
          io.stdout.write(`${JSON.stringify({ id, state, result: body?.result ?? null, traceback: body?.traceback ?? null })}\n`);
          return state === 'FAILURE' || state === 'REVOKED' ? ExitCode.failure : ExitCode.ok;
        } finally {
          await app.close();
        }
      }),
    );

  common(
    program
      .command('purge')
      .description('Delete every waiting message from the queues (running tasks are not affected)')
      .option('-Q, --queues <list>', 'comma-separated queues (default: the default queue)'),
  )
    .addHelpText('after', `
Examples:
  $ asynx purge
  $ asynx purge -Q emails,default

Exit codes: 0 purged (also when nothing was waiting) · 64 bad usage · 69 broker unavailable.`)
    .action((f: CommonFlags & { queues?: string }) =>
      run(async () => {
        const app = await makeApp(f, cwd);
        try {
          const config = await app.config();
          const queues = f.queues ? f.queues.split(',').map((q) => q.trim()).filter(Boolean) : [config.defaultQueue];
          const n = await (await app.transport()).purge(queues);
          io.stdout.write(`Purged ${n} message${n === 1 ? '' : 's'} from ${queues.join(', ')}.\n`);
          return ExitCode.ok;
        } finally {
          await app.close();
        }
      }),
    );
}
