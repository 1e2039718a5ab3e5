// The app: task registry, config resolution, broker and result backend, sending tasks.

import { randomUUID } from 'node:crypto';
import { findConfigFile, loadConfigFile, optionsFromEnv, resolveConfig, stripUndefined, type AsynxOptions, type ResolvedConfig } from '../config.js';
import { BrokerUnavailableError, NotRegistered, UsageError } from '../errors.js';
import { buildTaskMessage, defaultOrigin, type MessageOptions } from '../protocol/codec.js';
import type { Signature } from '../protocol/message.js';
import type { ResultBackend } from '../results/backend.js';
import { errorBody, stateBody, successBody } from '../results/body.js';
import { createResultBackend } from '../results/factory.js';
import { SentEvents } from '../events/task-sent.js';
import { MemoryResultBackend } from '../results/memory.js';
import { createTransport } from '../transports/factory.js';
import type { Transport } from '../transports/transport.js';
import { registerHttpTask, type HttpDispatcher } from '../tasks/http.js';
import { registerCanvasBuiltins } from '../tasks/canvas-builtins.js';
import { withDeadline } from '../util/deadline.js';
import { redact } from '../util/redact.js';
import { badCallOption, checkCallOptions, type SendOptions } from './call-options.js';
import { DEDUPE_HEADER, dedupeNeedsKey, dedupeUnsupported } from './dedupe.js';
import { globalRateUnsupported, RATE_LIMIT_HEADER, resolveRateLimit } from './rate-limit.js';
import type { TaskContext } from './context.js';
import { encodeError, executeTask, type TaskDefinition } from './execute.js';
import { AsyncResult } from './result.js';
import { Task } from './task.js';
import { TaskSignature, type SignatureOptions } from '../canvas/signature.js';
import { routeName } from '../canvas/starmap.js';
import { mergeArgs, messageOptionsOf } from '../canvas/wire.js';
import { assertNewEntry, mergeEntries, periodicFromConfig, resolvePeriodicEntry, type PeriodicEntry, type PeriodicOptions } from '../beat/entry.js';
import type { PeriodicSchedule } from '../beat/schedule.js';
import { resolveTaskOptions, type TaskOptions } from './task-options.js';

/** Constructor options: app options plus where to look for a config file. */
export interface AppOptions extends AsynxOptions {
  /** Config file path, or `false` to read none. @defaultValue `asynx.config.{mjs,js,json}` in `cwd`, or env ASYNX_CONFIG */
  configFile?: string | false;
  /** Directory for relative paths and the config file lookup. @defaultValue process.cwd() */
  cwd?: string;
}

interface Connections {
  transport: Transport | null;
  backend: ResultBackend;
}

/**
 * An asynx application: define tasks on it, send them, follow their results.
 * Config precedence: constructor object < config file < `ASYNX_*` env < {@link Asynx.configure} overrides.
 */
export class Asynx {
  private readonly tasks = new Map<string, TaskDefinition>();
  private readonly periodics = new Map<string, PeriodicEntry>();
  private readonly base: AppOptions;
  private overrides: AsynxOptions = {};
  private configPromise: Promise<ResolvedConfig> | null = null;
  private connPromise: Promise<Connections> | null = null;
  private readonly declared = new Set<string>();
  private readonly origin = defaultOrigin();
  private sentEvents: SentEvents | null = null;
  /** Built-in HTTP dispatch: call a URL from a worker, later, with retries. */
  readonly http: HttpDispatcher;

  constructor(options: AppOptions = {}) {
    this.base = { ...options };
    this.http = registerHttpTask(this);
    registerCanvasBuiltins(this);
  }

  /** Adds overrides that win over every other source (the CLI's flags). Only before the app connects. */
  configure(overrides: AsynxOptions): void {
    if (this.connPromise) throw new UsageError('asynx.app.alreadyConnected', 'configure() must be called before the app sends or connects');
    this.overrides = { ...this.overrides, ...overrides };
    this.configPromise = null;
  }

