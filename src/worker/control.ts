// Remote-control answers of a worker node, in the shapes Celery's worker gives (celery/worker/control.py).

import type { ControlHandler } from '../control/mailbox.js';
import { replyThen } from '../control/request.js';
import { UsageError } from '../errors.js';
import { requestInfo, rusage, signalName, type TaskInfo } from './control-shapes.js';
import type { PoolKind } from './pool/task-pool.js';
import { parseRate } from './task-limits.js';

export type { TaskInfo } from './control-shapes.js';

/** Pool facts for `stats`. */
export interface PoolFacts {
  /** The pool kind (`-P`; absent = prefork): Celery's `stats` shows a different `pool` block per implementation. */
  kind?: PoolKind;
  size: number;
  childPids: number[];
  /** Tasks each child has been given (Celery's `writes`). */
  writes: number[];
  busy: number;
  maxTasksPerChild: number | null;
  /** In-process pools: given-up tasks whose code still runs. */
  abandoned?: number;
}

/**
 * `stats` `pool` of the in-process pools, in the shape Celery 5.2 gives for the pools they stand in for:
 * async as eventlet (`max-concurrency`, `free-threads`, `running-threads`; gevent gives only the first),
 * solo as solo. Plus `abandoned-tasks`: code given up at a hard limit or terminate that still runs.
 */
function inProcessPoolInfo(p: PoolFacts, pid: number): Record<string, unknown> {
  const abandoned = p.abandoned ?? 0;
  if (p.kind === 'solo') return { 'max-concurrency': 1, processes: [pid], 'max-tasks-per-child': null, 'put-guarded-by-semaphore': true, timeouts: [], 'abandoned-tasks': abandoned };
  return { 'max-concurrency': p.size, 'free-threads': Math.max(0, p.size - p.busy), 'running-threads': p.busy, 'abandoned-tasks': abandoned };
}

/** Celery's solo pool has no grow/shrink (its answer is an AttributeError): ours says what to use instead. */
function soloCannotResize(method: string): { error: string } {
  return nok(`${method}: the solo pool runs one task at a time and cannot be resized; run the worker with -P async (I/O-bound tasks) or -P prefork / threads to change how many run at once`);
}

/** The autoscaler as remote control sees it (`autoscale`, `pool_grow` / `pool_shrink` under autoscale, `stats`). */
export interface AutoscaleControl {
  info(): { max: number; min: number; current: number; qty: number };
  /** New bounds (either may be null: unchanged); returns the bounds now in force. */
  update(max: number | null, min: number | null): [number, number];
  forceScaleUp(n: number): void;
  forceScaleDown(n: number): void;
}

/** A registered task as `registered` lists it. */
export interface TaskEntry {
  name: string;
  /** Celery's task attributes for `taskinfoitems` (`rate_limit`, `queue`, `time_limit`, …); absent = None. */
  attributes: Record<string, string | number | boolean | undefined>;
}

/** The worker's side of remote control: what the handlers read and change. */
export interface ControlTarget {
  nodeName: string;
  /** The Lamport clock value now; `forward` advances it (hello). */
  clock(): number;
  forwardClock(): number;
  pid: number;
  uptimeSec(): number;
  pool(): PoolFacts;
  prefetch(): number;
  totals(): Record<string, number>;
  broker(): Record<string, unknown>;
  active(): TaskInfo[];
  reserved(): TaskInfo[];
  scheduled(): TaskInfo[];
  /** Known requests by id (running, reserved or waiting for their eta). */
  find(id: string): { state: 'active' | 'reserved'; info: TaskInfo } | null;
  registered(): TaskEntry[];
  revoke(ids: string[]): void;
  revokedIds(): string[];
  revokedEntries(): Record<string, number>;
  mergeRevoked(other: unknown): void;
  /** Kills the child running `id` with `signal`; false when it does not run here. */
  terminate(id: string, signal: NodeJS.Signals): boolean;
  /** False for an unknown task name. */
  setRateLimit(task: string, rate: string): boolean;
  setTimeLimit(task: string, soft: number | null, hard: number | null): boolean;
  /** Starts growing (n > 0) or shrinking (n < 0) the pool; returns at once (failures are the worker's to report). */
  resize(n: number): void;
  /** The autoscaler, or null (absent) when `--autoscale` is off. */
  autoscaler?(): AutoscaleControl | null;
  /** Starts consuming a queue; false when it already did. */
  addQueue(queue: string): Promise<boolean>;
  removeQueue(queue: string): Promise<boolean>;
  activeQueues(): unknown[];
  conf(withDefaults: boolean): Record<string, unknown>;
  report(): string;
  taskEvents: boolean;
  sendHeartbeat(freq: number): void;
  restartPool(): void;
  shutdown(): void;
}

/** A remote-control request with missing or wrong arguments (Celery answers a TypeError). */
export function controlArgumentError(method: string, message: string): UsageError {
  return new UsageError('asynx.control.badArgument', `${method}: ${message}`, { method });
}

const ok = (value: string) => ({ ok: value });
const nok = (value: string) => ({ error: value });

