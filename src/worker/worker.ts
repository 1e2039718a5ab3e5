// Worker: the lifecycle over its parts (admission → dispatch → outcomes), with cleanup registered as it starts.

import type { Asynx } from '../app/app.js';
import { globalRateUnsupported } from '../app/rate-limit.js';
import { claimNodeName } from '../control/node-registry.js';
import type { Mailbox } from '../control/mailbox.js';
import { acquirePidfile } from '../process/pidfile.js';
import { readStatus, statusPathFor } from '../process/status-file.js';
import type { ResultBackend } from '../results/backend.js';
import type { Transport } from '../transports/transport.js';
import { parseBrokerUrl } from '../urls.js';
import { Releasers } from '../util/close-once.js';
import { redact } from '../util/redact.js';
import { Admission } from './admission.js';
import { brokerDown, connectWithRetry } from './connect-retry.js';
import { startCeleryEvents } from './celery-events.js';
import { ConsumerSet } from './consumer-set.js';
import { controlHandlers } from './control.js';
import { workerControlTarget } from './control-target.js';
import { Dispatch } from './dispatch.js';
import { WorkerEvents, type WorkerEventName, type WorkerInfo, type WorkerListener, type WorkerState } from './events.js';
import { Lifecycle } from './lifecycle.js';
import { MonitorState } from './monitor.js';
import { loadApp } from './load-app.js';
import { LostTasks } from './lost-tasks.js';
import { subscribeLogger } from './log-subscriber.js';
import { isResolvedWorkerOptions, resolveWorkerOptions, type ResolvedWorkerOptions, type WorkerOptions } from './options.js';
import { Outcomes } from './outcome.js';
import type { TaskIo } from './pending.js';
import { watchLoopLag } from './loop-lag.js';
import { InProcessPool } from './pool/in-process.js';
import { Autoscaler } from './pool/autoscaler.js';
import { childOverrides } from './pool/child-config.js';
import { openPool } from './pool/open-pool.js';
import type { TaskTable } from './pool/job-runner.js';
import type { TaskPool as Pool } from './pool/task-pool.js';
import { StatusReporter } from './status-reporter.js';
import { TaskLimits } from './task-limits.js';

export { defaultNodeName } from './options.js';

export type { WorkerOptions, ResolvedWorkerOptions, WorkerState };

/** How a stop went: the CLI turns it into the exit status. */
export interface StopReport {
  mode: 'warm' | 'cold';
  /** Cleanup steps that failed (each was reported as `worker:error`; none skipped the others). */
  failedSteps: string[];
}

interface Parts {
  io: TaskIo;
  admission: Admission;
  outcomes: Outcomes;
  dispatch: Dispatch;
}

/** One worker node. Subscribe with {@link Worker.on}; run with {@link Worker.start}; end with {@link Worker.stop}. */
export class Worker {
  /** The typed events of this node. */
  readonly events = new WorkerEvents();
  /** Resolves once the worker has stopped or failed; never rejects. */
  readonly done: Promise<void>;
  /** Clock and event switches shared by Celery event publishing and remote control. */
  readonly monitor = new MonitorState(false);
  private readonly opts: ResolvedWorkerOptions;
  private readonly lifecycle: Lifecycle;
  private readonly releasers: Releasers;
  private readonly failedSteps: string[] = [];
  private readonly startedAt = Date.now();
  private readonly load: () => Promise<Asynx>;
  private registry: Asynx | null = null;
  /** The app the worker started with: it owns the worker's broker and backend connections. */
  private firstApp: Asynx | null = null;
  private parts: Parts | null = null;
  private pool: Pool | null = null;
  /** `--autoscale`: resizes the pool (the current one: it follows HUP restarts). */
  private autoscaler: Autoscaler | null = null;
  private consumers: ConsumerSet | null = null;
  /** Rate and time limits set by remote control; kept across HUP restarts. */
  private readonly limits = new TaskLimits();
  /** Pool size: `--concurrency`, then changed by `pool_grow` / `pool_shrink`. */
  private concurrency: number;
  private mailbox: Mailbox | null = null;
  private prefetch: number | undefined;
  private queues: string[] = [];
  private broker = '';
  private reloads = 0;
  private status: StatusReporter | null = null;
  /** Running tasks on record in the status file; a killed predecessor's tasks to settle (issue 9). */
  private readonly lost: LostTasks;
  private startPromise: Promise<void> | null = null;
  private stopPromise: Promise<void> | null = null;
  private restarting: Promise<void> | null = null;
  private stopRequested = false;
  /** Aborted by a stop: ends the start-up connection retries at once. */
  private readonly startAbort = new AbortController();
  private abandonedConnect = false;
  private cold = false;
  private coldKick: (() => void) | null = null;
  private resolveDone!: () => void;

