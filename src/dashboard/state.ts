// The cluster as the dashboard sees it: workers and tasks folded from Celery events (as celery.events.state does).
//
// Workers come from `worker-*` events (and any event's hostname), enriched by periodic `stats` /
// `active_queues` replies; tasks from `task-*` events. A worker is alive while
// `now < last heartbeat (received time) + freq × 2` (Celery's HEARTBEAT_EXPIRE_WINDOW of 200 %) and no
// `worker-offline` came after it. Tasks are kept in a bounded map, oldest dropped first.

import type { CeleryEvent } from '../events/event.js';

/** Task states as Celery names them (celery/states.py). */
export type DashboardTaskState = 'PENDING' | 'RECEIVED' | 'STARTED' | 'SUCCESS' | 'FAILURE' | 'RETRY' | 'REVOKED' | 'REJECTED';

/** `task-<x>` → state (celery.events.state TASK_EVENT_TO_STATE). */
const EVENT_STATE: Record<string, DashboardTaskState> = {
  'task-sent': 'PENDING',
  'task-received': 'RECEIVED',
  'task-started': 'STARTED',
  'task-succeeded': 'SUCCESS',
  'task-failed': 'FAILURE',
  'task-retried': 'RETRY',
  'task-revoked': 'REVOKED',
  'task-rejected': 'REJECTED',
};

/**
 * Celery's state precedence (celery/states.py PRECEDENCE): a lower index happens later. An event whose state
 * logically happens before the task's current one (a `task-sent` written late by a client, a `started` after
 * `succeeded`) only merges its fields; RETRY on either side always moves the state (a retried task is
 * received again).
 */
const PRECEDENCE: readonly string[] = ['SUCCESS', 'FAILURE', 'UNKNOWN', 'REVOKED', 'STARTED', 'RECEIVED', 'REJECTED', 'RETRY', 'PENDING'];
const precedence = (state: string): number => {
  const i = PRECEDENCE.indexOf(state);
  return i < 0 ? PRECEDENCE.indexOf('UNKNOWN') : i;
};

/** Heartbeat expiry window: a worker is alive until freq × 2 after its last heartbeat. */
const HEARTBEAT_EXPIRE_WINDOW = 2;

/** One node as the page shows it. */
export interface WorkerView {
  hostname: string;
  alive: boolean;
  pid: number | null;
  /** `asynx` or `py-celery`, from `sw_ident`. */
  software: string | null;
  version: string | null;
  freq: number | null;
  /** Received time of the last event from this node, ms since the epoch (local clock). */
  lastSeen: number;
  active: number | null;
  processed: number | null;
  loadavg: number[] | null;
  /** Pool size (stats `pool.max-concurrency`), when a stats reply came. */
  poolSize: number | null;
  /** Seconds the node has been up (stats `uptime`), as of `statsAt`. */
  uptime: number | null;
  statsAt: number | null;
  queues: string[];
  /** A `worker-offline` was the last word from this node. */
  offline: boolean;
}

/** One task as the page shows it. Strings are as the events carry them (Python reprs): user data, never markup. */
export interface TaskView {
  uuid: string;
  name: string | null;
  state: DashboardTaskState;
  args: string | null;
  kwargs: string | null;
  worker: string | null;
  retries: number;
  /** Seconds, from task-succeeded. */
  runtime: number | null;
  result: string | null;
  exception: string | null;
  traceback: string | null;
  eta: string | null;
  /** Event timestamps (float epoch seconds), by state reached. */
  sent: number | null;
  received: number | null;
  started: number | null;
  finished: number | null;
  /** Timestamp of the last event applied, float epoch seconds. */
  timestamp: number;
  terminated: boolean;
}

/** What {@link ClusterState.apply} did, so a caller knows what to push to pages. */
export interface Applied {
  worker: string | null;
  task: string | null;
  /** The state a task event moved a task into (for the per-minute counters). */
  taskState: DashboardTaskState | null;
}

interface WorkerRecord {
  view: WorkerView;
  /** Received time of the last heartbeat or online event, ms. */
  heartbeatAt: number | null;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : v === undefined || v === null ? null : JSON.stringify(v));
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** Workers and tasks from events, bounded to `maxTasks` tasks. */
export class ClusterState {
  private readonly workers = new Map<string, WorkerRecord>();
  private readonly tasks = new Map<string, TaskView>();
  private readonly maxTasks: number;
  private readonly now: () => number;

