// Worker options: the all-optional user form, resolved once into a form with every field filled in.

import { hostname } from 'node:os';
import { UsageError } from '../errors.js';
import { durationMs, type Duration } from '../util/duration.js';
import type { Logger } from './logger.js';
import { POOL_KINDS, type PoolKind } from './pool/task-pool.js';

/** Options of a {@link Worker}. Every field is optional; {@link resolveWorkerOptions} fills the defaults. */
export interface WorkerOptions {
  /** Full node name, `name@host`. @defaultValue `asynx@<machine hostname>` */
  nodeName?: string;
  /** Tasks run at once: pool child processes (prefork), threads (threads), in-flight tasks (async). @defaultValue 2 */
  concurrency?: number;
  /**
   * The pool (`-P`): `prefork` child processes, `threads` (worker_threads), `async` (tasks on the worker's
   * own event loop, for I/O-bound work) or `solo` (one at a time in the main process). @defaultValue 'prefork'
   */
  pool?: PoolKind;
  /**
   * Grow the pool under backlog up to `max` and shrink it when idle down to `min` (`--autoscale=max,min`,
   * prefork and threads). Replaces `concurrency` as the starting size (`min`). @defaultValue null (fixed size)
   */
  autoscale?: { max: number; min: number } | null;
  /** Queues to consume. @defaultValue `[]` (the app's default queue) */
  queues?: string[];
  /** URL of the app module, imported again by each pool child (required to start a pool). */
  appUrl?: string;
  /** Where the worker's log lines go; null writes none (subscribe to events instead). @defaultValue null */
  logger?: Logger | null;
  /** Pidfile to hold while running; its status file lives beside it. @defaultValue null */
  pidfile?: string | null;
  /** Replace a pool child after this many tasks. @defaultValue null (never) */
  maxTasksPerChild?: number | null;
  /**
   * Replace a pool child whose RSS exceeds this many KiB after a task. Threads pool: a thread has no RSS of its
   * own (it shares the process's), so the thread's V8 heap in use plus its external (Buffer) memory is measured
   * instead, after each task, and the thread is replaced when that exceeds the limit. @defaultValue null (never)
   */
  maxMemoryPerChildKb?: number | null;
  /** Log file path for pool child k, or null to share the main output. @defaultValue null */
  childLogfile?: ((index: number) => string | null) | null;
  /** Extra env for pool children. @defaultValue `{}` */
  childEnv?: NodeJS.ProcessEnv;
  /** Heartbeat period: the status file is rewritten and `worker:heartbeat` emitted this often. @defaultValue 2 (s, Celery's default) */
  heartbeatInterval?: Duration;
  /** Bounded wait for a pool child's handshake. @defaultValue 30 (s) */
  childStartTimeout?: Duration;
  /** How often expired results are cleaned from the backend. @defaultValue 600 (s) */
  resultCleanupInterval?: Duration;
  /**
   * An AMQP broker that cannot be reached at start-up is retried this many times, with backoff (2 s, 4 s, 8 s,
   * 16 s, then 30 s), each retry logged as a warning; 0 fails at once (exit 69). SQLite brokers are never retried:
   * a file that cannot be opened does not heal by waiting. @defaultValue 100 (Celery's broker_connection_max_retries)
   */
  brokerConnectionRetries?: number;
  /** Also give up the start-up retries once this long has passed. @defaultValue null (only the count bounds them) */
  brokerConnectionMaxWait?: Duration | null;
  /**
   * Warn (event `pool:loop:blocked`, a warning line) when the worker's event loop was blocked at least this
   * long: with -P async or solo a task doing CPU-bound or synchronous work stalls every other task,
   * heartbeats and acks. 0 or null turns the probe off. @defaultValue 1 (s: far above GC pauses and a busy
   * machine's scheduling hiccups, well below what delays a heartbeat, 2 s)
   */
  loopLagWarn?: Duration | null;
  /** Send `task-*` Celery events (`asynx worker -E`). @defaultValue null (the app's `workerSendTaskEvents`, false unless set) */
  taskEvents?: boolean | null;
}

const RESOLVED: unique symbol = Symbol('asynx.resolvedWorkerOptions');

/** {@link WorkerOptions} with every field filled in and durations in ms. */
export interface ResolvedWorkerOptions {
  /** Marks the resolved form, so that a Worker given one does not resolve it again. */
  readonly [RESOLVED]: true;
  nodeName: string;
  concurrency: number;
  pool: PoolKind;
  autoscale: { max: number; min: number } | null;
  queues: string[];
  appUrl: string;
  logger: Logger | null;
  pidfile: string | null;
  maxTasksPerChild: number | null;
  maxMemoryPerChildKb: number | null;
  childLogfile: ((index: number) => string | null) | null;
  childEnv: NodeJS.ProcessEnv;
  heartbeatIntervalMs: number;
  childStartTimeoutMs: number;
  resultCleanupIntervalMs: number;
  brokerConnectionRetries: number;
  brokerConnectionMaxWaitMs: number | null;
  taskEvents: boolean | null;
  /** 0 = no loop-lag probe. */
  loopLagWarnMs: number;
}

