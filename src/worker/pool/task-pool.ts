// The pool contract: what the worker needs from prefork, threads, async and solo pools alike.

import type { Outcome } from '../../app/execute.js';
import type { WorkerEvents } from '../events.js';
import type { Job } from './ipc.js';

/** Pool implementations, chosen with `asynx worker -P` as in Celery. */
export const POOL_KINDS = ['prefork', 'threads', 'async', 'solo'] as const;

/** One of {@link POOL_KINDS}. */
export type PoolKind = (typeof POOL_KINDS)[number];

/** How a job ended, from the pool's point of view. */
export type JobResult =
  | { kind: 'done'; outcome: Outcome }
  | { kind: 'lost'; detail: string }
  /** Past its hard limit; `detail` says how it was stopped when it was not killed (in-process pools). */
  | { kind: 'timeLimit'; seconds: number; detail?: string }
  /** Remote control terminated it (`revoke` with `terminate`): its child was killed with `signal`. */
  | { kind: 'terminated'; signal: NodeJS.Signals }
  /** The gate passed to {@link TaskPool.run} rejected: the job never started. */
  | { kind: 'notStarted'; detail: string };

/** Options shared by every pool kind (each ignores what does not apply to it). */
export interface PoolOptions {
  size: number;
  /** URL of the app module the children (processes or threads) import; the in-process pools use the worker's app. */
  appUrl: string;
  /** Extra environment for children. */
  env?: NodeJS.ProcessEnv;
  /** Recycle a child after this many tasks. */
  maxTasksPerChild?: number | null;
  /** Recycle a child whose RSS exceeds this many KiB after a task (a thread: its V8 heap used + external memory). */
  maxMemoryPerChildKb?: number | null;
  /** Log file for child k (stdout/stderr), or null to inherit. */
  logfileFor?: (index: number) => string | null;
  /** Bounded wait for a child's handshake. @defaultValue 30000 */
  startTimeoutMs?: number;
  /** Where `pool:*` events go (the worker's event map). */
  events?: WorkerEvents;
  /** Deadline for a child to exit after a warm close, then SIGKILL. @defaultValue 5000 */
  exitTimeoutMs?: number;
}

/**
 * A pool runs jobs, at most {@link TaskPool.size} at once. The worker asks {@link TaskPool.idle} before
 * {@link TaskPool.run}; results always resolve (never reject) with a {@link JobResult}.
 */
export interface TaskPool {
  /** Which implementation this is (Celery's `pool.implementation` in `inspect stats`). */
  readonly kind: PoolKind;
  /** Brings the pool up; rejects when the app cannot be loaded. */
  start(): Promise<void>;
  /** Jobs it may run at once (grown and shrunk by remote control and autoscale). */
  readonly size: number;
  /** Jobs it can take now. */
  readonly idle: number;
  /** Jobs running now. */
  readonly busy: number;
  /** Jobs handed to each process/thread/slot so far (Celery's pool `writes`). */
  readonly writes: number[];
  /** In-process pools: tasks given up (hard limit, terminate) whose code still runs in the worker process. */
  readonly abandoned?: number;
  /** Pids of the processes running jobs (the worker's own pid for in-process pools). */
  readonly childPids: number[];
  /** Adds `n` slots; resolves once they can take jobs. */
  grow(n: number): Promise<void>;
  /** Removes up to `n` slots, idle first (a busy one leaves after its job); at least one stays. Returns how many. */
  shrink(n: number): number;
  /** Pid of the process running job `seq`, or null. */
  pidOf(seq: number): number | null;
  /** Ends job `seq` with `signal` (`revoke` with `terminate`); false when it does not run here. */
  terminate(seq: number, signal: NodeJS.Signals): boolean;
  /**
   * Runs a job. `hardLimit` seconds: past it the job resolves `timeLimit`. `gate`: the slot is taken at
   * once, the job starts only once the gate resolves (`notStarted` when it rejects).
   */
  run(job: Job, hardLimit: number | null, onState: (state: string, meta: unknown) => void, gate?: Promise<void>): Promise<JobResult>;
  /** Stops the pool: warm waits for children to exit (call once no job runs), cold kills them. Idempotent. */
  close(cold?: boolean): Promise<void>;
}
