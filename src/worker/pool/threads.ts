// Thread pool (`-P threads`): N worker_threads, one task each at a time; hard time limit, crash replacement, recycling.

import { createWriteStream, existsSync, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { AsynxError, ExitCode } from '../../errors.js';
import type { Job, ParentMessage } from './ipc.js';
import type { ThreadData, ThreadMessage } from './thread-ipc.js';
import type { JobResult, PoolOptions, TaskPool } from './task-pool.js';

interface Slot {
  index: number;
  worker: Worker;
  threadId: number;
  ready: boolean;
  exited: boolean;
  job: Job | null;
  tasksRun: number;
  retiring: boolean;
  resolve: ((r: JobResult) => void) | null;
  onState: ((state: string, meta: unknown) => void) | null;
  hardTimer: NodeJS.Timeout | null;
  killedFor: JobResult | null;
  /** The uncaught error that ended the thread, for the job's `lost` detail. */
  error: Error | null;
  /** Why the thread failed its handshake (the `pool:child:exit` detail). */
  startError: string | null;
  /** Shrunk away: leaves the pool when it exits (after its running job), not replaced. */
  removed: boolean;
  log: WriteStream | null;
}

const BUILT_ENTRY = new URL('./thread-entry.js', import.meta.url);

/**
 * The thread's entry: the built one beside this module. Run from the sources (`node --import tsx`), threads do
 * not inherit the TypeScript loader, so a bootstrap registers tsx in the thread before importing the .ts entry.
 */
function threadEntry(): { entry: URL | string; eval: boolean } {
  if (existsSync(fileURLToPath(BUILT_ENTRY))) return { entry: BUILT_ENTRY, eval: false };
  const source = new URL('./thread-entry.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  return { entry: `import(${JSON.stringify(tsx)}).then((m) => m.register()).then(() => import(${JSON.stringify(source)}))`, eval: true };
}

function describeExit(slot: Slot, code: number): string {
  if (slot.startError) return slot.startError;
  if (slot.error) return `uncaught ${slot.error.name}: ${slot.error.message}`;
  return `exit code ${code}`;
}

/**
 * The thread pool: tasks run in worker_threads of the worker process (parallel CPU work; each thread loads
 * the app in its own V8 isolate). A thread that must stop (hard time limit, `revoke --terminate`) is ended
 * with `Worker.terminate()`, which also stops a busy loop; signals do not reach threads, so the signal of a
 * terminate is only reported. `process.exit()` or an uncaught exception in a task ends only its thread (the
 * task fails with WorkerLostError and a new thread takes the slot); what threads cannot do (`process.chdir`,
 * signal handlers) fails in a task as it does in any worker thread. Pids are the worker's own.
 */
export class ThreadPool implements TaskPool {
  readonly kind = 'threads' as const;
  private readonly slots: Slot[] = [];
  private closing = false;
  private closed: Promise<void> | null = null;
  /** Thread id that last held each slot, to report `pool:child:replaced`. */
  private readonly lastThread = new Map<number, number>();

  constructor(private readonly opts: PoolOptions) {}

  /** Starts every thread and waits for each handshake; rejects if a thread cannot load the app. */
  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.opts.size }, (_, i) => this.spawn(i + 1)));
  }

  /** Threads the pool keeps (grown and shrunk by remote control and autoscale); Celery's `max-concurrency`. */
  get size(): number {
    return this.slots.filter((s) => !s.removed).length;
  }

  /** Adds `n` threads, each in a new slot; resolves once they are up (or failed to start: retried as a crashed one). */
  async grow(n: number): Promise<void> {
    if (this.closing || n <= 0) return;
    const top = this.slots.reduce((m, s) => Math.max(m, s.index), 0);
    await Promise.all(Array.from({ length: n }, (_, i) => this.spawn(top + i + 1).catch(() => undefined)));
  }

  /** Removes up to `n` threads, idle ones first (a busy one leaves after its task); at least one stays. */
  shrink(n: number): number {
    const kept = this.slots.filter((s) => !s.removed);
    const count = Math.max(0, Math.min(n, kept.length - 1));
    const idleFirst = [...kept.filter((s) => !s.job), ...kept.filter((s) => s.job)];
    for (const slot of idleFirst.slice(0, count)) {
      slot.removed = true;
      if (!slot.job) this.retire(slot, 'pool shrunk');
    }
    return count;
  }

  /** Tasks handed to each kept thread so far (Celery's pool `writes`). */
  get writes(): number[] {
    return this.slots.filter((s) => !s.removed).map((s) => s.tasksRun + (s.job ? 1 : 0));
  }

  get busy(): number {
    return this.slots.filter((s) => s.job).length;
  }

  /** Threads that are ready and have no job. */
  get idle(): number {
    return this.slots.filter((s) => s.ready && !s.job && !s.retiring && !s.removed).length;
  }

  /** The worker's own pid while a thread is alive (threads have no pid of their own). */
  get childPids(): number[] {
    return this.slots.some((s) => !s.exited) ? [process.pid] : [];
  }

  /** The worker's own pid when job `seq` runs in one of its threads, else null. */
  pidOf(seq: number): number | null {
    return this.slots.some((s) => s.job?.seq === seq) ? process.pid : null;
  }

  /**
   * Ends the thread running job `seq` (`revoke` with `terminate`): the job resolves `terminated` with
   * `signal` (reported only: a thread cannot receive a signal) and a new thread takes the slot.
   */
  terminate(seq: number, signal: NodeJS.Signals): boolean {
    const slot = this.slots.find((s) => s.job?.seq === seq);
    if (!slot) return false;
    slot.killedFor = { kind: 'terminated', signal };
    void slot.worker.terminate();
    return true;
  }

  private spawn(index: number): Promise<void> {
    const logPath = this.opts.logfileFor?.(index) ?? null;
    let log: WriteStream | null = null;
    if (logPath) {
      mkdirSync(dirname(logPath), { recursive: true });
      log = createWriteStream(logPath, { flags: 'a' });
      log.on('error', () => undefined);
    }
    const data: ThreadData = { appUrl: this.opts.appUrl, index, measureMemory: Boolean(this.opts.maxMemoryPerChildKb) };
    const { entry, eval: isEval } = threadEntry();
    const worker = new Worker(entry, {
      eval: isEval,
      workerData: data,
      // The thread's own env: the CLI's overrides (ASYNX_CHILD_OVERRIDES) and the slot, as a prefork child gets them.
      env: { ...process.env, ...this.opts.env, ASYNX_CHILD_APP: this.opts.appUrl, ASYNX_POOL_INDEX: String(index) },
      stdout: log !== null,
      stderr: log !== null,
    });
    if (log) {
      worker.stdout.pipe(log, { end: false });
      worker.stderr.pipe(log, { end: false });
    }
    const slot: Slot = { index, worker, threadId: worker.threadId, ready: false, exited: false, job: null, tasksRun: 0, retiring: false, resolve: null, onState: null, hardTimer: null, killedFor: null, error: null, startError: null, removed: false, log };
    const existing = this.slots.findIndex((s) => s.index === index);
    if (existing >= 0) this.slots[existing] = slot;
    else this.slots.push(slot);
    return new Promise<void>((resolve, reject) => {
      const timeout = setTimeout(() => {
        slot.startError = `did not load the app within ${this.opts.startTimeoutMs ?? 30000} ms: does importing the app module hang?`;
        void worker.terminate();
        reject(new AsynxError('asynx.pool.threadStartTimeout', `Pool thread ${index} did not load the app within ${this.opts.startTimeoutMs ?? 30000} ms: does importing the app module hang?`, { exitCode: ExitCode.software }));
      }, this.opts.startTimeoutMs ?? 30_000);
      worker.on('message', (m: ThreadMessage) => {
        if (m.type === 'ready') {
          clearTimeout(timeout);
          slot.ready = true;
          resolve();
          this.opts.events?.emit('pool:child:up', { index, pid: process.pid, threadId: slot.threadId });
          const old = this.lastThread.get(index);
          if (old !== undefined && old !== slot.threadId) this.opts.events?.emit('pool:child:replaced', { index, oldPid: process.pid, newPid: process.pid, oldThreadId: old, newThreadId: slot.threadId });
          this.lastThread.set(index, slot.threadId);
        } else if (m.type === 'initFailed') {
          clearTimeout(timeout);
          slot.startError = `could not load the app: ${m.error}`;
          reject(new AsynxError('asynx.pool.threadInitFailed', `Pool thread ${index} could not load the app: ${m.error}`, { exitCode: ExitCode.software }));
        } else if (m.type === 'state') {
          if (slot.job && slot.job.seq === m.seq) slot.onState?.(m.state, m.meta);
        } else if (m.type === 'done') {
          if (!slot.job || slot.job.seq !== m.seq) return;
          this.finish(slot, { kind: 'done', outcome: m.outcome });
          slot.tasksRun++;
          if (slot.removed) return this.retire(slot, 'pool shrunk');
          const maxTasks = this.opts.maxTasksPerChild;
          const maxKb = this.opts.maxMemoryPerChildKb;
          if (maxTasks && slot.tasksRun >= maxTasks) this.retire(slot, `max tasks per child (${maxTasks}) reached`);
          else if (maxKb && m.memory / 1024 > maxKb) this.retire(slot, `thread memory (heap + buffers) ${Math.round(m.memory / 1024)} KiB over max memory per child (${maxKb} KiB)`);
        }
      });
      worker.on('error', (err) => {
        slot.error = err;
      });
      worker.on('exit', (code) => {
        clearTimeout(timeout);
        slot.exited = true;
        slot.log?.end();
        const detail = describeExit(slot, code);
        const expected = this.closing || slot.retiring || slot.removed;
        this.opts.events?.emit('pool:child:exit', { index, pid: process.pid, threadId: slot.threadId, detail, expected });
        if (slot.job) this.finish(slot, slot.killedFor ?? { kind: 'lost', detail });
        const wasReady = slot.ready;
        slot.ready = false;
        if (slot.removed) {
          const at = this.slots.indexOf(slot);
          if (at >= 0 && !this.closing) this.slots.splice(at, 1);
        } else if (!this.closing && this.slots.includes(slot)) {
          // Replace it (a crash, a terminate, or a recycle). A thread that died before its handshake is
          // replaced after a pause, so an app that cannot load does not become a spawn loop.
          const respawn = () => {
            if (this.closing) return;
            // Shrunk away while it waited to be replaced: the slot leaves instead.
            if (slot.removed) {
              const at = this.slots.indexOf(slot);
              if (at >= 0) this.slots.splice(at, 1);
              return;
            }
            // A failed start is reported by that thread's own `pool:child:exit` (its detail says why).
            this.spawn(index).catch(() => undefined);
          };
          if (wasReady) respawn();
          else setTimeout(respawn, 1000).unref();
        }
        reject(new AsynxError('asynx.pool.threadExited', `Pool thread ${index} exited during start-up (${detail})`, { exitCode: ExitCode.software }));
      });
    });
  }

  private finish(slot: Slot, result: JobResult): void {
    if (slot.hardTimer) clearTimeout(slot.hardTimer);
    slot.hardTimer = null;
    const resolve = slot.resolve;
    slot.job = null;
    slot.resolve = null;
    slot.onState = null;
    slot.killedFor = null;
    resolve?.(result);
  }

  private retire(slot: Slot, reason: string): void {
    slot.retiring = true;
    this.opts.events?.emit('pool:child:recycle', { index: slot.index, pid: process.pid, threadId: slot.threadId, reason });
    this.post(slot, { type: 'exit' });
    // A thread that does not leave (a task left it busy) is ended after the deadline.
    const worker = slot.worker;
    setTimeout(() => {
      if (!slot.exited) void worker.terminate();
    }, this.opts.exitTimeoutMs ?? 5000).unref();
  }

  private post(slot: Slot, msg: ParentMessage): void {
    if (!slot.exited) slot.worker.postMessage(msg);
  }

  /**
   * Runs a job on an idle thread (the caller checks `idle` first). `hardLimit` seconds: the thread is
   * terminated and the result is `timeLimit`. `gate`: the slot is taken at once, the job goes to the
   * thread only once the gate resolves (the early ack is durable).
   */
  run(job: Job, hardLimit: number | null, onState: (state: string, meta: unknown) => void, gate?: Promise<void>): Promise<JobResult> {
    const slot = this.slots.find((s) => s.ready && !s.job && !s.retiring && !s.removed);
    if (!slot) return Promise.reject(new AsynxError('asynx.pool.threadBusy', 'No idle pool thread: the worker dispatched past its concurrency'));
    return new Promise<JobResult>((resolve) => {
      slot.job = job;
      slot.resolve = resolve;
      slot.onState = onState;
      const dispatch = () => {
        if (slot.job !== job) return; // the thread died while the gate was pending
        if (hardLimit) {
          slot.hardTimer = setTimeout(() => {
            slot.killedFor = { kind: 'timeLimit', seconds: hardLimit };
            void slot.worker.terminate();
          }, hardLimit * 1000);
        }
        // A thread gets the decoded arguments by structured clone: the body text would only be copied too.
        const { body: _body, ...plain } = job;
        this.post(slot, { type: 'run', job: plain });
      };
      if (!gate) dispatch();
      else
        gate.then(dispatch, (err: unknown) => {
          if (slot.job === job) this.finish(slot, { kind: 'notStarted', detail: (err as Error).message });
        });
    });
  }

  /**
   * Stops every thread. Warm: each is asked to exit (call once no job runs), with a deadline, then
   * terminated. Cold: terminated at once; running jobs resolve as `lost`. Idempotent.
   */
  close(cold = false): Promise<void> {
    this.closing = true;
    if (cold) for (const s of this.slots) if (!s.exited) void s.worker.terminate();
    if (!this.closed) this.closed = this.closeAll(cold);
    return this.closed;
  }

  private async closeAll(cold: boolean): Promise<void> {
    const exits = this.slots.map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.exited) return resolve();
          s.worker.once('exit', () => resolve());
          if (cold) return;
          this.post(s, { type: 'exit' });
          setTimeout(() => void s.worker.terminate(), this.opts.exitTimeoutMs ?? 5000).unref();
        }),
    );
    await Promise.all(exits);
    this.slots.length = 0;
  }
}
