// The control target of a worker node: what remote control reads from (and changes in) its parts.

import { arch, hostname, type as osType } from 'node:os';
import { SOFTWARE_INFO } from '../events/event.js';
import type { ConsumerSet } from './consumer-set.js';
import { brokerInfo, maskedUrl, queueInfo, type TaskInfo } from './control-shapes.js';
import type { AutoscaleControl, ControlTarget, TaskEntry } from './control.js';
import type { Admission } from './admission.js';
import type { Dispatch } from './dispatch.js';
import type { MonitorState } from './monitor.js';
import type { Pending, TaskIo } from './pending.js';
import type { PoolKind, TaskPool as Pool } from './pool/task-pool.js';
import type { ResolvedTaskOptions } from '../app/task-options.js';

/** What a worker node exposes to remote control, part by part. */
export interface ControlSources {
  nodeName: string;
  startedAt: number;
  io: TaskIo;
  admission: Admission;
  dispatch: Dispatch;
  monitor: MonitorState;
  /** The pool kind (`-P`), also between pools. */
  poolKind: PoolKind;
  /** The current pool (replaced on a HUP restart), or null between pools. */
  pool(): Pool | null;
  consumers(): ConsumerSet | null;
  /** Celery's `prefetch_count`: pool size × prefetch multiplier. */
  prefetch(): number;
  maxTasksPerChild: number | null;
  registered(): string[];
  taskOptions(name: string): ResolvedTaskOptions | undefined;
  /** Starts growing (n > 0) or shrinking (n < 0) the pool, prefetch following; returns at once. */
  resize(n: number): void;
  /** The autoscaler, or null when `--autoscale` is off. */
  autoscaler(): AutoscaleControl | null;
  addQueue(queue: string): Promise<boolean>;
  removeQueue(queue: string): Promise<boolean>;
  restartPool(): void;
  shutdown(): void;
}

/** Builds the {@link ControlTarget} of a worker from its parts. */
export function workerControlTarget(s: ControlSources): ControlTarget {
  const { io, admission, dispatch, monitor } = s;
  const info = (p: Pending): TaskInfo => ({ req: p.req, queue: p.delivery.queue, redelivered: p.delivery.redelivered, acked: p.acked, startedAt: p.startedAt, workerPid: dispatch.workerPid(p) });
  const known = (name: string) => s.registered().includes(name);
  const conf = (withDefaults: boolean): Record<string, unknown> => {
    const c = io.config;
    const out: Record<string, unknown> = {
      broker_url: maskedUrl(c.brokerUrl),
      result_backend: maskedUrl(c.resultBackend),
      task_default_queue: c.defaultQueue,
      worker_prefetch_multiplier: c.prefetchMultiplier,
      task_acks_late: c.acksLate,
      result_expires: c.resultExpiresMs / 1000,
      broker_connection_timeout: c.connectTimeoutMs / 1000,
      worker_concurrency: s.pool()?.size ?? null,
      worker_max_tasks_per_child: s.maxTasksPerChild,
      worker_send_task_events: monitor.taskEvents,
      task_queue_max_priority: c.maxPriority,
      accept_content: ['json'],
      task_serializer: 'json',
      result_serializer: 'json',
    };
    const annotations = io.limits.annotations();
    if (Object.keys(annotations).length) out.task_annotations = annotations;
    if (withDefaults) out.visibility_timeout = c.visibilityTimeoutMs / 1000;
    return out;
  };
  const target: ControlTarget = {
    nodeName: s.nodeName,
    clock: () => monitor.clock.value,
    forwardClock: () => monitor.clock.tick(),
    pid: process.pid,
    uptimeSec: () => Math.floor((Date.now() - s.startedAt) / 1000),
    pool: () => {
      const pool = s.pool();
      return { kind: pool?.kind ?? s.poolKind, size: pool?.size ?? 0, childPids: pool?.childPids ?? [], writes: pool?.writes ?? [], busy: pool?.busy ?? 0, maxTasksPerChild: s.maxTasksPerChild, ...(pool ? { abandoned: pool.abandoned ?? 0 } : {}) };
    },
    prefetch: () => s.prefetch(),
    totals: () => Object.fromEntries(dispatch.totals),
    broker: () => brokerInfo(io.config.brokerUrl, io.config.connectTimeoutMs),
    active: () => dispatch.active.map(info),
    reserved: () => admission.reserved.map(info),
    scheduled: () => admission.scheduled.map(info),
    find: (id) => {
      const running = dispatch.active.find((p) => p.req.id === id);
      if (running) return { state: 'active', info: info(running) };
      const waiting = [...admission.reserved, ...admission.scheduled].find((p) => p.req.id === id);
      return waiting ? { state: 'reserved', info: info(waiting) } : null;
    },
    registered: () =>
      s.registered().map((name): TaskEntry => {
        const o = s.taskOptions(name);
        const time = io.limits.time(name);
        const hard = time ? time.hard : o?.timeLimit;
        const soft = time ? time.soft : o?.softTimeLimit;
        const rate = io.limits.rateOverride(name);
        return { name, attributes: { rate_limit: rate === undefined ? o?.rateLimit?.text : (rate ?? undefined), queue: o?.queue ?? undefined, time_limit: hard ?? undefined, soft_time_limit: soft ?? undefined, acks_late: o?.acksLate ?? undefined } };
      }),
    revoke: (ids) => {
      for (const id of ids) admission.revoke(id);
    },
    revokedIds: () => admission.revoked.ids(),
    revokedEntries: () => admission.revoked.entries(),
    mergeRevoked: (other) => admission.revoked.merge(other),
    terminate: (id, signal) => dispatch.terminate(id, signal),
    setRateLimit: (task, rate) => {
      if (!known(task)) return false;
      io.limits.setRate(task, rate);
      admission.gates.rateChanged(task);
      return true;
    },
    setTimeLimit: (task, soft, hard) => {
      if (!known(task)) return false;
      io.limits.setTime(task, { soft, hard });
      return true;
    },
    resize: (n) => s.resize(n),
    autoscaler: () => s.autoscaler(),
    addQueue: (q) => s.addQueue(q),
    removeQueue: (q) => s.removeQueue(q),
    activeQueues: () => (s.consumers()?.queues ?? []).map((q) => queueInfo(q, io.config.maxPriority)),
    conf,
    report: () =>
      [
        '',
        `software -> ${SOFTWARE_INFO.sw_ident}:${SOFTWARE_INFO.sw_ver} node:${process.version}`,
        `platform -> system:${osType()} arch:${arch()} host:${hostname()}`,
        `settings -> transport:${io.transport.kind} results:${maskedUrl(io.config.resultBackend)}`,
        '',
        ...Object.entries(conf(false)).map(([k, v]) => `${k}: ${JSON.stringify(v)}`),
        '',
      ].join('\n'),
    get taskEvents() {
      return monitor.taskEvents;
    },
    set taskEvents(on: boolean) {
      monitor.taskEvents = on;
    },
    sendHeartbeat: (freq) => monitor.sendHeartbeat(freq),
    restartPool: () => s.restartPool(),
    shutdown: () => s.shutdown(),
  };
  return target;
}
