// Prefork pool (the default): N forked children, one task each at a time; hard time limit, crash replacement, recycling.

import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AsynxError, ExitCode } from '../../errors.js';
import { isChildMessage, toWire, type ChildMessage, type Job, type ParentMessage } from './ipc.js';
import type { JobResult, PoolOptions, TaskPool } from './task-pool.js';

interface Slot {
  index: number;
  child: ChildProcess;
  pid: number;
  ready: boolean;
  job: Job | null;
  tasksRun: number;
  retiring: boolean;
  resolve: ((r: JobResult) => void) | null;
  onState: ((state: string, meta: unknown) => void) | null;
  hardTimer: NodeJS.Timeout | null;
  killedFor: JobResult | null;
  /** Shrunk away: leaves the pool when it exits (after its running job), not replaced. */
  removed: boolean;
}

/** Signals a pool child ignores (sent to the whole process group): a terminate asks the child to take them. */
const CHILD_IGNORES: ReadonlySet<string> = new Set(['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR2']);

const CHILD_ENTRY = fileURLToPath(new URL('./prefork-child.js', import.meta.url));

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `signal ${signal}` : `exit code ${code}`;
}

/** The prefork pool. */
export class PreforkPool implements TaskPool {
  readonly kind = 'prefork' as const;
  private readonly slots: Slot[] = [];
  private closing = false;
  private closed: Promise<void> | null = null;
  /** Pid of the child that last held each slot, to report `pool:child:replaced`. */
  private readonly lastPid = new Map<number, number>();

  constructor(private readonly opts: PoolOptions) {}

