// `asynx events`: a live dump of the Celery events on the broker, one line each (`celery events --dump`), or JSON lines.

import type { Command } from 'commander';
import { Asynx } from '../app/app.js';
import { ExitCode } from '../errors.js';
import { EventDumper } from '../events/dump.js';
import type { CeleryEvent } from '../events/event.js';
import { receiveEvents } from '../events/receiver.js';
import { redact } from '../util/redact.js';
import { badNumberFlag } from './cli-errors.js';
import { addConnectionOptions, applyConnection, connectionFromFlags, type ConnectionFlags } from './connection-options.js';
import { painter } from './output.js';

/** Where `asynx events` reads and writes. */
export interface EventsCliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

interface EventsFlags extends ConnectionFlags {
  json?: boolean;
  replay?: boolean;
  count?: string;
}

const HELP = `
Prints every Celery event on the broker as it arrives, from asynx and Python Celery nodes alike:
worker-online / heartbeat / offline always, task-* events from workers started with -E (or
workerSendTaskEvents) and task-sent from clients with taskSendSentEvent. Lines are shaped as
\`celery events --dump\` prints them; --json writes each event as one JSON object per line.
On RabbitMQ it reads the celeryev exchange through a queue of its own; on SQLite, the events table
of the broker database (its retention: eventsMaxCount, eventsMaxAge). Stops on INT or TERM.

Examples:
  $ asynx events
  $ asynx events --replay --count 2
  $ asynx events --json --replay --count 1
  $ asynx events -b amqp://guest:guest@127.0.0.1:5672//

Exit codes: 0 stopped (INT, TERM or --count reached) · 64 bad usage · 69 broker unavailable.`;

function countFlag(value: string | undefined): number | null {
  if (value === undefined) return null;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 1) throw badNumberFlag('--count', value, 'a whole number ≥ 1');
  return n;
}

/** Registers `asynx events` on the program. */
export function registerEventsCommand(program: Command, run: (fn: () => Promise<number>) => void, io: EventsCliIo): void {
  addConnectionOptions(program.command('events'))
    .description('Dump the Celery events on the broker as they happen, one line each (celery events --dump)')
    .option('--json', 'one JSON object per event and line')
    .option('--replay', 'SQLite: print the events still kept in the table first')
    .option('--count <n>', 'stop after this many events')
    .addHelpText('after', HELP)
    .action((flags: EventsFlags) => run(() => runEvents(flags, io)));
}

/** Runs the dump until INT/TERM or `--count`; resolves to the exit code. */
export async function runEvents(flags: EventsFlags, io: EventsCliIo): Promise<number> {
  const limit = countFlag(flags.count);
  const app = applyConnection(new Asynx({ cwd: io.cwd }), connectionFromFlags(flags, io.cwd));
  const config = await app.config();
  const paint = painter(io.stdout, io.env);
  const dumper = new EventDumper({ host: (s) => paint.bold(s), type: (s) => paint.cyan(s) });
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  let n = 0;
  const onEvent = (e: CeleryEvent): void => {
    if (limit !== null && n >= limit) return;
    n++;
    io.stdout.write(`${flags.json ? JSON.stringify(e) : dumper.line(e)}\n`);
    if (limit !== null && n >= limit) stop();
  };
  const receiver = await receiveEvents(config.brokerUrl, onEvent, { cwd: io.cwd, connectTimeoutMs: config.connectTimeoutMs, replay: flags.replay ?? false });
  if (!flags.json) io.stderr.write(`-> asynx events: capturing on ${redact(config.brokerUrl)}...\n`);
  const onSignal = (): void => stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await stopped;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await receiver.close();
  }
  return ExitCode.ok;
}
