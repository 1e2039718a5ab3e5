// The remote-control client's errors: one factory per fault, so each code is built (and worded) in one place.

import { AsynxError, ExitCode, UsageError } from '../errors.js';

/** `destination` that is not a list of node names (`-d ''`, `-d ,`). */
export function badDestination(value: unknown): UsageError {
  return new UsageError('asynx.control.badDestination', `The destination must be a list of node names such as w1@host, got ${JSON.stringify(value)}`, { option: 'destination', value });
}

/** A reply timeout that is not a positive number of milliseconds. */
export function badControlTimeout(value: unknown): UsageError {
  return new UsageError('asynx.control.badTimeout', `The remote-control timeout must be a positive number of milliseconds, got ${JSON.stringify(value)}`, { option: 'timeoutMs', value });
}

/** `broadcast()` after `close()`. */
export function controlClientClosed(): AsynxError {
  return new AsynxError('asynx.control.closed', 'The remote-control client is closed: open another with openControlClient()');
}

/** A method the CLI does not know (Celery's click.Choice of Panel commands). */
export function unknownControlMethod(kind: 'inspect' | 'control', method: string, suggestion: string | null, known: readonly string[]): UsageError {
  const hint = suggestion ? ` (did you mean '${suggestion}'?)` : '';
  return new UsageError('asynx.control.unknownMethod', `unknown ${kind} method '${method}'${hint}; one of: ${known.join(', ')}`, { value: method, suggestion });
}

/** Positional arguments that do not fit the method (Celery: "Command 'x' takes arguments: <signature>"). */
export function badControlArguments(method: string, signature: string, problem: string): UsageError {
  return new UsageError('asynx.control.badArguments', `Command '${method}' takes arguments: ${signature || '(none)'}; ${problem}`, { value: method });
}

/** No node answered within the timeout: Celery's "No nodes replied within time constraint". Exit 1. */
export function noNodesReplied(method: string, timeoutMs: number, destination: readonly string[] | null): AsynxError {
  const who = destination && destination.length ? ` (asked ${destination.join(', ')})` : '';
  return new AsynxError('asynx.control.noReply', `No nodes replied within time constraint: no answer to '${method}' in ${timeoutMs / 1000} s${who}; is a worker running on this broker? (try a longer --timeout)`, {
    exitCode: ExitCode.failure,
    facts: { timedOut: true, value: method, destination },
  });
}

/** SQLite: the broker file does not exist, so no worker has used it (nothing is created to find that out). Exit 1. */
export function noBrokerFile(path: string): AsynxError {
  return new AsynxError('asynx.control.noBrokerFile', `No nodes replied within time constraint: there is no broker file at ${path} (no worker has used this broker; check -b / ASYNX_BROKER_URL)`, { exitCode: ExitCode.failure, facts: { path } });
}

/** `--signal` that names no signal of this platform. */
export function badSignal(value: string): UsageError {
  return new UsageError('asynx.control.badSignal', `--signal must be a signal name such as SIGTERM, SIGKILL or KILL (or its number), got '${value}'`, { option: '--signal', value });
}

/** `--signal` without `--terminate` (the signal is only sent to a running task being terminated). */
export function signalWithoutTerminate(): UsageError {
  return new UsageError('asynx.control.signalWithoutTerminate', '--signal is only used with --terminate: asynx revoke <id> --terminate --signal SIGKILL', { option: '--signal' });
}
