// `asynx dead list|show|requeue|purge`: see, send back and delete the messages workers could not run.

import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import type { ChalkInstance } from 'chalk';
import { Asynx } from '../app/app.js';
import { ExitCode, UsageError } from '../errors.js';
import type { DeadLetter, DeadLetterDetail, DeadLetters } from '../dead/dead-letters.js';
import { openDeadLetters } from '../dead/open-dead-letters.js';
import { CommanderError } from 'commander';
import { badArguments, badNumberFlag, unknownOption } from './cli-errors.js';
import { closest } from './suggest.js';
import { addConnectionOptions, applyConnection, connectionFromFlags, type ConnectionFlags } from './connection-options.js';
import { painter } from './output.js';

/** Where `asynx dead` reads and writes. */
export interface DeadCliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Whether stdin and stdout are a terminal (purge may then ask instead of needing --yes). */
  isTTY: boolean;
  /** Where a confirmation is read from. @defaultValue process.stdin */
  stdin?: NodeJS.ReadableStream;
}

/** `requeue` with neither an id nor --all, or with both. */
export function requeueTarget(problem: string): UsageError {
  return new UsageError('asynx.cli.deadRequeueTarget', `asynx dead requeue ${problem}: give one id (asynx dead requeue 12) or --all (run asynx dead requeue --help for usage)`, { option: '--all' });
}

/** `purge` without --yes where nobody can be asked. */
export function purgeNeedsYes(): UsageError {
  return new UsageError('asynx.cli.deadPurgeNeedsYes', 'asynx dead purge deletes dead letters for good: add --yes to confirm (stdin is not a terminal, so it cannot ask)', { option: '--yes' });
}

/** Grammar errors in `asynx dead <sub>` name that subcommand's help (main.ts only knows the top-level ones). */
function pointAtOwnHelp(cmd: Command): Command {
  const path = `dead ${cmd.name()}`;
  return cmd.exitOverride((err: CommanderError) => {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') throw err;
    const first = err.message.replace(/^error: /, '').split('\n')[0]!;
    if (err.code === 'commander.unknownOption') {
      const option = /'([^']*)'/.exec(first)?.[1] ?? first;
      const known = cmd.options.map((o) => o.long ?? '').filter((o) => o !== '');
      throw unknownOption(path, option, option.startsWith('--') ? closest(option, known) : null);
    }
    throw badArguments(path, first, err.code);
  });
}

function limitFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 1) throw badNumberFlag('--limit', value, 'a whole number ≥ 1');
  return n;
}

const EXIT_CODES = 'Exit codes: 0 ok · 1 no dead letter with that id · 64 bad usage · 69 broker unavailable.';

const HELP = `
Dead letters are messages a worker could not run: an unknown task name, a message that is not valid
Celery protocol v2, or a poison task whose worker died on every delivery (ASYNX_MAX_DELIVERIES).
On SQLite they are rows of the dead_letters table (ids are row ids); on RabbitMQ, messages of the
queue asynx.dead, on Redis items of the list asynx.dead (ids are task ids). On RabbitMQ, reading the
queue takes the messages and gives them back in order (basic.get, then nack with requeue): list and
show leave them in place.

Examples:
  $ asynx dead list
  $ asynx dead list -Q celery --json --limit 20
  $ asynx dead show 1 --json
  $ asynx dead requeue 1
  $ asynx dead requeue --all -Q celery
  $ asynx dead purge --yes

${EXIT_CODES}`;

function cell(v: string | number | null, width: number): string {
  const s = v === null ? '-' : String(v);
  return s.length > width ? `${s.slice(0, width - 1)}…` : s.padEnd(width);
}

function table(rows: DeadLetter[], paint: ChalkInstance): string {
  if (!rows.length) return 'No dead letters.\n';
  const idW = Math.max(2, ...rows.map((r) => r.id.length));
  const head = `${cell('ID', idW)}  ${cell('QUEUE', 12)}  ${cell('TASK', 24)}  ${cell('ARGS', 16)}  ${cell('N', 3)}  ${cell('DEAD-LETTERED AT', 24)}  REASON`;
  const lines = rows.map((r) => `${cell(r.id, idW)}  ${cell(r.queue, 12)}  ${cell(r.task, 24)}  ${cell(r.argsRepr, 16)}  ${cell(r.deliveries, 3)}  ${cell(r.deadLetteredAt, 24)}  ${paint.red(r.reason)}`);
  return `${paint.bold(head)}\n${lines.join('\n')}\n`;
}

function details(d: DeadLetterDetail, paint: ChalkInstance): string {
  const field = (k: string, v: unknown) => `${paint.bold(`${k}:`.padEnd(17))} ${v === null || v === undefined ? '-' : String(v)}\n`;
  return (
    field('id', d.id) +
    field('queue', d.queue) +
    field('task', d.task) +
    field('task id', d.taskId) +
    field('reason', paint.red(d.reason)) +
    field('deliveries', d.deliveries) +
    field('dead-lettered at', d.deadLetteredAt) +
    field('args', d.argsRepr) +
    field('kwargs', d.kwargsRepr) +
    field('properties', JSON.stringify(d.properties)) +
    field('headers', JSON.stringify(d.headers)) +
    field('body', d.body)
  );
}