/** `asynx@<hostname>`: the node name when none is given. */
export function defaultNodeName(): string {
  return `asynx@${hostname()}`;
}

/** The one error for a bad worker option: names the option, what it must be, and the value given. */
function badOption(option: string, mustBe: string, value: unknown, shown = String(value)): UsageError {
  return new UsageError('asynx.worker.badOption', `Worker option ${option} must be ${mustBe}, got ${shown}`, { option, value });
}

function wholeNumber(value: number | null | undefined, option: string, dflt: number | null): number | null {
  if (value === undefined || value === null) return dflt;
  if (!Number.isInteger(value) || value < 1) throw badOption(option, 'a whole number ≥ 1', value);
  return value;
}

function countOf(value: number | undefined, option: string, dflt: number): number {
  if (value === undefined) return dflt;
  if (!Number.isInteger(value) || value < 0) throw badOption(option, 'a whole number ≥ 0', value);
  return value;
}

function positiveMs(value: Duration | undefined, option: string, dflt: Duration): number {
  const ms = durationMs(value ?? dflt, option);
  if (ms <= 0) throw badOption(option, 'a duration above zero', value);
  return ms;
}

function poolKind(value: PoolKind | undefined): PoolKind {
  if (value === undefined) return 'prefork';
  if (!(POOL_KINDS as readonly string[]).includes(value)) throw badOption('pool', `one of ${POOL_KINDS.join(', ')}`, value, `'${String(value)}'`);
  return value;
}

function resolveAutoscale(value: { max: number; min: number }, pool?: PoolKind): { max: number; min: number } {
  const { max, min } = value;
  if (!Number.isInteger(max) || max < 1 || !Number.isInteger(min) || min < 0 || min > max) throw badOption('autoscale', 'max,min with whole numbers max ≥ 1 and 0 ≤ min ≤ max', `${max},${min}`);
  if (pool !== undefined && pool !== 'prefork' && pool !== 'threads') throw badOption('autoscale', 'used with the prefork or threads pool', `${max},${min} with pool ${pool}`);
  return { max, min };
}

/** True for the result of {@link resolveWorkerOptions}. */
export function isResolvedWorkerOptions(o: WorkerOptions | ResolvedWorkerOptions): o is ResolvedWorkerOptions {
  return (o as Partial<ResolvedWorkerOptions>)[RESOLVED] === true;
}

/** Fills the defaults and validates; an error names the option and value. */
export function resolveWorkerOptions(user: WorkerOptions = {}): ResolvedWorkerOptions {
  const nodeName = user.nodeName ?? defaultNodeName();
  if (!/^[^@\s]+@[^@\s]+$/.test(nodeName)) throw badOption('nodeName', 'name@host', nodeName, `'${nodeName}'`);
  if (!user.appUrl) throw new UsageError('asynx.worker.noAppUrl', 'Worker option appUrl is required: the URL of the app module that each pool child imports (e.g. import.meta.url of the module defining the app)', { option: 'appUrl' });
  const queues = (user.queues ?? []).map((q) => q.trim()).filter(Boolean);
  return {
    [RESOLVED]: true,
    nodeName,
    concurrency: user.autoscale ? resolveAutoscale(user.autoscale).min || 1 : wholeNumber(user.concurrency, 'concurrency', user.pool === 'solo' ? 1 : 2)!,
    pool: poolKind(user.pool),
    autoscale: user.autoscale ? resolveAutoscale(user.autoscale, user.pool) : null,
    queues,
    appUrl: user.appUrl,
    logger: user.logger ?? null,
    pidfile: user.pidfile ?? null,
    maxTasksPerChild: wholeNumber(user.maxTasksPerChild, 'maxTasksPerChild', null),
    maxMemoryPerChildKb: wholeNumber(user.maxMemoryPerChildKb, 'maxMemoryPerChildKb', null),
    childLogfile: user.childLogfile ?? null,
    childEnv: { ...(user.childEnv ?? {}) },
    heartbeatIntervalMs: positiveMs(user.heartbeatInterval, 'heartbeatInterval', 2),
    childStartTimeoutMs: positiveMs(user.childStartTimeout, 'childStartTimeout', 30),
    resultCleanupIntervalMs: positiveMs(user.resultCleanupInterval, 'resultCleanupInterval', 600),
    brokerConnectionRetries: countOf(user.brokerConnectionRetries, 'brokerConnectionRetries', 100),
    taskEvents: user.taskEvents ?? null,
    loopLagWarnMs: user.loopLagWarn === null ? 0 : durationMs(user.loopLagWarn ?? 1, 'loopLagWarn'),
    brokerConnectionMaxWaitMs: user.brokerConnectionMaxWait === undefined || user.brokerConnectionMaxWait === null ? null : positiveMs(user.brokerConnectionMaxWait, 'brokerConnectionMaxWait', 1),
  };
}