  /**
   * `app`: the app, or a function that loads it (so a stop during a slow import is a clean stop).
   * `options`: the user form (resolved here) or the result of {@link resolveWorkerOptions}.
   */
  constructor(app: Asynx | (() => Promise<Asynx>), options: WorkerOptions | ResolvedWorkerOptions) {
    this.opts = isResolvedWorkerOptions(options) ? options : resolveWorkerOptions(options);
    this.concurrency = this.opts.concurrency;
    this.load = typeof app === 'function' ? app : async () => app;
    this.lifecycle = new Lifecycle(this.events, this.opts.nodeName);
    this.lost = new LostTasks(this.events);
    this.releasers = new Releasers((step, err) => {
      this.failedSteps.push(step);
      this.events.emit('worker:error', { message: `Shutdown step '${step}' failed: ${(err as Error)?.message ?? String(err)}` });
    });
    this.done = new Promise((r) => (this.resolveDone = r));
    if (this.opts.logger) subscribeLogger(this.events, this.opts.logger);
    // A child that came up or went away changes what can be dispatched.
    const pump = () => this.parts?.dispatch.pump();
    this.events.on('pool:child:up', pump);
    this.events.on('pool:child:exit', pump);
  }

  /** Subscribes to one event; returns a function that unsubscribes. */
  on<K extends WorkerEventName>(name: K, listener: WorkerListener<K>): () => void {
    return this.events.on(name, listener);
  }

  off<K extends WorkerEventName>(name: K, listener: WorkerListener<K>): void {
    this.events.off(name, listener);
  }

  get state(): WorkerState {
    return this.lifecycle.state;
  }

  /** Tasks finished since start. */
  get processed(): number {
    return this.parts?.dispatch.processed ?? 0;
  }

  /** True when a cold shutdown was requested. */
  get wasCold(): boolean {
    return this.cold;
  }

  /** After {@link Worker.done}: how the stop went. */
  get stopReport(): StopReport {
    return { mode: this.cold ? 'cold' : 'warm', failedSteps: [...this.failedSteps] };
  }

  private info(): WorkerInfo {
    const active = this.parts?.dispatch.active.length ?? 0;
    return { hostname: this.opts.nodeName, pid: process.pid, timestamp: Date.now(), freq: this.opts.heartbeatIntervalMs / 1000, active, processed: this.processed, concurrency: this.concurrency, queues: this.queues };
  }

  /** Starts: pidfile, app, broker, pool, consumer, remote control. Rejects (after cleaning up) if a step fails. */
  start(): Promise<void> {
    if (!this.startPromise) this.startPromise = this.runStart();
    return this.startPromise;
  }

