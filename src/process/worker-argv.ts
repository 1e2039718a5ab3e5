// Reading a running process's argv as an `asynx worker` command line: is it a worker, for which node, which logfile.

import { basename } from 'node:path';
import { splitNodeName } from './placeholders.js';

/** What a worker command line says about the node it runs. */
export interface WorkerArgv {
  /** Full node name, `%h` expanded as the worker itself expands it (`-n`, default `asynx@%h`). */
  node: string;
  /** `--logfile` / `-f` value as written (`%n`, `%I` not expanded), null when the worker logs to stderr. */
  logfile: string | null;
  /** `--pidfile` value as written, null when none. */
  pidfile: string | null;
}

/** `-n X` / `-nX` / `--hostname=X` / `--hostname X`, and the same shapes for the other value options we read. */
function optionValue(args: readonly string[], k: number, short: string, long: string): { value: string; skip: number } | null {
  const arg = args[k] as string;
  if ((short !== '' && arg === short) || arg === long) return k + 1 < args.length ? { value: args[k + 1] as string, skip: 1 } : null;
  if (arg.startsWith(`${long}=`)) return { value: arg.slice(long.length + 1), skip: 0 };
  if (short !== '' && arg.startsWith(short) && !arg.startsWith('--') && arg.length > short.length) return { value: arg.slice(short.length), skip: 0 };
  return null;
}

/**
 * Parses `[node] …/bin/asynx [global opts] worker [opts] [-- overrides]` (a process's argv). Null when it is not an
 * `asynx worker` command: no `worker` word after a program whose file name contains `asynx`. Only the options
 * before `--` count; the last of a repeated option wins, as in commander.
 */
export function parseWorkerArgv(argv: readonly string[]): WorkerArgv | null {
  const end = argv.indexOf('--');
  const args = end === -1 ? argv : argv.slice(0, end);
  const program = args.findIndex((a) => basename(a).includes('asynx'));
  if (program === -1) return null;
  const worker = args.indexOf('worker', program + 1);
  // `asynx multi start worker` names a node `worker`: that is multi, not a worker
  if (worker === -1 || args.slice(program + 1, worker).includes('multi')) return null;
  let hostname = 'asynx@%h';
  let logfile: string | null = null;
  let pidfile: string | null = null;
  for (let k = worker + 1; k < args.length; k++) {
    const host = optionValue(args, k, '-n', '--hostname');
    const log = host === null ? optionValue(args, k, '-f', '--logfile') : null;
    const pid = host === null && log === null ? optionValue(args, k, '', '--pidfile') : null;
    const hit = host ?? log ?? pid;
    if (hit === null) continue;
    if (host !== null) hostname = host.value;
    if (log !== null) logfile = log.value;
    if (pid !== null) pidfile = pid.value;
    k += hit.skip;
  }
  return { node: splitNodeName(hostname).full, logfile, pidfile };
}

/** True when the argv is an `asynx worker` for exactly this node name. */
export function isWorkerArgvFor(argv: readonly string[], node: string): boolean {
  return parseWorkerArgv(argv)?.node === node;
}