async function confirm(io: DeadCliIo, question: string): Promise<boolean> {
  const rl = createInterface({ input: io.stdin ?? process.stdin, output: io.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

/** Registers `asynx dead` and its four subcommands. */
export function registerDeadCommand(program: Command, run: (fn: () => Promise<number>) => void, io: DeadCliIo): void {
  const paint = painter(io.stdout, io.env);
  const withStore = async (flags: ConnectionFlags, fn: (dead: DeadLetters) => Promise<number>): Promise<number> => {
    const app = applyConnection(new Asynx({ cwd: io.cwd }), connectionFromFlags(flags, io.cwd));
    const dead = await openDeadLetters(app);
    try {
      return await fn(dead);
    } finally {
      await dead.close();
      await app.close();
    }
  };

  const dead = program
    .command('dead')
    .description('See, requeue and purge dead letters (messages a worker could not run)')
    .addHelpText('after', HELP);

  pointAtOwnHelp(addConnectionOptions(
    dead
      .command('list')
      .description('List dead letters, oldest first')
      .option('-Q, --queue <name>', 'only those taken from this queue')
      .option('--limit <n>', 'at most this many', '100')
      .option('--json', 'print a JSON array'),
  ))
    .addHelpText('after', `\nExamples:\n  $ asynx dead list\n  $ asynx dead list -Q celery --json --limit 20\n\n${EXIT_CODES}`)
    .action((f: ConnectionFlags & { queue?: string; limit?: string; json?: boolean }) =>
      run(async () => {
        const limit = limitFlag(f.limit);
        return withStore(f, async (d) => {
          const rows = await d.list({ ...(f.queue !== undefined ? { queue: f.queue } : {}), ...(limit !== undefined ? { limit } : {}) });
          io.stdout.write(f.json ? `${JSON.stringify(rows)}\n` : table(rows, paint));
          return ExitCode.ok;
        });
      }),
    );

  pointAtOwnHelp(addConnectionOptions(dead.command('show <id>').description('Show one dead letter with its message').option('--json', 'print a JSON object')))
    .addHelpText('after', `\nExamples:\n  $ asynx dead show 1\n  $ asynx dead show 1 --json\n\n${EXIT_CODES}`)
    .action((id: string, f: ConnectionFlags & { json?: boolean }) =>
      run(() =>
        withStore(f, async (d) => {
          const one = await d.show(id);
          io.stdout.write(f.json ? `${JSON.stringify(one)}\n` : details(one, paint));
          return ExitCode.ok;
        }),
      ),
    );

  pointAtOwnHelp(addConnectionOptions(
    dead
      .command('requeue [id]')
      .description('Send dead letters back to their queue, delivery count reset, and remove them from the store')
      .option('--all', 'every dead letter')
      .option('-Q, --queue <name>', 'send to this queue instead of the recorded one (needed when none is recorded)'),
  ))
    .addHelpText('after', `\nExamples:\n  $ asynx dead requeue 1\n  $ asynx dead requeue --all -Q celery\n\n${EXIT_CODES}`)
    .action((id: string | undefined, f: ConnectionFlags & { all?: boolean; queue?: string }) =>
      run(async () => {
        if (id === undefined && !f.all) throw requeueTarget('needs a target');
        if (id !== undefined && f.all) throw requeueTarget(`got both '${id}' and --all`);
        return withStore(f, async (d) => {
          const { requeued } = await d.requeue(f.all ? 'all' : id!, f.queue !== undefined ? { queue: f.queue } : {});
          for (const r of requeued) io.stdout.write(`Requeued ${r.id}${r.taskId && r.taskId !== r.id ? ` (task ${r.taskId})` : ''} to ${r.queue}.\n`);
          if (!requeued.length) io.stdout.write('No dead letters to requeue.\n');
          return ExitCode.ok;
        });
      }),
    );

  pointAtOwnHelp(addConnectionOptions(
    dead
      .command('purge')
      .description('Delete dead letters for good')
      .option('-Q, --queue <name>', 'only those taken from this queue')
      .option('-y, --yes', 'do not ask (required when stdin is not a terminal)'),
  ))
    .addHelpText('after', `\nExamples:\n  $ asynx dead purge --yes\n  $ asynx dead purge -Q celery --yes\n\n${EXIT_CODES}`)
    .action((f: ConnectionFlags & { queue?: string; yes?: boolean }) =>
      run(async () => {
        if (!f.yes && !(io.isTTY && Boolean(((io.stdin ?? process.stdin) as NodeJS.ReadStream).isTTY))) throw purgeNeedsYes();
        return withStore(f, async (d) => {
          if (!f.yes && !(await confirm(io, `Delete every dead letter${f.queue ? ` from ${f.queue}` : ''} for good? [y/N] `))) {
            io.stdout.write('Nothing deleted.\n');
            return ExitCode.ok;
          }
          const n = await d.purge(f.queue !== undefined ? { queue: f.queue } : {});
          io.stdout.write(`Purged ${n} dead letter${n === 1 ? '' : 's'}.\n`);
          return ExitCode.ok;
        });
      }),
    );
}