  private async runStart(): Promise<void> {
    const { opts, releasers } = this;
    try {
      if (this.stopRequested) return;
      if (opts.pidfile) {
        const pidfile = acquirePidfile(opts.pidfile, opts.nodeName, (message) => this.events.emit('worker:warning', { message }));
        releasers.add('pidfile', () => pidfile.remove());
        // Holding the pidfile means the node that wrote this status before is dead: its tasks need settling.
        this.lost.inherit(readStatus(statusPathFor(opts.pidfile)));
        const status = new StatusReporter(statusPathFor(opts.pidfile), this.events, () => this.snapshot());
        this.status = status;
        // A failed node leaves its status (with the reason) for `multi start` to show.
        // So does one that could not settle its predecessor's tasks yet (the next start tries again).
        releasers.add('status file', () => (this.lifecycle.state === 'failed' || this.lost.unsettled ? status.write() : status.remove()));
        status.start();
      }
      const app = await this.load();
      // After a stop abandoned a connection attempt, the app closes in the background (the attempt is bounded).
      releasers.add('app', () => {
        // The app a HUP restart loaded last may hold connections its tasks opened (async, solo pools).
        const reloaded = this.registry !== app ? this.registry?.close().catch(() => undefined) : undefined;
        return this.abandonedConnect ? void app.close().catch(() => undefined) : Promise.all([app.close(), reloaded]).then(() => undefined);
      });
      this.registry = app;
      this.firstApp = app;
      if (this.stopRequested) return;
      const config = await app.config();
      this.queues = opts.queues.length ? opts.queues : [config.defaultQueue];
      this.broker = redact(config.brokerUrl);
      // Under autoscale Celery prefetches for the largest pool: max × multiplier.
      this.prefetch = (opts.autoscale ? opts.autoscale.max : opts.concurrency) * config.prefetchMultiplier;
      const connected = await this.connect(app, config.brokerUrl, app.cwd);
      if (connected === null || this.stopRequested) return;
      const { transport, backend } = connected;
      // A global limit this broker cannot share would silently be per worker: refused before consuming.
      for (const name of app.taskNames()) if (app.getTask(name)?.options.rateLimit?.global && !transport.takeRateToken) throw globalRateUnsupported(name, transport.kind);
      await claimNodeName(transport, config, opts.nodeName, releasers); // a live node of this name on this broker: refuse
      this.lost.useTarget(config.brokerUrl, config.resultBackend, app.cwd);
      if (this.lost.unsettled) {
        const settling = this.lost.settle(backend, config.connectTimeoutMs, () => this.status?.write()).catch((err) => this.events.emit('worker:error', { message: `Settling the tasks of the killed node failed: ${(err as Error).message}` }));
        // Before the backend closes (cleanup runs last-registered first).
        releasers.add('settle lost tasks', () => settling);
      }
      for (const q of this.queues) await transport.declareQueue(q);
      if (this.stopRequested) return;
      // Celery events: sent until the pool has closed (cleanup runs newest first), worker-offline last.
      this.monitor.taskEvents = opts.taskEvents ?? config.workerSendTaskEvents;
      releasers.add('celery events', await startCeleryEvents(transport, config, { events: this.events, monitor: this.monitor, hostname: opts.nodeName, info: () => this.info() }));
      if (this.stopRequested) return;
      const io: TaskIo = { events: this.events, hostname: opts.nodeName, transport, backend, config, registry: () => this.registry ?? app, limits: this.limits };
      const outcomes = new Outcomes(io);
      const admission = new Admission(io, outcomes, () => this.lifecycle.accepting, () => {
        this.parts?.dispatch.pump();
        this.autoscaler?.poke();
      }, () => this.prefetch ?? 1);
      const status = this.status;
      const dispatch = new Dispatch(io, admission, outcomes, () => (this.lifecycle.state === 'running' ? this.pool : null), status ? () => status.record() : undefined);
      this.parts = { io, admission, outcomes, dispatch };
      releasers.add('pool', () => this.pool?.close(this.cold));
      this.pool = this.makePool();
      await this.pool.start();
      if (this.stopRequested) return;
      // The solo pool runs one task whatever -c says (it warned): the banner, stats and prefetch follow it.
      if (this.pool.kind === 'solo') {
        this.concurrency = this.pool.size;
        this.prefetch = this.concurrency * config.prefetchMultiplier;
      }
      if (opts.loopLagWarnMs > 0) releasers.add('loop-lag probe', this.watchLoop(opts.loopLagWarnMs));
      if (opts.autoscale) this.startAutoscaler(opts.autoscale, opts.autoscaleKeepaliveMs);
      releasers.add('consumer', () => this.cancelConsumer());
      await this.consume();
      if (this.stopRequested) return;
      await this.startControl();
      if (this.stopRequested) return;
      this.lifecycle.to('running');
      dispatch.pump(); // deliveries that arrived while starting were buffered
      const heartbeat = setInterval(() => this.events.emit('worker:heartbeat', this.info()), opts.heartbeatIntervalMs);
      heartbeat.unref();
      const cleanup = setInterval(() => void backend.cleanup().catch(() => undefined), opts.resultCleanupIntervalMs);
      cleanup.unref();
      releasers.add('timers', () => {
        clearInterval(heartbeat);
        clearInterval(cleanup);
      });
      void backend.cleanup().catch(() => undefined);
      this.events.emit('worker:online', { ...this.info(), broker: this.broker, resultBackend: redact(config.resultBackend), prefetch: this.prefetch, pool: this.opts.pool, ...(opts.autoscale ? { autoscale: opts.autoscale } : {}) });
    } catch (err) {
      // A stop closed what this step waited on (the pool, the broker): the stop finishes the job.
      if (this.stopRequested) return;
      this.lifecycle.to('failed', (err as Error).message);
      await releasers.close();
      this.resolveDone();
      throw err;
    }
  }

