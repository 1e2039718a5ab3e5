// `asynx call`, `asynx result`, `asynx purge`: send a task, read a result, empty queues.

import { resolve } from 'node:path';
import type { Command } from 'commander';
import { Asynx } from '../app/app.js';
import type { AsynxOptions } from '../config.js';
import { ExitCode, UsageError } from '../errors.js';
import { loadApp, resolveAppModule } from '../worker/load-app.js';
import { durationSeconds } from '../util/duration.js';

interface CommonFlags {
  app?: string;
  broker?: string;
  resultBackend?: string;
  config?: string;
}

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

async function makeApp(flags: CommonFlags, cwd: string): Promise<Asynx> {
  if (flags.config) process.env.ASYNX_CONFIG = resolve(cwd, flags.config);
  const app = flags.app ? await loadApp(resolveAppModule(flags.app, cwd)) : new Asynx({ cwd });
  const o: AsynxOptions = {};
  if (flags.broker) o.brokerUrl = flags.broker;
  if (flags.resultBackend) o.resultBackend = flags.resultBackend;
  app.configure(o);
  return app;
}

function parseJson(value: string | undefined, flag: string, kind: 'array' | 'object'): unknown {
  if (value === undefined) return kind === 'array' ? [] : {};
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch (err) {
    throw new UsageError('asynx.cli.badJson', `${flag} must be JSON (${(err as Error).message}), e.g. ${kind === 'array' ? `--args '[1, 2]'` : `--kwargs '{"to": "a@b.c"}'`}`, { option: flag, value });
  }
  if (kind === 'array' && !Array.isArray(v)) throw new UsageError('asynx.cli.badJson', `${flag} must be a JSON array, e.g. '[1, 2]'`, { option: flag, value });
  if (kind === 'object' && (typeof v !== 'object' || v === null || Array.isArray(v))) throw new UsageError('asynx.cli.badJson', `${flag} must be a JSON object, e.g. '{"a": 1}'`, { option: flag, value });
  return v;
}

/** A duration flag in seconds: `30` is seconds, `'250ms'`, `'2m'` carry a unit (src/util/duration.ts). */
function num(value: string | undefined, flag: string): number | undefined {
  return value === undefined ? undefined : durationSeconds(value, flag);
}

function common(cmd: Command): Command {
  return cmd
    .option('-A, --app <module>', 'app module (for task defaults such as queue and priority)')
    .option('-b, --broker <url>', 'broker URL')
    .option('--result-backend <url>', 'result backend URL')
    .option('--config <path>', 'config file');
}

/** Registers call / result / purge. */
export function registerControlCommands(program: Command, run: (fn: () => Promise<number>) => void, io: CliIo): void {
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
        const priority = f.priority === undefined ? undefined : Number(f.priority);
        if (priority !== undefined && (!Number.isInteger(priority) || priority < 0 || priority > 255)) throw new UsageError('asynx.cli.badPriority', `--priority must be 0..255, got '${String(f.priority)}'`);
        const timeout = num(f.timeout as string, '--timeout') ?? 60; // checked before anything is sent
        const app = await makeApp(f, process.cwd());
        try {
          const r = await app.sendTask(task, args, kwargs, {
            countdown: num(f.countdown as string | undefined, '--countdown'),
            eta: f.eta as string | undefined,
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
            io.stderr.write(`${r.id}: ${(err as Error).name}: ${(err as Error).message}\n`);
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
        const app = await makeApp(f, process.cwd());
        try {
          const backend = await app.backend();
          let body = await backend.get(id);
          if (f.wait) {
            try {
              body = await backend.wait(id, waitMs);
            } catch (err) {
              io.stderr.write(`${(err as Error).message}\n`);
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
  $ asynx purge -Q emails,default`)
    .action((f: CommonFlags & { queues?: string }) =>
      run(async () => {
        const app = await makeApp(f, process.cwd());
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
