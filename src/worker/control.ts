// Remote-control answers of a worker node, in the shapes `celery inspect` prints.

import type { ControlHandler } from '../control/pidbox.js';
import type { TaskRequest } from '../protocol/codec.js';
import type { Admission } from './admission.js';
import type { Dispatch } from './dispatch.js';
import type { Pending } from './pending.js';

/** What the worker tells about one of its tasks. */
export interface TaskInfo {
  req: TaskRequest;
  queue: string;
  redelivered: boolean;
  acked: boolean;
  startedAt: number;
}

/** The worker's side of remote control. */
export interface ControlTarget {
  nodeName: string;
  stats(): { pid: number; uptimeSec: number; concurrency: number; childPids: number[]; processed: number; prefetch: number };
  active(): TaskInfo[];
  reserved(): TaskInfo[];
  scheduled(): TaskInfo[];
  registered(): string[];
  revoke(taskId: string): void;
  shutdown(): void;
}

function request(t: ControlTarget, i: TaskInfo) {
  return {
    id: i.req.id,
    name: i.req.task,
    args: i.req.args,
    kwargs: i.req.kwargs,
    type: i.req.task,
    hostname: t.nodeName,
    time_start: i.startedAt ? i.startedAt / 1000 : null,
    acknowledged: i.acked,
    delivery_info: { routing_key: i.queue, redelivered: i.redelivered },
  };
}

/** Handlers for ping (built in), stats, active, reserved, scheduled, registered, revoke, shutdown. */
export function controlHandlers(t: ControlTarget): Record<string, ControlHandler> {
  return {
    stats: () => {
      const s = t.stats();
      return { pid: s.pid, uptime: s.uptimeSec, pool: { 'max-concurrency': s.concurrency, processes: s.childPids }, total: { processed: s.processed }, broker: { transport: 'amqp' }, prefetch_count: s.prefetch, sw_ident: 'asynx' };
    },
    active: () => t.active().map((i) => request(t, i)),
    reserved: () => t.reserved().map((i) => request(t, i)),
    scheduled: () => t.scheduled().map((i) => ({ eta: i.req.eta ? new Date(i.req.eta).toISOString() : null, priority: i.req.priority, request: request(t, i) })),
    registered: () => t.registered(),
    revoke: (args) => {
      const ids = (Array.isArray(args.task_id) ? args.task_id : [args.task_id]).filter((x): x is string => typeof x === 'string');
      for (const id of ids) t.revoke(id);
      return { ok: `tasks ${ids.join(', ')} flagged as revoked` };
    },
    shutdown: () => {
      setImmediate(() => t.shutdown());
      return { ok: 'shutting down' };
    },
  };
}

/** What a worker node exposes to remote control, part by part. */
export interface ControlSources {
  nodeName: string;
  startedAt: number;
  concurrency: number;
  admission: Admission;
  dispatch: Dispatch;
  childPids(): number[];
  prefetch(): number;
  registered(): string[];
  shutdown(): void;
}

function taskInfo(p: Pending): TaskInfo {
  return { req: p.req, queue: p.delivery.queue, redelivered: p.delivery.redelivered, acked: p.acked, startedAt: p.startedAt };
}

/** The control target of a worker: running tasks from dispatch, reserved and scheduled ones from admission. */
export function workerControlTarget(s: ControlSources): ControlTarget {
  return {
    nodeName: s.nodeName,
    stats: () => ({ pid: process.pid, uptimeSec: Math.round((Date.now() - s.startedAt) / 1000), concurrency: s.concurrency, childPids: s.childPids(), processed: s.dispatch.processed, prefetch: s.prefetch() }),
    active: () => s.dispatch.active.map(taskInfo),
    reserved: () => s.admission.reserved.map(taskInfo),
    scheduled: () => s.admission.scheduled.map(taskInfo),
    registered: () => s.registered(),
    revoke: (id) => s.admission.revoke(id),
    shutdown: () => s.shutdown(),
  };
}
