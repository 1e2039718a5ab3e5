// The errors of periodic tasks, each code built in one place: a bad entry, a duplicate name, unusable state.

import { AsynxError, ExitCode, UsageError } from '../errors.js';

function shown(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return String(value);
}

/** A periodic entry option (schedule, task, args, catchUp …) is wrong: names the entry, the option and the value. */
export function badPeriodicOption(entry: string, option: string, value: unknown, expected: string): UsageError {
  return new UsageError('asynx.periodic.badOption', `Periodic entry '${entry}': ${option} ${expected}, got ${shown(value)}`, { entry, option, value });
}

/** Two entries share a name (in the app, or twice in the config file). */
export function duplicatePeriodicError(entry: string): UsageError {
  return new UsageError('asynx.periodic.duplicate', `Periodic entry '${entry}' is defined twice: give each app.periodic() entry a unique name`, { entry });
}

/** The schedule state file cannot be read or written (RabbitMQ broker). */
export function scheduleFileError(path: string, what: string, cause: unknown): AsynxError {
  return new AsynxError('asynx.beat.scheduleFile', `Cannot ${what} the beat schedule file ${path}: ${(cause as Error)?.message ?? String(cause)}; pass a writable --schedule-file`, {
    exitCode: ExitCode.cantCreate,
    cause,
    facts: { path },
  });
}
