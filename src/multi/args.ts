// The namespaced option grammar of `celery multi` (spec §5), pure: argv → positionals, options, signal, passthrough.

import { constants } from 'node:os';
import { UsageError } from '../errors.js';
import type { Duration } from '../util/duration.js';

function missingValue(option: string, how: string): UsageError {
  return new UsageError('asynx.multi.missingValue', `Option ${option} needs a value: ${how}`, { option });
}

/** One option as written: `-c 4` (short), `--loglevel=DEBUG` (long), `--flag` (value null). */
export interface RawOption {
  /** Literal spelling without the namespace: `-c`, `--loglevel`. Keys are not normalised (spec §5). */
  key: string;
  value: string | null;
  short: boolean;
  /** The `:NS` suffix: `1-3`, `w1,w2`, `w1@host`; null for a global option. */
  namespace: string | null;
}

/** Options that `multi` itself consumes: never forwarded to workers. */
export interface MultiSettings {
  hostname: string | null;
  prefix: string;
  suffix: string | null;
  rangePrefix: string;
  cmd: string | null;
  append: string | null;
  executable: string | null;
  /** Durations as written: a bare number (or numeric string) is seconds; resolved by the supervisor. */
  startTimeout: Duration | null;
  timeout: Duration | null;
  killAfter: Duration | null;
  rolling: boolean;
  allAtOnce: boolean;
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  noColor: boolean;
  nosplash: boolean;
}

/** argv after the command, split into its parts. */
export interface ParsedArgs {
  positionals: string[];
  /** Worker options in the order written, namespaced ones included. */
  options: RawOption[];
  /** Everything after `--` (without it), given verbatim (not %-expanded) to every worker after a `--`. */
  passthrough: string[];
  /** Signal named by a `-INT` / `-SIGINT` / `-9` token, e.g. `SIGINT`; null when none was given. */
  signal: NodeJS.Signals | null;
  settings: MultiSettings;
}

/** Long options consumed by multi that take a value (`--name=value`), and the settings field they fill. */
const VALUE_SETTINGS: Record<string, keyof MultiSettings> = {
  '--hostname': 'hostname',
  '--prefix': 'prefix',
  '--suffix': 'suffix',
  '--range-prefix': 'rangePrefix',
  '--cmd': 'cmd',
  '--append': 'append',
  '--executable': 'executable',
  '--start-timeout': 'startTimeout',
  '--timeout': 'timeout',
  '--kill-after': 'killAfter',
};

/** Flags consumed by multi (spec §2 reserved options, plus asynx's own). `-q` is the only short one. */
const FLAG_SETTINGS: Record<string, keyof MultiSettings> = {
  '--rolling': 'rolling',
  '--all-at-once': 'allAtOnce',
  '--json': 'json',
  '--quiet': 'quiet',
  '-q': 'quiet',
  '--verbose': 'verbose',
  '--no-color': 'noColor',
  '--nosplash': 'nosplash',
};

/** Dropped without effect: multi always adds `--detach` itself. */
const IGNORED = new Set(['--detach', '-D']);

/** `-INT`, `-SIGINT`, `-KILL`, `-9`, `-15` → the signal; null when the token is not a signal. */
export function parseSignalToken(token: string): NodeJS.Signals | null {
  const m = /^-(?:SIG)?([A-Z][A-Z0-9]*)$/.exec(token);
  if (m !== null) {
    const name = `SIG${m[1]}`;
    return name in constants.signals ? (name as NodeJS.Signals) : null;
  }
  const n = /^-(\d+)$/.exec(token);
  if (n !== null) {
    const num = Number(n[1]);
    const found = Object.entries(constants.signals).find(([, v]) => v === num);
    return found === undefined ? null : (found[0] as NodeJS.Signals);
  }
  return null;
}

function defaultSettings(): MultiSettings {
  return {
    hostname: null, prefix: '', suffix: null, rangePrefix: 'asynx', cmd: null, append: null, executable: null,
    startTimeout: null, timeout: null, killAfter: null, rolling: false, allAtOnce: false, json: false,
    quiet: false, verbose: false, noColor: false, nosplash: false,
  };
}

function splitNamespace(name: string): [string, string | null] {
  const colon = name.indexOf(':');
  return colon === -1 ? [name, null] : [name.slice(0, colon), name.slice(colon + 1)];
}

/**
 * Parses the arguments that follow the command. Node names first, then options; `-x value` takes the next token
 * as its value unless it starts with `-`; long options take their value only after `=` (a space-separated value
 * is a usage error with a hint, where Celery would silently treat it as a node name).
 */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  const settings = defaultSettings();
  const positionals: string[] = [];
  const options: RawOption[] = [];
  let passthrough: string[] = [];
  let signal: NodeJS.Signals | null = null;
  const tokens = argv.filter((t) => t !== '');
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as string;
    const next = tokens[i + 1];
    if (token === '--') {
      // The rest goes to every worker verbatim; the command line renders it after its own `--` (nodeCommand),
      // as `celery multi` does, so the worker reads it as its `key=value` overrides.
      passthrough = tokens.slice(i + 1);
      break;
    }
    if (!token.startsWith('-') || token === '-') {
      positionals.push(token);
      continue;
    }
    const sig = parseSignalToken(token);
    if (sig !== null) {
      signal = sig;
      continue;
    }
    if (IGNORED.has(token)) continue;
    const flag = FLAG_SETTINGS[token];
    if (flag !== undefined) {
      (settings[flag] as boolean) = true;
      continue;
    }
    if (token.startsWith('--')) {
      const eq = token.indexOf('=');
      const [key, namespace] = splitNamespace(eq === -1 ? token : token.slice(0, eq));
      const value = eq === -1 ? null : token.slice(eq + 1);
      const setting = VALUE_SETTINGS[key];
      if (value === null && next !== undefined && !next.startsWith('-')) {
        const written = eq === -1 ? token : token.slice(0, eq);
        throw new UsageError('asynx.multi.spacedValue', `Option ${written} takes its value after '=': did you mean ${written}=${next}? (a long option followed by a space-separated value would make '${next}' a node name; put node names before the options)`, { option: written, value: next });
      }
      if (setting !== undefined && namespace === null) {
        if (value === null) throw missingValue(key, `write ${key}=<value>`);
        (settings[setting] as string) = value;
        continue;
      }
      options.push({ key, value, short: false, namespace });
      continue;
    }
    const [key, namespace] = splitNamespace(token);
    const value = next !== undefined && !next.startsWith('-') ? next : null;
    if (value !== null) i++;
    if (key === '-n' && namespace === null) {
      if (value === null) throw missingValue('-n', 'give a host name: -n <host>');
      // --hostname wins over -n (spec §4)
      if (settings.hostname === null || !tokens.some((t) => t.startsWith('--hostname='))) settings.hostname = value;
      continue;
    }
    options.push({ key, value, short: true, namespace });
  }
  return { positionals, options, passthrough, signal, settings };
}
