// Node list and per-node worker options from the multi grammar (spec §4–§6), pure: no disk, no processes.

import { hostname as osHostname } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../errors.js';
import { expandMultiTemplate, expandWorkerTemplate, splitNodeName, type NodeName } from '../process/placeholders.js';
import { statusPathFor } from '../process/status-file.js';
import { parseArgs, type MultiSettings, type ParsedArgs, type RawOption } from './args.js';

function badIndex(text: string, message: string): UsageError {
  return new UsageError('asynx.multi.badIndex', message, { value: text });
}

/** Default pidfile template (spec decision 2): project-local, so nothing needs root. */
export const DEFAULT_PIDFILE = './.asynx/run/%n.pid';
/** Default logfile template: `%I` gives each pool child its own file. */
export const DEFAULT_LOGFILE = './.asynx/log/%n%I.log';

/** One worker option after merging and `%` expansion. */
export interface WorkerOption {
  key: string;
  value: string | null;
  short: boolean;
}

/** How a node's worker is launched: the program and the words around the options. */
export interface LaunchCommand {
  /** `--executable`, else the node binary running multi. */
  executable: string;
  /** `bin/asynx worker --detach`, or the words of `--cmd`. */
  base: string[];
  /** The words of `--append` (after the options, before `--`). */
  append: string[];
}

/**
 * One node, typed: its name, its paths, the worker options it gets, and its passthrough. Built once from the
 * grammar; the argv is rendered from it only to spawn or show the node ({@link nodeCommand}).
 */
export interface MultiNode {
  /** 1-based position in the node list. */
  index: number;
  name: NodeName;
  /** `--pidfile` value as passed to the worker (`%n…` expanded, `%i/%I/%%` kept). */
  pidfileArg: string;
  /** Absolute pidfile path of the node's main process. */
  pidfile: string;
  /** `--logfile` value as passed to the worker (`%I` kept). */
  logfileArg: string;
  /** Absolute logfile path of the node's main process. */
  logfile: string;
  /** Absolute path of the node's status file. */
  statusFile: string;
  /** `-c` / `--concurrency` for this node (per-node value merged), null when not given. */
  concurrency: string | null;
  /** `-Q` / `--queues` for this node, null when not given. */
  queues: string | null;
  /** `-l` / `--loglevel` for this node, null when not given. */
  loglevel: string | null;
  /**
   * Every worker option in order: user options (per-node values in place; concurrency, queues and loglevel
   * included, as written), then `-n` and the pidfile/logfile defaults.
   */
  options: WorkerOption[];
  /** What followed `--`: given to the worker after its own `--`, verbatim (not %-expanded). */
  passthrough: string[];
  launch: LaunchCommand;
}

/** Everything a multi command needs, compiled once from argv. */
export interface MultiPlan {
  nodes: MultiNode[];
  settings: MultiSettings;
  signal: NodeJS.Signals | null;
  passthrough: string[];
  /** Directory relative paths resolve against (the host project's). */
  cwd: string;
}

/** Where `asynx` lives: `bin/asynx` of this package (from dist/multi/ or src/multi/). */
export function asynxBin(): string {
  return fileURLToPath(new URL('../../bin/asynx', import.meta.url));
}

/** The host part of plain node names: `--suffix`, else `--hostname`, else the OS host name. */
export function hostPart(settings: MultiSettings): string {
  if (settings.suffix !== null) return settings.suffix === '""' || settings.suffix === "''" ? '' : settings.suffix;
  return settings.hostname ?? osHostname();
}