  /**
   * Connects the broker and result backend, retrying an unreachable AMQP broker (Celery's
   * broker_connection_retry_on_startup). Null when a stop ended the retries.
   */
  private async connect(app: Asynx, brokerUrl: string, cwd: string): Promise<{ transport: Transport; backend: ResultBackend } | null> {
    const networked = parseBrokerUrl(brokerUrl, cwd).kind !== 'sqlite';
    const got = await connectWithRetry(async () => ({ transport: await app.transport(), backend: await app.backend() }), {
      retries: this.opts.brokerConnectionRetries,
      maxWaitMs: this.opts.brokerConnectionMaxWaitMs,
      url: redact(brokerUrl),
      // SQLite is never "down": a file that cannot be opened fails at once.
      canRetry: (err) => networked && brokerDown(err),
      onRetry: (message) => this.events.emit('worker:warning', { message }),
      signal: this.startAbort.signal,
    });
    if (got === null) this.abandonedConnect = true;
    return got;
  }

  private snapshot() {
    return {
      node: this.opts.nodeName,
      pid: process.pid,
      state: this.lifecycle.state,
      concurrency: this.concurrency,
      childPids: this.pool?.childPids ?? [],
      processed: this.processed,
      active: this.parts?.dispatch.active.length ?? 0,
      ...(this.parts ? { reserved: this.parts.admission.reserved.length + this.parts.admission.scheduled.length } : {}),
      queues: this.queues,
      ...(this.prefetch !== undefined ? { prefetch: this.prefetch } : {}),
      broker: this.broker,
      startedAt: this.startedAt,
      ...(this.lifecycle.error !== undefined ? { error: this.lifecycle.error } : {}),
      // Says why the node drains: a shutdown (multi must not send a second TERM, which goes cold), not a HUP restart.
      ...(this.stopRequested ? { shutdown: this.cold ? ('cold' as const) : ('warm' as const) } : {}),
      ...this.lost.record(this.parts?.dispatch.active ?? [], this.parts?.io.config.acksLate ?? false),
    };
  }

  /**
   * Remote control on either broker (`asynx inspect`, `celery inspect` on AMQP): the AMQP pidbox or the
   * SQLite mailbox tables, answering with the handlers of ./control.ts.
   */
  private async startControl(): Promise<void> {
    const { io } = this.parts!;
    const { startMailbox } = await import('../control/mailbox.js');
    this.releasers.add('remote control', () => this.mailbox?.close());
    this.mailbox = await startMailbox(io.config.brokerUrl, this.opts.nodeName, controlHandlers(this.controlTarget()), { clock: this.monitor.clock, connectTimeoutMs: io.config.connectTimeoutMs, cwd: this.registry?.cwd ?? process.cwd() });
  }

  /** What remote control reads and changes in this node (the handlers in control.ts answer from it). */
  private controlTarget() {
    const { io, admission, dispatch } = this.parts!;
    return workerControlTarget({
      nodeName: this.opts.nodeName,
      startedAt: this.startedAt,
      io,
      admission,
      dispatch,
      monitor: this.monitor,
      poolKind: this.opts.pool,
      pool: () => this.pool,
      consumers: () => this.consumers,
      prefetch: () => this.prefetch ?? 0,
      maxTasksPerChild: this.opts.maxTasksPerChild ?? null,
      registered: () => (this.registry ?? io.registry()).taskNames(),
      taskOptions: (name) => (this.registry ?? io.registry()).getTask(name)?.options,
      autoscaler: () => this.autoscaler,
      resize: (n) => void this.resizePool(n).catch((err) => this.events.emit('worker:error', { message: `Resizing the pool by ${n} failed: ${(err as Error).message}` })),
      addQueue: async (q) => {
        const added = (await this.consumers?.add(q)) ?? false;
        this.queues = [...(this.consumers?.queues ?? this.queues)];
        return added;
      },
      removeQueue: async (q) => {
        const removed = (await this.consumers?.remove(q)) ?? false;
        this.queues = [...(this.consumers?.queues ?? this.queues)];
        return removed;
      },
      restartPool: () => void this.restartPool(),
      shutdown: () => void this.stop('warm'),
    });
  }

