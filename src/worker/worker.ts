// Worker: wires transport → consumer → prefork pool → results; owns lifecycle state, pidfile and status file.

import { hostname } from 'node:os';
import type { Asynx } from '../app/app.js';
import { redact } from '../app/app.js';
import type { TaskDefinition } from '../app/execute.js';
import { encodeError } from '../app/execute.js';
import type { ResolvedConfig } from '../config.js';
import { AsynxError, NotRegistered, ProtocolError, TaskRevokedError, TimeLimitExceeded, WorkerLostError } from '../errors.js';
import { acquirePidfile, type HeldPidfile } from '../process/pidfile.js';
import { removeStatus, statusPathFor, writeStatus, type NodeState } from '../process/status-file.js';
import { decodeTaskMessage, reprOf, type TaskRequest } from '../protocol/codec.js';
import type { Signature, WireMessage } from '../protocol/message.js';
import type { ResultBackend } from '../results/backend.js';
import { errorBody, stateBody, successBody } from '../results/body.js';
import type { Consumer, Delivery, Transport } from '../transports/transport.js';
import type { Job } from './ipc.js';
import type { Logger } from './logger.js';
import { loadApp } from './load-app.js';
import { Pool, type JobResult } from './pool.js';
import type { Pidbox } from '../control/pidbox.js';
import { controlHandlers, type TaskInfo } from './control.js';
import { retryMessage, signatureMessage } from './follow-ups.js';

/** Worker options (resolved by the CLI). */
export interface WorkerOptions {
  /** Full node name, `name@host`. */
  nodeName: string;
  concurrency: number;
  /** Queues to consume; empty → the app's default queue. */
  queues: string[];
  /** URL of the app module, imported again by each pool child. */
  appUrl: string;
  logger: Logger;
  pidfile?: string | null;
  maxTasksPerChild?: number | null;
  maxMemoryPerChildKb?: number | null;
  /** Log file path for pool child k, or null to share the main output. */
  childLogfile?: (index: number) => string | null;
  /** Extra env for pool children (the CLI's overrides as ASYNX_* variables). */
  childEnv?: NodeJS.ProcessEnv;
  /** Status-file refresh period. @defaultValue 2000 */
  statusIntervalMs?: number;
}

/** The worker lifecycle (style guide §7). */
export type WorkerState = NodeState;

interface Pending {
  delivery: Delivery;
  req: TaskRequest;
  def: TaskDefinition;
  acked: boolean;
  abandoned: boolean;
  timer: NodeJS.Timeout | null;
  startedAt: number;
  seq: number;
}

const ETA_HOLD_MS = 1000;

/** One worker node. */
export class Worker {
  state: WorkerState = 'starting';
  processed = 0;
  private config!: ResolvedConfig;
  private transport!: Transport;
  private backend!: ResultBackend;
  private pool: Pool | null = null;
  private consumer: Consumer | null = null;
  private pidfile: HeldPidfile | null = null;
  private statusPath: string | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private cleanupTimer: NodeJS.Timeout | null = null;
  private readonly buffer: Pending[] = [];
  private readonly held = new Set<Pending>();
  private readonly running = new Map<number, Pending>();
  private seq = 0;
  private stopPromise: Promise<void> | null = null;
  private cold = false;
  private coldKick: (() => void) | null = null;
  private reloads = 0;
  private pidbox: Pidbox | null = null;
  /** Task ids revoked by remote control: not run when they arrive (Celery keeps the same in memory). */
  private readonly revoked = new Set<string>();
  private readonly startedAt = Date.now();
  private readonly log: Logger;
  private queues: string[] = [];
  private resolveDone!: () => void;
  /** Resolves once the worker has stopped. */
  readonly done: Promise<void>;

  /** Where task definitions come from; replaced on HUP reload (connections stay on `app`). */
  private registry: Asynx;