  /** Forks every child and waits for each handshake; rejects if a child cannot load the app. */
  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.opts.size }, (_, i) => this.spawn(i + 1)));
  }

  /** Children the pool keeps (grown and shrunk by remote control); Celery's `max-concurrency`. */
  get size(): number {
    return this.slots.filter((s) => !s.removed).length;
  }

  /**
   * Adds `n` children (`pool_grow`), each in a new slot; resolves once they are up (or failed to
   * start: such a slot is retried as a crashed child is). Tasks reach them when they are ready.
   */
  async grow(n: number): Promise<void> {
    if (this.closing || n <= 0) return;
    const top = this.slots.reduce((m, s) => Math.max(m, s.index), 0);
    await Promise.all(Array.from({ length: n }, (_, i) => this.spawn(top + i + 1).catch(() => undefined)));
  }

  /**
   * Removes up to `n` children (`pool_shrink`), idle ones first; a busy one leaves after its task.
   * At least one child stays. Resolves to how many were taken away.
   */
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

  /** Tasks handed to each kept child so far (Celery's pool `writes`). */
  get writes(): number[] {
    return this.slots.filter((s) => !s.removed).map((s) => s.tasksRun + (s.job ? 1 : 0));
  }

  /** Children running a job now. */
  get busy(): number {
    return this.slots.filter((s) => s.job).length;
  }

  /** Pid of the child running job `seq`, or null. */
  pidOf(seq: number): number | null {
    return this.slots.find((s) => s.job?.seq === seq)?.pid ?? null;
  }

  /**
   * Kills the child running job `seq` with `signal` (`revoke` with `terminate`); the job resolves
   * `terminated` and the slot gets a new child. A signal the child ignores (TERM, INT, HUP, USR2: they
   * reach the whole process group) is delivered through the child, which stops ignoring it first.
   * A child still alive after the exit deadline gets SIGKILL. False when no child runs that job.
   */
  terminate(seq: number, signal: NodeJS.Signals): boolean {
    const slot = this.slots.find((s) => s.job?.seq === seq);
    if (!slot) return false;
    slot.killedFor = { kind: 'terminated', signal };
    if (CHILD_IGNORES.has(signal)) this.post(slot, { type: 'terminate', signal });
    else slot.child.kill(signal);
    const child = slot.child;
    setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }, this.opts.exitTimeoutMs ?? 5000).unref();
    return true;
  }

  /** Pids of the live children. */
  get childPids(): number[] {
    return this.slots.filter((s) => s.child.exitCode === null).map((s) => s.pid);
  }

  /** Children that are ready and have no job. */
  get idle(): number {
    return this.slots.filter((s) => s.ready && !s.job && !s.retiring && !s.removed).length;
  }

  private spawn(index: number): Promise<void> {
    const logPath = this.opts.logfileFor?.(index) ?? null;
    let fd: number | null = null;
    if (logPath) {
      mkdirSync(dirname(logPath), { recursive: true });
      fd = openSync(logPath, 'a');
    }
    const child = fork(CHILD_ENTRY, [], {
      env: { ...process.env, ...this.opts.env, ASYNX_CHILD_APP: this.opts.appUrl, ASYNX_POOL_INDEX: String(index), ASYNX_CHILD_MEASURE_RSS: this.opts.maxMemoryPerChildKb ? '1' : '0' },
      stdio: fd === null ? ['ignore', 'inherit', 'inherit', 'ipc'] : ['ignore', fd, fd, 'ipc'],
      serialization: 'json',
    });
    if (fd !== null) closeSync(fd);
    const slot: Slot = { index, child, pid: child.pid ?? -1, ready: false, job: null, tasksRun: 0, retiring: false, resolve: null, onState: null, hardTimer: null, killedFor: null, removed: false };
    const existing = this.slots.findIndex((s) => s.index === index);
    if (existing >= 0) this.slots[existing] = slot;
    else this.slots.push(slot);
    return new Promise<void>((resolve, reject) => {
      const timeout = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new AsynxError('asynx.pool.startTimeout', `Pool child ${index} did not load the app within ${this.opts.startTimeoutMs ?? 30000} ms: does importing the app module hang?`, { exitCode: ExitCode.software }));
      }, this.opts.startTimeoutMs ?? 30_000);
      child.on('message', (raw: unknown) => {
        if (!isChildMessage(raw)) return;
        const m = raw as ChildMessage;
        if (m.type === 'ready') {
          clearTimeout(timeout);
          slot.ready = true;
          resolve();
          this.opts.events?.emit('pool:child:up', { index, pid: slot.pid });
          const oldPid = this.lastPid.get(index);
          if (oldPid !== undefined && oldPid !== slot.pid) this.opts.events?.emit('pool:child:replaced', { index, oldPid, newPid: slot.pid });
          this.lastPid.set(index, slot.pid);
        } else if (m.type === 'initFailed') {
          clearTimeout(timeout);
          reject(new AsynxError('asynx.pool.initFailed', `Pool child ${index} could not load the app: ${m.error}`, { exitCode: ExitCode.software }));
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
          else if (maxKb && m.rss / 1024 > maxKb) this.retire(slot, `RSS ${Math.round(m.rss / 1024)} KiB over max memory per child (${maxKb} KiB)`);
        }
      });
      child.on('error', () => undefined);
      child.on('exit', (code, signal) => {
        clearTimeout(timeout);
        const detail = describeExit(code, signal);
        const expected = this.closing || slot.retiring || slot.removed;
        this.opts.events?.emit('pool:child:exit', { index, pid: slot.pid, detail, expected });
        if (slot.job) this.finish(slot, slot.killedFor ?? { kind: 'lost', detail });
        const wasReady = slot.ready;
        slot.ready = false;
        if (slot.removed) {
          const at = this.slots.indexOf(slot);
          if (at >= 0 && !this.closing) this.slots.splice(at, 1);
        } else if (!this.closing && this.slots.includes(slot)) {
          // Replace it (a crash, a kill, or a recycle). A child that died before its handshake is
          // replaced after a pause, so an app that cannot load does not become a fork loop.
          const respawn = () => {
            if (this.closing) return;
            // Shrunk away while it waited to be replaced (a child that failed its handshake): it leaves.
            if (slot.removed) {
              const at = this.slots.indexOf(slot);
              if (at >= 0) this.slots.splice(at, 1);
              return;
            }
            this.spawn(index).catch((err) => this.opts.events?.emit('pool:child:exit', { index, pid: -1, detail: (err as Error).message, expected: this.closing }));
          };
          if (wasReady) respawn();
          else setTimeout(respawn, 1000).unref();
        }
        reject(new AsynxError('asynx.pool.childExited', `Pool child ${index} exited during start-up (${detail})`, { exitCode: ExitCode.software }));
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
    this.opts.events?.emit('pool:child:recycle', { index: slot.index, pid: slot.pid, reason });
    this.post(slot, { type: 'exit' });
  }

  private post(slot: Slot, msg: ParentMessage): void {
    try {
      if (slot.child.connected) slot.child.send(msg);
    } catch {
      // The channel closed in between: the exit handler deals with the child.
    }
  }

  /**
   * Runs a job on an idle child. The caller checks `idle` first.
   * `hardLimit` seconds: the child is killed and the result is `timeLimit`.
   * `gate`: the slot is taken at once, but the job goes to the child only once the gate resolves (the
   * early ack is durable), so a kill of the main process cannot leave a task both run and unacked.
   */
  run(job: Job, hardLimit: number | null, onState: (state: string, meta: unknown) => void, gate?: Promise<void>): Promise<JobResult> {
    const slot = this.slots.find((s) => s.ready && !s.job && !s.retiring && !s.removed);
    if (!slot) return Promise.reject(new AsynxError('asynx.pool.busy', 'No idle pool child: the worker dispatched past its concurrency'));
    return new Promise<JobResult>((resolve) => {
      slot.job = job;
      slot.resolve = resolve;
      slot.onState = onState;
      const dispatch = () => {
        if (slot.job !== job) return; // the child died while the gate was pending
        if (hardLimit) {
          slot.hardTimer = setTimeout(() => {
            slot.killedFor = { kind: 'timeLimit', seconds: hardLimit };
            slot.child.kill('SIGKILL');
          }, hardLimit * 1000);
        }
        this.post(slot, { type: 'run', job: toWire(job) });
      };
      if (!gate) dispatch();
      else
        gate.then(dispatch, (err: unknown) => {
          if (slot.job === job) this.finish(slot, { kind: 'notStarted', detail: (err as Error).message });
        });
    });
  }

  /**
   * Stops every child. Warm: children exit after the parent disconnects (call once no job runs), with a
   * deadline, then SIGKILL. Cold: SIGKILL at once; running jobs resolve as `lost`. Idempotent: every call
   * returns the same promise; a cold call during a warm close kills the children that are left.
   */
  close(cold = false): Promise<void> {
    this.closing = true;
    if (cold) for (const s of this.slots) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    if (!this.closed) this.closed = this.closeAll(cold);
    return this.closed;
  }

  private async closeAll(cold: boolean): Promise<void> {
    const exits = this.slots.map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.child.exitCode !== null || s.child.signalCode !== null) return resolve();
          s.child.once('exit', () => resolve());
          if (cold) return;
          this.post(s, { type: 'exit' });
          // Deadline, then SIGKILL: a child stuck in a sync loop must not block shutdown forever.
          setTimeout(() => s.child.kill('SIGKILL'), this.opts.exitTimeoutMs ?? 5000).unref();
        }),
    );
    await Promise.all(exits);
    this.slots.length = 0;
  }
}
