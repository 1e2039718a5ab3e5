// Programmatic `multi` for host projects: the CLI's node grammar and verbs as functions resolving to per-node results.

/**
 * `multi` wires a host project's own `manage start/stop/restart/status` in a few lines. Nothing is printed
 * unless `output` is given, nothing exits; every function resolves to `{ ok, nodes: [per-node result] }`.
 *
 * @example
 * ```js
 * // manage.mjs — node manage.mjs start|stop|restart|status
 * import { multi } from 'asynx';
 *
 * const nodes = ['web', 'reports'];
 * const opts = { app: './tasks.mjs', concurrency: { web: 4, reports: 1 }, timeout: 120, killAfter: 150, output: process.stdout };
 * const verbs = { start: multi.start, stop: multi.stopwait, restart: multi.restart, status: multi.status };
 * const verb = verbs[process.argv[2]];
 * if (!verb) throw new Error('usage: manage.mjs start|stop|restart|status');
 * const result = await verb(nodes, opts);
 * if (process.argv[2] === 'status') console.table(result.nodes.map(({ node, state, pid, processed }) => ({ node, state, pid, processed })));
 * process.exitCode = result.ok ? 0 : 1;
 * ```
 * @see `asynx multi help` for the same verbs from the shell; both share one grammar, so they interoperate.
 */

import { dirname } from 'node:path';
import { UsageError } from '../errors.js';
import type { Duration } from '../util/duration.js';
import { parseArgs, parseSignalToken, type ParsedArgs, type RawOption } from './args.js';
import type { MultiListeners, StartResult } from './events.js';
import { planFromParsed, type MultiPlan } from './nodes.js';
import { formatStatusTable, renderEvents } from './render.js';
import { discoverNodes } from './discover.js';
import type { NodeStatusRow } from './status.js';
import { resolveSupervisorOptions, Supervisor, type MultiResult, type RestartResult, type StopResult, type StopWaitResult } from './supervisor.js';

export type { MultiEventMap, MultiListeners, NodePid, StartResult } from './events.js';
export type { NodeStatusRow, NodeRowState } from './status.js';
export type { MultiResult, RestartResult, StopResult, StopWaitResult } from './supervisor.js';

/**
 * Options shared by every `multi` function. They map one to one onto `asynx multi` arguments, so a node started
 * from code can be stopped from the shell and the other way round — as long as both name the same nodes and the
 * same `pidfile` template (multi keeps no state besides pidfiles).
 */
export interface MultiOptions {
  /** The host project's directory: relative paths and the workers' cwd. @defaultValue `process.cwd()` */
  cwd?: string;
  /** Environment of the spawned workers. @defaultValue `process.env` */
  env?: NodeJS.ProcessEnv;
  /** `-A`: module exporting the app (default export). */
  app?: string;
  /** `-c`: pool size, for all nodes or per node (`{ w1: 8 }`, `{ '1-3': 4 }`: keys are `:NS` namespaces). */
  concurrency?: number | Record<string, number>;
  /** `-Q`: queues to consume. */
  queues?: string | string[];
  /** `-l`: log level. */
  loglevel?: string;
  /** `-b`: broker URL. */
  broker?: string;
  /** `--result-backend`. */
  resultBackend?: string;
  /** `--config`: config file path. */
  config?: string;
  /** `--pidfile` template. @defaultValue `./.asynx/run/%n.pid` */
  pidfile?: string;
  /** `--logfile` template. @defaultValue `./.asynx/log/%n%I.log` */
  logfile?: string;
  /** `--hostname`: host part of plain node names. @defaultValue the OS host name */
  hostname?: string;
  /** `--prefix` for plain node names. */
  prefix?: string;
  /** `--suffix`: replaces the host part. */
  suffix?: string;
  /** `--range-prefix`: names of range-mode nodes. @defaultValue `asynx` */
  rangePrefix?: string;
  /** `--executable`: the node binary. @defaultValue `process.execPath` */
  executable?: string;
  /** More arguments in multi's grammar, e.g. `['-c:w1', '8', '--max-tasks-per-child=100']`. */
  extraArgs?: string[];
  /** Passed verbatim after `--` to every worker. */
  passthrough?: string[];
  /** How long to wait for each node to report ready: seconds, or a string with a unit (`'500ms'`). @defaultValue 30 */
  startTimeout?: Duration;
  /**
   * stopwait/restart: give up waiting for a node to exit after this long (seconds, or `'2m'`); before a later
   * `killAfter` it only reports the nodes still alive, and the wait goes on to the KILL. @defaultValue no limit
   */
  timeout?: Duration;
  /** stopwait/restart: KILL nodes still alive this long after the signal (seconds, or `'90s'`), then wait for them to go. @defaultValue never */
  killAfter?: Duration;
  /** stop/stopwait/restart signal. @defaultValue `'SIGTERM'` */
  signal?: NodeJS.Signals | number;
  /** restart one node at a time (false: Celery's all at once). @defaultValue true */
  rolling?: boolean;
  /** Event listeners, e.g. `{ 'node:start': (r) => log(r) }`. */
  on?: MultiListeners;
  /** Print `celery multi`-style progress lines to this stream. @defaultValue nothing is printed */
  output?: NodeJS.WritableStream;
  /** Colour the printed lines. @defaultValue false */
  color?: boolean;
}