  /**
   * `pool_grow` (n > 0) / `pool_shrink` (n < 0) and autoscale: real children come or go; prefetch follows the
   * size (Celery's `_update_prefetch_count`), or under autoscale the max (Celery prefetches max × multiplier).
   */
  private async resizePool(n: number): Promise<void> {
    const pool = this.pool;
    if (!pool || this.lifecycle.state !== 'running' || n === 0) return;
    // The new slots exist at once (their children load the app meanwhile): size and prefetch follow now.
    const before = pool.size;
    const growing = n > 0 ? pool.grow(n) : (pool.shrink(-n), Promise.resolve());
    this.concurrency = pool.size;
    const a = this.autoscaler;
    if (pool.size !== before) this.events.emit('pool:resize', { hostname: this.opts.nodeName, pool: pool.kind, change: pool.size - before, size: pool.size, ...(a ? { autoscale: { max: a.max, min: a.min } } : {}) });
    await this.updatePrefetch();
    await growing;
  }

  /** Reports a blocked event loop (`pool:loop:blocked`), naming the in-process pool's tasks that were on it. */
  private watchLoop(thresholdMs: number): () => void {
    const inLoop = () => (this.pool instanceof InProcessPool ? this.pool : null);
    return watchLoopLag({
      thresholdMs,
      onBlocked: (blockedMs) => this.events.emit('pool:loop:blocked', { blockedMs, thresholdMs, pool: this.opts.pool, tasks: inLoop()?.suspects() ?? [] }),
      onTick: () => inLoop()?.tick(),
    });
  }

  private async updatePrefetch(): Promise<void> {
    const size = this.autoscaler ? this.autoscaler.max : this.concurrency;
    const prefetch = size * this.parts!.io.config.prefetchMultiplier;
    if (prefetch === this.prefetch) return;
    this.prefetch = prefetch;
    await this.consumers?.setPrefetch(prefetch);
  }

  /** `--autoscale`: decides on the current pool (none while draining or restarting); stopped before the pool closes. */
  private startAutoscaler(bounds: { max: number; min: number }, keepaliveMs: number): void {
    const { admission, dispatch } = this.parts!;
    const report = (what: string) => (err: unknown) => this.events.emit('worker:error', { message: `${what} failed: ${(err as Error).message}` });
    const scaler = new Autoscaler(bounds.max, bounds.min, keepaliveMs, {
      size: () => (this.pool && this.lifecycle.state === 'running' && !this.restarting ? this.pool.size : null),
      qty: () => admission.reserved.length + dispatch.active.length,
      resize: (n) => void this.resizePool(n).catch(report(`Autoscaling the pool by ${n}`)),
      maxChanged: () => void Promise.resolve().then(() => this.updatePrefetch()).catch(report('Updating the prefetch count')),
    });
    this.autoscaler = scaler;
    this.releasers.add('autoscaler', () => scaler.stop());
    scaler.start();
  }

  private makePool(): Pool {
    const pool = openPool(this.opts.pool, {
      size: this.concurrency,
      appUrl: this.opts.appUrl,
      env: this.opts.childEnv,
      maxTasksPerChild: this.opts.maxTasksPerChild,
      maxMemoryPerChildKb: this.opts.maxMemoryPerChildKb,
      logfileFor: this.opts.childLogfile ?? undefined,
      startTimeoutMs: this.opts.childStartTimeoutMs,
      events: this.events,
    }, { tasks: () => this.taskTable() });
    return pool;
  }

  /** The worker's own app's tasks, for the in-process pools (async, solo). */
  private taskTable(): TaskTable {
    const app = this.registry!;
    return new Map(app.taskNames().map((n) => [n, app.getTask(n)!]));
  }

  private async consume(): Promise<void> {
    const { io, admission } = this.parts!;
    this.consumers ??= new ConsumerSet(io.transport, this.queues, this.prefetch!, (d) => admission.onDelivery(d));
    await this.consumers.start();
  }

  private async cancelConsumer(): Promise<void> {
    await this.consumers?.stop();
  }

  /** Lines describing the running tasks (USR1). */
  describeActive(): string[] {
    const p = this.parts;
    if (!p) return [`0 running, 0 reserved, 0 processed (${this.lifecycle.state})`];
    return p.dispatch.describe(p.admission.reserved.length + p.admission.scheduled.length);
  }