/** Node names from the positionals (spec §4): one integer N is range mode, anything else a list of names. */
export function nodeNames(parsed: ParsedArgs): NodeName[] {
  const { positionals, settings } = parsed;
  const host = hostPart(settings);
  const localHost = settings.hostname ?? osHostname();
  const only = positionals[0];
  if (positionals.length === 1 && only !== undefined && /^\d+$/.test(only)) {
    const count = Number(only);
    if (count === 0) throw new UsageError('asynx.multi.noNodes', `'0' names no node: give a count of 1 or more (multi start 3) or node names (multi start w1 w2)`, { value: only });
    return Array.from({ length: count }, (_, k) => splitNodeName(`${settings.rangePrefix}${k + 1}@${host}`, host));
  }
  return positionals.map((name) => (name.includes('@') ? splitNodeName(name, localHost) : splitNodeName(`${settings.prefix}${name}@${host}`, host)));
}

function indexOrFail(text: string, count: number): number {
  const n = Number(text);
  if (n === 0) throw badIndex(text, `Indexes start at 1 got: '${text}' (per-node options like -c:1 count nodes from 1)`);
  if (n > count) throw badIndex(text, `No node at index '${text}': there ${count === 1 ? 'is 1 node' : `are ${count} nodes`}`);
  return n - 1;
}

/**
 * The nodes a `:NS` suffix selects: 1-based indexes, dash ranges, comma lists, short or full node names.
 * Ranges and index lists work in named mode too (Celery silently ignores them there). With `strict` (the
 * command line), a name that matches no node is a usage error: Celery ignores it silently, so a typo such as
 * `-c:w5 3` went unnoticed. The programmatic API is not strict: one per-node map (`concurrency: { a: 2 }`)
 * serves every call, including calls on a subset of the nodes.
 */
export function selectNodes(namespace: string, names: readonly NodeName[], strict = false): Set<number> {
  const selected = new Set<number>();
  for (const part of namespace.split(',')) {
    const range = /^(\d+)-(\d+)$/.exec(part);
    if (/^\d+$/.test(part)) {
      selected.add(indexOrFail(part, names.length));
    } else if (range !== null) {
      const from = indexOrFail(range[1] as string, names.length);
      const to = indexOrFail(range[2] as string, names.length);
      for (let k = from; k <= to; k++) selected.add(k);
    } else {
      const before = selected.size;
      names.forEach((n, k) => {
        if (n.full === part || n.short === part) selected.add(k);
      });
      if (strict && selected.size === before && !names.some((n) => n.full === part || n.short === part)) {
        throw new UsageError('asynx.multi.unknownNode', `Per-node option ':${part}' names no node of this command (nodes: ${names.map((n) => n.short).join(', ')}): use a node name, a full name@host, or a 1-based index`, { value: part });
      }
    }
  }
  return selected;
}

/** `-f` is the short form of `--logfile`; both name the logfile option. */
function optionRole(key: string): 'pidfile' | 'logfile' | null {
  if (key === '--pidfile') return 'pidfile';
  if (key === '--logfile' || key === '-f') return 'logfile';
  return null;
}

/** The worker options the plan types, by their spellings (short and long are the same option to the worker). */
const TYPED: Record<string, 'concurrency' | 'queues' | 'loglevel'> = {
  '-c': 'concurrency', '--concurrency': 'concurrency', '-Q': 'queues', '--queues': 'queues', '-l': 'loglevel', '--loglevel': 'loglevel',
};

/** Merges global and per-node options for one node: repeated keys keep the last value at the first position. */
function mergeOptions(options: readonly RawOption[], nodeIndex: number, selections: ReadonlyMap<RawOption, Set<number>>): RawOption[] {
  const merged = new Map<string, RawOption>();
  for (const opt of options) if (opt.namespace === null) merged.set(opt.key, opt);
  for (const opt of options) if (opt.namespace !== null && selections.get(opt)?.has(nodeIndex)) merged.set(opt.key, opt);
  return [...merged.values()];
}

/** Splits a `--cmd` / `--append` string shell-style: whitespace separates words, single and double quotes group. */
export function splitCommand(text: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  let quote: string | null = null;
  for (const ch of text) {
    if (quote !== null) {
      if (ch === quote) quote = null;
      else word += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      word ??= '';
    } else if (/\s/.test(ch)) {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word = (word ?? '') + ch;
    }
  }
  if (word !== null) words.push(word);
  return words;
}