  constructor(
    private readonly app: Asynx,
    private readonly opts: WorkerOptions,
  ) {
    this.registry = app;
    this.log = opts.logger;
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  private setState(state: WorkerState, error?: string): void {
    this.state = state;
    this.writeStatus(error);
  }

  private writeStatus(error?: string): void {
    if (!this.statusPath) return;
    try {
      writeStatus(this.statusPath, {
        node: this.opts.nodeName,
        pid: process.pid,
        state: this.state,
        concurrency: this.opts.concurrency,
        childPids: this.pool?.childPids ?? [],
        processed: this.processed,
        active: this.running.size,
        queues: this.queues,
        broker: this.config ? redact(this.config.brokerUrl) : '',
        startedAt: this.startedAt,
        updatedAt: Date.now(),
        ...(error ? { error } : {}),
      });
    } catch (err) {
      this.log.warn(`Cannot write status file ${this.statusPath}: ${(err as Error).message}`);
    }
  }

  /** Starts: pidfile, broker connection, pool, consumer. Rejects (after cleaning up) if any step fails. */
  async start(): Promise<void> {
    try {
      if (this.opts.pidfile) {
        this.pidfile = acquirePidfile(this.opts.pidfile, this.opts.nodeName, (m) => this.log.warn(m));
        this.statusPath = statusPathFor(this.opts.pidfile);
      }
      this.setState('starting');
      this.config = await this.app.config();
      this.queues = this.opts.queues.length ? this.opts.queues : [this.config.defaultQueue];
      this.transport = await this.app.transport();
      this.backend = await this.app.backend();
      for (const q of this.queues) await this.transport.declareQueue(q);
      this.pool = this.makePool();
      await this.pool.start();
      await this.consume();
      await this.startControl();
      this.setState('running');
      this.pump(); // deliveries that arrived while starting were buffered
      this.statusTimer = setInterval(() => this.writeStatus(), this.opts.statusIntervalMs ?? 2000);
      this.statusTimer.unref();
      this.cleanupTimer = setInterval(() => void this.backend.cleanup().catch(() => undefined), 600_000);
      this.cleanupTimer.unref();
      void this.backend.cleanup().catch(() => undefined);
      this.log.info(`Connected to ${redact(this.config.brokerUrl)}; results: ${redact(this.config.resultBackend)}; queues: ${this.queues.join(', ')}; concurrency: ${this.opts.concurrency} (prefork)`);
      this.log.info('ready.');
    } catch (err) {
      this.setState('failed', (err as Error).message);
      await this.pidbox?.close().catch(() => undefined);
      await this.pool?.close(true).catch(() => undefined);
      await this.app.close().catch(() => undefined);
      this.pidfile?.remove();
      this.resolveDone();
      throw err;
    }
  }

  /** Remote control (Celery's pidbox) on AMQP brokers: `celery inspect ping|stats|active|registered …`. */
  private async startControl(): Promise<void> {
    if (!this.config.brokerUrl.startsWith('amqp')) return;
    const { startPidbox } = await import('../control/pidbox.js');
    const describe = (p: Pending): TaskInfo => ({ req: p.req, queue: p.delivery.queue, redelivered: p.delivery.redelivered, acked: p.acked, startedAt: p.startedAt });
    this.pidbox = await startPidbox(
      this.config.brokerUrl,
      this.opts.nodeName,
      controlHandlers({
        nodeName: this.opts.nodeName,
        stats: () => ({ pid: process.pid, uptimeSec: Math.round((Date.now() - this.startedAt) / 1000), concurrency: this.opts.concurrency, childPids: this.pool?.childPids ?? [], processed: this.processed, prefetch: this.opts.concurrency * this.config.prefetchMultiplier }),
        active: () => [...this.running.values()].map(describe),
        reserved: () => this.buffer.map(describe),
        scheduled: () => [...this.held].map(describe),
        registered: () => this.registry.taskNames(),
        revoke: (id) => this.revoked.add(id),
        shutdown: () => void this.stop('warm'),
      }),
      { connectTimeoutMs: this.config.connectTimeoutMs },
    );
  }

  private makePool(): Pool {
    return new Pool({
      size: this.opts.concurrency,
      appUrl: this.reloads ? `${this.opts.appUrl}` : this.opts.appUrl,
      env: this.opts.childEnv,
      maxTasksPerChild: this.opts.maxTasksPerChild,
      maxMemoryPerChildKb: this.opts.maxMemoryPerChildKb,
      logfileFor: this.opts.childLogfile,
      onEvent: (e) => {
        if (e.type === 'pool:child:exit' && !e.expected) this.log.error(`Pool child ${e.index} (pid ${e.pid}) exited unexpectedly: ${e.detail}; replacing it`);
        else if (e.type === 'pool:child:recycle') this.log.info(`Recycling pool child ${e.index} (pid ${e.pid}): ${e.reason}`);
        this.writeStatus();
        this.pump();
      },
    });
  }

  private async consume(): Promise<void> {
    const prefetch = this.opts.concurrency * this.config.prefetchMultiplier;
    this.consumer = await this.transport.consume(this.queues, prefetch, (d) => this.onDelivery(d));
  }

  private onDelivery(d: Delivery): void {
    this.receive(d).catch((err) => this.log.error(`Handling message ${d.tag} failed: ${(err as Error).stack ?? String(err)}`));
  }

  private async receive(d: Delivery): Promise<void> {
    if (this.state !== 'running' && this.state !== 'starting') {
      await this.transport.reject(d, { requeue: true });
      return;
    }
    let req: TaskRequest;
    try {
      req = decodeTaskMessage(d.message);
    } catch (err) {
      const e = err instanceof AsynxError ? err : new ProtocolError('asynx.protocol.invalid', (err as Error).message);
      const h = (typeof d.message.headers === 'object' && d.message.headers !== null ? d.message.headers : {}) as Record<string, unknown>;
      const id = typeof h.id === 'string' ? h.id : null;
      const replyTo = typeof d.message.properties.reply_to === 'string' ? d.message.properties.reply_to : null;
      await this.invalid(d, e, id, replyTo);
      return;
    }
    const def = this.registry.getTask(req.task);
    if (!def) {
      this.log.error(`Received unregistered task of type '${req.task}' (id ${req.id}): the message goes to the dead-letter queue`);
      await this.invalid(d, new NotRegistered(req.task, { taskId: req.id }), req.id, req.replyTo);
      return;
    }
    const p: Pending = { delivery: d, req, def, acked: false, abandoned: false, timer: null, startedAt: 0, seq: ++this.seq };
    if (this.revoked.has(req.id)) {
      this.log.info(`Discarding revoked task ${req.task}[${req.id}]: REVOKED`);
      await this.store(p, errorBody(req.id, 'REVOKED', encodeError(new TaskRevokedError('revoked', { taskId: req.id }))));
      await this.ack(p);
      return;
    }
    if (req.expires !== null && req.expires <= Date.now()) {
      this.log.info(`Discarding expired task ${req.task}[${req.id}] (expired ${new Date(req.expires).toISOString()}): REVOKED`);
      await this.store(p, errorBody(req.id, 'REVOKED', encodeError(new TaskRevokedError('expired', { taskId: req.id }))));
      await this.ack(p);
      return;
    }
    if (d.deliveryCount > this.config.maxDeliveries) {
      const reason = `delivered ${d.deliveryCount} times without completing: the worker running it died each time`;
      this.log.error(`Task ${req.task}[${req.id}] ${reason}; moving it to the dead-letter queue`);
      await this.transport.reject(d, { requeue: false, reason });
      await this.store(p, errorBody(req.id, 'FAILURE', encodeError(new WorkerLostError(reason, { taskId: req.id }))));
      return;
    }
    if (this.log.enabled('info')) this.log.info(`Task ${req.task}[${req.id}] received${req.eta ? ` (eta ${new Date(req.eta).toISOString()})` : ''}`);
    const wait = req.eta !== null ? req.eta - Date.now() : 0;
    if (wait > 0) {
      if (wait > ETA_HOLD_MS && this.transport.capabilities.delayedDelivery) {
        // Hand it back to the broker's delayed store rather than holding a prefetch slot.
        await this.transport.publish(d.queue, d.message as unknown as WireMessage, { timeoutMs: this.internalPublishMs });
        await this.ack(p);
        return;
      }
      this.held.add(p);
      p.timer = setTimeout(() => {
        this.held.delete(p);
        p.timer = null;
        this.enqueue(p);
      }, wait);
      return;
    }
    this.enqueue(p);
  }

  /** Puts a due task in the local buffer, highest priority first (FIFO within a priority), and dispatches. */
  private enqueue(p: Pending): void {
    let i = this.buffer.length;
    while (i > 0 && this.buffer[i - 1]!.req.priority < p.req.priority) i--;
    this.buffer.splice(i, 0, p);
    this.pump();
  }

  /** A message that cannot run: dead-letter it, and store a FAILURE where it has an id. */
  private async invalid(d: Delivery, err: AsynxError, id: string | null, replyTo: string | null): Promise<void> {
    if (!(err instanceof NotRegistered)) this.log.error(`Received invalid message ${d.tag} on queue '${d.queue}': ${err.message}; moving it to the dead-letter queue`);
    await this.transport.reject(d, { requeue: false, reason: `${err.code}: ${err.message}` });
    if (id) await this.backend.store({ taskId: id, replyTo }, errorBody(id, 'FAILURE', encodeError(err))).catch((e) => this.log.error(`Storing the failure of ${id} failed: ${(e as Error).message}`));
  }

  private async ack(p: Pending): Promise<void> {
    if (p.acked) return;
    p.acked = true;
    await this.transport.ack(p.delivery);
  }

  private async store(p: Pending, body: ReturnType<typeof successBody>): Promise<void> {
    if (p.req.ignoreResult || p.def.options.ignoreResult) return;
    try {
      await this.backend.store({ taskId: p.req.id, replyTo: p.req.replyTo, taskName: p.req.task }, body);
    } catch (err) {
      this.log.error(`Storing state ${body.status} of ${p.req.task}[${p.req.id}] failed: ${(err as Error).message}`);
    }
  }

  private pump(): void {
    if (!this.pool || this.state !== 'running') return;
    while (this.buffer.length && this.pool.idle > 0) this.startJob(this.buffer.shift()!);
  }

  private startJob(p: Pending): void {
    const { req, def } = p;
    const acksLate = def.options.acksLate ?? this.config.acksLate;
    p.startedAt = Date.now();
    this.running.set(p.seq, p);
    // Acks early: the child gets the job only once the ack is durable (at most once even if this process is
    // killed right after dispatch; found by test/faults/sqlite-node-kill.test.ts).
    const acked = acksLate ? undefined : this.ack(p);
    if (def.options.trackStarted) void this.store(p, stateBody(req.id, 'STARTED', { pid: process.pid, hostname: this.opts.nodeName }));
    const job: Job = {
      seq: p.seq,
      id: req.id,
      name: req.task,
      args: req.args,
      kwargs: req.kwargs,
      retries: req.retries,
      rootId: req.rootId,
      parentId: req.parentId,
      hostname: this.opts.nodeName,
      softTimeLimit: req.softTimeLimit,
    };
    const hard = req.timeLimit ?? def.options.timeLimit;
    this.pool!.run(job, hard, (state, meta) => void this.store(p, stateBody(req.id, state, meta)), acked)
      .then((r) => this.finishJob(p, r))
      .catch(async (err) => {
        this.log.error(`Task ${req.task}[${req.id}] bookkeeping failed: ${(err as Error).message}`);
        // Not acked yet (acks late): hand it back so it runs again rather than staying leased.
        if (!p.acked && !p.abandoned) {
          p.acked = true;
          await this.transport.reject(p.delivery, { requeue: true }).catch((e) => this.log.error(`Requeue of ${req.id} failed: ${(e as Error).message}`));
        }
      })
      .finally(() => {
        this.running.delete(p.seq);
        this.processed++;
        this.pump();
      });
  }

  private async finishJob(p: Pending, r: JobResult): Promise<void> {
    if (p.abandoned) return;
    const { req } = p;
    const secs = ((Date.now() - p.startedAt) / 1000).toFixed(3);
    const name = `${req.task}[${req.id}]`;
    if (r.kind === 'notStarted') {
      this.log.error(`Task ${name} not started: its early ack failed (${r.detail}); giving it back to the broker`);
      await this.transport.reject(p.delivery, { requeue: true }).catch(() => undefined);
      return;
    }
    if (r.kind === 'done') {
      const o = r.outcome;
      if (o.kind === 'success') {
        // Built only when it will be written: at -l warning this line costs nothing per task.
        if (this.log.enabled('info')) this.log.info(`Task ${name} succeeded in ${secs}s: ${reprOf(o.value, 200)}`);
        await this.store(p, successBody(req.id, o.value));
        await this.followUps(p, o.value);
      } else if (o.kind === 'retry') {
        this.log.info(`Task ${name} retry: retry in ${(o.countdownMs / 1000).toFixed(3)}s: ${o.error.exc_type}: ${String(o.error.exc_message[0] ?? '')}`);
        await this.republishRetry(p, o.countdownMs);
        await this.store(p, errorBody(req.id, 'RETRY', o.error));
      } else {
        this.log.error(`Task ${name} raised unexpected: ${o.error.exc_type}(${JSON.stringify(String(o.error.exc_message[0] ?? ''))}) after ${secs}s`);
        await this.store(p, errorBody(req.id, 'FAILURE', o.error));
        await this.errbacks(p);
      }
    } else if (r.kind === 'timeLimit') {
      this.log.error(`Hard time limit (${r.seconds}s) exceeded for ${name}: its pool child was killed`);
      await this.store(p, errorBody(req.id, 'FAILURE', encodeError(new TimeLimitExceeded(r.seconds, { taskId: req.id }))));
      await this.errbacks(p);
    } else {
      if (!p.acked) {
        this.log.error(`Pool child died running ${name} (${r.detail}): acks_late, so the message goes back to its queue`);
        await this.transport.reject(p.delivery, { requeue: true });
        p.acked = true;
        return;
      }
      this.log.error(`Task ${name} failed: WorkerLostError: pool child exited (${r.detail})`);
      await this.store(p, errorBody(req.id, 'FAILURE', encodeError(new WorkerLostError(r.detail, { taskId: req.id }))));
      await this.errbacks(p);
    }
    await this.ack(p);
  }

  private async publishSignature(p: Pending, sig: Signature, args: unknown[], chain: Signature[] | null): Promise<void> {
    const { queue, message } = signatureMessage(sig, args, chain, p.req, this.config.defaultQueue);
    await this.transport.declareQueue(queue);
    await this.transport.publish(queue, message, { timeoutMs: this.internalPublishMs });
  }

  /** Callbacks (link) and the next chain step, after a success. */
  private async followUps(p: Pending, value: unknown): Promise<void> {
    const { embed } = p.req;
    try {
      for (const cb of embed.callbacks ?? []) await this.publishSignature(p, cb, cb.immutable ? cb.args : [value, ...cb.args], null);
      if (embed.chain && embed.chain.length) {
        const next = embed.chain[embed.chain.length - 1]!;
        await this.publishSignature(p, next, next.immutable ? next.args : [value, ...next.args], embed.chain.slice(0, -1));
      }
    } catch (err) {
      this.log.error(`Sending callbacks of ${p.req.task}[${p.req.id}] failed: ${(err as Error).message}`);
    }
  }

  private async errbacks(p: Pending): Promise<void> {
    try {
      for (const eb of p.req.embed.errbacks ?? []) await this.publishSignature(p, eb, eb.immutable ? eb.args : [p.req.id, ...eb.args], null);
    } catch (err) {
      this.log.error(`Sending errbacks of ${p.req.task}[${p.req.id}] failed: ${(err as Error).message}`);
    }
  }

  /** Celery's retry: same id, retries + 1, new eta, parent_id = own id. */
  private async republishRetry(p: Pending, countdownMs: number): Promise<void> {
    await this.transport.publish(p.delivery.queue, retryMessage(p.req, countdownMs), { timeoutMs: this.internalPublishMs });
  }

  /** Worker-side publishes (retries, callbacks, eta hand-back) wait longer than a web client would. */
  private get internalPublishMs(): number {
    return Math.max(this.config.publishTimeoutMs, 60_000);
  }

  /** Resolves once no task is running and its result, acks and follow-ups are written. */
  private async waitIdle(): Promise<void> {
    while (this.running.size > 0) await new Promise((r) => setTimeout(r, 20));
  }

  /** Lines describing the running tasks (USR1). */
  describeActive(): string[] {
    const now = Date.now();
    const lines = [...this.running.values()].map((p) => `${p.req.task}[${p.req.id}] running for ${((now - p.startedAt) / 1000).toFixed(1)}s args=${reprOf(p.req.args, 120)}`);
    return [`${lines.length} running, ${this.buffer.length + this.held.size} reserved, ${this.processed} processed`, ...lines];
  }

  /** Gives every not-started message back to its queue. */
  private async giveBack(): Promise<void> {
    const back = [...this.buffer.splice(0), ...this.held];
    this.held.clear();
    for (const p of back) {
      if (p.timer) clearTimeout(p.timer);
      if (!p.acked) await this.transport.reject(p.delivery, { requeue: true }).catch(() => undefined);
    }
    if (back.length) this.log.info(`Restoring ${back.length} unacknowledged message(s)`);
  }

  /** HUP: drain, then replace the pool (children import the app afresh) and resume consuming. Same pid. */
  async restartPool(): Promise<void> {
    if (this.state !== 'running' || !this.pool) return;
    this.log.info(`Restarting worker pool (${this.opts.nodeName}): warm drain, then new children`);
    this.setState('draining');
    await this.consumer?.cancel();
    this.consumer = null;
    await this.giveBack();
    await this.waitIdle();
    await this.pool.close(false);
    this.reloads++;
    try {
      this.registry = await loadApp(this.opts.appUrl, this.reloads).catch((err) => {
        this.log.error(`Reloading the app module failed, keeping the old task registry: ${(err as Error).message}`);
        return this.registry;
      });
      this.pool = this.makePool();
      await this.pool.start();
      this.setState('running');
      await this.consume();
      this.log.info('restarted.');
    } catch (err) {
      this.log.error(`Restart failed: ${(err as Error).message}; shutting down`);
      void this.stop('warm');
    }
  }

  /**
   * Warm: stop consuming, give prefetched messages back, let running tasks finish, exit.
   * Cold (or a cold request during a warm one): kill the children; unfinished messages go back to the queue.
   */
  stop(mode: 'warm' | 'cold'): Promise<void> {
    if (mode === 'cold') {
      this.cold = true;
      this.coldKick?.();
    }
    if (!this.stopPromise) this.stopPromise = this.shutdown();
    return this.stopPromise;
  }

  private async shutdown(): Promise<void> {
    this.log.info(`${this.cold ? 'Cold' : 'Warm'} shutdown (MainProcess)`);
    this.setState('draining');
    if (this.statusTimer) clearInterval(this.statusTimer);
    if (this.cleanupTimer) clearInterval(this.cleanupTimer);
    await this.consumer?.cancel().catch(() => undefined);
    this.consumer = null;
    await this.giveBack();
    if (!this.cold && this.pool) {
      const coldRequested = new Promise<void>((r) => (this.coldKick = r));
      await Promise.race([this.waitIdle(), coldRequested]);
    }
    if (this.cold) {
      for (const p of this.running.values()) {
        p.abandoned = true;
        try {
          if (p.acked) await this.transport.publish(p.delivery.queue, p.delivery.message as unknown as WireMessage, { timeoutMs: this.internalPublishMs });
          else await this.transport.reject(p.delivery, { requeue: true });
          this.log.warn(`Cold shutdown: ${p.req.task}[${p.req.id}] was terminated and goes back to its queue`);
        } catch (err) {
          this.log.error(`Cold shutdown: could not give ${p.req.id} back: ${(err as Error).message}`);
        }
      }
    }
    this.setState('stopping');
    await this.pidbox?.close().catch(() => undefined);
    await this.pool?.close(this.cold).catch(() => undefined);
    await this.app.close().catch(() => undefined);
    this.state = 'stopped';
    if (this.statusPath) removeStatus(this.statusPath);
    this.pidfile?.remove();
    this.log.info(`stopped (${this.processed} tasks processed).`);
    this.resolveDone();
  }

  /** True when a cold shutdown was requested. */
  get wasCold(): boolean {
    return this.cold;
  }
}

/** `name@host` with the machine's hostname when no host is given. */
export function defaultNodeName(): string {
  return `asynx@${hostname()}`;
}