  /** HUP: drain, then replace the pool (children import the app afresh) and resume consuming. Same pid. */
  restartPool(): Promise<void> {
    if (this.lifecycle.state !== 'running' || !this.pool || this.restarting) return this.restarting ?? Promise.resolve();
    this.restarting = this.runRestart().finally(() => (this.restarting = null));
    return this.restarting;
  }

  private async runRestart(): Promise<void> {
    const { admission, dispatch } = this.parts!;
    this.events.emit('pool:restart', { hostname: this.opts.nodeName, phase: 'begin' });
    this.lifecycle.to('draining');
    try {
      await this.cancelConsumer();
      await admission.giveBack();
      await dispatch.idle();
      if (this.stopRequested) return;
      await this.pool?.close(false);
      this.reloads++;
      const replaced = this.registry;
      // The CLI's overrides (`-b`, `-- key=value`), as the pool children get them: the in-process pools run tasks against this app.
      this.registry = await loadApp(this.opts.appUrl, this.reloads).then((app) => {
        app.configure(childOverrides({ ...process.env, ...this.opts.childEnv }));
        return app;
      }).catch((err) => {
        this.events.emit('worker:error', { message: `Reloading the app module failed, keeping the old task registry: ${(err as Error).message}` });
        return this.registry;
      });
      // The app module it replaces may hold connections its tasks opened (async, solo): its pool is closed.
      if (replaced && replaced !== this.registry && replaced !== this.firstApp) void replaced.close().catch(() => undefined);
      if (this.stopRequested) return;
      this.pool = this.makePool();
      await this.pool.start();
      if (this.stopRequested) return;
      this.lifecycle.to('running');
      await this.consume();
      this.events.emit('pool:restart', { hostname: this.opts.nodeName, phase: 'done' });
    } catch (err) {
      if (this.stopRequested) return;
      this.events.emit('worker:error', { message: `Restart failed: ${(err as Error).message}; shutting down` });
      void this.stop('warm');
    }
  }

  /**
   * Warm: stop consuming, give prefetched messages back, let running tasks finish, clean up.
   * Cold (or a cold request during a warm one): kill the children; unfinished messages go back to the queue.
   * Idempotent (the same promise on every call), exhaustive (a failing step skips nothing), never rejects.
   * A stop while the worker is starting ends the start: the worker never reaches `running`.
   */
  stop(mode: 'warm' | 'cold' = 'warm'): Promise<void> {
    if (mode === 'cold' && !this.cold) {
      this.cold = true;
      this.coldKick?.();
      // Mid-start, a cold stop does not wait for children still loading the app.
      if (this.lifecycle.state === 'starting') void this.pool?.close(true);
    }
    if (!this.stopPromise) this.stopPromise = this.shutdown();
    return this.stopPromise;
  }

  /** Alias of {@link Worker.stop}`('warm')`. */
  close(): Promise<void> {
    return this.stop('warm');
  }

  private async shutdown(): Promise<void> {
    this.stopRequested = true;
    this.startAbort.abort();
    this.events.emit('worker:shutdown', { hostname: this.opts.nodeName, mode: this.cold ? 'cold' : 'warm' });
    await this.startPromise?.catch(() => undefined);
    if (this.lifecycle.state === 'failed') {
      // The start failed and cleaned up already.
      await this.releasers.close();
      return;
    }
    try {
      this.lifecycle.tryTo('draining');
      await this.cancelConsumer().catch((err) => this.events.emit('worker:error', { message: `Cancelling the consumer failed: ${(err as Error).message}` }));
      const parts = this.parts;
      if (parts) {
        await parts.admission.giveBack();
        if (!this.cold) await Promise.race([parts.dispatch.idle(), new Promise<void>((r) => (this.coldKick = r))]);
        if (this.cold) await parts.dispatch.terminateAll();
      }
    } catch (err) {
      this.failedSteps.push('drain');
      this.events.emit('worker:error', { message: `Draining failed: ${(err as Error).message}` });
    } finally {
      this.lifecycle.tryTo('stopping');
      await this.releasers.close();
      // A pool restart in progress sees the stop and ends once its pool is closed.
      await this.restarting;
      this.lifecycle.tryTo('stopped');
      this.events.emit('worker:offline', this.info());
      this.resolveDone();
    }
  }
}
