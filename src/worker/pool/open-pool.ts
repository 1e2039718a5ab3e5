// Makes the pool that `-P/--pool` names.

import { AsynxError, ExitCode } from '../../errors.js';
import type { TaskTable } from './job-runner.js';
import { InProcessPool } from './in-process.js';
import { PreforkPool } from './prefork.js';
import { ThreadPool } from './threads.js';
import type { PoolKind, PoolOptions, TaskPool } from './task-pool.js';

/** What the in-process pools (async, solo) run against: the worker's own app, already loaded. */
export interface InProcessApp {
  tasks(): TaskTable;
}

/** A new, not yet started pool of `kind`. */
export function openPool(kind: PoolKind, opts: PoolOptions, app: InProcessApp): TaskPool {
  switch (kind) {
    case 'prefork':
      return new PreforkPool(opts);
    case 'threads':
      return new ThreadPool(opts);
    case 'async':
    case 'solo':
      return new InProcessPool(kind, opts, () => app.tasks());
    default:
      void app;
      throw new AsynxError('asynx.pool.notBuilt', `The ${kind} pool is not built yet: use -P prefork`, { exitCode: ExitCode.software });
  }
}
