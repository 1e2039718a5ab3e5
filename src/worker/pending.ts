// One task message inside the worker, from admission to its outcome, and what the worker's parts share.

import type { Asynx } from '../app/app.js';
import type { TaskDefinition } from '../app/execute.js';
import type { ResolvedConfig } from '../config.js';
import type { TaskRequest } from '../protocol/codec.js';
import type { ResultBackend } from '../results/backend.js';
import type { Delivery, Transport } from '../transports/transport.js';
import type { TaskEventBase, WorkerEvents } from './events.js';
import type { TaskLimits } from './task-limits.js';

/** A task message held by the worker. */
export interface Pending {
  delivery: Delivery;
  req: TaskRequest;
  def: TaskDefinition;
  acked: boolean;
  /** Cold shutdown gave it back while it ran: its late result is ignored. */
  abandoned: boolean;
  /** The eta hold timer. */
  timer: NodeJS.Timeout | null;
  /** ms since the epoch when it went to a pool child (0 before). */
  startedAt: number;
  seq: number;
}

/** What the admission, dispatch and outcome parts share: the connections and the event sink. */
export interface TaskIo {
  readonly events: WorkerEvents;
  readonly hostname: string;
  readonly transport: Transport;
  readonly backend: ResultBackend;
  readonly config: ResolvedConfig;
  /** Where task definitions come from; replaced on HUP reload. */
  registry(): Asynx;
  /** Rate and time limits set by remote control, per task name. */
  readonly limits: TaskLimits;
}

/** The common fields of a task event. */
export function taskBase(p: Pending, hostname: string): TaskEventBase {
  return { taskId: p.req.id, name: p.req.task, hostname, timestamp: Date.now() };
}

/** True when nothing is stored for this task (its own or its task's ignoreResult). */
export function ignoresResult(p: Pending): boolean {
  return Boolean(p.req.ignoreResult || p.def.options.ignoreResult);
}

/** `name[id]`, the way log lines name a task. */
export function taskLabel(e: { name: string; taskId: string }): string {
  return `${e.name}[${e.taskId}]`;
}

/** ISO time, or null. */
export function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** Worker-side publishes (retries, callbacks, eta hand-back) wait longer than a web client would. */
export function internalPublishMs(config: ResolvedConfig): number {
  return Math.max(config.publishTimeoutMs, 60_000);
}
