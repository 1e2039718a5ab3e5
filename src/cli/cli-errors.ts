// The CLI's usage errors: one factory per fault, so each code is built (and worded) in one place.

import { UsageError } from '../errors.js';

/** `asynx frob`: names the word and, when one is close, the command meant. */
export function unknownCommand(name: string, suggestion: string | null): UsageError {
  const hint = suggestion ? `(did you mean '${suggestion}'?)` : '(run asynx --help for the list of commands)';
  return new UsageError('asynx.cli.unknownCommand', `unknown command '${name}' ${hint}`, { value: name, suggestion });
}

/** `asynx worker --bogus`: names the option and the command whose help lists the right ones. */
export function unknownOption(command: string | null, option: string, suggestion: string | null): UsageError {
  const where = command ? `asynx ${command}` : 'asynx';
  const meant = suggestion ? ` (did you mean '${suggestion}'?)` : '';
  return new UsageError('asynx.cli.unknownOption', `unknown option '${option}'${meant} (run ${where} --help for usage)`, { option, command, suggestion });
}

/** Any other grammar error commander found (missing argument, missing value, too many arguments). */
export function badArguments(command: string | null, problem: string, commanderCode: string): UsageError {
  const where = command ? `asynx ${command}` : 'asynx';
  return new UsageError('asynx.cli.badArguments', `${problem} (run ${where} --help for usage)`, { command, commanderCode });
}

/** A flag whose value must be JSON of one kind (`--args`, `--kwargs`). */
export function badJson(flag: string, value: string, kind: 'array' | 'object', parseError?: string): UsageError {
  const example = kind === 'array' ? `'[1, 2]'` : `'{"to": "a@b.c"}'`;
  const problem = parseError === undefined ? `must be a JSON ${kind}` : `must be JSON (${parseError})`;
  return new UsageError('asynx.cli.badJson', `${flag} ${problem}, e.g. ${flag} ${example}`, { option: flag, value });
}

/** A flag whose value must be a number (`want` says which: "a whole number ≥ 1", "a number of seconds ≥ 0"). */
export function badNumberFlag(flag: string, value: string, want: string): UsageError {
  return new UsageError('asynx.cli.badNumber', `${flag} must be ${want}, got '${value}'`, { option: flag, value });
}

/** `--priority` outside 0..255. */
export function badPriority(value: string): UsageError {
  return new UsageError('asynx.cli.badPriority', `--priority must be a whole number 0..255, got '${value}'`, { option: '--priority', value });
}

/** `--eta` that is not a time. */
export function badEta(value: string): UsageError {
  return new UsageError('asynx.cli.badEta', `--eta must be an ISO-8601 time such as 2026-12-01T12:00:00Z, got '${value}'`, { option: '--eta', value });
}
