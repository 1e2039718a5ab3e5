// Banner, usage and long help of `asynx multi` (spec §2).

import { readFileSync } from 'node:fs';

/** This package's version, for the banner. */
export function asynxVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** `asynx multi v0.1.0` (Celery: `celery multi v5.2.6 (dawn-chorus)`). */
export function banner(): string {
  return `asynx multi v${asynxVersion()}`;
}

/** The short usage text. */
export const USAGE = `Usage: asynx multi start <nodes> [worker options] [-- key=value ...]
       asynx multi stop|stopwait|kill <nodes> [-SIG] [--timeout=S] [--kill-after=S]
       asynx multi restart <nodes> [-SIG] [worker options] [--all-at-once]
       asynx multi status [<nodes>] [--pidfile=...] [--json]   (no nodes: those with a pidfile there)
       asynx multi show|names <nodes> [worker options]
       asynx multi get <node@host> <nodes> [worker options]
       asynx multi expand <template> <nodes>
       asynx multi help

Nodes: a number N (asynx1..N), or names (w1 w2, name@host, name@%h).
Options: --pidfile=./.asynx/run/%n.pid --logfile=./.asynx/log/%n%I.log
  --hostname=H / -n H, --prefix=P, --suffix=S, --range-prefix=X, --executable=PATH, --cmd=..., --append=...
  --start-timeout=30 --timeout=S --kill-after=S -q --nosplash --verbose --no-color
Per node: -c:1-3 10, -Q:2,3 x, --loglevel:w1=DEBUG.  Long options take values after '='.
`;

/** The long help (`asynx multi help`), with examples in the style of Celery's module docstring. */
export const HELP = `${USAGE}
Examples:

  # Three nodes asynx1..3 with 4 pool processes each, app in ./tasks.mjs
  $ asynx multi start 3 -A ./tasks.mjs -c 4

  # The same nodes must be named again to stop them; wait for running tasks to finish, list the nodes
  # still busy after 60 s, and KILL those still alive 90 s after the TERM (exit 0 once all are gone)
  $ asynx multi stopwait 3 --timeout=60 --kill-after=90

  # Named nodes; 10 processes for image, 2 for the others; queue 'img' only on image
  $ asynx multi start image video data -A ./tasks.mjs -c 2 -c:image 10 -Q:image img

  # Nodes 1-3 get 10 processes, node 4 gets 3 (range mode)
  $ asynx multi start 4 -A ./tasks.mjs -c 3 -c:1-3 10

  # Debug logging for one node; -- and what follows go to every worker untouched (its key=value overrides)
  $ asynx multi start w1 w2 -A ./tasks.mjs --loglevel:w1=DEBUG -- prefetchMultiplier=2

  # Rolling restart (one node at a time, never zero consumers), then status
  $ asynx multi restart 3 -A ./tasks.mjs -c 4
  $ asynx multi status 3

  # Show the command lines, or expand a template per node
  $ asynx multi show 3 -A ./tasks.mjs
  $ asynx multi expand 'log/%n.log' 3

Placeholders in option values: %n short name, %h node name (name@host), %d host, %p node name, %N short name,
%% a literal %. %i and %I are expanded by each worker process: %I is '' in the main process and -1..-N in
pool children, so --logfile=%n%I.log gives each pool process its own file.

Durations (--timeout, --kill-after, --start-timeout): a bare number is seconds; 500ms, 30s, 2m, 1h also work.
stopwait/restart: --kill-after=K sends KILL to the nodes still alive K after the signal and waits for them to
go. --timeout=T alone gives up at T (exit 1); before a later --kill-after it only reports who is still alive.

Exit status: 0 ok; 1 a node failed to start/restart, is still alive after --timeout, is not up (status) or
is unknown (get); 64 usage error; 73 the pidfile directory cannot be created or written (start, restart).
`;
