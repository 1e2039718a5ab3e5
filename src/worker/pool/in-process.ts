// In-process pools (`-P async`, `-P solo`): tasks run on the worker's own event loop, against its loaded app.

import { encodeError } from '../../app/execute.js';
import { AsynxError, TaskRevokedError, TimeLimitExceeded } from '../../errors.js';
import type { TaskRef } from '../events.js';
import type { Job } from './ipc.js';
import { runJob, type TaskTable } from './job-runner.js';
import type { JobResult, PoolOptions, TaskPool } from './task-pool.js';

/**
 * After a hard time limit or a `revoke --terminate` aborted a task's signal, its code gets this long to
 * stop (a task that honours its signal stops within a tick or two) before it is reported as abandoned.
 */
export const ABANDON_GRACE_MS = 1000;

interface Entry {
  job: Job;
  abort: AbortController;
  resolve: ((r: JobResult) => void) | null;
  onState: ((state: string, meta: unknown) => void) | null;
  hardTimer: NodeJS.Timeout | null;
  /** When the job resolved without its code having ended (hard limit, terminate, cold close). */
  givenUpAt: number;
  /** Set once the code (runJob's promise) settled. */
  ended: boolean;
  /** Reported as abandoned (`pool:task:abandoned`): counted in {@link InProcessPool.abandoned}. */
  reported: boolean;
}

const ref = (job: Job): TaskRef => ({ taskId: job.id, name: job.name });

/**
 * The `async` and `solo` pools. No child process or thread: a job is a promise on the worker's loop, so
 * `async` runs up to {@link InProcessPool.size} at once (`-P async -c 200` for I/O-bound tasks such as
 * HTTP dispatch) and `solo` one at a time (for debugging: breakpoints and stack traces in one process).
 *
 * What an in-process pool cannot do, and what it does instead:
 * - **Hard time limit**: code on the worker's own loop cannot be killed. At the limit the task's
 *   `this.signal` is aborted (reason TimeLimitExceeded) and the job resolves `timeLimit` at once, so the
 *   task fails with TimeLimitExceeded as on prefork. Its slot is freed; code that has not stopped
 *   {@link ABANDON_GRACE_MS} later is reported (`pool:task:abandoned`, a warning line) and counted in
 *   `inspect stats` (`pool['abandoned-tasks']`) until it ends (`pool:task:ended`). Its result is dropped.
 *   A task that blocks the loop (a CPU loop, sync I/O) cannot even be timed: its timer fires only once the
 *   loop is free, after the code returned, so it ends with its own outcome; the loop-lag warning names it.
 * - **revoke with terminate**: the task's signal is aborted (reason TaskRevokedError) and the job resolves
 *   `terminated` at once (the task ends REVOKED); code that does not stop is reported as above.
 * - **Soft time limit**: as everywhere, the task's signal is aborted and the task fails with
 *   SoftTimeLimitExceeded.
 * - **maxTasksPerChild, maxMemoryPerChild, per-child log files**: there is no child to replace; they are
 *   ignored with a warning at start (as Celery ignores them for solo).
 * - **solo and -c N**: solo runs one task at a time whatever `-c` says (Celery's solo pool fixes its limit
 *   at 1 too); a `-c` above 1 is ignored with a warning. `pool_grow` / `pool_shrink` are refused for solo
 *   (remote control answers an error, as Celery's solo pool has no grow/shrink).
 * - **Crash isolation**: none. A stray rejected promise or an exception thrown from a timer in task code
 *   would end a Node process; the pool catches them while it runs (`pool:uncaught`, an error line) and
 *   keeps going, so one bad task does not lose the other in-flight ones.
 */
export class InProcessPool implements TaskPool {
  private limit: number;
  private readonly running = new Map<number, Entry>();
  /** Given up (hard limit, terminate) but their code still runs. */
  private readonly givenUp = new Map<number, Entry>();
  /** Tasks that ended since the last loop-lag probe tick (a task that blocked the loop ended before the probe ran). */
  private recent: TaskRef[] = [];
  private handed = 0;
  private table: TaskTable | null = null;
  private closing = false;
  private readonly offProcess: Array<() => void> = [];

  constructor(
    readonly kind: 'async' | 'solo',
    private readonly opts: PoolOptions,
    private readonly tasks: () => TaskTable,
  ) {
    this.limit = kind === 'solo' ? 1 : Math.max(1, opts.size);
  }

