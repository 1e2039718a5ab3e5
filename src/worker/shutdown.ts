// Worker signal table: TERM and INT warm then cold, QUIT cold, HUP pool restart, USR1 dump, USR2 reopen log.

import type { Logger } from './logger.js';
import type { Worker } from './worker.js';

type Action = () => void;

/** Installs the main-process signal handlers; returns a function that removes them. */
export function installSignals(worker: Worker, log: Logger, opts: { hupRestarts: boolean }): () => void {
  // Any second stop signal (TERM or INT) goes cold, as Celery's second Ctrl-C does.
  let stops = 0;
  const stopSignal = (warning: string | null): Action => () => {
    stops++;
    if (stops === 1) {
      if (warning) log.warn(warning);
      void worker.stop('warm');
    } else void worker.stop('cold');
  };
  const table: Partial<Record<NodeJS.Signals, Action>> = {
    SIGTERM: stopSignal(null),
    SIGINT: stopSignal('worker: Hitting Ctrl+C again will initiate cold shutdown, terminating all running tasks!'),
    SIGQUIT: () => void worker.stop('cold'),
    SIGUSR1: () => {
      for (const line of worker.describeActive()) log.warn(line);
    },
    SIGUSR2: () => {
      log.reopen();
      log.info('Log file reopened (SIGUSR2)');
    },
  };
  // HUP restarts only when detached: in a terminal, HUP means the terminal went away.
  if (opts.hupRestarts) table.SIGHUP = () => void worker.restartPool();
  const installed = Object.entries(table) as Array<[NodeJS.Signals, Action]>;
  for (const [sig, fn] of installed) process.on(sig, fn);
  return () => {
    for (const [sig, fn] of installed) process.off(sig, fn);
  };
}