function optionArgs(opt: WorkerOption): string[] {
  if (opt.value === null) return [opt.key];
  return opt.short ? [opt.key, opt.value] : [`${opt.key}=${opt.value}`];
}

/**
 * The argv that starts the node, executable first: `<node> bin/asynx worker --detach <options> <append> [-- <passthrough>]`.
 * The `--` is kept (as `celery multi` keeps it), so the worker reads what follows as its `key=value` overrides.
 */
export function nodeCommand(node: MultiNode): string[] {
  const { executable, base, append } = node.launch;
  const rest = node.passthrough.length > 0 ? ['--', ...node.passthrough] : [];
  return [executable, ...base, ...node.options.flatMap(optionArgs), ...append, ...rest];
}

/** Builds the typed node list. `cwd` resolves relative pidfile/logfile paths. */
export function planFromParsed(parsed: ParsedArgs, cwd: string, opts: { strictNamespaces?: boolean } = {}): MultiPlan {
  const names = nodeNames(parsed);
  const selections = new Map<RawOption, Set<number>>();
  for (const opt of parsed.options) if (opt.namespace !== null) selections.set(opt, selectNodes(opt.namespace, names, opts.strictNamespaces ?? false));
  const { settings } = parsed;
  const executable = settings.executable ?? process.execPath;
  const nodes = names.map((name, k): MultiNode => {
    const options: WorkerOption[] = [];
    const typed = { concurrency: null as string | null, queues: null as string | null, loglevel: null as string | null };
    let pidfileArg: string | null = null;
    let logfileArg: string | null = null;
    for (const opt of mergeOptions(parsed.options, k, selections)) {
      const role = optionRole(opt.key);
      const value = opt.value === null ? null : expandMultiTemplate(opt.value, name, role === null ? 'resolve' : 'keep');
      if (role === 'pidfile') pidfileArg = value;
      if (role === 'logfile') logfileArg = value;
      const field = TYPED[opt.key];
      if (field !== undefined) typed[field] = value;
      options.push({ key: opt.key, value, short: opt.short });
    }
    options.push({ key: '-n', value: name.full, short: true });
    if (pidfileArg === null) {
      pidfileArg = expandMultiTemplate(DEFAULT_PIDFILE, name, 'keep');
      options.push({ key: '--pidfile', value: pidfileArg, short: false });
    }
    if (logfileArg === null) {
      logfileArg = expandMultiTemplate(DEFAULT_LOGFILE, name, 'keep');
      options.push({ key: '--logfile', value: logfileArg, short: false });
    }
    const pidfile = resolve(cwd, expandWorkerTemplate(pidfileArg, name.full));
    const base = settings.cmd !== null ? splitCommand(expandMultiTemplate(settings.cmd, name)) : [asynxBin(), 'worker', '--detach'];
    const append = settings.append !== null ? splitCommand(expandMultiTemplate(settings.append, name)) : [];
    return {
      index: k + 1, name, pidfileArg, pidfile, logfileArg,
      logfile: resolve(cwd, expandWorkerTemplate(logfileArg, name.full)),
      statusFile: statusPathFor(pidfile), ...typed, options, passthrough: [...parsed.passthrough],
      launch: { executable, base, append },
    };
  });
  return { nodes, settings, signal: parsed.signal, passthrough: parsed.passthrough, cwd };
}

/** argv after the command → plan. Throws {@link UsageError} for grammar errors. */
export function planMulti(argv: readonly string[], cwd: string): MultiPlan {
  return planFromParsed(parseArgs(argv), cwd, { strictNamespaces: true });
}

/** Quotes one argument for display so that a shell would read it back as one word. */
export function shellQuote(arg: string): string {
  if (arg !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A command line for display (`show`, `get`, `--verbose`). */
export function formatCommand(command: readonly string[]): string {
  return command.map(shellQuote).join(' ');
}