  /** Resolves the config (object, file, env, overrides) without connecting. */
  config(): Promise<ResolvedConfig> {
    if (!this.configPromise) {
      this.configPromise = (async () => {
        const { configFile, cwd, ...obj } = this.base;
        const dir = cwd ?? process.cwd();
        let fileOpts: AsynxOptions = {};
        if (configFile !== false) {
          const path = findConfigFile(dir, configFile ?? (process.env.ASYNX_CONFIG || undefined));
          if (path) fileOpts = await loadConfigFile(path);
        }
        return resolveConfig(obj, fileOpts, optionsFromEnv(), this.overrides);
      })();
      this.configPromise.catch(() => {
        this.configPromise = null;
      });
    }
    return this.configPromise;
  }

  /** The working directory for relative paths. */
  get cwd(): string {
    return this.base.cwd ?? process.cwd();
  }

  /**
   * Registers a task. The handler's `this` is the {@link TaskContext} (or use `currentTask()`).
   * Keyword arguments, when a call has any, arrive as one trailing object argument.
   */
  task<A extends unknown[], R>(name: string, handler: (this: TaskContext, ...args: A) => R | Promise<R>, options: TaskOptions = {}): Task<A, Awaited<R>> {
    if (typeof name !== 'string' || name === '') throw new UsageError('asynx.task.badName', 'app.task(name, handler): name must be a non-empty string');
    if (typeof handler !== 'function') throw new UsageError('asynx.task.badHandler', `app.task('${name}', handler): handler must be a function`);
    if (this.tasks.has(name)) throw new UsageError('asynx.task.duplicate', `Task '${name}' is registered twice: give each task a unique name`, { task: name });
    const def: TaskDefinition = { name, handler: handler as unknown as TaskDefinition['handler'], options: resolveTaskOptions(name, options) };
    this.tasks.set(name, def);
    return new Task<A, Awaited<R>>(this, def);
  }

  /**
   * Adds a periodic entry: `task` is sent on `schedule` by the cluster's one leading scheduler
   * (`asynx beat`, or `asynx worker -B`), once per due time. The due time travels in the message
   * header `x-asynx-scheduled-at`. Bad values throw UsageError `asynx.periodic.badOption`.
   * @example app.periodic('cleanup', { cron: '30 2 * * *', tz: 'Europe/Berlin' }, cleanup, { args: [7] })
   * @see README "Periodic tasks"
   */
  periodic(name: string, schedule: PeriodicSchedule, task: { readonly name: string } | string, options: PeriodicOptions = {}): PeriodicEntry {
    const entry = resolvePeriodicEntry(name, schedule, typeof task === 'string' ? task : (task as { name?: unknown } | null)?.name, options);
    checkCallOptions(entry.task, entry.options as SendOptions);
    assertNewEntry(this.periodics, entry.name);
    this.periodics.set(entry.name, entry);
    return entry;
  }

  /** Every periodic entry: those of {@link periodic} and of the config file's `periodic` section (which wins on a name clash). */
  async periodicEntries(): Promise<PeriodicEntry[]> {
    const fromConfig = periodicFromConfig((await this.config()).periodic);
    for (const e of fromConfig) checkCallOptions(e.task, e.options as SendOptions);
    return mergeEntries(this.periodics.values(), fromConfig);
  }

  /** A registered task definition, or undefined. */
  getTask(name: string): TaskDefinition | undefined {
    return this.tasks.get(name);
  }

  /** Names of all registered tasks, sorted. */
  taskNames(): string[] {
    return [...this.tasks.keys()].sort();
  }

  /** Sends a task by name (it may be defined in another service, in JS or Python). */
  sendTask<R = unknown>(name: string, args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: SendOptions = {}): Promise<AsyncResult<R>> {
    return this.send<R>(name, args, kwargs, options);
  }

  /** A result handle for a task id known only as a string. */
  AsyncResult<R = unknown>(id: string): AsyncResult<R> {
    return new AsyncResult<R>(id, () => this.backend());
  }

  /** A signature by task name, for link / linkError / chain. */
  signature(task: string, args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: Record<string, unknown> = {}, immutable = false): Signature {
    return { task, args, kwargs, options, subtask_type: null, immutable };
  }

  /**
   * A composable signature by task name (defined here, in another service, or in Python): for `chain`,
   * `group`, `chord`. Options are asynx call options (`queue`, `countdown`, …); see {@link TaskSignature}.
   */
  sig<R = unknown>(task: string, args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: SignatureOptions = {}, immutable = false): TaskSignature<R> {
    return new TaskSignature<R>(this, task, args, kwargs, options, immutable);
  }