/** Nodes: a count (`3` → asynx1..3) or names (`['w1', 'w2', 'img@host']`). */
export type MultiNodes = number | readonly string[];

/** The worker options of {@link MultiOptions} as grammar options, in the order `multiArgv` writes them. */
function workerOptions(opts: MultiOptions): RawOption[] {
  const out: RawOption[] = [];
  const long = (key: string, value: string | undefined, namespace: string | null = null): void => {
    if (value !== undefined) out.push({ key: `--${key}`, value, short: false, namespace });
  };
  long('app', opts.app);
  if (typeof opts.concurrency === 'number') long('concurrency', String(opts.concurrency));
  else if (opts.concurrency !== undefined) for (const [ns, n] of Object.entries(opts.concurrency)) long('concurrency', String(n), ns);
  long('queues', Array.isArray(opts.queues) ? opts.queues.join(',') : (opts.queues as string | undefined));
  long('loglevel', opts.loglevel);
  long('broker', opts.broker);
  long('result-backend', opts.resultBackend);
  long('config', opts.config);
  long('pidfile', opts.pidfile);
  long('logfile', opts.logfile);
  return out;
}

function signalOf(signal: NodeJS.Signals | number | undefined): NodeJS.Signals | null {
  if (signal === undefined) return null;
  const parsed = parseSignalToken(typeof signal === 'number' ? `-${signal}` : `-${signal.replace(/^SIG/, '')}`);
  if (parsed === null) throw new UsageError('asynx.multi.badSignal', `Option signal: ${String(signal)} is not a signal: use a name like 'SIGTERM' or a number like 15`, { option: 'signal', value: String(signal) });
  return parsed;
}

/**
 * Nodes + options → the parsed form the plan is built from, directly (no argv round trip). `extraArgs` are in
 * multi's grammar and parsed once; typed options come first, then the extra ones, as {@link multiArgv} writes them.
 */
function parsedFromOptions(nodes: MultiNodes, opts: MultiOptions): ParsedArgs {
  const extra = parseArgs(opts.extraArgs ?? []);
  const s = extra.settings;
  const pick = <T>(typed: T | undefined, fromExtra: T): T => (typed === undefined ? fromExtra : typed);
  return {
    positionals: [...(typeof nodes === 'number' ? [String(nodes)] : nodes), ...extra.positionals],
    options: [...workerOptions(opts), ...extra.options],
    passthrough: opts.passthrough !== undefined && opts.passthrough.length > 0 ? [...opts.passthrough] : extra.passthrough,
    signal: signalOf(opts.signal) ?? extra.signal,
    settings: {
      ...s,
      hostname: pick(opts.hostname, s.hostname),
      prefix: pick(opts.prefix, s.prefix),
      suffix: pick(opts.suffix, s.suffix),
      rangePrefix: pick(opts.rangePrefix, s.rangePrefix),
      executable: pick(opts.executable, s.executable),
      startTimeout: pick(opts.startTimeout, s.startTimeout),
      timeout: pick(opts.timeout, s.timeout),
      killAfter: pick(opts.killAfter, s.killAfter),
      allAtOnce: opts.rolling === false || s.allAtOnce,
    },
  };
}

/** The API's names for the duration options, used in its error messages. */
const API_DURATION_NAMES = { startTimeout: 'startTimeout', timeout: 'timeout', killAfter: 'killAfter' } as const;

/**
 * The `asynx multi` arguments equivalent to nodes + options: for showing or running the same nodes from a shell
 * (both share one grammar, so they interoperate). The API itself does not go through this argv.
 */