  /** Reads the worker's task table, warns about options that do not apply, and catches stray errors of task code. */
  async start(): Promise<void> {
    this.table = this.tasks();
    const warn = (message: string) => this.opts.events?.emit('worker:warning', { message });
    const what = this.kind === 'solo' ? 'the solo pool' : 'the async pool';
    if (this.kind === 'solo' && this.opts.size > 1) warn(`The solo pool runs one task at a time: -c ${this.opts.size} is ignored (use -P async for I/O-bound tasks at once, -P prefork or threads for CPU-bound ones)`);
    if (this.opts.maxTasksPerChild) warn(`--max-tasks-per-child does not apply to ${what} (tasks run in the worker process, there is no child to replace): ignored`);
    if (this.opts.maxMemoryPerChildKb) warn(`--max-memory-per-child does not apply to ${what} (tasks run in the worker process, there is no child to replace): ignored`);
    const logfile = this.opts.logfileFor;
    if (logfile && logfile(1) !== logfile(2)) warn(`Per-child log files (%I in --logfile) do not apply to ${what}: task output goes to the worker's own log`);
    this.catchStrays();
  }

  private catchStrays(): void {
    const report = (origin: 'unhandledRejection' | 'uncaughtException') => (err: unknown) => {
      const e = encodeError(err);
      this.opts.events?.emit('pool:uncaught', { origin, type: e.exc_type, message: String(e.exc_message[0] ?? ''), traceback: e.traceback, tasks: this.suspects() });
    };
    const onRejection = report('unhandledRejection');
    const onException = report('uncaughtException');
    process.on('unhandledRejection', onRejection);
    process.on('uncaughtException', onException);
    this.offProcess.push(
      () => process.off('unhandledRejection', onRejection),
      () => process.off('uncaughtException', onException),
    );
  }

  /** Tasks it runs at once (`-c`; grown and shrunk by remote control for async, always 1 for solo). */
  get size(): number {
    return this.limit;
  }

  get idle(): number {
    return this.closing || !this.table ? 0 : Math.max(0, this.limit - this.running.size);
  }

  get busy(): number {
    return this.running.size;
  }

  /** One "slot" (the worker process): every task handed to the pool. */
  get writes(): number[] {
    return [this.handed];
  }

  /** The worker's own pid: tasks run in it. */
  get childPids(): number[] {
    return [process.pid];
  }

  /** Tasks given up (hard limit, terminate) whose code still runs in the worker process. */
  get abandoned(): number {
    let n = 0;
    for (const e of this.givenUp.values()) if (e.reported) n++;
    return n;
  }

  /** `pool_grow` (async): more tasks at once, at once. Solo cannot grow (remote control refuses it first). */
  async grow(n: number): Promise<void> {
    if (this.kind === 'async' && n > 0 && !this.closing) this.limit += n;
  }

  /** `pool_shrink` (async): fewer at once; running tasks above the new size finish first. At least one stays. */
  shrink(n: number): number {
    if (this.kind !== 'async') return 0;
    const count = Math.max(0, Math.min(n, this.limit - 1));
    this.limit -= count;
    return count;
  }

  pidOf(seq: number): number | null {
    return this.running.has(seq) ? process.pid : null;
  }

  /**
   * `revoke` with `terminate`: aborts the task's signal and resolves the job `terminated` at once (the
   * task ends REVOKED). `signal` is only reported: nothing is killed. False when it does not run here.
   */
  terminate(seq: number, signal: NodeJS.Signals): boolean {
    const entry = this.running.get(seq);
    if (!entry) return false;
    this.giveUp(entry, { kind: 'terminated', signal }, new TaskRevokedError('terminated', { taskId: entry.job.id, signal }), `revoked with terminate (${signal})`);
    return true;
  }

  /**
   * Tasks whose code was on the loop since the last {@link InProcessPool.tick}: running now, ended since,
   * or given up but still running.
   */
  suspects(): TaskRef[] {
    const out = [...this.recent];
    const seen = new Set(out.map((t) => t.taskId));
    for (const e of [...this.running.values(), ...this.givenUp.values()]) if (!seen.has(e.job.id)) out.push(ref(e.job));
    return out;
  }

  /** A loop-lag probe tick without lag: forget the tasks that ended before it. */
  tick(): void {
    if (this.recent.length) this.recent = [];
  }