  /** `now` is the local clock in ms (a parameter so the heartbeat rule can be checked without waiting). */
  constructor(opts: { maxTasks?: number; now?: () => number } = {}) {
    this.maxTasks = opts.maxTasks ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /** Folds one event in; `receivedAt` is the local receive time in ms. */
  apply(event: CeleryEvent, receivedAt: number = this.now()): Applied {
    const hostname = typeof event.hostname === 'string' && event.hostname !== '' ? event.hostname : null;
    if (event.type.startsWith('worker-')) {
      if (!hostname) return { worker: null, task: null, taskState: null };
      this.applyWorker(hostname, event, receivedAt);
      return { worker: hostname, task: null, taskState: null };
    }
    if (event.type.startsWith('task-')) {
      const uuid = str(event.uuid);
      if (!uuid) return { worker: null, task: null, taskState: null };
      const state = this.applyTask(uuid, event, hostname);
      if (hostname && event.type !== 'task-sent') this.touch(hostname, receivedAt);
      return { worker: event.type === 'task-sent' ? null : hostname, task: uuid, taskState: state };
    }
    return { worker: null, task: null, taskState: null };
  }

  private record(hostname: string, receivedAt: number): WorkerRecord {
    let rec = this.workers.get(hostname);
    if (!rec) {
      rec = {
        heartbeatAt: null,
        view: { hostname, alive: false, pid: null, software: null, version: null, freq: null, lastSeen: receivedAt, active: null, processed: null, loadavg: null, poolSize: null, uptime: null, statsAt: null, queues: [], offline: false },
      };
      this.workers.set(hostname, rec);
    }
    return rec;
  }

  private touch(hostname: string, receivedAt: number): void {
    const rec = this.record(hostname, receivedAt);
    rec.view.lastSeen = Math.max(rec.view.lastSeen, receivedAt);
  }

  private applyWorker(hostname: string, e: CeleryEvent, receivedAt: number): void {
    const rec = this.record(hostname, receivedAt);
    const v = rec.view;
    v.lastSeen = Math.max(v.lastSeen, receivedAt);
    v.pid = num(e.pid) ?? v.pid;
    v.freq = num(e.freq) ?? v.freq;
    v.active = num(e.active) ?? v.active;
    v.processed = num(e.processed) ?? v.processed;
    if (Array.isArray(e.loadavg)) v.loadavg = e.loadavg.map((x) => Number(x));
    v.software = str(e.sw_ident) ?? v.software;
    v.version = str(e.sw_ver) ?? v.version;
    if (e.type === 'worker-offline') {
      v.offline = true;
      rec.heartbeatAt = null;
    } else {
      v.offline = false;
      rec.heartbeatAt = receivedAt;
    }
  }

  private applyTask(uuid: string, e: CeleryEvent, hostname: string | null): DashboardTaskState | null {
    let t = this.tasks.get(uuid);
    if (!t) {
      t = { uuid, name: null, state: 'PENDING', args: null, kwargs: null, worker: null, retries: 0, runtime: null, result: null, exception: null, traceback: null, eta: null, sent: null, received: null, started: null, finished: null, timestamp: 0, terminated: false };
      this.tasks.set(uuid, t);
      this.trim();
    }
    const ts = num(e.timestamp) ?? this.now() / 1000;
    const state = EVENT_STATE[e.type] ?? null;
    if (e.name !== undefined) t.name = str(e.name);
    if (e.args !== undefined) t.args = str(e.args);
    if (e.kwargs !== undefined) t.kwargs = str(e.kwargs);
    if (typeof e.retries === 'number') t.retries = Math.max(t.retries, e.retries);
    if (e.eta !== undefined) t.eta = str(e.eta);
    if (e.type !== 'task-sent' && hostname) t.worker = hostname;
    switch (e.type) {
      case 'task-sent':
        t.sent = ts;
        break;
      case 'task-received':
        t.received = ts;
        break;
      case 'task-started':
        t.started = ts;
        break;
      case 'task-succeeded':
        t.result = str(e.result);
        t.runtime = num(e.runtime);
        t.finished = ts;
        break;
      case 'task-failed':
      case 'task-retried':
        t.exception = str(e.exception);
        t.traceback = str(e.traceback);
        if (e.type === 'task-failed') t.finished = ts;
        break;
      case 'task-revoked':
        t.terminated = e.terminated === true;
        t.finished = ts;
        break;
      case 'task-rejected':
        t.finished = ts;
        break;
    }
    if (state) {
      const happenedBefore = state !== 'RETRY' && t.state !== 'RETRY' && precedence(state) > precedence(t.state);
      if (!happenedBefore || t.timestamp === 0) {
        t.state = state;
        t.timestamp = Math.max(t.timestamp, ts);
      }
    }
    return state;
  }

  private trim(): void {
    while (this.tasks.size > this.maxTasks) {
      const oldest = this.tasks.keys().next().value as string;
      this.tasks.delete(oldest);
    }
  }

  /** Merges an inspect `stats` reply (Celery's shape) for `hostname`; creates the worker if no event came yet. */
  applyStats(hostname: string, stats: Record<string, unknown>, at: number = this.now()): void {
    const rec = this.record(hostname, at);
    const v = rec.view;
    const pool = stats.pool as Record<string, unknown> | undefined;
    const size = num(pool?.['max-concurrency']) ?? (Array.isArray(pool?.processes) ? pool.processes.length : null);
    v.poolSize = size ?? v.poolSize;
    v.uptime = num(stats.uptime) ?? v.uptime;
    v.pid = num(stats.pid) ?? v.pid;
    v.statsAt = at;
  }

  /** Sets the queues a node consumes from (inspect `active_queues` reply: a list of `{name, …}`). */
  applyActiveQueues(hostname: string, queues: unknown, at: number = this.now()): void {
    if (!Array.isArray(queues)) return;
    const rec = this.record(hostname, at);
    rec.view.queues = queues.map((q) => (q && typeof q === 'object' ? str((q as Record<string, unknown>).name) : str(q))).filter((q): q is string => q !== null);
  }

  /** Celery's rule: alive while now < last heartbeat + freq × 2, and no worker-offline since. */
  isAlive(hostname: string, now: number = this.now()): boolean {
    const rec = this.workers.get(hostname);
    if (!rec || rec.view.offline || rec.heartbeatAt === null) return false;
    const freqS = rec.view.freq ?? 2;
    return now < rec.heartbeatAt + freqS * HEARTBEAT_EXPIRE_WINDOW * 1000;
  }

  /** Every known node, alive ones first, then by name. */
  workerList(now: number = this.now()): WorkerView[] {
    const list = [...this.workers.values()].map((r) => ({ ...r.view, alive: this.isAlive(r.view.hostname, now), queues: [...r.view.queues] }));
    return list.sort((a, b) => Number(b.alive) - Number(a.alive) || a.hostname.localeCompare(b.hostname));
  }

  worker(hostname: string): WorkerView | undefined {
    const rec = this.workers.get(hostname);
    return rec ? { ...rec.view, alive: this.isAlive(hostname), queues: [...rec.view.queues] } : undefined;
  }

  task(uuid: string): TaskView | undefined {
    const t = this.tasks.get(uuid);
    return t ? { ...t } : undefined;
  }

  /** The most recently updated tasks first, at most `limit`, optionally filtered. */
  taskList(opts: { limit?: number; state?: string; name?: string } = {}): TaskView[] {
    const out: TaskView[] = [];
    for (const t of this.tasks.values()) {
      if (opts.state && t.state !== opts.state) continue;
      if (opts.name && !(t.name ?? '').includes(opts.name)) continue;
      out.push({ ...t });
    }
    out.sort((a, b) => b.timestamp - a.timestamp);
    return out.slice(0, opts.limit ?? 200);
  }

  /** Queue names the nodes consume from. */
  consumedQueues(): string[] {
    const set = new Set<string>();
    for (const r of this.workers.values()) for (const q of r.view.queues) set.add(q);
    return [...set];
  }

  /** Alive nodes' names. */
  aliveNames(now: number = this.now()): string[] {
    return [...this.workers.keys()].filter((h) => this.isAlive(h, now));
  }
}
