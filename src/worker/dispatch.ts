// Dispatch: hands due tasks to idle pool children, tracks the running ones, and says when none is left.

import type { WireMessage } from '../protocol/message.js';
import { reprOf } from '../protocol/codec.js';
import { stateBody } from '../results/body.js';
import { Admission } from './admission.js';
import type { Job } from './pool/ipc.js';
import type { Outcomes } from './outcome.js';
import { ignoresResult, internalPublishMs, taskBase, type Pending, type TaskIo } from './pending.js';
import type { TaskPool as Pool } from './pool/task-pool.js';

/** Moves tasks from the admission buffer to the pool and their results to {@link Outcomes}. */
export class Dispatch {
  private readonly running = new Map<number, Pending>();
  /** The pool each running task went to (a HUP restart drains before it replaces the pool). */
  private readonly poolOf = new Map<number, Pool>();
  private idleWaiters: Array<() => void> = [];
  /** Tasks finished since the worker started. */
  processed = 0;
  /** Tasks started since the worker started, per task name (Celery's stats `total`). */
  readonly totals = new Map<string, number>();

  constructor(
    private readonly io: TaskIo,
    private readonly admission: Admission,
    private readonly outcomes: Outcomes,
    /** The current pool and whether dispatching is allowed now. */
    private readonly target: () => Pool | null,
    /** Writes the running tasks to the status file (resolves once written); absent without a pidfile. */
    private readonly record?: () => Promise<void>,
  ) {}

  /** Tasks running now. */
  get active(): readonly Pending[] {
    return [...this.running.values()];
  }

  /** Pid of the pool child running a task, or null. */
  workerPid(p: Pending): number | null {
    return this.poolOf.get(p.seq)?.pidOf(p.seq) ?? null;
  }

  /**
   * Kills the pool child running task `taskId` with `signal` (remote control `revoke` with
   * `terminate`); the task then ends REVOKED. False when it does not run here.
   */
  terminate(taskId: string, signal: NodeJS.Signals): boolean {
    for (const p of this.running.values()) if (p.req.id === taskId) return this.poolOf.get(p.seq)?.terminate(p.seq, signal) ?? false;
    return false;
  }

  /** Starts due tasks while children are idle. */
  pump(): void {
    const pool = this.target();
    if (!pool) return;
    while (pool.idle > 0) {
      const p = this.admission.take();
      if (!p) return;
      this.startJob(pool, p);
    }
  }

  /** Resolves when no task is running and its result, ack and follow-ups are written. */
  idle(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private startJob(pool: Pool, p: Pending): void {
    const { req, def } = p;
    const { events, hostname } = this.io;
    const acksLate = def.options.acksLate ?? this.io.config.acksLate;
    const changed = this.io.limits.time(req.task); // by `time_limit`; a soft 0 = none (null would fall back to the task's)
    p.startedAt = Date.now();
    this.running.set(p.seq, p);
    this.poolOf.set(p.seq, pool);
    this.totals.set(req.task, (this.totals.get(req.task) ?? 0) + 1);
    // Acks early: the child gets the job only once the ack is durable (at most once even if this process is
    // killed right after dispatch; found by test/faults/sqlite-node-kill.test.ts).
    // Also on record first (status file): if the whole node is killed, whoever finds it dead can store the
    // task's FAILURE instead of leaving it PENDING forever (issue 9). Acks late needs none: it is redelivered.
    const ack = acksLate ? undefined : this.outcomes.ack(p);
    const acked = ack && this.record && !ignoresResult(p) ? Promise.all([ack, this.record()]).then(() => undefined) : ack;
    if (def.options.trackStarted) void this.outcomes.store(p, stateBody(req.id, 'STARTED', { pid: process.pid, hostname }));
    events.emit('task:started', { ...taskBase(p, hostname), pid: process.pid });
    const job: Job = {
      seq: p.seq,
      id: req.id,
      name: req.task,
      args: req.args,
      kwargs: req.kwargs,
      retries: req.retries,
      rootId: req.rootId,
      parentId: req.parentId,
      hostname,
      softTimeLimit: req.softTimeLimit ?? (changed ? (changed.soft ?? 0) : null),
      scheduledAt: scheduledAtOf(req.headers),
      group: req.group,
      groupIndex: req.groupIndex,
      // decodeTaskMessage took args and kwargs from this very text: a prefork child parses it again instead.
      body: p.delivery.message.body,
    };
    // The message's limits win, then those set by remote control (`time_limit`), then the task's own.
    const hard = req.timeLimit ?? (changed ? changed.hard : def.options.timeLimit);
    pool
      .run(job, hard, (state, meta) => void this.outcomes.store(p, stateBody(req.id, state, meta)), acked)
      .then(async (r) => {
        // A deduped task frees its key before its result is stored, so a caller that saw the result can send
        // again at once. A retry frees it after the retry is sent (the retry message then keeps the key).
        if (!(r.kind === 'done' && r.outcome.kind === 'retry') && Admission.dedupeKey(p) !== null) await this.admission.releaseDedupe(p);
        await this.outcomes.finish(p, r);
      })
      .catch(async (err) => {
        events.emit('worker:error', { message: `Task ${req.task}[${req.id}] bookkeeping failed: ${(err as Error).message}`, taskId: req.id });
        // Not acked yet (acks late): hand it back so it runs again rather than staying leased.
        if (!p.acked && !p.abandoned) {
          await this.outcomes.requeue(p).catch((e) => events.emit('worker:error', { message: `Requeue of ${req.id} failed: ${(e as Error).message}`, taskId: req.id }));
        }
      })
      .finally(() => {
        this.running.delete(p.seq);
        this.poolOf.delete(p.seq);
        this.processed++;
        if (Admission.dedupeKey(p) !== null) void this.admission.releaseDedupe(p);
        if (this.running.size === 0) for (const wake of this.idleWaiters.splice(0)) wake();
        this.pump();
      });
  }

  /** Cold shutdown: every running task goes back to its queue (republished when it was acked early). */
  async terminateAll(): Promise<void> {
    const { events, hostname, transport } = this.io;
    for (const p of this.running.values()) {
      p.abandoned = true;
      try {
        if (p.acked) await transport.publish(p.delivery.queue, p.delivery.message as unknown as WireMessage, { timeoutMs: internalPublishMs(this.io.config) });
        else await transport.reject(p.delivery, { requeue: true });
        events.emit('task:rejected', { ...taskBase(p, hostname), requeue: true, cause: 'coldShutdown', reason: 'cold shutdown' });
      } catch (err) {
        events.emit('worker:error', { message: `Cold shutdown: could not give ${p.req.id} back: ${(err as Error).message}`, taskId: p.req.id });
      }
    }
  }

  /** Lines describing the running tasks (USR1). */
  describe(reserved: number): string[] {
    const now = Date.now();
    const lines = [...this.running.values()].map((p) => `${p.req.task}[${p.req.id}] running for ${((now - p.startedAt) / 1000).toFixed(1)}s args=${reprOf(p.req.args, 120)}`);
    return [`${lines.length} running, ${reserved} reserved, ${this.processed} processed`, ...lines];
  }
}

/** The due time a periodic run carries (`x-asynx-scheduled-at`, set by the scheduler), or null. */
function scheduledAtOf(headers: unknown): string | null {
  const v = (headers as Record<string, unknown> | null)?.['x-asynx-scheduled-at'];
  return typeof v === 'string' ? v : null;
}