  /** Connects to the broker and the result backend (bounded by connectTimeout). */
  async connect(): Promise<void> {
    await this.connections();
  }

  private connections(): Promise<Connections> {
    if (!this.connPromise) {
      this.connPromise = (async () => {
        const config = await this.config();
        if (config.eager) return { transport: null, backend: new MemoryResultBackend() };
        const transport = await createTransport(config, this.cwd);
        const backend = await createResultBackend(config, this.cwd);
        await withDeadline(Promise.all([transport.connect(), backend.connect()]), config.connectTimeoutMs, () =>
          new BrokerUnavailableError(`Could not connect to the broker ${redact(config.brokerUrl)} within ${config.connectTimeoutMs} ms: is it running? (set ASYNX_BROKER_URL or --broker)`),
        );
        return { transport, backend };
      })();
      this.connPromise.catch(() => {
        this.connPromise = null;
      });
    }
    return this.connPromise;
  }

  /** The connected transport (throws in eager mode, which has none). */
  async transport(): Promise<Transport> {
    const c = await this.connections();
    if (!c.transport) throw new UsageError('asynx.app.eager', 'This app runs in eager mode and has no broker');
    return c.transport;
  }

  /** The connected result backend. */
  async backend(): Promise<ResultBackend> {
    return (await this.connections()).backend;
  }

  /** @internal Publishes (or, in eager mode, runs) one task call; `extraHeaders` are added to the message's headers. */
  async send<R>(name: string, args: unknown[], kwargs: Record<string, unknown>, opts: SendOptions, extraHeaders?: Record<string, string>): Promise<AsyncResult<R>> {
    if (!Array.isArray(args)) throw new UsageError('asynx.call.badArgs', `Task '${name}': args must be an array, got ${typeof args}`, { task: name });
    if (typeof kwargs !== 'object' || kwargs === null || Array.isArray(kwargs)) throw new UsageError('asynx.call.badKwargs', `Task '${name}': kwargs must be an object`, { task: name });
    if (typeof opts !== 'object' || opts === null) throw badCallOption(name, 'options', opts, 'must be an object');
    const def = this.tasks.get(name);
    // A starmap is routed as its inner task is (Celery's `route_name`): to that task's queue when it has one.
    const routed = this.tasks.get(routeName(name, kwargs)) ?? def;
    // Options given at the call are checked before anything connects: a bad one is the caller's UsageError.
    const merged = checkCallOptions(name, {
      queue: routed?.options.queue ?? undefined,
      priority: def?.options.priority || undefined,
      ignoreResult: def?.options.ignoreResult || undefined,
      ...stripUndefined(opts),
    });
    const rate = resolveRateLimit(`Task '${name}': call option`, opts.rateLimit);
    const dedupeKey = opts.dedupeKey ?? (opts.dedupe ? opts.taskId : undefined);
    if (opts.dedupeKey !== undefined && (typeof opts.dedupeKey !== 'string' || opts.dedupeKey === '')) throw badCallOption(name, 'dedupeKey', opts.dedupeKey, 'must be a non-empty string');
    if (opts.dedupe && dedupeKey === undefined) throw dedupeNeedsKey(name);
    const config = await this.config();
    const { connectTimeoutMs, publishTimeoutMs } = config;
    const conns = await this.connections();
    if (config.eager) return this.runEager<R>(name, args, kwargs, merged, conns.backend);
    const { queue, message } = buildTaskMessage(name, args, kwargs, {
      ...merged,
      replyTo: conns.backend.replyTo,
      defaultQueue: config.defaultQueue,
      origin: this.origin,
    });
    if (extraHeaders) Object.assign(message.headers, extraHeaders);
    const transport = conns.transport!;
    if (rate) {
      if (rate.global && !transport.takeRateToken) throw globalRateUnsupported(name, transport.kind);
      message.headers[RATE_LIMIT_HEADER] = { rate: rate.text, global: rate.global };
    }
    if (dedupeKey !== undefined) {
      if (!transport.publishUnique) throw dedupeUnsupported(name, transport.kind);
      message.headers[DEDUPE_HEADER] = dedupeKey;
    }
    if (!this.declared.has(queue)) {
      await withDeadline(transport.declareQueue(queue), connectTimeoutMs, () => new BrokerUnavailableError(`Declaring queue '${queue}' timed out after ${connectTimeoutMs} ms`));
      this.declared.add(queue);
    }
    if (dedupeKey !== undefined) {
      // Atomic in the broker: nothing is sent (nor announced) while the key's task waits or runs.
      const holder = await transport.publishUnique!(queue, message, dedupeKey, { timeoutMs: publishTimeoutMs });
      if (holder !== null) return new AsyncResult<R>(holder, () => this.backend());
      if (config.taskSendSentEvent) {
        this.sentEvents ??= new SentEvents(this.origin, config.brokerUrl, connectTimeoutMs);
        this.sentEvents.announce(transport, queue, message, args, kwargs);
      }
      return new AsyncResult<R>(message.headers.id, () => this.backend());
    }
    const published = transport.publish(queue, message, { timeoutMs: publishTimeoutMs });
    if (config.taskSendSentEvent) {
      // In the same tick as the publish: on SQLite both land in one transaction (a failed publish drops the event too).
      this.sentEvents ??= new SentEvents(this.origin, config.brokerUrl, connectTimeoutMs);
      this.sentEvents.announce(transport, queue, message, args, kwargs);
    }
    await published;
    return new AsyncResult<R>(message.headers.id, () => this.backend());
  }