  run(job: Job, hardLimit: number | null, onState: (state: string, meta: unknown) => void, gate?: Promise<void>): Promise<JobResult> {
    if (this.idle <= 0) return Promise.reject(new AsynxError('asynx.pool.inProcessBusy', `The ${this.kind} pool has no free slot: the worker dispatched past its concurrency`));
    return new Promise<JobResult>((resolve) => {
      const entry: Entry = { job, abort: new AbortController(), resolve, onState, hardTimer: null, givenUpAt: 0, ended: false, reported: false };
      this.running.set(job.seq, entry);
      this.handed++;
      if (!gate) this.begin(entry, hardLimit);
      else
        gate.then(
          () => this.begin(entry, hardLimit),
          (err: unknown) => this.settle(entry, { kind: 'notStarted', detail: (err as Error).message }),
        );
    });
  }

  private begin(entry: Entry, hardLimit: number | null): void {
    if (entry.resolve === null) return; // given up while the gate was pending (cold close)
    const { job } = entry;
    if (hardLimit) {
      entry.hardTimer = setTimeout(() => {
        entry.hardTimer = null;
        this.giveUp(entry, { kind: 'timeLimit', seconds: hardLimit, detail: 'its signal was aborted; code on the worker\'s own event loop cannot be killed' }, new TimeLimitExceeded(hardLimit, { taskId: job.id }), `hard time limit (${hardLimit}s)`);
      }, hardLimit * 1000);
    }
    const hooks = { updateState: async (state: string, meta: unknown) => entry.onState?.(state, meta) };
    runJob(this.table!, job, hooks, entry.abort).then(
      (outcome) => this.ended(entry, { kind: 'done', outcome }),
      (err: unknown) => this.ended(entry, { kind: 'lost', detail: `the task runner failed: ${(err as Error)?.message ?? String(err)}` }),
    );
  }

  /** The job resolves now; the code, told to stop through its signal, may still run. */
  private giveUp(entry: Entry, result: JobResult, reason: AsynxError, why: string): void {
    if (entry.resolve === null) return;
    entry.abort.abort(reason);
    entry.givenUpAt = Date.now();
    this.givenUp.set(entry.job.seq, entry);
    this.settle(entry, result);
    const timer = setTimeout(() => {
      if (entry.ended) return;
      entry.reported = true;
      this.opts.events?.emit('pool:task:abandoned', { ...ref(entry.job), pool: this.kind, why, abandoned: this.abandoned });
    }, ABANDON_GRACE_MS);
    timer.unref();
  }

  private ended(entry: Entry, result: JobResult): void {
    entry.ended = true;
    if (entry.resolve !== null) return this.settle(entry, result);
    this.givenUp.delete(entry.job.seq);
    if (entry.reported) this.opts.events?.emit('pool:task:ended', { ...ref(entry.job), pool: this.kind, afterMs: Date.now() - entry.givenUpAt, abandoned: this.abandoned });
  }

  private settle(entry: Entry, result: JobResult): void {
    const resolve = entry.resolve;
    if (resolve === null) return;
    if (entry.hardTimer) clearTimeout(entry.hardTimer);
    entry.hardTimer = null;
    entry.resolve = null;
    entry.onState = null;
    this.running.delete(entry.job.seq);
    this.recent.push(ref(entry.job));
    resolve(result);
    if (this.running.size === 0) for (const wake of this.drained.splice(0)) wake();
  }

  private drained: Array<() => void> = [];
  private closed: Promise<void> | null = null;

  /**
   * Warm: waits for the running jobs (the worker calls it once none runs), then stops catching stray
   * errors. Cold: every running job's signal is aborted and it resolves `lost` at once. Code that did not
   * stop keeps running until the process exits. Idempotent; a cold call during a warm close ends it.
   */
  close(cold = false): Promise<void> {
    this.closing = true;
    if (cold) {
      for (const entry of [...this.running.values()]) this.giveUp(entry, { kind: 'lost', detail: 'cold shutdown' }, new AsynxError('asynx.pool.coldShutdown', 'Cold shutdown: the worker stopped this task; its message goes back to the queue'), 'cold shutdown');
    }
    if (!this.closed) {
      this.closed = (this.running.size === 0 ? Promise.resolve() : new Promise<void>((r) => this.drained.push(r))).then(() => {
        for (const off of this.offProcess.splice(0)) off();
      });
    }
    return this.closed;
  }
}