/** A string list from one value or a list (Celery's `maybe_list`). */
function strings(v: unknown): string[] {
  return (Array.isArray(v) ? v : v === undefined || v === null ? [] : [v]).filter((x): x is string => typeof x === 'string');
}

function text(method: string, args: Record<string, unknown>, key: string): string {
  const v = args[key];
  if (typeof v !== 'string' && typeof v !== 'number') throw controlArgumentError(method, `missing required argument '${key}'`);
  return String(v);
}

function seconds(method: string, v: unknown, key: string): number | null {
  if (v === undefined || v === null) return null;
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
  if (!Number.isFinite(n) || n < 0) throw controlArgumentError(method, `'${key}' must be a number of seconds, got ${JSON.stringify(v)}`);
  return n;
}

function count(method: string, v: unknown): number {
  if (v === undefined || v === null) return 1;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n) || n < 0) throw controlArgumentError(method, `'n' must be a whole number, got ${JSON.stringify(v)}`);
  return n;
}

/** An optional whole-number argument (`autoscale`'s max and min). */
function optionalCount(method: string, v: unknown, key: string): number | null {
  if (v === undefined || v === null) return null;
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
  if (!Number.isInteger(n) || n < 0) throw controlArgumentError(method, `'${key}' must be a whole number, got ${JSON.stringify(v)}`);
  return n;
}

function truthy(v: unknown): boolean {
  return v === true || (typeof v === 'string' && ['1', 'true', 'yes', 'on', 'y'].includes(v.toLowerCase()));
}

const DEFAULT_TASK_INFO_ITEMS = ['exchange', 'routing_key', 'rate_limit'];

/** Celery's `registered` line: `name [rate_limit=10/m]` when one of the asked attributes is set. */
function registeredLine(t: TaskEntry, items: string[]): string {
  const fields = items.filter((k) => t.attributes[k] !== undefined).map((k) => `${k}=${String(t.attributes[k])}`);
  return fields.length ? `${t.name} [${fields.join(' ')}]` : t.name;
}

/**
 * Every command Celery's worker answers (inspect and control), by method name and with its
 * aliases (`dump_active`, `dump_conf`, …). The mailbox answers a method not listed here with
 * kombu's `{"error": "KeyError('<method>')"}` ({@link unknownCommand}).
 */