  private async runEager<R>(name: string, args: unknown[], kwargs: Record<string, unknown>, opts: MessageOptions, backend: ResultBackend): Promise<AsyncResult<R>> {
    const def = this.tasks.get(name);
    const id = opts.taskId ?? randomUUID();
    const target = { taskId: id, taskName: name };
    if (!def) {
      throw new NotRegistered(name, { taskId: id });
    }
    for (let retries = opts.retries ?? 0; ; retries++) {
      const outcome = await executeTask(def, { id, name, args, kwargs, retries, rootId: opts.rootId ?? id, parentId: opts.parentId ?? null, hostname: 'eager', softTimeLimit: opts.softTimeLimit ?? null, group: opts.group ?? null, groupIndex: opts.groupIndex ?? null }, {
        updateState: (state, meta) => backend.store(target, stateBody(id, state, meta)),
      });
      if (outcome.kind === 'retry') {
        await backend.store(target, errorBody(id, 'RETRY', outcome.error));
        continue;
      }
      await backend.store(target, outcome.kind === 'success' ? successBody(id, outcome.value) : errorBody(id, 'FAILURE', outcome.error));
      // As Celery's apply(): link callbacks with the value, linkError callbacks with the failed task's id.
      const rootId = opts.rootId ?? id;
      if (outcome.kind === 'success') await this.runEagerCallbacks(opts.link, outcome.value, id, rootId, backend);
      else await this.runEagerCallbacks(opts.linkError, id, id, rootId, backend);
      return new AsyncResult<R>(id, () => this.backend());
    }
  }

  /**
   * Runs each callback signature in-process with `first` before its args (unless immutable), its own
   * options (task id, its own link / linkError) and parent = the task that finished. A callback whose task
   * this app does not know gets NotRegistered as its FAILURE result, as a worker would store it.
   */
  private async runEagerCallbacks(sigs: Signature[] | undefined, first: unknown, parentId: string, rootId: string, backend: ResultBackend): Promise<void> {
    for (const s of sigs ?? []) {
      const o = messageOptionsOf(s.options ?? {});
      const taskId = o.taskId ?? randomUUID();
      if (!this.tasks.has(s.task)) {
        await backend.store({ taskId, taskName: s.task }, errorBody(taskId, 'FAILURE', encodeError(new NotRegistered(s.task, { taskId }))));
        continue;
      }
      await this.runEager(s.task, mergeArgs({ args: s.args ?? [], immutable: s.immutable ?? false }, [first]), s.kwargs ?? {}, { ...o, taskId, parentId, rootId }, backend);
    }
  }

  /** Closes broker and backend connections. Idempotent. */
  async close(): Promise<void> {
    const p = this.connPromise;
    this.connPromise = null;
    this.declared.clear();
    const sent = this.sentEvents;
    this.sentEvents = null;
    await sent?.close().catch(() => undefined);
    if (!p) return;
    const c = await p.catch(() => null);
    if (!c) return;
    await Promise.allSettled([c.transport?.close(), c.backend.close()]);
  }
}

/** Hides the password in a URL for messages (kept here for old importers; see src/util/redact.ts). */
export { redact };