export function multiArgv(nodes: MultiNodes, opts: MultiOptions = {}): string[] {
  const argv: string[] = typeof nodes === 'number' ? [String(nodes)] : [...nodes];
  for (const o of workerOptions(opts)) argv.push(`${o.key}${o.namespace === null ? '' : `:${o.namespace}`}=${o.value ?? ''}`);
  const long = (key: string, value: string | number | undefined): void => {
    if (value !== undefined) argv.push(`--${key}=${value}`);
  };
  long('hostname', opts.hostname);
  long('prefix', opts.prefix);
  long('suffix', opts.suffix);
  long('range-prefix', opts.rangePrefix);
  long('executable', opts.executable);
  long('start-timeout', opts.startTimeout);
  long('timeout', opts.timeout);
  long('kill-after', opts.killAfter);
  const signal = signalOf(opts.signal);
  if (signal !== null) argv.push(`-${signal.replace(/^SIG/, '')}`);
  if (opts.rolling === false) argv.push('--all-at-once');
  argv.push(...(opts.extraArgs ?? []));
  if (opts.passthrough !== undefined && opts.passthrough.length > 0) argv.push('--', ...opts.passthrough);
  return argv;
}

/** The typed plan for nodes + options (what the functions below run). */
export function planFromOptions(nodes: MultiNodes, opts: MultiOptions = {}): MultiPlan {
  return planFromParsed(parsedFromOptions(nodes, opts), opts.cwd ?? process.cwd());
}

function supervisorFor(nodes: MultiNodes, opts: MultiOptions): Supervisor {
  return supervisorForPlan(planFromOptions(nodes, opts), opts);
}

function supervisorForPlan(plan: MultiPlan, opts: MultiOptions): Supervisor {
  const sup = new Supervisor(plan, resolveSupervisorOptions(plan, opts.env ?? process.env, API_DURATION_NAMES));
  if (opts.on !== undefined) sup.events.listen(opts.on);
  if (opts.output !== undefined) renderEvents(sup.events, { out: opts.output, color: opts.color ?? false });
  return sup;
}

/**
 * Start nodes (concurrently) and confirm each is up; nodes already running are left alone.
 * @example
 * const r = await multi.start(['w1', 'w2'], { app: './tasks.mjs', concurrency: 2 });
 * if (!r.ok) for (const n of r.nodes) if (n.outcome === 'failed') console.error(n.node, n.reason);
 */
function start(nodes: MultiNodes, opts: MultiOptions = {}): Promise<MultiResult<StartResult>> {
  return supervisorFor(nodes, opts).start();
}

/** Send the signal (default TERM: warm shutdown) to each node's main process; does not wait. */
function stop(nodes: MultiNodes, opts: MultiOptions = {}): Promise<MultiResult<StopResult>> {
  return supervisorFor(nodes, opts).stop();
}

/** Like {@link stop}, then wait for every node to exit (bounded by `timeout`, escalating with `killAfter`). */
function stopwait(nodes: MultiNodes, opts: MultiOptions = {}): Promise<MultiResult<StopWaitResult>> {
  return supervisorFor(nodes, opts).stopwait();
}

/** Rolling restart: one node at a time, drain, start, confirm up. Pass the same worker options as `start`. */
function restart(nodes: MultiNodes, opts: MultiOptions = {}): Promise<MultiResult<RestartResult>> {
  return supervisorFor(nodes, opts).restart();
}

/** KILL each node's main process and pool children, then remove the pidfiles of the dead. */
function kill(nodes: MultiNodes, opts: MultiOptions = {}): Promise<MultiResult<StopWaitResult>> {
  return supervisorFor(nodes, opts).kill();
}

/**
 * One row a node: state, pid, uptime, CPU, RSS, pool, tasks. `ok` only when every node is up. An empty node list
 * (`[]`) lists the nodes whose pidfiles are in the `pidfile` template's directory. With `output`, the status table
 * is printed there too.
 */
async function status(nodes: MultiNodes, opts: MultiOptions = {}): Promise<MultiResult<NodeStatusRow>> {
  const parsed = parsedFromOptions(nodes, opts);
  const cwd = opts.cwd ?? process.cwd();
  if (parsed.positionals.length === 0) parsed.positionals.push(...discoverNodes(parsed, cwd).names);
  const result = await supervisorForPlan(planFromParsed(parsed, cwd), opts).status();
  opts.output?.write(formatStatusTable(result.nodes, opts.color ?? false));
  return result;
}

/** The pidfile directories the nodes use (what `multi` locks), for host projects that clean up. */
function pidfileDirs(nodes: MultiNodes, opts: MultiOptions = {}): string[] {
  const plan = planFromOptions(nodes, opts);
  return [...new Set(plan.nodes.map((n) => dirname(n.pidfile)))];
}

/** `asynx multi` for code: `import { multi } from 'asynx'`. */
export const multi = { start, stop, stopwait, restart, kill, status, pidfileDirs };