export function controlHandlers(t: ControlTarget): Record<string, ControlHandler> {
  const scaler = () => t.autoscaler?.() ?? null;
  const revoke = (ids: string[], terminate: boolean, signal: unknown) => {
    t.revoke(ids);
    if (terminate) {
      const sig = signalName(signal ?? 'TERM');
      if (!sig) return nok(`ValueError('signal name must be uppercase string: ${String(signal)}')`);
      const terminated = ids.filter((id) => t.terminate(id, sig) || t.find(id) !== null);
      return ok(terminated.length ? `terminate: ${terminated.join(', ')}` : 'terminate: tasks unknown');
    }
    return ok(`tasks ${ids.join(', ')} flagged as revoked`);
  };
  const handlers: Record<string, ControlHandler> = {
    // -- inspect
    ping: () => ok('pong'),
    stats: () => {
      const p = t.pool();
      const total = p.writes.reduce((a, b) => a + b, 0);
      const share = (v: number) => (total && v ? v / total : 0).toFixed(2);
      return {
        total: t.totals(),
        pid: t.pid,
        clock: String(t.clock()),
        uptime: t.uptimeSec(),
        // Celery's thread pool reports its size and its threads, no processes (celery/concurrency/thread.py).
        pool: p.kind === 'async' || p.kind === 'solo' ? inProcessPoolInfo(p, t.pid) : p.kind === 'threads' ? { 'max-concurrency': p.size, threads: p.writes.length } : {
          'max-concurrency': p.size,
          processes: p.childPids,
          'max-tasks-per-child': p.maxTasksPerChild ?? 'N/A',
          'put-guarded-by-semaphore': false,
          timeouts: [0, 0],
          writes: { total, avg: share(p.writes.length ? total / p.writes.length : 0), all: p.writes.map(share).join(', '), raw: p.writes.join(', '), strategy: 'fair', inqueues: { total: p.size, active: p.busy } },
        },
        broker: t.broker(),
        prefetch_count: t.prefetch(),
        // Celery's Autoscaler bootstep adds its info when autoscale is on.
        ...(scaler() ? { autoscaler: scaler()!.info() } : {}),
        rusage: rusage(),
        sw_ident: 'asynx',
      };
    },
    active: (a) => t.active().map((i) => requestInfo(t.nodeName, i, truthy(a.safe))),
    reserved: () => t.reserved().map((i) => requestInfo(t.nodeName, i)),
    scheduled: () => t.scheduled().map((i) => ({ eta: i.req.eta !== null ? new Date(i.req.eta).toISOString() : null, priority: i.req.priority, request: requestInfo(t.nodeName, i) })),
    registered: (a) => {
      const items = strings(a.taskinfoitems);
      // Built-in tasks (`asynx.*`, and `celery.*` as Celery hides them) only with `builtins`.
      return t
        .registered()
        .filter((e) => truthy(a.builtins) || !(e.name.startsWith('asynx.') || e.name.startsWith('celery.')))
        .sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))
        .map((e) => registeredLine(e, items.length ? items : DEFAULT_TASK_INFO_ITEMS));
    },
    revoked: () => t.revokedIds(),
    active_queues: () => t.activeQueues(),
    conf: (a) => t.conf(truthy(a.with_defaults)),
    query_task: (a) => {
      const out: Record<string, [string, unknown]> = {};
      for (const id of strings(a.ids)) {
        const found = t.find(id);
        if (found) out[id] = [found.state, requestInfo(t.nodeName, found.info)];
      }
      return out;
    },
    report: () => ok(t.report()),
    clock: () => ({ clock: t.clock() }),
    hello: (a) => {
      const from = a.from_node;
      if (from === t.nodeName) return null; // Celery answers its own hello with nothing
      if (a.revoked) t.mergeRevoked(a.revoked);
      return { revoked: t.revokedEntries(), clock: t.forwardClock() };
    },
    // -- control
    revoke: (a) => revoke(strings(a.task_id), truthy(a.terminate), a.signal),
    terminate: (a) => revoke(strings(a.task_id), true, a.signal),
    rate_limit: (a) => {
      const task = text('rate_limit', a, 'task_name');
      const rate = a.rate_limit === null || a.rate_limit === undefined ? '' : String(a.rate_limit);
      if (rate !== '') {
        const parsed = parseRate(rate);
        if ('error' in parsed) return nok(parsed.error);
      }
      if (!t.setRateLimit(task, rate)) return nok('unknown task');
      return ok(rate === '' || rate === '0' ? 'rate limit disabled successfully' : 'new rate limit set successfully');
    },
    time_limit: (a) => {
      const task = text('time_limit', a, 'task_name');
      const soft = seconds('time_limit', a.soft, 'soft');
      const hard = seconds('time_limit', a.hard, 'hard');
      return t.setTimeLimit(task, soft, hard) ? ok('time limits set successfully') : nok('unknown task');
    },
    // As Celery: the answer does not wait for the new children to load the app (that can take seconds).
    // Under autoscale, as Celery 5.2: the autoscaler grows (raising max) or shrinks (lowering min) the pool.
    pool_grow: (a) => {
      if (t.pool().kind === 'solo') return soloCannotResize('pool_grow');
      const n = count('pool_grow', a.n);
      const s = scaler();
      if (s) s.forceScaleUp(n);
      else t.resize(n);
      return ok('pool will grow');
    },
    pool_shrink: (a) => {
      if (t.pool().kind === 'solo') return soloCannotResize('pool_shrink');
      const n = count('pool_shrink', a.n);
      const s = scaler();
      if (s) s.forceScaleDown(n);
      else t.resize(-n);
      return ok('pool will shrink');
    },
    autoscale: (a) => {
      const s = scaler();
      if (!s) return nok("ValueError('Autoscale not enabled')");
      const max = optionalCount('autoscale', a.max, 'max');
      const min = optionalCount('autoscale', a.min, 'min');
      const [newMax, newMin] = [max ?? s.info().max, min ?? s.info().min];
      if (newMax < 1 || newMin > newMax) return nok(`ValueError('autoscale needs max >= 1 and min <= max, got max=${newMax} min=${newMin}')`);
      const [m, n] = s.update(max, min);
      return ok(`autoscale now max=${m} min=${n}`);
    },
    pool_restart: () => {
      t.restartPool();
      return ok('reload started');
    },
    // After the reply is out: the stop closes the mailbox.
    shutdown: () => replyThen(ok('shutting down'), () => t.shutdown()),
    add_consumer: async (a) => {
      const queue = text('add_consumer', a, 'queue');
      await t.addQueue(queue);
      return ok(`add consumer ${queue}`);
    },
    cancel_consumer: async (a) => {
      const queue = text('cancel_consumer', a, 'queue');
      await t.removeQueue(queue);
      return ok(`no longer consuming from ${queue}`);
    },
    enable_events: () => {
      if (t.taskEvents) return ok('task events already enabled');
      t.taskEvents = true;
      return ok('task events enabled');
    },
    disable_events: () => {
      if (!t.taskEvents) return ok('task events already disabled');
      t.taskEvents = false;
      return ok('task events disabled');
    },
    heartbeat: () => {
      t.sendHeartbeat(5);
      return null;
    },
  };
  // Celery's aliases.
  const aliases: Record<string, string> = { dump_conf: 'conf', dump_active: 'active', dump_reserved: 'reserved', dump_schedule: 'scheduled', dump_revoked: 'revoked', dump_tasks: 'registered' };
  for (const [alias, name] of Object.entries(aliases)) handlers[alias] = handlers[name]!;
  return handlers;
}

/** kombu's answer to a method the node does not have (`repr(KeyError(method))`). */
export function unknownCommand(method: string): { error: string } {
  return { error: `KeyError('${method}')` };
}
